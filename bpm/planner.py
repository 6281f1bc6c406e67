"""Turn engine results into backend steps, across instances.

One engine step may reach other instances: a call activity starts a child
(which may run to its end at once), an instance that ends returns to the call
activity of its parent, and a cancelled call activity cancels its child. The
planner follows these links and returns one :class:`~backends.base.Step` per
instance touched, to be written by one atomic ``apply_steps``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from bpm.copying import maker, shallow_copier
from bpm.definitions import DefinitionCache
from bpm.engine import Engine
from bpm.engine.results import CallRequest, NewTask, StepResult, Subscription, Thrown, UncaughtError
from bpm.errors import Unprocessable
from bpm.model.spec import ProcessSpec
from bpm.records import ExternalTaskRecord, Instance, Step, SubscriptionIndex, Task

log = logging.getLogger(__name__)
MAX_CALL_DEPTH = 20
#: a new Instance with the same field values (bpm.copying.shallow_copy of an Instance)
_copy_instance = shallow_copier(Instance)


@dataclass(slots=True)
class Preconditions:
    """What the first step must still find true when it is written."""

    complete_task: str | None = None
    completed_by: str | None = None
    complete_external: str | None = None
    external_worker: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class Outbox:
    """What must happen after a commit: signals to broadcast, new external tasks (for handlers)."""

    thrown: list[Thrown] = field(default_factory=list)
    externals: list[ExternalTaskRecord] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.thrown and not self.externals


@dataclass(slots=True)
class Plan:
    """The steps to write at once, and the outbox to carry out after they are written."""

    steps: dict[str, Step] = field(default_factory=dict)
    outbox: Outbox = field(default_factory=Outbox)
    entries: dict[str, _Entry] = field(default_factory=dict)

    @property
    def thrown(self) -> list[Thrown]:
        return self.outbox.thrown

    @property
    def externals(self) -> list[ExternalTaskRecord]:
        return self.outbox.externals

    def ordered(self) -> list[Step]:
        return list(self.steps.values())


@dataclass(slots=True)
class _Entry:
    """One instance's planned engine result, kept until the plan is complete (a caller may cancel it)."""

    instance: Instance
    spec: ProcessSpec
    result: StepResult
    pre: Preconditions
    new: bool


#: makers of the records built on every step (as their classes make them, without type.__call__)
_make_entry = maker(_Entry)
_make_plan = maker(Plan)
_make_outbox = maker(Outbox)
_make_step = maker(Step)
#: the fields of a new task that Planner.tasks sets (the others keep their defaults)
_TASK_FIELDS = (
    "id",
    "name",
    "description",
    "instance_id",
    "definition_id",
    "process_name",
    "create_time",
    "create_by",
    "due_date",
    "priority",
    "assignee",
    "task_definition_key",
    "candidate_users",
    "candidate_groups",
    "candidate_roles",
    "form_key",
    "variables",
)
_make_task = maker(Task, *_TASK_FIELDS)
_make_pre = maker(Preconditions)


def reaches_others(instance: Instance, result: StepResult) -> bool:
    """Whether a step of ``instance`` reaches other instances (children to start or cancel, an error
    to throw to a caller, a parent to return to): else its plan is its own step alone."""
    return bool(result.calls or result.calls_cancelled or result.uncaught or (instance.parent_id and result.ended))


def _tidy(result: StepResult) -> StepResult:
    """Drop the tasks and external tasks one merged step both creates and cancels."""
    gone = set(result.cancelled) & {t.id for t in result.created}
    gone_ext = set(result.externals_cancelled) & {e.id for e in result.externals}
    result.created = [t for t in result.created if t.id not in gone]
    result.cancelled = [t for t in result.cancelled if t not in gone]
    result.externals = [e for e in result.externals if e.id not in gone_ext]
    result.externals_cancelled = [e for e in result.externals_cancelled if e not in gone_ext]
    return result


def _others(ids: list[str], excluded: str | None) -> list[str]:
    """``ids`` but ``excluded`` (a comprehension of its own: no closure cells in the caller)."""
    return [i for i in ids if i != excluded]


def _indexes(instance_id: str, subscriptions: list[Subscription]) -> list[SubscriptionIndex]:
    return [SubscriptionIndex(instance_id, s.id, s.kind, s.name, s.due) for s in subscriptions] if subscriptions else []


