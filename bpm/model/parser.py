"""BPMN 2.0 XML -> immutable :mod:`bpm.model.spec` objects.

``parse_bpmn(data, file=...)`` reads one BPMN file and returns its executable
processes as :class:`~bpm.model.spec.ProcessSpec` objects, plus the processes it
skipped (``isExecutable="false"``). Every problem is reported as
:class:`~bpm.errors.InvalidDefinition` (code ``INVALID_BPMN``) or
:class:`~bpm.errors.UnsupportedElement` (code ``UNSUPPORTED_ELEMENT``); no other
exception escapes.

Error positions: ``element_id`` and ``tag`` name the flow node, sequence flow or
process concerned (for a problem inside an element, such as a timer definition
on a start event, the element that carries the id); ``line`` is the most
precise source line (the offending child element where there is one).

Safety: the XML is parsed with entity resolution, network access and DTD
loading turned off, and any document with a DOCTYPE or entity declaration is
refused before and after parsing, so entity expansion (billion laughs,
quadratic blowup) and external entities / DTDs can never be processed.

Structure: :data:`BUILDERS` maps a BPMN local tag name to the function that
builds its spec element (like SpiffWorkflow's ``PARSER_CLASSES``); tags listed
in :data:`TOLERATED` are skipped; any other BPMN element inside a process is
unsupported. A second pass links sequence flows, computes incoming/outgoing,
start ids and validates the graph.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, TypeAlias, TypeVar

from lxml import etree

from bpm.errors import ExpressionError, InvalidDefinition, UnsupportedElement
from bpm.expressions import compile_expression, compile_template
from bpm.model.spec import (
    Element,
    EndEvent,
    Evaluable,
    ExclusiveGateway,
    ParallelGateway,
    ProcessSpec,
    SequenceFlow,
    StartEvent,
    SubProcess,
    UserTask,
)

__all__ = ["DEFAULT_MAX_BYTES", "ParsedFile", "parse_bpmn"]

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
CAMUNDA_NS = "http://camunda.org/schema/1.0/bpmn"
FLOWABLE_NS = "http://flowable.org/bpmn"
ACTIVITI_NS = "http://activiti.org/bpmn"
BPMR_NS = "http://bpm-runtime.dev/schema/1.0"
#: Vendor namespaces whose assignment attributes we read, in order of precedence.
VENDOR_NAMESPACES = (CAMUNDA_NS, FLOWABLE_NS, ACTIVITI_NS)

DEFAULT_MAX_BYTES = 5 * 1024 * 1024
_DTD_MESSAGE = "DTDs and entity declarations are not allowed"
_DTD_MARKERS = (b"<!DOCTYPE", b"<!ENTITY")
_E = TypeVar("_E", bound=InvalidDefinition)
_LOOPS = frozenset({"multiInstanceLoopCharacteristics", "standardLoopCharacteristics"})
#: A plain name in a ``potentialOwner`` expression is a candidate of this kind
#: (a group, as in Camunda and Activiti).
POTENTIAL_OWNER_DEFAULT_KIND = "group"

#: BPMN children of a process or subprocess that are read elsewhere or ignored.
TOLERATED = frozenset(
    {
        "association", "auditing", "category", "collaboration",
        "correlationSubscription", "dataInputAssociation", "dataObject",
        "dataObjectReference", "dataOutputAssociation", "dataStore",
        "dataStoreReference", "documentation", "error", "escalation",
        "extensionElements", "group", "humanPerformer", "incoming", "interface",
        "ioBinding", "ioSpecification", "itemDefinition", "lane", "laneSet",
        "message", "messageFlow", "monitoring", "outgoing", "participant",
        "performer", "potentialOwner", "property", "resource", "resourceRole",
        "signal", "supports", "textAnnotation",
    }
)  # fmt: skip

# A candidate list token: a ${...}/#{...} expression (quotes respected), other
# text, or a comma.
_LIST_TOKEN = re.compile(
    r"""[$#]\{(?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[^}'"])*\}|[^,$#]+|[$#]|,""",
    re.DOTALL,
)
_OWNER_ENTRY = re.compile(r"(user|group)\s*\((.*)\)", re.DOTALL)


