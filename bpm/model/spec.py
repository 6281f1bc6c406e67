"""Immutable process specs: what the parser builds and the engine walks.

A spec is shared by every instance of one deployed definition, so nothing here
may be mutated after parsing (frozen dataclasses, tuples, read-only mappings).
Elements of embedded subprocesses live in the same flat ``elements`` map; each
element names its enclosing subprocess in ``scope`` (``None`` at process level).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

from bpm.errors import Unprocessable


class Evaluable(Protocol):
    """A compiled expression or template (see :mod:`bpm.expressions`)."""

    @property
    def source(self) -> str: ...

    def evaluate(self, variables: Mapping[str, Any]) -> Any: ...


@dataclass(frozen=True, slots=True)
class IoMapping:
    """One input or output mapping: ``camunda:inputParameter``/``outputParameter`` or Zeebe
    ``input``/``output``. ``value`` is a compiled expression or template, None, or a list /
    dict of those (``camunda:list``, ``camunda:map``)."""

    target: str
    value: Any = None
    line: int | None = None
    #: Zeebe: a variable that does not exist is null (FEEL), not an error
    missing_is_null: bool = False


@dataclass(frozen=True, slots=True)
class Listener:
    """An execution or task listener the engine runs at its ``event``.

    Execution listeners: ``start``, ``end`` (elements) and ``take`` (sequence flows); task
    listeners: ``create``, ``assignment``, ``complete``. ``expression`` is evaluated on the
    safe evaluator (its value is dropped); ``target`` set, the value goes to that variable
    (``${execution.setVariable('x', ...)}``); or ``script`` runs (a script in a language the
    evaluator runs, as script tasks do).
    """

    event: str
    expression: Evaluable | None = None
    target: str | None = None
    script: str | None = None
    language: str | None = None
    line: int | None = None


@dataclass(frozen=True, slots=True)
class SequenceFlow:
    id: str
    source: str
    target: str
    name: str = ""
    condition: Evaluable | None = None
    line: int | None = None
    listeners: tuple[Listener, ...] = ()


@dataclass(frozen=True, slots=True)
class EventDefinition:
    """One event definition of an event: what it waits for or throws.

    ``kind`` is ``timer``, ``message``, ``signal``, ``error``, ``escalation``,
    ``conditional`` or ``terminate``. ``ref`` is the message or signal *name*, or the error or
    escalation *code*, resolved from the top-level declaration its ``...Ref``
    names (None for a catch-all error or escalation). Timers carry exactly one
    of ``time_date``, ``time_duration``, ``time_cycle`` (templates giving ISO 8601
    text). ``variable`` names where a caught error's code/message go
    (``camunda:errorCodeVariable``), ``message_variable`` its message.
    Conditional events carry their ``condition`` and Camunda's filters: only a
    change of ``variable_name`` (``camunda:variableName``) re-evaluates it, only
    changes of the kinds in ``variable_events`` (``create``, ``update``, ``delete``).
    """

    kind: str
    ref: str | None = None
    time_date: Evaluable | None = None
    time_duration: Evaluable | None = None
    time_cycle: Evaluable | None = None
    variable: str | None = None
    message_variable: str | None = None
    line: int | None = None
    condition: Evaluable | None = None
    variable_name: str | None = None
    variable_events: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LoopSpec:
    """Loop characteristics of an activity: multi-instance or a standard loop.

    Multi-instance: ``cardinality`` (a template giving an int) or ``collection``
    (an expression giving a list: ``camunda:collection`` as ``${list}`` or a bare
    variable name, or the standard ``loopDataInputRef``), ``element_variable``
    (``camunda:elementVariable`` / ``inputDataItem`` name), and an optional
    ``completion_condition``. Standard loop: ``loop_condition``, ``test_before``,
    ``maximum``.
    """

    kind: str  # "multi" | "standard"
    sequential: bool = False
    cardinality: Evaluable | None = None
    collection: Evaluable | None = None
    element_variable: str | None = None
    completion_condition: Evaluable | None = None
    loop_condition: Evaluable | None = None
    test_before: bool = False
    maximum: int | None = None


@dataclass(frozen=True, slots=True)
class DeployWarning:
    """Something in a file that the engine does not honour as the vendor's engine would.

    ``instead`` says what happens instead (the element runs without it ...); ``fix`` how to
    get the behaviour, where there is a way. Listed in deployment responses and reports.
    """

    file: str
    element_id: str | None
    line: int | None
    attribute: str
    message: str
    instead: str
    fix: str | None = None

    def as_dict(self) -> dict[str, Any]:
        entry = {"file": self.file, "elementId": self.element_id, "line": self.line, "attribute": self.attribute,
                 "message": self.message, "instead": self.instead}  # fmt: skip
        if self.fix:
            entry["fix"] = self.fix
        return entry


@dataclass(frozen=True, slots=True)
class FormField:
    """One field of a generated form: ``camunda:formField`` or ``flowable:formProperty``.

    ``type`` as written (``string``, ``long``, ``boolean``, ``date``, ``enum``, ``double`` ...);
    ``values`` the (id, name) choices of an enum; ``constraints`` Camunda's validation
    constraints other than ``required``/``readonly`` (``min``, ``max``, ``minlength``,
    ``maxlength``) with their config; ``variable`` the process variable the value goes to
    (Flowable's ``variable``; default: the id); ``writable`` False for read-only fields.
    """

    id: str
    label: str = ""
    type: str = "string"
    default_value: str | None = None
    required: bool = False
    values: tuple[tuple[str, str], ...] = ()
    constraints: tuple[tuple[str, str], ...] = ()
    writable: bool = True
    variable: str | None = None
    date_pattern: str | None = None
    line: int | None = None

    @property
    def target(self) -> str:
        return self.variable or self.id


@dataclass(frozen=True, slots=True)
class Element:
    """A flow node. ``tag`` is the BPMN local tag name (``task``, ``manualTask`` ...).

    ``boundary`` lists the ids of the boundary events attached to this activity,
    ``loop`` its loop characteristics.
    """

    id: str
    tag: str
    name: str = ""
    scope: str | None = None
    incoming: tuple[str, ...] = ()
    outgoing: tuple[str, ...] = ()
    default: str | None = None
    documentation: str = ""
    line: int | None = None
    boundary: tuple[str, ...] = ()
    loop: LoopSpec | None = None
    #: input/output mappings (``camunda:inputOutput``, ``zeebe:ioMapping``) and listeners
    io_inputs: tuple[IoMapping, ...] = ()
    io_outputs: tuple[IoMapping, ...] = ()
    listeners: tuple[Listener, ...] = ()

    @property
    def label(self) -> str:
        return self.name or self.id


@dataclass(frozen=True, slots=True)
class StartEvent(Element):
    """A start event: none, or with an ``event`` (timer, message, signal; error and
    escalation in event subprocesses). ``initiator`` names the variable that receives
    the starter; ``interrupting`` matters in event subprocesses."""

    initiator: str | None = None
    event: EventDefinition | None = None
    interrupting: bool = True
    form_key: str | None = None
    form_fields: tuple[FormField, ...] = ()


@dataclass(frozen=True, slots=True)
class EndEvent(Element):
    """An end event: none, terminate, or throwing an error, escalation, message or signal."""

    terminate: bool = False
    event: EventDefinition | None = None


@dataclass(frozen=True, slots=True)
class IntermediateCatchEvent(Element):
    """Waits for its ``event`` (timer, message, signal)."""

    event: EventDefinition | None = None


@dataclass(frozen=True, slots=True)
class IntermediateThrowEvent(Element):
    """A none throw event (``event`` None) or one throwing a signal, message or escalation."""

    event: EventDefinition | None = None


@dataclass(frozen=True, slots=True)
class BoundaryEvent(Element):
    """An event attached to activity ``attached_to``; interrupting when ``cancel_activity``."""

    attached_to: str = ""
    cancel_activity: bool = True
    event: EventDefinition | None = None


@dataclass(frozen=True, slots=True)
class InclusiveGateway(Element):
    pass


@dataclass(frozen=True, slots=True)
class EventBasedGateway(Element):
    pass


@dataclass(frozen=True, slots=True)
class ReceiveTask(Element):
    """Waits for the message named ``message``."""

    message: str | None = None


@dataclass(frozen=True, slots=True)
class ExternalTask(Element):
    """Service work done by an external worker: ``serviceTask``, ``sendTask``,
    ``businessRuleTask`` (``tag`` tells which), fetched by ``topic`` (``camunda:topic``,
    ``zeebe:taskDefinition type``, else the element id)."""

    topic: str = ""
    retries: int = 3
    priority: int = 0


@dataclass(frozen=True, slots=True)
class ScriptTask(Element):
    """A script for the safe evaluator: expressions and ``name = expression`` lines.

    ``language`` as written (None, ``feel``, ``juel``, ``python`` ... are run;
    ``groovy``/``javascript`` are reported, never executed). ``result_variable`` gets
    the value of the last expression.
    """

    script: str = ""
    language: str | None = None
    result_variable: str | None = None


@dataclass(frozen=True, slots=True)
class VariableMapping:
    """One ``camunda:in``/``camunda:out``: ``source`` variable or ``source_expression`` to ``target``."""

    target: str
    source: str | None = None
    source_expression: Evaluable | None = None


@dataclass(frozen=True, slots=True)
class CallActivity(Element):
    """Calls the process whose key is ``called_element`` (a template).

    ``binding``: ``latest`` (default), ``version`` (``version`` holds the number) or
    ``versionTag``. ``in_all``/``out_all`` pass every variable (``variables="all"``);
    ``inputs``/``outputs`` are single mappings.
    """

    called_element: Evaluable | None = None
    binding: str = "latest"
    version: str | None = None
    in_all: bool = False
    out_all: bool = False
    inputs: tuple[VariableMapping, ...] = ()
    outputs: tuple[VariableMapping, ...] = ()
    business_key: Evaluable | None = None


@dataclass(frozen=True, slots=True)
class ExclusiveGateway(Element):
    pass


@dataclass(frozen=True, slots=True)
class ParallelGateway(Element):
    pass


@dataclass(frozen=True, slots=True)
class UserTask(Element):
    """A user task and its assignment, each part a compiled template or None.

    The candidate tuples hold one template per comma-separated entry; a template
    may evaluate to a string (itself possibly comma-separated) or a list.
    """

    assignee: Evaluable | None = None
    candidate_users: tuple[Evaluable, ...] = ()
    candidate_groups: tuple[Evaluable, ...] = ()
    candidate_roles: tuple[Evaluable, ...] = ()
    due_date: Evaluable | None = None
    priority: Evaluable | None = None
    form_key: str | None = None
    form_fields: tuple[FormField, ...] = ()


@dataclass(frozen=True, slots=True)
class SubProcess(Element):
    """An embedded subprocess; its children have ``scope == self.id``.

    ``start_ids`` are its none start events (for an event subprocess: its one event
    start). ``triggered_by_event`` marks an event subprocess (its one start event has
    an ``event``; it has no flows in or out).
    ``event_subprocesses`` lists the event subprocesses directly inside it.
    """

    start_ids: tuple[str, ...] = ()
    triggered_by_event: bool = False
    event_subprocesses: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ProcessSpec:
    """One executable BPMN ``process``: its key (BPMN id), name and graph."""

    key: str
    name: str
    elements: Mapping[str, Element]
    flows: Mapping[str, SequenceFlow]
    start_ids: tuple[str, ...]
    executable: bool = True
    documentation: str = ""
    version_tag: str | None = None
    file: str | None = None
    extras: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    #: event subprocesses at process level
    event_subprocesses: tuple[str, ...] = ()
    #: start events with an event definition at process level (timer, message, signal)
    event_start_ids: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return self.name or self.key

    def element(self, element_id: str) -> Element:
        return self.elements[element_id]

    def default_start_id(self) -> str:
        """Where a start by key begins: the first none start event, else the one event start
        event (timer, message or signal), as Camunda 7 does. Raises Unprocessable naming the
        choices when there are several event start events and no none start."""
        if self.start_ids:
            return self.start_ids[0]
        if len(self.event_start_ids) == 1:
            return self.event_start_ids[0]
        events = (self.elements[i] for i in self.event_start_ids)
        choices = ", ".join(f"'{e.id}' ({e.event.kind if isinstance(e, StartEvent) and e.event else 'event'})"
                            for e in events)  # fmt: skip
        raise Unprocessable(
            f"process '{self.key}' has no none start event and several event start events ({choices}): "
            "start it by its message or signal, or give it a none start event",
            code="START_EVENT_AMBIGUOUS",
        )

    def flow(self, flow_id: str) -> SequenceFlow:
        return self.flows[flow_id]
