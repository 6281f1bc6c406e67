"""Event definitions: timers, messages, signals, errors, escalations, conditions, terminate."""

from __future__ import annotations

import re

from lxml import etree

from bpm.model.context import (
    _DECLARATIONS,
    _bool_attr,
    _common,
    _Context,
    _expression,
    _template,
    _variable_name,
)
from bpm.model.forms import form_fields, form_key
from bpm.model.spec import (
    BoundaryEvent,
    EndEvent,
    EventDefinition,
    IntermediateCatchEvent,
    IntermediateThrowEvent,
    StartEvent,
    SubProcess,
)
from bpm.model.xmlsafe import (
    _bpmn_children,
    _invalid,
    _local,
    _text,
    _unsupported,
    _vendor_attr,
)

_TIMER_FIELDS = {"timeDate": "time_date", "timeDuration": "time_duration", "timeCycle": "time_cycle"}
#: Event definition kinds we build (``timerEventDefinition`` -> ``timer`` ...).
EVENT_KINDS = frozenset({"timer", "message", "signal", "error", "escalation", "terminate", "conditional"})
#: Event definition kinds we chose not to support, with the reason given.
UNSUPPORTED_EVENTS = {
    "link": "link events are not supported",
    "compensate": "compensation events are not supported",
    "cancel": "cancel events are not supported (transactions are not supported)",
}
#: Where each kind of event definition may appear.
_PROCESS_START_EVENTS = frozenset({"timer", "message", "signal", "conditional"})
_EVENT_SUBPROCESS_START_EVENTS = frozenset({"timer", "message", "signal", "error", "escalation", "conditional"})
_END_EVENTS = frozenset({"terminate", "error", "escalation", "message", "signal"})
_CATCH_EVENTS = frozenset({"timer", "message", "signal", "conditional"})
_THROW_EVENTS = frozenset({"message", "signal", "escalation"})
_BOUNDARY_EVENTS = frozenset({"timer", "message", "signal", "error", "escalation", "conditional"})
_VARIABLE_EVENTS = frozenset({"create", "update", "delete"})
_QUOTED = re.compile(r"'[^'\\]*'|\"[^\"\\]*\"")  # one quoted string literal, no escapes


# --- events ----------------------------------------------------------------


def _event_definitions(node: etree._Element) -> list[etree._Element]:
    return [
        child
        for child in _bpmn_children(node)
        if _local(child).endswith("EventDefinition") or _local(child) == "eventDefinitionRef"
    ]


def _event(
    ctx: _Context,
    node: etree._Element,
    allowed: frozenset[str],
    *,
    catching: bool,
    where: str = "",
) -> EventDefinition | None:
    """The one event definition of event ``node`` (None: a none event).

    ``allowed`` are the kinds valid here (another of :data:`EVENT_KINDS` is
    INVALID_BPMN, ``where`` saying where); ``catching`` events must name the
    message or signal they wait for.
    """
    definitions = _event_definitions(node)
    if _bool_attr(ctx, node, node, "parallelMultiple", False):
        raise _unsupported(ctx.file, node, "parallel multiple events are not supported")
    if len(definitions) > 1:
        message = "events with several event definitions (multiple events) are not supported"
        raise _unsupported(ctx.file, node, message, at=definitions[1])
    if not definitions:
        return None
    definition = definitions[0]
    tag = _local(definition)
    kind = tag.removesuffix("EventDefinition")
    if kind in UNSUPPORTED_EVENTS:
        raise _unsupported(ctx.file, node, UNSUPPORTED_EVENTS[kind], at=definition)
    if kind not in EVENT_KINDS:
        raise _unsupported(ctx.file, node, f"<{tag}> is not supported", at=definition)
    if kind not in allowed:
        raise _invalid(ctx.file, node, f"{tag} is not allowed on <{_local(node)}>{where}", at=definition)
    if kind == "timer":
        return _timer(ctx, node, definition)
    if kind == "terminate":
        return EventDefinition(kind="terminate", line=definition.sourceline)
    if kind == "conditional":
        return _conditional(ctx, node, definition)
    attr = f"{kind}Ref"
    ref = _declared(ctx, node, definition, kind, attr)
    if ref is None and catching and kind in ("message", "signal"):
        raise _invalid(ctx.file, node, f"a catching {kind} event needs a {attr}", at=definition)
    variable = message_variable = None
    if catching and kind == "error":
        variable = _event_variable(ctx, node, definition, "errorCodeVariable")
        message_variable = _event_variable(ctx, node, definition, "errorMessageVariable")
    elif catching and kind == "escalation":
        variable = _event_variable(ctx, node, definition, "escalationCodeVariable")
    return EventDefinition(
        kind=kind,
        ref=ref,
        variable=variable,
        message_variable=message_variable,
        line=definition.sourceline,
    )


def _event_variable(ctx: _Context, node: etree._Element, definition: etree._Element, attr: str) -> str | None:
    return _variable_name(ctx, node, attr, _vendor_attr(definition, attr), definition)


def _declared(ctx: _Context, node: etree._Element, owner: etree._Element, kind: str, attr: str) -> str | None:
    """The name or code of the top-level ``<kind>`` that ``owner``'s ``attr`` names."""
    ref = (owner.get(attr) or "").strip()
    if not ref:
        return None
    declared = ctx.declarations.by_kind[kind]
    declaration = declared.get(ref)
    if declaration is None and ":" in ref:  # a QName such as tns:Message_1
        declaration = declared.get(ref.rsplit(":", 1)[1])
    if declaration is None:
        raise _invalid(ctx.file, node, f"{attr} '{ref}' does not name a <{kind}> of this file", at=owner)
    for name in _DECLARATIONS[kind]:
        value = (declaration.get(name) or "").strip()
        if value:
            return value
    return (declaration.get("id") or "").strip()