@dataclass(frozen=True)
class ParsedFile:
    """What one BPMN file deploys: its executable processes and the skipped ones."""

    processes: tuple[ProcessSpec, ...]
    skipped: tuple[tuple[str, str], ...]  # (process id, reason)


# --- entry point -----------------------------------------------------------


def parse_bpmn(data: bytes, *, file: str = "<upload>", max_bytes: int = DEFAULT_MAX_BYTES) -> ParsedFile:
    """Parse one BPMN 2.0 file; raise InvalidDefinition or UnsupportedElement."""
    try:
        root = _load_xml(data, file, max_bytes)
        return _parse_definitions(root, file)
    except InvalidDefinition:
        raise
    # An expression error the per-element handlers did not position.
    except ExpressionError as exc:
        raise InvalidDefinition(f"invalid expression: {exc.message}", file=file) from exc
    # Last line of defence: never leak lxml, Unicode, Key... errors to the caller.
    except Exception as exc:
        raise InvalidDefinition(f"cannot read BPMN ({type(exc).__name__}: {exc})", file=file) from exc


# --- safe XML loading ------------------------------------------------------


def _make_parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def _load_xml(data: bytes, file: str, max_bytes: int) -> etree._Element:
    if not isinstance(data, bytes | bytearray):
        raise InvalidDefinition("BPMN data must be bytes", file=file)
    if len(data) > max_bytes:
        raise InvalidDefinition(f"file is too large ({len(data)} bytes, limit {max_bytes})", file=file)
    raw = bytes(data)
    if not raw.strip():
        raise InvalidDefinition("empty document", file=file)
    _reject_dtd_markers(raw, file)
    try:
        root = etree.fromstring(raw, _make_parser())
    except etree.XMLSyntaxError as exc:
        raise InvalidDefinition(f"malformed XML: {exc.msg}", file=file, line=exc.lineno or None) from exc
    except (etree.LxmlError, ValueError, LookupError) as exc:
        raise InvalidDefinition(f"malformed XML: {exc}", file=file) from exc
    if root is None:
        raise InvalidDefinition("empty document", file=file)
    _reject_dtd_docinfo(root, file)
    return root


def _reject_dtd_markers(raw: bytes, file: str) -> None:
    """Refuse DOCTYPE/ENTITY before parsing (NULs dropped to catch UTF-16/32)."""
    probe = raw.replace(b"\x00", b"") if b"\x00" in raw else raw
    probe = probe.upper()
    for marker in _DTD_MARKERS:
        at = probe.find(marker)
        if at >= 0:
            line = probe.count(b"\n", 0, at) + 1
            raise InvalidDefinition(_DTD_MESSAGE, file=file, line=line)


def _reject_dtd_docinfo(root: etree._Element, file: str) -> None:
    info = root.getroottree().docinfo
    if (
        info.doctype
        or info.internalDTD is not None
        or info.externalDTD is not None
        or info.system_url
        or info.public_id
    ):
        raise InvalidDefinition(_DTD_MESSAGE, file=file, line=1)


# --- small XML helpers -----------------------------------------------------


def _bpmn(tag: str) -> str:
    return f"{{{BPMN_NS}}}{tag}"


def _local(node: etree._Element) -> str:
    return etree.QName(node).localname


def _is_bpmn(node: etree._Element) -> bool:
    return isinstance(node.tag, str) and node.tag.startswith(f"{{{BPMN_NS}}}")


def _bpmn_children(node: etree._Element, tag: str | None = None) -> Iterator[etree._Element]:
    for child in node:
        if _is_bpmn(child) and (tag is None or _local(child) == tag):
            yield child


def _text(node: etree._Element) -> str:
    return "".join(node.itertext()).strip()


def _name(node: etree._Element) -> str:
    return (node.get("name") or "").strip()


def _documentation(node: etree._Element) -> str:
    texts = (_text(doc) for doc in _bpmn_children(node, "documentation"))
    return "\n".join(text for text in texts if text)


