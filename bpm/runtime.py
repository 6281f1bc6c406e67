"""The use cases: start, claim, unclaim, complete, assign, queries, variables, refresh.

This is the one place where the engine meets the backend. Nothing here knows
about Flask or Redis: callers pass plain values and get records or raise
:class:`bpm.errors.BpmError` subclasses.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from backends.base import Backend
from bpm import class_actions
from bpm.class_actions import parse_class_action_name
from bpm.committer import Committer
from bpm.condition_cases import ConditionCases
from bpm.definitions import DefinitionCache, Deployer, DeployReport, is_bpmn_file
from bpm.engine import Engine, StepResult
from bpm.errors import (
    ConcurrentModification,
    InstanceNotFound,
    InvalidDefinition,
    TaskNotFound,
    ValidationError,
)
from bpm.expressions.beans import BeanRegistry
from bpm.external_cases import ExternalTaskCases, Handler
from bpm.forms import check_start_form
from bpm.message_cases import MessageCases
from bpm.model.spec import ProcessSpec
from bpm.planner import Plan, Preconditions
from bpm.records import (
    Definition,
    ExternalTaskRecord,
    Identity,
    Instance,
    InstanceQuery,
    Principals,
    Step,
    Task,
    TaskQuery,
)
from bpm.task_cases import MAX_STEP_RETRIES, Completion
from bpm.timer_cases import TimerCases
from bpm.views import InstanceView, external_incidents, instance_view, task_tree, timer_incidents

#: what a BPMN error nothing catches does (see Runtime)
UNHANDLED_BPMN_ERROR_MODES = ("end", "fail")
#: the keys every history entry shows first (None where they do not apply)
HISTORY_KEYS = ("time", "type", "taskId", "taskName", "elementId", "user", "actor")


def epoch_ms() -> int:
    return int(time.time() * 1000)


class Runtime:
    """The use cases of the process runtime, against one backend.

    Events and service work are collaborators (:class:`~bpm.timer_cases.TimerCases`,
    :class:`~bpm.message_cases.MessageCases`, :class:`~bpm.external_cases.ExternalTaskCases`);
    every step is written by the one :class:`~bpm.committer.Committer`, which carries
    out the step's outbox (signals, in-process handlers) after the write.
    """

    def __init__(
        self,
        backend: Backend,
        process_dir: str | Path | None = None,
        *,
        now_ms: Callable[[], int] = epoch_ms,
        max_bpmn_bytes: int = 5 * 1024 * 1024,
        reject_scripts: bool = False,
        unhandled_bpmn_error: str = "end",
        beans: BeanRegistry | None = None,
        definitions_max_age: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """``reject_scripts``: refuse at deployment scripts the engine cannot run (Groovy,
        JavaScript ...), instead of failing when an instance reaches them.

        ``unhandled_bpmn_error``: ``end`` (Camunda 7's default) ends the token that threw a
        BPMN error nothing catches, here or in a calling process, and logs it; ``fail``
        (Camunda's ``enableExceptionsAfterUnhandledBpmnError``) refuses that step with 422
        UNHANDLED_BPMN_ERROR, writing nothing.

        ``beans``: the objects expressions may call (``BPM_BEANS``, see :mod:`bpm.expressions.beans`).

        ``definitions_max_age``: how often (seconds of ``monotonic``) this worker reads the
        backend's cache generation; a deployment on another worker reaches it within that."""
        if unhandled_bpmn_error not in UNHANDLED_BPMN_ERROR_MODES:
            raise ValueError(
                f"unhandled_bpmn_error={unhandled_bpmn_error!r} is not one of {UNHANDLED_BPMN_ERROR_MODES}"
            )
        self.backend = backend
        self.process_dir = Path(process_dir) if process_dir else None
        self.now_ms = now_ms
        self.engine = Engine(backend.new_id, now_ms, beans)
        self.cache = DefinitionCache(backend, max_bpmn_bytes, max_age=definitions_max_age, clock=monotonic)
        self.deployer = Deployer(backend, now_ms, max_bpmn_bytes, reject_scripts=reject_scripts, beans=beans)
        self.committer = Committer(
            backend, self.cache, self.engine, now_ms, strict_errors=unhandled_bpmn_error == "fail"
        )
        self.planner = self.committer.planner
        # the collaborators start instances through this runtime's start_at (a hook subclasses may wrap)
        self.timers = TimerCases(self.committer, self.start_at)
        self.externals = ExternalTaskCases(self.committer)
        self.messages = MessageCases(self.committer, self.externals.run_handlers, self.start_at)
        self.conditions = ConditionCases(self.committer, self.start_at)
        self.completion = Completion(self.committer, self.principals)
        self.committer.after_commit = self.messages.after_commit
        #: called with the steps of every committed plan, after the write (metrics)
        self.observers: list[Callable[[list[Step]], None]] = self.committer.observers

    # -- deployment and caches --------------------------------------------------------

    def process_files(self) -> list[Path]:
        if self.process_dir is None or not self.process_dir.is_dir():
            return []
        return sorted(p for p in self.process_dir.iterdir() if is_bpmn_file(p))

    def deploy_directory(self) -> DeployReport:
        """Deploy every file of the process folder (new versions only where content changed)."""
        report = self.deployer.deploy_files(self.process_files())
        self._deployed(report)
        return report

    def deploy(self, data: bytes, *, file: str, app_name: str = "") -> list[Definition]:
        """Deploy one uploaded BPMN file. Raises InvalidDefinition; stores nothing then."""
        return list(self.deploy_file(data, file=file, app_name=app_name).deployed)

    def deploy_file(self, data: bytes, *, file: str, app_name: str = "") -> DeployReport:
        """Deploy one uploaded BPMN file: the report has its definitions and its warnings."""
        report = self.deployer.deploy_bytes(data, file=file, app_name=app_name)
        self._deployed(report)
        return report

    def _deployed(self, report: DeployReport) -> None:
        """After a deployment: every worker drops its cache; new timer start events are scheduled."""
        self.backend.bump_cache_generation()
        self.cache.reload()
        self.schedule_start_timers(report.created)

    def refresh_cache(self) -> dict[str, Any]:
        """Reload from the process folder and the backend; invalidate every worker's cache."""
        report = self.deploy_directory()
        return {
            "processes": [self._summary(d) for d in sorted(self.cache.latest(), key=lambda d: d.key)],
            "errors": [{"file": e["file"], "message": e["message"]} for e in report.errors],
            "warnings": list(report.warnings),
        }

    def process_definitions(self) -> list[Definition]:
        self.cache.refresh_if_stale()
        return sorted(self.cache.latest(), key=lambda d: d.key)

    @staticmethod
    def _summary(definition: Definition) -> dict[str, Any]:
        return {"key": definition.key, "name": definition.name, "version": definition.version}

    def class_action(
        self, file_names: Iterable[str], event: str = "refresh", process_name: str | None = None
    ) -> dict[str, Any]:
        """Refresh, first-deploy ('generate') or fetch ('file') specific processes (:mod:`bpm.class_actions`)."""
        return class_actions.class_action(self, file_names, event, process_name)

    # -- instances --------------------------------------------------------------------

    def start(
        self,
        *,
        process_name: str | None = None,
        unique_id: str | None = None,
        app_name: str | None = None,
        snap_version: str | None = None,
        variables: Mapping[str, Any] | None = None,
        user: str | None = None,
        actor: str | None = None,
        business_key: str | None = None,
    ) -> str:
        """Start an instance of the named process; return its id. Raises ProcessNotFound.

        ``actor`` (default: ``user``) is who the history records as having started it.
        """
        self.cache.refresh_if_stale()
        if unique_id:
            definition = self.cache.find(key=unique_id, app_name=app_name, version=snap_version)
        elif process_name:
            definition = self.cache.find(name=process_name, app_name=app_name, version=snap_version)
        else:
            raise ValidationError("'processName' or 'uniqueId' is required")
        spec = self.cache.spec(definition)
        check_start_form(spec, None, variables)
        return self.start_at(
            definition,
            spec,
            None,
            variables or {},
            user=user,
            actor=actor,
            app_name=app_name,
            business_key=business_key,
        )

    def start_at(
        self,
        definition: Definition,
        spec: ProcessSpec,
        start_event: str | None,
        variables: Mapping[str, Any],
        *,
        user: str | None,
        actor: str | None = None,
        app_name: str | None = None,
        business_key: str | None = None,
    ) -> str:
        """Start an instance at ``start_event`` (None: the none start event); return its id."""
        return self.committer.start_at(
            definition,
            spec,
            start_event,
            variables,
            user=user,
            actor=actor,
            app_name=app_name,
            business_key=business_key,
        )

    def spec_of(self, instance: Instance) -> ProcessSpec:
        """The parsed spec of the definition an instance runs."""
        return self.committer.spec_of(instance)

    def commit(
        self,
        instance: Instance,
        spec: ProcessSpec,
        result: StepResult,
        pre: Preconditions | None = None,
        *,
        new: bool = False,
    ) -> Plan:
        """Write one engine step (see :meth:`bpm.committer.Committer.commit`)."""
        return self.committer.commit(instance, spec, result, pre, new=new)

    def instance(self, instance_id: str) -> Instance:
        found = self.backend.instance(instance_id)
        if found is None:
            raise InstanceNotFound(f"process instance '{instance_id}' does not exist")
        return found

    def instance_view(self, instance_id: str) -> InstanceView:
        """One instance with its active tasks, external tasks and incidents. Raises InstanceNotFound.

        Three backend reads (instance, tasks, external tasks); one for an ended instance.
        """
        instance = self.instance(instance_id)
        if instance.ended:
            return instance_view(instance, [], [])
        return instance_view(
            instance, self.backend.instance_tasks(instance_id), self.backend.instance_externals(instance_id)
        )

    def instance_tasks(self, instance_id: str, *, include_children: bool = False) -> list[Task]:
        """The instance's active tasks; with ``include_children`` also those of the instances
        its call activities started, recursively (see :func:`bpm.views.task_tree`)."""
        if not include_children:
            return self.backend.instance_tasks(instance_id)
        return task_tree(self.backend, instance_id)

    def list_instances(
        self,
        *,
        process_key: str | None = None,
        business_key: str | None = None,
        state: str | None = None,
        start: int = 0,
        size: int = 100,
    ) -> tuple[list[Instance], int]:
        """Instances, newest first, narrowed by process key, business key and state (active/ended)."""
        query = InstanceQuery(process_key, business_key, state, start, size)
        return self.backend.list_instances(query)

    # -- tasks ------------------------------------------------------------------------

    def principals(self, user: str, identity: Identity | None = None) -> Principals:
        """The user's name, groups and roles (from ``identity`` or the identity store)."""
        return (identity or self.backend.identity(user)).principals()

    def claim(self, task_id: str, user: str, identity: Identity | None = None, *, actor: str | None = None) -> Task:
        """Make ``user`` the assignee. Raises TaskNotFound, TaskNotActive, TaskAlreadyClaimed, NotCandidate."""
        audit = self.committer.audit("task.claimed", user=user, actor=actor or user)
        if identity is None:  # the backend reads the identity store (in the claim's round trip where it can)
            return self.backend.claim_as_stored(task_id, user, audit=audit)
        return self.backend.claim(task_id, user, identity.principals(), audit=audit)

    def unclaim(self, task_id: str, user: str | None, *, actor: str | None = None) -> Task:
        """Give the task back to its candidates. Raises TaskNotFound, TaskNotActive, Conflict."""
        audit = self.audit("task.unclaimed", user=user, actor=actor or user)
        return self.backend.unclaim(task_id, user, audit=audit)

    def complete(
        self,
        task_id: str,
        user: str,
        variables: Mapping[str, Any] | None = None,
        identity: Identity | None = None,
        *,
        actor: str | None = None,
    ) -> None:
        """Complete a task and run the instance on to its next wait states, atomically
        (:meth:`bpm.task_cases.Completion.complete`). ``actor`` (default: ``user``) is
        recorded in the history."""
        self.completion.complete(task_id, user, variables, identity, actor=actor)

    def _task_and_instance(self, task_id: str) -> tuple[Task, Instance]:
        pair = self.backend.task_and_instance(task_id)
        if pair is None:
            raise TaskNotFound(f"task '{task_id}' does not exist")
        return pair

    def cancel_instance(self, instance_id: str, *, actor: str | None = None) -> None:
        """End an instance at once, cancelling its open tasks."""
        for _ in range(MAX_STEP_RETRIES):
            instance = self.instance(instance_id)
            if instance.ended:
                return
            cancelled = [self.audit("instance.cancelled", user=None, actor=actor)]
            try:
                self.commit(
                    instance,
                    self.spec_of(instance),
                    self.engine.cancel(instance.state),
                    Preconditions(history=cancelled),
                )
                return
            except ConcurrentModification:
                continue
        raise ConcurrentModification(f"process instance '{instance_id}' kept changing")

    def task_variables(self, task_id: str, names: Iterable[str] | None = None) -> dict[str, Any]:
        """The instance's variables overlaid by the task's local ones (optionally only ``names``)."""
        task, instance = self._task_and_instance(task_id)
        variables = copy.deepcopy(instance.state.get("vars", {}))
        variables.update(copy.deepcopy(task.variables))
        if names is not None:
            wanted = list(names)
            return {n: variables[n] for n in wanted if n in variables}
        return variables

    def assign(self, task_id: str, users: list[str], *, actor: str | None = None) -> Task:
        """One user: the assignee (``task.assigned``); several: the candidates (``task.delegated``)."""
        users = [u for u in dict.fromkeys(users) if u]
        if not users:
            missing = {"user": ["Missing data for required field."]}
            raise ValidationError("at least one 'user' is required", data=missing)
        if len(users) == 1:
            audit = self.audit("task.assigned", user=users[0], actor=actor)
        else:
            audit = self.audit("task.delegated", user=None, actor=actor, candidateUsers=users)
        return self.backend.assign(task_id, users, audit=audit)

    def assign_instance(self, instance_id: str, user: str, *, actor: str | None = None) -> list[str]:
        """Assign every active task of the instance to ``user``. Raises InstanceNotFound."""
        audit = self.audit("task.assigned", user=user, actor=actor)
        return self.backend.assign_instance(instance_id, user, audit=audit)

    # -- audit trail ------------------------------------------------------------------

    def audit(
        self, kind: str, *, user: str | None, actor: str | None, task: Task | None = None, **extra: Any
    ) -> dict[str, Any]:
        """A history entry of ``kind`` made now; the task's fields when ``task`` is given.

        For claim/unclaim/assign the backend adds the task's fields itself, inside the
        atomic write (see :class:`backends.base.Backend`).
        """
        return self.committer.audit(kind, user=user, actor=actor, task=task, **extra)

    def history(self, instance_id: str) -> list[dict[str, Any]]:
        """The instance's audit trail, oldest first, each entry with :data:`HISTORY_KEYS` first.

        Raises InstanceNotFound.
        """
        return [{**{k: entry.get(k) for k in HISTORY_KEYS}, **entry} for entry in self.backend.history(instance_id)]

    def query_tasks(
        self,
        *,
        users: Iterable[str] = (),
        groups: Iterable[str] = (),
        roles: Iterable[str] = (),
        include_assigned: bool = False,
        sort: str = "priority",
        order: str | None = None,
        start: int = 0,
        size: int = 100,
        identities: Mapping[str, Identity] | None = None,
        unassigned: bool = False,
        process_key: str | None = None,
        business_key: str | None = None,
        task_definition_key: str | None = None,
        instance_id: str | None = None,
    ) -> tuple[list[Task], int]:
        """To-do lists and group/role queues (see API.md route 6), narrowed by the filters.

        Without users, groups and roles: the active tasks of ``instance_id`` or ``process_key``
        (one of them required then)."""
        users = list(dict.fromkeys(users))
        known = dict(identities or {})
        missing = [u for u in users if u not in known]
        for identity in self.backend.identities(missing) if missing else []:
            known[identity.user] = identity
        all_groups = set(groups).union(*(known[u].groups for u in users))
        all_roles = set(roles).union(*(known[u].roles for u in users))
        query = TaskQuery(
            assignees=frozenset(users),
            candidates=Principals(frozenset(users), frozenset(all_groups), frozenset(all_roles)),
            include_assigned=include_assigned,
            sort=sort,
            order=order,
            start=start,
            size=size,
            unassigned=unassigned,
            process_key=process_key,
            business_key=business_key,
            task_definition_key=task_definition_key,
            instance_id=instance_id,
        )
        if not query.names_principals and instance_id is None and process_key is None:
            raise ValueError("a task query names a user, group or role, an instance or a process key")
        return self.backend.query_tasks(query)

    # -- identity store ---------------------------------------------------------------

    def identity(self, user: str) -> Identity:
        return self.backend.identity(user)

    def set_identity(self, user: str, groups: Iterable[str], roles: Iterable[str]) -> Identity:
        identity = Identity(user, frozenset(g for g in groups if g), frozenset(r for r in roles if r))
        self.backend.set_identity(identity)
        return identity

    # -- events and service work (collaborators) ----------------------------------------

    def fire_due_timers(self, now: int | None = None, limit: int = 100) -> int:
        """Fire up to ``limit`` timers due at ``now`` (default: the clock); return how many fired."""
        return self.timers.fire_due(now, limit)

    def schedule_start_timers(self, deployed: Iterable[Definition]) -> None:
        self.timers.schedule_start_timers(deployed)

    def retry_timer(self, instance_id: str, sub_id: str, *, actor: str | None = None) -> None:
        """Resolve a timer incident: the timer is due again now. Raises NotFound (INCIDENT_NOT_FOUND)."""
        self.instance(instance_id)
        self.timers.retry_timer(instance_id, sub_id, actor=actor)

    def incidents(self, instance_id: str) -> list[dict[str, Any]]:
        """The instance's incidents: external tasks out of retries and timers that kept failing."""
        instance = self.instance(instance_id)
        externals = self.backend.instance_externals(instance_id)
        return external_incidents(externals) + timer_incidents(instance.state)

    def correlate_message(
        self,
        name: str,
        *,
        business_key: str | None = None,
        instance_id: str | None = None,
        correlation: Mapping[str, Any] | None = None,
        variables: Mapping[str, Any] | None = None,
        all_matches: bool = False,
        user: str | None = None,
    ) -> dict[str, Any]:
        """See :meth:`bpm.message_cases.MessageCases.correlate_message`."""
        return self.messages.correlate_message(
            name,
            business_key=business_key,
            instance_id=instance_id,
            correlation=correlation,
            variables=variables,
            all_matches=all_matches,
            user=user,
        )

    def evaluate_conditions(
        self,
        variables: Mapping[str, Any],
        *,
        process_key: str | None = None,
        business_key: str | None = None,
        user: str | None = None,
    ) -> list[str]:
        """Start every process whose conditional start event holds for ``variables`` (Camunda's
        ``POST /condition``); the new instance ids. See :mod:`bpm.condition_cases`."""
        return self.conditions.evaluate_start_conditions(
            variables, process_key=process_key, business_key=business_key, user=user
        )

    def broadcast_signal(
        self, name: str, variables: Mapping[str, Any] | None = None, *, user: str | None = None
    ) -> dict[str, Any]:
        """Deliver a signal to every wait for it and start every process with that signal start."""
        return self.messages.broadcast_signal(name, variables, user=user)

    @property
    def handlers(self) -> dict[str, Handler]:
        return self.externals.handlers

    def register_handler(self, topic: str, handler: Handler) -> None:
        """Run ``handler`` in-process for new external tasks of ``topic`` (instead of a worker)."""
        self.externals.register_handler(topic, handler)

    def external_variables(self, task: ExternalTaskRecord) -> dict[str, Any]:
        return self.externals.external_variables(task)

    def fetch_and_lock(
        self, worker: str, topics: Mapping[str, int], max_tasks: int = 10
    ) -> list[tuple[ExternalTaskRecord, dict[str, Any]]]:
        """Lock up to ``max_tasks`` tasks of ``topics`` (name -> lock ms) for ``worker``."""
        return self.externals.fetch_and_lock(worker, topics, max_tasks)

    def complete_external(self, external_id: str, worker: str, variables: Mapping[str, Any] | None = None) -> None:
        """The worker that holds the lock completes the task; the instance runs on."""
        self.externals.complete_external(external_id, worker, variables)

    def bpmn_error_external(
        self,
        external_id: str,
        worker: str,
        code: str,
        message: str = "",
        variables: Mapping[str, Any] | None = None,
    ) -> None:
        """The worker reports a BPMN error (see the README on uncaught errors)."""
        self.externals.bpmn_error_external(external_id, worker, code, message, variables)

    def fail_external(
        self,
        external_id: str,
        worker: str,
        retries: int,
        retry_timeout: int,
        error_message: str | None,
        error_details: str | None,
    ) -> ExternalTaskRecord:
        """Report a failure: retried later while ``retries`` > 0, else an incident."""
        return self.externals.fail_external(external_id, worker, retries, retry_timeout, error_message, error_details)

    def set_external_retries(self, external_id: str, retries: int) -> ExternalTaskRecord:
        return self.externals.set_external_retries(external_id, retries)

    def extend_external_lock(self, external_id: str, worker: str, duration: int) -> ExternalTaskRecord:
        return self.externals.extend_external_lock(external_id, worker, duration)

    def unlock_external(self, external_id: str) -> ExternalTaskRecord:
        return self.externals.unlock_external(external_id)

    def external_task(self, external_id: str) -> ExternalTaskRecord:
        """One external task, active or closed. Raises ExternalTaskNotFound."""
        return self.externals.external_task(external_id)

    def instance_externals(self, instance_id: str) -> list[ExternalTaskRecord]:
        """The instance's active external tasks, incidents included. Raises InstanceNotFound."""
        self.instance(instance_id)
        return self.backend.instance_externals(instance_id)


__all__ = ["InvalidDefinition", "Runtime", "parse_class_action_name"]