def _timer(ctx: _Context, node: etree._Element, definition: etree._Element) -> EventDefinition:
    found = [child for child in _bpmn_children(definition) if _local(child) in _TIMER_FIELDS and _text(child)]
    if not found:
        message = "timer event definition has no timeDate, timeDuration or timeCycle"
        raise _invalid(ctx.file, node, message, at=definition)
    if len(found) > 1:
        message = f"timer event definition has both {_local(found[0])} and {_local(found[1])}"
        raise _invalid(ctx.file, node, message, at=found[1])
    child = found[0]
    text = _text(child)
    if _QUOTED.fullmatch(text):  # a Python string literal, as SpiffWorkflow writes timers: "PT1S"
        text = text[1:-1]
    value = _template(ctx, node, _local(child), text, at=child)
    which = _TIMER_FIELDS[_local(child)]
    return EventDefinition(
        kind="timer",
        time_date=value if which == "time_date" else None,
        time_duration=value if which == "time_duration" else None,
        time_cycle=value if which == "time_cycle" else None,
        line=definition.sourceline,
    )


def _conditional(ctx: _Context, node: etree._Element, definition: etree._Element) -> EventDefinition:
    """A ``conditionalEventDefinition``: its ``condition`` and Camunda's variable filters."""
    conditions = [child for child in _bpmn_children(definition) if _local(child) == "condition"]
    condition = _expression(ctx, node, "condition", conditions[0]) if conditions else None
    if condition is None:
        raise _invalid(ctx.file, node, "a conditional event needs a condition", at=definition)
    variable_name = (_vendor_attr(definition, "variableName") or "").strip() or None
    events = tuple(
        part.strip().lower() for part in (_vendor_attr(definition, "variableEvents") or "").split(",") if part.strip()
    )
    unknown = [event for event in events if event not in _VARIABLE_EVENTS]
    if unknown:
        message = f"variableEvents '{unknown[0]}' is not one of create, update, delete"
        raise _invalid(ctx.file, node, message, at=definition, attribute="variableEvents")
    return EventDefinition(
        kind="conditional",
        condition=condition,
        variable_name=variable_name,
        variable_events=events,
        line=definition.sourceline,
    )


def _build_start_event(ctx: _Context, node: etree._Element, scope: str | None) -> StartEvent:
    parent = ctx.elements.get(scope) if scope is not None else None
    in_event_subprocess = isinstance(parent, SubProcess) and parent.triggered_by_event
    if parent is None:
        event = _event(ctx, node, _PROCESS_START_EVENTS, catching=True, where=" outside an event subprocess")
    elif in_event_subprocess:
        event = _event(ctx, node, _EVENT_SUBPROCESS_START_EVENTS, catching=True)
        if event is None:
            message = "the start event of an event subprocess needs an event definition"
            raise _invalid(ctx.file, node, message)
    else:
        event = _event(ctx, node, frozenset(), catching=True, where=" in an embedded subprocess (none start only)")
    interrupting = _bool_attr(ctx, node, node, "isInterrupting", True)
    if event is not None and event.kind == "error" and not interrupting:
        raise _invalid(ctx.file, node, "error start events are always interrupting")
    return StartEvent(
        **_common(node, scope),
        initiator=_initiator(ctx, node),
        event=event,
        interrupting=interrupting,
        form_key=form_key(node),
        form_fields=form_fields(ctx, node),
    )


def _initiator(ctx: _Context, node: etree._Element) -> str | None:
    return _variable_name(ctx, node, "initiator", _vendor_attr(node, "initiator"), node)


def _build_end_event(ctx: _Context, node: etree._Element, scope: str | None) -> EndEvent:
    event = _event(ctx, node, _END_EVENTS, catching=False)
    terminate = event is not None and event.kind == "terminate"
    return EndEvent(**_common(node, scope), terminate=terminate, event=event)


def _build_catch_event(ctx: _Context, node: etree._Element, scope: str | None) -> IntermediateCatchEvent:
    event = _event(ctx, node, _CATCH_EVENTS, catching=True)
    if event is None:
        message = "an intermediate catch event needs an event definition (timer, message, signal or conditional)"
        raise _invalid(ctx.file, node, message)
    return IntermediateCatchEvent(**_common(node, scope), event=event)


def _build_throw_event(ctx: _Context, node: etree._Element, scope: str | None) -> IntermediateThrowEvent:
    event = _event(ctx, node, _THROW_EVENTS, catching=False)
    return IntermediateThrowEvent(**_common(node, scope), event=event)


def _build_boundary_event(ctx: _Context, node: etree._Element, scope: str | None) -> BoundaryEvent:
    attached_to = (node.get("attachedToRef") or "").strip()
    if not attached_to:
        raise _invalid(ctx.file, node, "boundary event has no attachedToRef")
    event = _event(ctx, node, _BOUNDARY_EVENTS, catching=True)
    if event is None:
        message = "a boundary event needs an event definition (timer, message, signal, error or escalation)"
        raise _invalid(ctx.file, node, message)
    cancel_activity = _bool_attr(ctx, node, node, "cancelActivity", True)
    if event.kind == "error" and not cancel_activity:
        raise _invalid(ctx.file, node, 'error boundary events always interrupt (cancelActivity="false")')
    return BoundaryEvent(
        **_common(node, scope),
        attached_to=attached_to,
        cancel_activity=cancel_activity,
        event=event,
    )