def _vendor_attr(node: etree._Element, name: str) -> str | None:
    """The first non-empty camunda:/flowable:/activiti: attribute ``name``, stripped."""
    for namespace in VENDOR_NAMESPACES:
        value = (node.get(f"{{{namespace}}}{name}") or "").strip()
        if value:
            return value
    return None


def _invalid(
    file: str,
    node: etree._Element,
    message: str,
    *,
    at: etree._Element | None = None,
    element_id: str | None = None,
) -> InvalidDefinition:
    """An INVALID_BPMN error about ``node``, positioned at ``at`` (default: node)."""
    return _positioned(InvalidDefinition, file, node, message, at, element_id)


def _unsupported(
    file: str,
    node: etree._Element,
    message: str,
    *,
    at: etree._Element | None = None,
) -> UnsupportedElement:
    """An UNSUPPORTED_ELEMENT error about ``node``, positioned at ``at``."""
    return _positioned(UnsupportedElement, file, node, message, at, None)


def _positioned(
    error: type[_E],
    file: str,
    node: etree._Element,
    message: str,
    at: etree._Element | None,
    element_id: str | None,
) -> _E:
    return error(
        message,
        file=file,
        element_id=element_id or node.get("id"),
        tag=_local(node),
        line=(at if at is not None else node).sourceline,
    )


# --- definitions / process -------------------------------------------------


def _parse_definitions(root: etree._Element, file: str) -> ParsedFile:
    if root.tag != _bpmn("definitions"):
        raise _invalid(file, root, f"not a BPMN 2.0 document (root element is {root.tag})")
    process_nodes = list(_bpmn_children(root, "process"))
    if not process_nodes:
        raise _invalid(file, root, "no process in this file")
    seen: dict[str, etree._Element] = {}
    processes: list[ProcessSpec] = []
    skipped: list[tuple[str, str]] = []
    for node in process_nodes:
        key = _claim_id(file, seen, node)
        flag = (node.get("isExecutable") or "").strip()
        if flag.lower() in ("false", "0"):
            skipped.append((key, f'not executable (isExecutable="{flag}")'))
            continue
        processes.append(_parse_process(file, seen, node, key))
    return ParsedFile(processes=tuple(processes), skipped=tuple(skipped))


def _claim_id(
    file: str,
    seen: dict[str, etree._Element],
    node: etree._Element,
    element_id: str | None = None,
) -> str:
    """Return the node's id (or ``element_id``), refusing a missing or used one."""
    element_id = element_id or node.get("id")
    if not element_id or not element_id.strip():
        raise _invalid(file, node, f"<{_local(node)}> has no id")
    first = seen.get(element_id)
    if first is not None:
        message = f"duplicate id '{element_id}' (first used on line {first.sourceline})"
        raise _invalid(file, node, message, element_id=element_id)
    seen[element_id] = node
    return element_id


@dataclass(frozen=True)
class _FlowDraft:
    """A sequence flow as read, before its ends are checked and condition compiled."""

    node: etree._Element
    id: str
    source: str | None
    target: str | None
    name: str
    condition: etree._Element | None


@dataclass
class _Context:
    """Mutable state while one process is read (document order kept)."""

    file: str
    seen: dict[str, etree._Element]
    elements: dict[str, Element] = field(default_factory=dict)
    nodes: dict[str, etree._Element] = field(default_factory=dict)
    flows: list[_FlowDraft] = field(default_factory=list)

    def add_element(self, element: Element, node: etree._Element) -> None:
        self.elements[element.id] = element
        self.nodes[element.id] = node


def _parse_process(file: str, seen: dict[str, etree._Element], node: etree._Element, key: str) -> ProcessSpec:
    ctx = _Context(file=file, seen=seen)
    _parse_scope(ctx, node, None)
    return _assemble(ctx, node, key)