def merge(first: StepResult, second: StepResult) -> StepResult:
    """The effects of two consecutive engine steps on one instance, as one."""
    return StepResult(
        state=second.state,
        created=first.created + second.created,
        cancelled=first.cancelled + second.cancelled,
        externals=first.externals + second.externals,
        externals_cancelled=first.externals_cancelled + second.externals_cancelled,
        subscribed=first.subscribed + second.subscribed,
        unsubscribed=first.unsubscribed + second.unsubscribed,
        calls=first.calls + second.calls,
        calls_cancelled=first.calls_cancelled + second.calls_cancelled,
        thrown=first.thrown + second.thrown,
        history=first.history + second.history,
        uncaught=first.uncaught + second.uncaught,
    )


class Planner:
    """Builds the steps of one use case; reads the backend for parents and children.

    It gets only what it reads: the definition cache, the engine, a way to load
    one instance, and the clock.
    """

    def __init__(
        self,
        cache: DefinitionCache,
        engine: Engine,
        load_instance: Callable[[str], Instance | None],
        now_ms: Callable[[], int],
        *,
        strict_errors: bool = False,
    ) -> None:
        """``strict_errors``: a BPMN error that nothing catches, here or in a calling process, is
        refused (422 UNHANDLED_BPMN_ERROR, nothing written) instead of ending its token."""
        self.cache = cache
        self.engine = engine
        self.load_instance = load_instance
        self.now = now_ms
        self.strict_errors = strict_errors

    def spec_of(self, instance: Instance) -> ProcessSpec:
        """The parsed spec of the definition an instance runs."""
        self.cache.refresh_if_stale()
        return self.cache.spec_of_id(instance.definition_id)

    def plan(
        self,
        instance: Instance,
        spec: ProcessSpec,
        result: StepResult,
        pre: Preconditions | None = None,
        *,
        new: bool = False,
    ) -> Plan:
        """The steps of one engine step and of what it causes in other instances, and its outbox.

        Raises the planner's errors (PROCESS_NOT_FOUND for a called process, CALL_DEPTH,
        UNHANDLED_BPMN_ERROR in the strict mode) before anything is written.
        """
        if not reaches_others(instance, result):
            return self.plan_alone(instance, spec, result, pre, new=new)
        plan = Plan()
        self._add(plan, instance, spec, result, pre or Preconditions(), new=new, depth=0, returning=False)
        for instance_id, entry in plan.entries.items():
            plan.outbox.thrown.extend(entry.result.thrown)
            plan.outbox.externals.extend(plan.steps[instance_id].externals)
        return plan

    def plan_alone(
        self,
        instance: Instance,
        spec: ProcessSpec,
        result: StepResult,
        pre: Preconditions | None = None,
        *,
        new: bool = False,
    ) -> Plan:
        """:meth:`plan` of a step that reaches no other instance (``not reaches_others(instance, result)``):
        what :meth:`_add` does for this one instance alone."""
        entry = _make_entry(instance, spec, result, pre or _make_pre(), new)
        step = self._step(entry)
        outbox = _make_outbox([*result.thrown], [*step.externals])
        return _make_plan({instance.id: step}, outbox, {instance.id: entry})

    # -- one instance ----------------------------------------------------------------

    def _add(
        self,
        plan: Plan,
        instance: Instance,
        spec: ProcessSpec,
        result: StepResult,
        pre: Preconditions,
        *,
        new: bool,
        depth: int,
        returning: bool,
    ) -> StepResult:
        """Plan ``result`` for ``instance``; ``returning``: a parent in this plan takes what it causes."""
        if depth > MAX_CALL_DEPTH:
            raise Unprocessable(f"call activities nest deeper than {MAX_CALL_DEPTH} levels", code="CALL_DEPTH")
        result = self._start_children(plan, instance, spec, result, depth)
        entry = _Entry(instance, spec, result, pre, new)
        plan.entries[instance.id] = entry
        plan.steps[instance.id] = self._step(entry)
        for child_id in result.calls_cancelled:
            self._cancel_child(plan, child_id, depth)
        if not returning:
            for error in result.uncaught:
                if not (instance.parent_id and self._raise_to_parent(plan, instance, error, depth)):
                    self._unhandled(instance, error)
        final = plan.entries[instance.id].result  # cancelled meanwhile when a caller caught its error
        if final.ended and instance.parent_id and not returning and instance.parent_id not in plan.entries:
            self._return_to_parent(plan, replace(instance, state=final.state), depth)
        return final

    def _step(self, entry: _Entry) -> Step:
        instance, result, pre = entry.instance, entry.result, entry.pre
        now = result.now if result.now is not None else self.now()  # the engine step's time: no second read
        ended = bool(result.state["ended"])
        updated = _copy_instance(instance)  # dataclasses.replace, without re-running __init__
        updated.state = result.state
        updated.rev = 1 if entry.new else instance.rev + 1
        updated.ended = ended
        updated.end_time = now if ended and not instance.ended else instance.end_time
        return _make_step(
            updated,
            self.tasks(updated, result.created, now) if result.created else [],
            [*result.cancelled],
            pre.complete_task,
            pre.completed_by,
            now,
            [*pre.history, *result.history],
            entry.new,
            self.externals(updated, result.externals, now) if result.externals else [],
            _others(result.externals_cancelled, pre.complete_external) if result.externals_cancelled else [],
            pre.complete_external,
            pre.external_worker,
            _indexes(updated.id, result.subscribed) if result.subscribed else [],
            _indexes(updated.id, result.unsubscribed) if result.unsubscribed else [],
        )

    def _start_children(
        self, plan: Plan, instance: Instance, spec: ProcessSpec, result: StepResult, depth: int
    ) -> StepResult:
        pending = list(result.calls)
        while pending:
            call = pending.pop(0)
            child_result = self._start_child(plan, instance, call, depth)
            for error in child_result.uncaught:  # thrown at the call activity at once, as in Camunda 7
                caught = self.engine.call_error(spec, result.state, call.child_id, error.code, error.message)
                if caught is not None:  # the call activity is interrupted: the child is cancelled (see _add)
                    result = merge(result, caught)
                    pending.extend(caught.calls)
                    break
                result.uncaught.append(error)  # on up, to this instance's caller
            else:
                if child_result.ended:  # the child ran to its end at once: the parent moves on now
                    returned = self._child_ended(spec, result.state, call.child_id, child_result.state)
                    result = merge(result, returned)
                    pending.extend(returned.calls)
        return result

    def _start_child(self, plan: Plan, parent: Instance, call: CallRequest, depth: int) -> StepResult:
        cache = self.cache
        cache.refresh_if_stale()
        pinned = call.version if call.binding in ("version", "versionTag") else None  # else the latest
        definition = cache.find(key=call.process_key, version=pinned)
        child_spec = cache.spec(definition)
        child_result = self.engine.start(child_spec, call.variables, initiator=parent.create_by or None)
        child = Instance(
            id=call.child_id,
            definition_id=definition.definition_id,
            process_key=definition.key,
            process_name=child_spec.label,
            state=child_result.state,
            create_time=self.now(),
            create_by=parent.create_by,
            app_name=parent.app_name,
            rev=0,
            business_key=call.business_key or "",
            parent_id=parent.id,
        )
        started = {
            "time": self.now(),
            "type": "instance.started",
            "user": parent.create_by or None,
            "actor": None,
            "parentId": parent.id,
            "callActivity": call.element_id,
        }
        pre = Preconditions(history=[started])
        return self._add(plan, child, child_spec, child_result, pre, new=True, depth=depth + 1, returning=True)

    def _cancel_child(self, plan: Plan, child_id: str, depth: int) -> None:
        if child_id in plan.entries:
            self._cancel_planned(plan, child_id, depth)
            return
        child = self.load_instance(child_id)
        if child is None or child.ended:
            return
        spec = self.spec_of(child)
        pre = Preconditions(history=[self._cancelled_entry()])
        cancel = self.engine.cancel(child.state)
        self._add(plan, child, spec, cancel, pre, new=False, depth=depth + 1, returning=True)

    def _cancel_planned(self, plan: Plan, instance_id: str, depth: int) -> None:
        """Cancel an instance whose step is already planned (its caller caught its BPMN error)."""
        entry = plan.entries[instance_id]
        if entry.result.ended:
            return
        cancel = self.engine.cancel(entry.result.state)
        cancel.history.append(self._cancelled_entry())
        entry.result = _tidy(merge(entry.result, cancel))
        plan.steps[instance_id] = self._step(entry)
        for child_id in cancel.calls_cancelled:
            self._cancel_child(plan, child_id, depth + 1)

    def _cancelled_entry(self) -> dict[str, Any]:
        return {
            "time": self.now(),
            "type": "instance.cancelled",
            "user": None,
            "actor": None,
            "reason": "the calling activity was cancelled",
        }

    def _return_to_parent(self, plan: Plan, child: Instance, depth: int) -> None:
        parent = self.load_instance(child.parent_id or "")
        if parent is None or parent.ended:
            return
        spec = self.spec_of(parent)
        returned = self._child_ended(spec, parent.state, child.id, child.state)
        self._add(plan, parent, spec, returned, Preconditions(), new=False, depth=depth + 1, returning=False)

    def _child_ended(
        self, spec: ProcessSpec, parent_state: dict[str, Any], child_id: str, child_state: dict[str, Any]
    ) -> StepResult:
        """The parent's step when a child ends: back to the call activity (or, for a child
        stored by an older version with its error recorded, that error)."""
        engine = self.engine
        escaped = child_state.get("escaped_error")
        if escaped:
            return engine.call_failed(spec, parent_state, child_id, escaped.get("code"), escaped.get("message", ""))
        return engine.call_returned(spec, parent_state, child_id, child_state.get("vars", {}))

    # -- uncaught BPMN errors --------------------------------------------------------

    def _raise_to_parent(self, plan: Plan, child: Instance, error: UncaughtError, depth: int) -> bool:
        """Throw a child's uncaught error at the call activity of its caller, and on up while
        nobody catches it (Camunda 7). True when some caller caught it (its step is planned)."""
        if depth > MAX_CALL_DEPTH:
            raise Unprocessable(f"call activities nest deeper than {MAX_CALL_DEPTH} levels", code="CALL_DEPTH")
        if not child.parent_id or child.parent_id in plan.entries:
            return False
        parent = self.load_instance(child.parent_id)
        if parent is None or parent.ended:
            return False
        spec = self.spec_of(parent)
        caught = self.engine.call_error(spec, parent.state, child.id, error.code, error.message)
        if caught is None:
            return self._raise_to_parent(plan, parent, error, depth + 1)
        self._add(plan, parent, spec, caught, Preconditions(), new=False, depth=depth + 1, returning=False)
        return True

    def _unhandled(self, instance: Instance, error: UncaughtError) -> None:
        where = f"'{error.element_id}' of process instance '{instance.id}' ({instance.process_key})"
        if self.strict_errors:
            raise Unprocessable(
                f"BPMN error '{error.code}' thrown at {where} is not caught by any boundary or event "
                "subprocess, here or in a calling process",
                code="UNHANDLED_BPMN_ERROR",
            )
        log.warning("BPMN error %r thrown at %s is not caught: the token that threw it ended", error.code, where)

    # -- records ---------------------------------------------------------------------

    def tasks(self, instance: Instance, created: list[NewTask], now: int) -> list[Task]:
        return [
            _make_task(  # the fields of _TASK_FIELDS, in that order
                new.id,
                new.name,
                new.description,
                instance.id,
                instance.definition_id,
                instance.process_name,
                now,
                instance.create_by,
                new.due_date,
                new.priority,
                new.assignee,
                new.element_id,
                [*new.candidate_users],  # (a list display: no call of list)
                [*new.candidate_groups],
                [*new.candidate_roles],
                new.form_key,
                {**new.variables},
            )
            for new in created
        ]

    def externals(self, instance: Instance, created: list[Any], now: int) -> list[ExternalTaskRecord]:
        return [self.external(instance, new, now) for new in created]

    @staticmethod
    def external(instance: Instance, new: Any, now: int) -> ExternalTaskRecord:
        return ExternalTaskRecord(
            id=new.id,
            topic=new.topic,
            instance_id=instance.id,
            definition_id=instance.definition_id,
            process_key=instance.process_key,
            element_id=new.element_id,
            name=new.name,
            kind=new.kind,
            create_time=now,
            retries=new.retries,
            priority=new.priority,
            business_key=instance.business_key,
            variables=dict(new.variables),
        )
