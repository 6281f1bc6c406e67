"""Second pass: sequence flows linked and checked, the process spec assembled."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from types import MappingProxyType
from typing import Any, TypeVar

from lxml import etree

from bpm.model.context import (
    _claim_id,
    _compiled,
    _Context,
    _FlowDraft,
)
from bpm.model.extensions import listeners
from bpm.model.spec import (
    BoundaryEvent,
    Element,
    EndEvent,
    Evaluable,
    EventBasedGateway,
    IntermediateCatchEvent,
    ParallelGateway,
    ProcessSpec,
    ReceiveTask,
    SequenceFlow,
    StartEvent,
    SubProcess,
)
from bpm.model.xmlsafe import (
    CAMUNDA_NS,
    _bpmn_children,
    _documentation,
    _invalid,
    _name,
    _text,
)

# --- sequence flows --------------------------------------------------------


def _read_flow(ctx: _Context, node: etree._Element) -> _FlowDraft:
    source = (node.get("sourceRef") or "").strip() or None
    target = (node.get("targetRef") or "").strip() or None
    flow_id = _claim_id(ctx.file, ctx.seen, node, node.get("id") or _flow_id(ctx, node))
    conditions = [c for c in _bpmn_children(node, "conditionExpression") if _text(c)]
    return _FlowDraft(
        node=node,
        id=flow_id,
        source=source,
        target=target,
        name=_name(node),
        condition=conditions[0] if conditions else None,
    )


def _flow_id(ctx: _Context, node: etree._Element) -> str:
    """An id for a flow that has none (Camunda accepts those): ``source->target``.

    ``>`` cannot occur in an XML id, so it never clashes with a declared one.
    """
    base = f"{node.get('sourceRef') or ''}->{node.get('targetRef') or ''}"
    candidate, number = base, 1
    while candidate in ctx.seen:
        number += 1
        candidate = f"{base}#{number}"
    return candidate


def _check_flow_ends(ctx: _Context, draft: _FlowDraft) -> tuple[Element, Element]:
    ends: list[Element] = []
    for attr, ref in (("sourceRef", draft.source), ("targetRef", draft.target)):
        if ref is None:
            raise _invalid(ctx.file, draft.node, f"sequence flow has no {attr}")
        if ref not in ctx.elements:
            message = f"{attr} '{ref}' is not a flow node of this process"
            raise _invalid(ctx.file, draft.node, message)
        ends.append(ctx.elements[ref])
    source, target = ends
    if source.scope != target.scope:
        message = (
            "sequence flow crosses a subprocess boundary "
            f"('{source.id}' is in {_scope_label(source.scope)}, "
            f"'{target.id}' in {_scope_label(target.scope)})"
        )
        raise _invalid(ctx.file, draft.node, message)
    if isinstance(source, EndEvent):
        raise _invalid(ctx.file, draft.node, f"end event '{source.id}' cannot have outgoing flows")
    if isinstance(target, StartEvent):
        raise _invalid(ctx.file, draft.node, f"start event '{target.id}' cannot have incoming flows")
    if isinstance(target, BoundaryEvent):
        raise _invalid(ctx.file, draft.node, f"boundary event '{target.id}' cannot have incoming flows")
    for end, direction in ((source, "outgoing"), (target, "incoming")):
        if isinstance(end, SubProcess) and end.triggered_by_event:
            raise _invalid(ctx.file, draft.node, f"event subprocess '{end.id}' cannot have {direction} flows")
    return source, target


def _scope_label(scope: str | None) -> str:
    return f"subprocess '{scope}'" if scope else "the process"


def _build_flow(ctx: _Context, draft: _FlowDraft, source: Element) -> SequenceFlow:
    """The spec flow; conditions of default, parallel- and event-gateway flows are dropped."""
    ignored = isinstance(source, ParallelGateway | EventBasedGateway) or source.default == draft.id
    condition = None
    if draft.condition is not None and not ignored:
        condition = _compile_condition(ctx, draft, draft.condition)
    return SequenceFlow(
        id=draft.id,
        source=source.id,
        target=draft.target or "",
        name=draft.name,
        condition=condition,
        line=draft.node.sourceline,
        listeners=listeners(ctx, draft.node, flow=True),
    )


def _compile_condition(ctx: _Context, draft: _FlowDraft, expression: etree._Element) -> Evaluable:
    language = expression.get("language") or None
    return _compiled(ctx, draft.node, "condition", _text(expression), language, expression)


# --- assembly --------------------------------------------------------------

#: Tags of the activities (what a boundary event may be attached to).
_ACTIVITY_TAGS = frozenset(
    {
        "task", "manualTask", "userTask", "scriptTask", "serviceTask", "sendTask",
        "businessRuleTask", "receiveTask", "subProcess", "callActivity",
    }
)  # fmt: skip


def _assemble(ctx: _Context, process: etree._Element, key: str) -> ProcessSpec:
    incoming: dict[str, list[str]] = {element_id: [] for element_id in ctx.elements}
    outgoing: dict[str, list[str]] = {element_id: [] for element_id in ctx.elements}
    sources: dict[str, Element] = {}
    targets: dict[str, Element] = {}
    for draft in ctx.flows:
        source, target = _check_flow_ends(ctx, draft)
        outgoing[source.id].append(draft.id)
        incoming[target.id].append(draft.id)
        sources[draft.id], targets[draft.id] = source, target
    _check_defaults(ctx, outgoing)
    _check_event_gateways(ctx, outgoing, targets)
    flows = {draft.id: _build_flow(ctx, draft, sources[draft.id]) for draft in ctx.flows}
    boundaries = _boundaries_by_activity(ctx)
    starts = _by_scope(ctx, StartEvent)
    _check_starts(ctx, process, starts)
    event_subprocesses = _by_scope(ctx, SubProcess, lambda sub: sub.triggered_by_event)
    elements = {
        element_id: _finish_element(element, incoming, outgoing, starts, boundaries, event_subprocesses)
        for element_id, element in ctx.elements.items()
    }
    top = [ctx.elements[start_id] for start_id in starts.get(None, ())]
    return ProcessSpec(
        key=key,
        name=_name(process),
        elements=MappingProxyType(elements),
        flows=MappingProxyType(flows),
        start_ids=tuple(start.id for start in top if not _has_event(start)),
        documentation=_documentation(process),
        version_tag=(process.get(f"{{{CAMUNDA_NS}}}versionTag") or "").strip() or None,
        file=ctx.file,
        event_subprocesses=tuple(event_subprocesses.get(None, ())),
        event_start_ids=tuple(start.id for start in top if _has_event(start)),
    )


def _has_event(element: Element) -> bool:
    return isinstance(element, StartEvent) and element.event is not None


def _check_defaults(ctx: _Context, outgoing: dict[str, list[str]]) -> None:
    for element in ctx.elements.values():
        if element.default is not None and element.default not in outgoing[element.id]:
            message = f"default flow '{element.default}' is not an outgoing flow of '{element.id}'"
            raise _invalid(ctx.file, ctx.nodes[element.id], message)


def _check_event_gateways(ctx: _Context, outgoing: dict[str, list[str]], targets: dict[str, Element]) -> None:
    for element in ctx.elements.values():
        if not isinstance(element, EventBasedGateway):
            continue
        for flow_id in outgoing[element.id]:
            target = targets[flow_id]
            if not isinstance(target, IntermediateCatchEvent | ReceiveTask):
                message = (
                    f"event-based gateway flow '{flow_id}' leads to <{target.tag}> '{target.id}', "
                    "not to an intermediate catch event or a receive task"
                )
                raise _invalid(ctx.file, ctx.nodes[element.id], message)


def _boundaries_by_activity(ctx: _Context) -> dict[str, list[str]]:
    """Activity id -> ids of the boundary events attached to it (document order)."""
    attached: dict[str, list[str]] = {}
    for event in ctx.elements.values():
        if not isinstance(event, BoundaryEvent):
            continue
        node = ctx.nodes[event.id]
        activity = ctx.elements.get(event.attached_to)
        ref = f"attachedToRef '{event.attached_to}'"
        if activity is None:
            raise _invalid(ctx.file, node, f"{ref} is not a flow node of this process")
        if activity.tag not in _ACTIVITY_TAGS:
            raise _invalid(ctx.file, node, f"{ref} names a <{activity.tag}>, not an activity")
        if isinstance(activity, SubProcess) and activity.triggered_by_event:
            raise _invalid(ctx.file, node, f"{ref} names an event subprocess")
        if activity.scope != event.scope:
            message = f"{ref} is in {_scope_label(activity.scope)}, the boundary event in {_scope_label(event.scope)}"
            raise _invalid(ctx.file, node, message)
        attached.setdefault(activity.id, []).append(event.id)
    return attached


_Kind = TypeVar("_Kind", bound=Element)


def _by_scope(
    ctx: _Context, kind: type[_Kind], keep: Callable[[_Kind], bool] = lambda element: True
) -> dict[str | None, list[str]]:
    """Scope -> ids of its elements of ``kind`` (those ``keep`` accepts), in document order."""
    found: dict[str | None, list[str]] = {}
    for element in ctx.elements.values():
        if isinstance(element, kind) and keep(element):
            found.setdefault(element.scope, []).append(element.id)
    return found


def _check_starts(ctx: _Context, process: etree._Element, starts: dict[str | None, list[str]]) -> None:
    if not starts.get(None):
        raise _invalid(ctx.file, process, "process has no start event (none, timer, message or signal)")
    for element in ctx.elements.values():
        if not isinstance(element, SubProcess):
            continue
        own = starts.get(element.id, [])
        if element.triggered_by_event and len(own) != 1:
            message = f"an event subprocess needs exactly one start event, not {len(own)}"
            raise _invalid(ctx.file, ctx.nodes[element.id], message)
        if not own:
            raise _invalid(ctx.file, ctx.nodes[element.id], "subprocess has no start event")


def _finish_element(
    element: Element,
    incoming: dict[str, list[str]],
    outgoing: dict[str, list[str]],
    starts: dict[str | None, list[str]],
    boundaries: dict[str, list[str]],
    event_subprocesses: dict[str | None, list[str]],
) -> Element:
    changes: dict[str, Any] = {
        "incoming": tuple(incoming[element.id]),
        "outgoing": tuple(outgoing[element.id]),
    }
    if element.id in boundaries:
        changes["boundary"] = tuple(boundaries[element.id])
    if isinstance(element, SubProcess):
        changes["start_ids"] = tuple(starts.get(element.id, ()))
        changes["event_subprocesses"] = tuple(event_subprocesses.get(element.id, ()))
    return replace(element, **changes)