def _parse_scope(ctx: _Context, container: etree._Element, scope: str | None) -> None:
    """Read the flow nodes and flows directly inside a process or subprocess."""
    for child in _bpmn_children(container):
        tag = _local(child)
        if tag == "sequenceFlow":
            ctx.flows.append(_read_flow(ctx, child))
            continue
        builder = BUILDERS.get(tag)
        if builder is None:
            if tag not in TOLERATED:
                raise _unsupported(ctx.file, child, f"<{tag}> is not supported yet")
            continue
        _claim_id(ctx.file, ctx.seen, child)
        element = builder(ctx, child, scope)
        ctx.add_element(element, child)
        if isinstance(element, SubProcess):
            _parse_scope(ctx, child, element.id)


# --- element builders ------------------------------------------------------


def _common(node: etree._Element, scope: str | None) -> dict[str, Any]:
    """The fields every spec element has."""
    return {
        "id": node.get("id"),
        "tag": _local(node),
        "name": _name(node),
        "scope": scope,
        "default": (node.get("default") or "").strip() or None,
        "documentation": _documentation(node),
        "line": node.sourceline,
    }


def _event_definitions(node: etree._Element) -> list[etree._Element]:
    return [
        child
        for child in _bpmn_children(node)
        if _local(child).endswith("EventDefinition") or _local(child) == "eventDefinitionRef"
    ]


def _reject_event_definitions(ctx: _Context, node: etree._Element, definitions: Iterable[etree._Element]) -> None:
    first = next(iter(definitions), None)
    if first is not None:
        message = f"{_local(first)} on {_local(node)} is not supported yet"
        raise _unsupported(ctx.file, node, message, at=first)


def _reject_loops(ctx: _Context, node: etree._Element) -> None:
    for child in _bpmn_children(node):
        if _local(child) in _LOOPS:
            message = f"{_local(child)} on {_local(node)} is not supported yet"
            raise _unsupported(ctx.file, node, message, at=child)


def _build_start_event(ctx: _Context, node: etree._Element, scope: str | None) -> StartEvent:
    _reject_event_definitions(ctx, node, _event_definitions(node))
    return StartEvent(**_common(node, scope), initiator=_initiator(ctx, node))


def _initiator(ctx: _Context, node: etree._Element) -> str | None:
    initiator = _vendor_attr(node, "initiator")
    if initiator is not None and (not initiator.isidentifier() or initiator.startswith("_")):
        raise _invalid(ctx.file, node, f"initiator '{initiator}' is not a valid variable name")
    return initiator


def _build_end_event(ctx: _Context, node: etree._Element, scope: str | None) -> EndEvent:
    definitions = _event_definitions(node)
    if [_local(d) for d in definitions] == ["terminateEventDefinition"]:
        return EndEvent(**_common(node, scope), terminate=True)
    others = [d for d in definitions if _local(d) != "terminateEventDefinition"]
    _reject_event_definitions(ctx, node, others or definitions)
    return EndEvent(**_common(node, scope))


def _build_throw_event(ctx: _Context, node: etree._Element, scope: str | None) -> Element:
    _reject_event_definitions(ctx, node, _event_definitions(node))
    return Element(**_common(node, scope))


def _build_task(ctx: _Context, node: etree._Element, scope: str | None) -> Element:
    _reject_loops(ctx, node)
    return Element(**_common(node, scope))


def _build_exclusive_gateway(ctx: _Context, node: etree._Element, scope: str | None) -> ExclusiveGateway:
    return ExclusiveGateway(**_common(node, scope))


def _build_parallel_gateway(ctx: _Context, node: etree._Element, scope: str | None) -> ParallelGateway:
    return ParallelGateway(**_common(node, scope))


def _build_subprocess(ctx: _Context, node: etree._Element, scope: str | None) -> SubProcess:
    if (node.get("triggeredByEvent") or "").strip() in ("true", "1"):
        message = 'event subprocess (triggeredByEvent="true") is not supported yet'
        raise _unsupported(ctx.file, node, message)
    _reject_loops(ctx, node)
    return SubProcess(**_common(node, scope))  # start_ids are filled in by _assemble


# --- user tasks ------------------------------------------------------------


def _build_user_task(ctx: _Context, node: etree._Element, scope: str | None) -> UserTask:
    _reject_loops(ctx, node)
    owner_users, owner_groups = _potential_owners(ctx, node)
    assignee = _vendor_attr(node, "assignee") or _human_performer(ctx, node)
    users = _union(_split_list(_vendor_attr(node, "candidateUsers")), owner_users)
    groups = _union(_split_list(_vendor_attr(node, "candidateGroups")), owner_groups)
    roles = _split_list(node.get(f"{{{BPMR_NS}}}candidateRoles"))
    return UserTask(
        **_common(node, scope),
        assignee=_optional_template(ctx, node, "assignee", assignee),
        candidate_users=_templates(ctx, node, "candidateUsers", users),
        candidate_groups=_templates(ctx, node, "candidateGroups", groups),
        candidate_roles=_templates(ctx, node, "candidateRoles", roles),
        due_date=_optional_template(ctx, node, "dueDate", _vendor_attr(node, "dueDate")),
        priority=_optional_template(ctx, node, "priority", _vendor_attr(node, "priority")),
        form_key=_vendor_attr(node, "formKey"),
    )


def _split_list(text: str | None) -> list[str]:
    """Split on commas outside ``${...}``/``#{...}``; strip entries, drop empty ones."""
    if not text:
        return []
    parts: list[str] = [""]
    for token in _LIST_TOKEN.findall(text):
        if token == ",":
            parts.append("")
        else:
            parts[-1] += token
    return [part.strip() for part in parts if part.strip()]


def _union(*lists: list[str]) -> list[str]:
    return list(dict.fromkeys(entry for entries in lists for entry in entries))


def _template(ctx: _Context, node: etree._Element, what: str, text: str) -> Evaluable:
    try:
        return compile_template(text)
    except ExpressionError as exc:
        raise _invalid(ctx.file, node, f"invalid {what} '{text}': {exc.message}") from exc


def _optional_template(ctx: _Context, node: etree._Element, what: str, text: str | None) -> Evaluable | None:
    return _template(ctx, node, what, text) if text else None


def _templates(ctx: _Context, node: etree._Element, what: str, entries: list[str]) -> tuple[Evaluable, ...]:
    return tuple(_template(ctx, node, what, entry) for entry in entries)


def _resource_expressions(node: etree._Element, role: str) -> Iterator[tuple[str, etree._Element]]:
    """(text, element) of each ``role/resourceAssignmentExpression/formalExpression``."""
    for performer in _bpmn_children(node, role):
        for assignment in _bpmn_children(performer, "resourceAssignmentExpression"):
            for expression in _bpmn_children(assignment):
                if _local(expression) in ("formalExpression", "expression"):
                    yield _text(expression), expression


def _owner_entry(entry: str, default_kind: str) -> tuple[str, str]:
    """``user(x)`` -> ("user", "x"), ``group(x)`` -> ("group", "x"), else default."""
    match = _OWNER_ENTRY.fullmatch(entry)
    if match is None:
        return default_kind, entry
    return match.group(1), match.group(2).strip()


def _human_performer(ctx: _Context, node: etree._Element) -> str | None:
    for text, expression in _resource_expressions(node, "humanPerformer"):
        entries = _split_list(text)
        if not entries:
            continue
        if len(entries) > 1:
            message = f"humanPerformer must name exactly one user, not '{text}'"
            raise _invalid(ctx.file, node, message, at=expression)
        kind, value = _owner_entry(entries[0], "user")
        if kind != "user" or not value:
            message = f"humanPerformer must name a user, not '{text}'"
            raise _invalid(ctx.file, node, message, at=expression)
        return value
    return None


def _potential_owners(ctx: _Context, node: etree._Element) -> tuple[list[str], list[str]]:
    users: list[str] = []
    groups: list[str] = []
    for text, expression in _resource_expressions(node, "potentialOwner"):
        for entry in _split_list(text):
            kind, value = _owner_entry(entry, POTENTIAL_OWNER_DEFAULT_KIND)
            if not value:
                raise _invalid(ctx.file, node, f"empty {kind}() in potentialOwner", at=expression)
            (groups if kind == "group" else users).append(value)
    return users, groups


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
    return source, target


def _scope_label(scope: str | None) -> str:
    return f"subprocess '{scope}'" if scope else "the process"


def _build_flow(ctx: _Context, draft: _FlowDraft, source: Element) -> SequenceFlow:
    """The spec flow; conditions of default and parallel-gateway flows are dropped."""
    ignored = isinstance(source, ParallelGateway) or source.default == draft.id
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
    )


def _compile_condition(ctx: _Context, draft: _FlowDraft, expression: etree._Element) -> Evaluable:
    text = _text(expression)
    try:
        return compile_expression(text, language=expression.get("language") or None)
    except ExpressionError as exc:
        message = f"invalid condition '{text}': {exc.message}"
        raise _invalid(ctx.file, draft.node, message, at=expression) from exc


# --- assembly --------------------------------------------------------------


def _assemble(ctx: _Context, process: etree._Element, key: str) -> ProcessSpec:
    incoming: dict[str, list[str]] = {element_id: [] for element_id in ctx.elements}
    outgoing: dict[str, list[str]] = {element_id: [] for element_id in ctx.elements}
    sources: dict[str, Element] = {}
    for draft in ctx.flows:
        source, target = _check_flow_ends(ctx, draft)
        outgoing[source.id].append(draft.id)
        incoming[target.id].append(draft.id)
        sources[draft.id] = source
    _check_defaults(ctx, outgoing)
    flows = {draft.id: _build_flow(ctx, draft, sources[draft.id]) for draft in ctx.flows}
    starts = _start_ids_by_scope(ctx)
    _check_starts(ctx, process, starts)
    elements = {
        element_id: _finish_element(element, incoming, outgoing, starts) for element_id, element in ctx.elements.items()
    }
    return ProcessSpec(
        key=key,
        name=_name(process),
        elements=MappingProxyType(elements),
        flows=MappingProxyType(flows),
        start_ids=tuple(starts.get(None, ())),
        documentation=_documentation(process),
        version_tag=(process.get(f"{{{CAMUNDA_NS}}}versionTag") or "").strip() or None,
        file=ctx.file,
    )


def _check_defaults(ctx: _Context, outgoing: dict[str, list[str]]) -> None:
    for element in ctx.elements.values():
        if element.default is not None and element.default not in outgoing[element.id]:
            message = f"default flow '{element.default}' is not an outgoing flow of '{element.id}'"
            raise _invalid(ctx.file, ctx.nodes[element.id], message)


def _start_ids_by_scope(ctx: _Context) -> dict[str | None, list[str]]:
    starts: dict[str | None, list[str]] = {}
    for element in ctx.elements.values():
        if isinstance(element, StartEvent):
            starts.setdefault(element.scope, []).append(element.id)
    return starts


def _check_starts(ctx: _Context, process: etree._Element, starts: dict[str | None, list[str]]) -> None:
    if not starts.get(None):
        raise _invalid(ctx.file, process, "process has no none start event")
    for element in ctx.elements.values():
        if isinstance(element, SubProcess) and not starts.get(element.id):
            raise _invalid(ctx.file, ctx.nodes[element.id], "subprocess has no start event")


def _finish_element(
    element: Element,
    incoming: dict[str, list[str]],
    outgoing: dict[str, list[str]],
    starts: dict[str | None, list[str]],
) -> Element:
    changes: dict[str, Any] = {
        "incoming": tuple(incoming[element.id]),
        "outgoing": tuple(outgoing[element.id]),
    }
    if isinstance(element, SubProcess):
        changes["start_ids"] = tuple(starts.get(element.id, ()))
    return replace(element, **changes)


# --- dispatch table --------------------------------------------------------

_Builder: TypeAlias = Callable[[_Context, etree._Element, str | None], Element]

#: BPMN local tag -> builder of its spec element (other tags: tolerated or unsupported).
BUILDERS: dict[str, _Builder] = {
    "startEvent": _build_start_event,
    "endEvent": _build_end_event,
    "intermediateThrowEvent": _build_throw_event,
    "task": _build_task,
    "manualTask": _build_task,
    "userTask": _build_user_task,
    "exclusiveGateway": _build_exclusive_gateway,
    "parallelGateway": _build_parallel_gateway,
    "subProcess": _build_subprocess,
}
