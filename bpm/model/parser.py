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
in :data:`TOLERATED` are skipped; those of :data:`NOT_SUPPORTED` are refused
with the reason we chose not to support them; any other BPMN element inside a
process is unsupported. A second pass links sequence flows, computes
incoming/outgoing, start ids and boundary events, and validates the graph.

What the elements become:

- events carry an :class:`~bpm.model.spec.EventDefinition` (timer, message,
  signal, error, escalation, terminate). ``messageRef``/``signalRef`` resolve
  to the top-level declaration's ``name`` (else its id), ``errorRef`` and
  ``escalationRef`` to its code (else name, else id); a catching message or
  signal event must name one. Conditional, link, compensation and cancel
  events, and events with several definitions, are not supported;
- ``serviceTask``, ``sendTask`` and ``businessRuleTask`` become
  :class:`~bpm.model.spec.ExternalTask`: the topic is ``camunda:topic``, else
  the Zeebe ``taskDefinition type``, else the element id. Java delegates
  (``camunda:class``, ``camunda:expression``, ``camunda:delegateExpression``)
  and DMN decisions (``camunda:decisionRef``) are not run here: such a task is
  an external task on the topic named by its element id, for a worker to do;
- ``scriptTask`` keeps its script text and ``scriptFormat`` as written: the
  engine decides which languages it runs;
- ``callActivity`` reads ``calledElement`` (or Zeebe ``calledElement
  processId``), the Camunda binding and ``camunda:in``/``camunda:out``; with a
  Zeebe ``calledElement``, ``propagateAllParentVariables`` and
  ``propagateAllChildVariables`` (both true by default) set ``in_all``/``out_all``;
- loop characteristics (multi-instance, standard loop) go in ``Element.loop``;
- an event subprocess (``triggeredByEvent``) has exactly one start event, with
  an event definition; its ``start_ids`` name that start event, and its id is
  listed in ``event_subprocesses`` of the enclosing subprocess or process.
  Transactions, ad-hoc subprocesses, complex gateways and compensation are not
  supported.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, TypeAlias, TypeVar

from lxml import etree

from bpm.errors import ExpressionError, InvalidDefinition, UnsupportedElement
from bpm.expressions import compile_expression, compile_template
from bpm.model.spec import (
    BoundaryEvent,
    CallActivity,
    Element,
    EndEvent,
    Evaluable,
    EventBasedGateway,
    EventDefinition,
    ExclusiveGateway,
    ExternalTask,
    InclusiveGateway,
    IntermediateCatchEvent,
    IntermediateThrowEvent,
    LoopSpec,
    ParallelGateway,
    ProcessSpec,
    ReceiveTask,
    ScriptTask,
    SequenceFlow,
    StartEvent,
    SubProcess,
    UserTask,
    VariableMapping,
)

__all__ = ["DEFAULT_MAX_BYTES", "ParsedFile", "parse_bpmn"]

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
CAMUNDA_NS = "http://camunda.org/schema/1.0/bpmn"
FLOWABLE_NS = "http://flowable.org/bpmn"
ACTIVITI_NS = "http://activiti.org/bpmn"
BPMR_NS = "http://bpm-runtime.dev/schema/1.0"
ZEEBE_NS = "http://camunda.org/schema/zeebe/1.0"
#: Vendor namespaces whose assignment attributes we read, in order of precedence.
VENDOR_NAMESPACES = (CAMUNDA_NS, FLOWABLE_NS, ACTIVITI_NS)

DEFAULT_MAX_BYTES = 5 * 1024 * 1024
_DTD_MESSAGE = "DTDs and entity declarations are not allowed"
_DTD_MARKERS = (b"<!DOCTYPE", b"<!ENTITY")
_E = TypeVar("_E", bound=InvalidDefinition)
_LOOPS = frozenset({"multiInstanceLoopCharacteristics", "standardLoopCharacteristics"})
_TIMER_FIELDS = {"timeDate": "time_date", "timeDuration": "time_duration", "timeCycle": "time_cycle"}
#: Event definition kinds we build (``timerEventDefinition`` -> ``timer`` ...).
EVENT_KINDS = frozenset({"timer", "message", "signal", "error", "escalation", "terminate"})
#: Event definition kinds we chose not to support, with the reason given.
UNSUPPORTED_EVENTS = {
    "conditional": "conditional events are not supported",
    "link": "link events are not supported",
    "compensate": "compensation events are not supported",
    "cancel": "cancel events are not supported (transactions are not supported)",
}
#: Where each kind of event definition may appear.
_PROCESS_START_EVENTS = frozenset({"timer", "message", "signal"})
_EVENT_SUBPROCESS_START_EVENTS = frozenset({"timer", "message", "signal", "error", "escalation"})
_END_EVENTS = frozenset({"terminate", "error", "escalation", "message", "signal"})
_CATCH_EVENTS = frozenset({"timer", "message", "signal"})
_THROW_EVENTS = frozenset({"message", "signal", "escalation"})
_BOUNDARY_EVENTS = frozenset({"timer", "message", "signal", "error", "escalation"})
#: Top-level declarations an event definition refers to, and the attributes
#: giving the name or code it resolves to (in order), the id being the fallback.
_DECLARATIONS = {
    "message": ("name",),
    "signal": ("name",),
    "error": ("errorCode", "name"),
    "escalation": ("escalationCode", "name"),
}
_BINDINGS = {"latest": "latest", "deployment": "latest", "version": "version", "versionTag": "versionTag"}
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
        "message", "messageFlow", "monitoring", "multiInstanceLoopCharacteristics",
        "outgoing", "participant",
        "performer", "potentialOwner", "property", "resource", "resourceRole",
        "signal", "standardLoopCharacteristics", "supports", "textAnnotation",
    }
)  # fmt: skip

#: BPMN elements we chose not to support, with the reason given.
NOT_SUPPORTED = {
    "complexGateway": "complex gateways are not supported",
    "transaction": "transaction subprocesses are not supported",
    "adHocSubProcess": "ad-hoc subprocesses are not supported",
}

# A candidate list token: a ${...}/#{...} expression (quotes respected), other
# text, or a comma.
_LIST_TOKEN = re.compile(
    r"""[$#]\{(?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[^}'"])*\}|[^,$#]+|[$#]|,""",
    re.DOTALL,
)
_QUOTED = re.compile(r"'[^'\\]*'|\"[^\"\\]*\"")  # one quoted string literal, no escapes
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
    declarations = _Declarations.read(root)
    processes: list[ProcessSpec] = []
    skipped: list[tuple[str, str]] = []
    for node in process_nodes:
        key = _claim_id(file, seen, node)
        flag = (node.get("isExecutable") or "").strip()
        if flag.lower() in ("false", "0"):
            skipped.append((key, f'not executable (isExecutable="{flag}")'))
            continue
        processes.append(_parse_process(file, seen, declarations, node, key))
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


@dataclass(frozen=True)
class _Declarations:
    """What a file declares outside its processes: messages, signals, errors,
    escalations (by kind, then id), and every element with an id (for
    ``loopDataInputRef``)."""

    by_kind: dict[str, dict[str, etree._Element]]
    ids: dict[str, etree._Element]

    @classmethod
    def read(cls, root: etree._Element) -> _Declarations:
        by_kind: dict[str, dict[str, etree._Element]] = {kind: {} for kind in _DECLARATIONS}
        for child in _bpmn_children(root):
            declared = by_kind.get(_local(child))
            element_id = (child.get("id") or "").strip()
            if declared is not None and element_id:
                declared.setdefault(element_id, child)
        ids: dict[str, etree._Element] = {}
        for node in root.iter():
            element_id = node.get("id") if isinstance(node.tag, str) else None
            if element_id:
                ids.setdefault(element_id.strip(), node)
        return cls(by_kind=by_kind, ids=ids)


@dataclass
class _Context:
    """Mutable state while one process is read (document order kept)."""

    file: str
    seen: dict[str, etree._Element]
    declarations: _Declarations
    elements: dict[str, Element] = field(default_factory=dict)
    nodes: dict[str, etree._Element] = field(default_factory=dict)
    flows: list[_FlowDraft] = field(default_factory=list)

    def add_element(self, element: Element, node: etree._Element) -> None:
        self.elements[element.id] = element
        self.nodes[element.id] = node


def _parse_process(
    file: str,
    seen: dict[str, etree._Element],
    declarations: _Declarations,
    node: etree._Element,
    key: str,
) -> ProcessSpec:
    ctx = _Context(file=file, seen=seen, declarations=declarations)
    _parse_scope(ctx, node, None)
    return _assemble(ctx, node, key)


def _parse_scope(ctx: _Context, container: etree._Element, scope: str | None) -> None:
    """Read the flow nodes and flows directly inside a process or subprocess."""
    for child in _bpmn_children(container):
        tag = _local(child)
        if tag == "sequenceFlow":
            ctx.flows.append(_read_flow(ctx, child))
            continue
        if tag in NOT_SUPPORTED:
            raise _unsupported(ctx.file, child, NOT_SUPPORTED[tag])
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


def _activity(ctx: _Context, node: etree._Element, scope: str | None) -> dict[str, Any]:
    """The fields of an activity: the common ones and its loop characteristics."""
    if _bool_attr(ctx, node, node, "isForCompensation", False):
        raise _unsupported(ctx.file, node, "compensation handlers (isForCompensation) are not supported")
    return {**_common(node, scope), "loop": _loop(ctx, node)}


def _bool_attr(ctx: _Context, node: etree._Element, owner: etree._Element, name: str, default: bool) -> bool:
    """A boolean attribute of ``owner`` (a child of ``node`` or node itself)."""
    raw = owner.get(name)
    value = (raw or "").strip().lower()
    if not value:
        return default
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise _invalid(ctx.file, node, f'{name}="{raw}" must be true or false', at=owner)


def _int_attr(ctx: _Context, node: etree._Element, owner: etree._Element, name: str) -> int | None:
    """A non-negative integer attribute of ``owner``, None when absent."""
    raw = owner.get(name)
    value = (raw or "").strip()
    if not value:
        return None
    if not value.isascii() or not value.isdigit() or len(value) > 9:
        raise _invalid(ctx.file, node, f'{name}="{raw}" must be a non-negative integer', at=owner)
    return int(value)


def _variable_name(ctx: _Context, node: etree._Element, what: str, name: str | None, at: etree._Element) -> str | None:
    """``name`` if it is a usable variable name (None stays None)."""
    if name is not None and (not name.isidentifier() or name.startswith("_")):
        raise _invalid(ctx.file, node, f"{what} '{name}' is not a valid variable name", at=at)
    return name


def _extensions(node: etree._Element, namespace: str, tag: str) -> Iterator[etree._Element]:
    """The ``{namespace}tag`` children of the node's ``extensionElements``."""
    for extensions in _bpmn_children(node, "extensionElements"):
        yield from extensions.iterchildren(f"{{{namespace}}}{tag}")


def _extension(node: etree._Element, namespace: str, tag: str) -> etree._Element | None:
    return next(_extensions(node, namespace, tag), None)


def _template(ctx: _Context, node: etree._Element, what: str, text: str, at: etree._Element | None = None) -> Evaluable:
    try:
        return compile_template(text)
    except ExpressionError as exc:
        raise _invalid(ctx.file, node, f"invalid {what} '{text}': {exc.message}", at=at) from exc


def _expression(ctx: _Context, node: etree._Element, what: str, expression: etree._Element) -> Evaluable | None:
    """The compiled text of ``expression`` (a child of node), None when it is blank."""
    text = _text(expression)
    if not text:
        return None
    try:
        return compile_expression(text, language=expression.get("language") or None)
    except ExpressionError as exc:
        raise _invalid(ctx.file, node, f"invalid {what} '{text}': {exc.message}", at=expression) from exc


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
        form_key=_vendor_attr(node, "formKey"),
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
        message = "an intermediate catch event needs an event definition (timer, message or signal)"
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


# --- gateways --------------------------------------------------------------


def _build_exclusive_gateway(ctx: _Context, node: etree._Element, scope: str | None) -> ExclusiveGateway:
    return ExclusiveGateway(**_common(node, scope))


def _build_parallel_gateway(ctx: _Context, node: etree._Element, scope: str | None) -> ParallelGateway:
    return ParallelGateway(**_common(node, scope))


def _build_inclusive_gateway(ctx: _Context, node: etree._Element, scope: str | None) -> InclusiveGateway:
    return InclusiveGateway(**_common(node, scope))


def _build_event_gateway(ctx: _Context, node: etree._Element, scope: str | None) -> EventBasedGateway:
    if _bool_attr(ctx, node, node, "instantiate", False):
        raise _unsupported(ctx.file, node, "instantiating event-based gateways are not supported")
    if (node.get("eventGatewayType") or "").strip() == "Parallel":
        raise _unsupported(ctx.file, node, "parallel event-based gateways are not supported")
    return EventBasedGateway(**_common(node, scope))


# --- activities ------------------------------------------------------------


def _build_task(ctx: _Context, node: etree._Element, scope: str | None) -> Element:
    return Element(**_activity(ctx, node, scope))


def _build_receive_task(ctx: _Context, node: etree._Element, scope: str | None) -> ReceiveTask:
    if _bool_attr(ctx, node, node, "instantiate", False):
        raise _unsupported(ctx.file, node, "instantiating receive tasks are not supported")
    message = _declared(ctx, node, node, "message", "messageRef")
    return ReceiveTask(**_activity(ctx, node, scope), message=message)


def _build_external_task(ctx: _Context, node: etree._Element, scope: str | None) -> ExternalTask:
    definition = _extension(node, ZEEBE_NS, "taskDefinition")
    topic = _vendor_attr(node, "topic")
    retries = None
    if definition is not None:
        if topic is None:
            topic = (definition.get("type") or "").strip() or None
        retries = _int_attr(ctx, node, definition, "retries")
    return ExternalTask(
        **_activity(ctx, node, scope),
        topic=topic or node.get("id") or "",
        retries=3 if retries is None else retries,
        priority=_int_literal(_vendor_attr(node, "taskPriority")) or 0,
    )


def _int_literal(text: str | None) -> int | None:
    if text is None or not re.fullmatch(r"[+-]?[0-9]{1,18}", text):
        return None
    return int(text)


def _build_script_task(ctx: _Context, node: etree._Element, scope: str | None) -> ScriptTask:
    scripts = list(_bpmn_children(node, "script"))
    script = _text(scripts[0]) if scripts else ""
    if not script:
        if _vendor_attr(node, "resource"):
            raise _unsupported(ctx.file, node, "external script resources (camunda:resource) are not supported")
        raise _invalid(ctx.file, node, "script task has no script")
    result = _vendor_attr(node, "resultVariable")
    return ScriptTask(
        **_activity(ctx, node, scope),
        script=script,
        language=(node.get("scriptFormat") or "").strip() or None,
        result_variable=_variable_name(ctx, node, "resultVariable", result, node),
    )


def _build_call_activity(ctx: _Context, node: etree._Element, scope: str | None) -> CallActivity:
    zeebe = _extension(node, ZEEBE_NS, "calledElement")
    called, at = (node.get("calledElement") or "").strip(), node
    if not called and zeebe is not None:
        called, at = (zeebe.get("processId") or "").strip(), zeebe
    if not called:
        raise _invalid(ctx.file, node, "call activity has no calledElement")
    raw_binding = _vendor_attr(node, "calledElementBinding") or "latest"
    binding = _BINDINGS.get(raw_binding)
    if binding is None:
        message = f'calledElementBinding="{raw_binding}" must be latest, deployment, version or versionTag'
        raise _invalid(ctx.file, node, message)
    version = None
    if binding != "latest":
        attr = "calledElementVersion" if binding == "version" else "calledElementVersionTag"
        version = _vendor_attr(node, attr)
        if version is None:
            raise _invalid(ctx.file, node, f'calledElementBinding="{binding}" needs {attr}')
    inputs, in_all, business_key = _mappings(ctx, node, "in")
    outputs, out_all, _ = _mappings(ctx, node, "out")
    if zeebe is not None:
        in_all = in_all or _bool_attr(ctx, node, zeebe, "propagateAllParentVariables", True)
        out_all = out_all or _bool_attr(ctx, node, zeebe, "propagateAllChildVariables", True)
    return CallActivity(
        **_activity(ctx, node, scope),
        called_element=_template(ctx, node, "calledElement", called, at=at),
        binding=binding,
        version=version,
        in_all=in_all,
        out_all=out_all,
        inputs=inputs,
        outputs=outputs,
        business_key=business_key,
    )


def _mappings(
    ctx: _Context, node: etree._Element, direction: str
) -> tuple[tuple[VariableMapping, ...], bool, Evaluable | None]:
    """The ``camunda:in``/``camunda:out`` children: mappings, ``variables="all"``, business key."""
    mappings: list[VariableMapping] = []
    every = False
    business_key = None
    for namespace in VENDOR_NAMESPACES:
        for mapping in _extensions(node, namespace, direction):
            what = f"{mapping.prefix or 'camunda'}:{direction}"
            variables = (mapping.get("variables") or "").strip()
            key = (mapping.get("businessKey") or "").strip() if direction == "in" else ""
            if variables and variables != "all":
                raise _invalid(ctx.file, node, f'{what} variables="{variables}" must be "all"', at=mapping)
            every = every or bool(variables)
            if key:
                business_key = _template(ctx, node, "businessKey", key, at=mapping)
            single = _mapping(ctx, node, mapping, what)
            if single is not None:
                mappings.append(single)
            elif not variables and not key:
                wanted = "source, sourceExpression, variables" + (" or businessKey" if direction == "in" else "")
                raise _invalid(ctx.file, node, f"{what} needs {wanted}", at=mapping)
    return tuple(mappings), every, business_key


def _mapping(ctx: _Context, node: etree._Element, mapping: etree._Element, what: str) -> VariableMapping | None:
    """The single-variable part of one ``camunda:in``/``camunda:out`` (None: there is none)."""
    source = (mapping.get("source") or "").strip()
    expression = (mapping.get("sourceExpression") or "").strip()
    target = (mapping.get("target") or "").strip()
    if not source and not expression:
        return None
    if source and expression:
        raise _invalid(ctx.file, node, f"{what} has both source and sourceExpression", at=mapping)
    if not target:
        raise _invalid(ctx.file, node, f"{what} has no target", at=mapping)
    if source:
        return VariableMapping(target=target, source=source)
    compiled = _template(ctx, node, "sourceExpression", expression, at=mapping)
    return VariableMapping(target=target, source_expression=compiled)


def _build_subprocess(ctx: _Context, node: etree._Element, scope: str | None) -> SubProcess:
    triggered = _bool_attr(ctx, node, node, "triggeredByEvent", False)
    # start_ids and event_subprocesses are filled in by _assemble
    return SubProcess(**_activity(ctx, node, scope), triggered_by_event=triggered)


# --- loops -----------------------------------------------------------------


def _loop(ctx: _Context, node: etree._Element) -> LoopSpec | None:
    loops = [child for child in _bpmn_children(node) if _local(child) in _LOOPS]
    if not loops:
        return None
    if len(loops) > 1:
        raise _invalid(ctx.file, node, "an activity has at most one loop characteristics", at=loops[1])
    loop = loops[0]
    if _local(loop) == "standardLoopCharacteristics":
        return _standard_loop(ctx, node, loop)
    return _multi_instance(ctx, node, loop)


def _standard_loop(ctx: _Context, node: etree._Element, loop: etree._Element) -> LoopSpec:
    condition = None
    for child in _bpmn_children(loop, "loopCondition"):
        condition = condition or _expression(ctx, node, "loopCondition", child)
    maximum = _int_attr(ctx, node, loop, "loopMaximum")
    if condition is None and maximum is None:
        raise _invalid(ctx.file, node, "standard loop needs a loopCondition or a loopMaximum", at=loop)
    return LoopSpec(
        kind="standard",
        loop_condition=condition,
        test_before=_bool_attr(ctx, node, loop, "testBefore", False),
        maximum=maximum,
    )


def _multi_instance(ctx: _Context, node: etree._Element, loop: etree._Element) -> LoopSpec:
    cardinality = completion = None
    for child in _bpmn_children(loop, "loopCardinality"):
        if cardinality is None and _text(child):
            cardinality = _template(ctx, node, "loopCardinality", _text(child), at=child)
    for child in _bpmn_children(loop, "completionCondition"):
        completion = completion or _expression(ctx, node, "completionCondition", child)
    collection = _loop_collection(ctx, node, loop)
    if cardinality is None and collection is None:
        message = (
            "multi-instance needs a loopCardinality or a collection "
            "(camunda:collection, loopDataInputRef or zeebe:loopCharacteristics inputCollection)"
        )
        raise _invalid(ctx.file, node, message, at=loop)
    return LoopSpec(
        kind="multi",
        sequential=_bool_attr(ctx, node, loop, "isSequential", False),
        cardinality=cardinality,
        collection=collection,
        element_variable=_element_variable(ctx, node, loop),
        completion_condition=completion,
    )


def _loop_collection(ctx: _Context, node: etree._Element, loop: etree._Element) -> Evaluable | None:
    """``camunda:collection``, else ``loopDataInputRef``, else Zeebe ``inputCollection``."""
    named = _vendor_attr(loop, "collection")
    if named is not None:
        return _collection(ctx, node, named, loop)
    for child in _bpmn_children(loop, "loopDataInputRef"):
        if _text(child):
            return _collection(ctx, node, _data_name(ctx, _text(child)), child)
    zeebe = _extension(loop, ZEEBE_NS, "loopCharacteristics")
    text = (zeebe.get("inputCollection") or "").strip() if zeebe is not None else ""
    if zeebe is None or not text:
        return None
    try:
        return compile_expression(text, language="feel")
    except ExpressionError as exc:
        raise _invalid(ctx.file, node, f"invalid inputCollection '{text}': {exc.message}", at=zeebe) from exc


def _element_variable(ctx: _Context, node: etree._Element, loop: etree._Element) -> str | None:
    """``camunda:elementVariable``, else ``inputDataItem`` (name, else id), else Zeebe ``inputElement``."""
    name = _variable_name(ctx, node, "elementVariable", _vendor_attr(loop, "elementVariable"), loop)
    if name is not None:
        return name
    for child in _bpmn_children(loop, "inputDataItem"):
        item = _name(child) or (child.get("id") or "").strip()
        if item:
            return item
    zeebe = _extension(loop, ZEEBE_NS, "loopCharacteristics")
    if zeebe is None:
        return None
    return _variable_name(ctx, node, "inputElement", (zeebe.get("inputElement") or "").strip() or None, zeebe)


def _collection(ctx: _Context, node: etree._Element, text: str, at: etree._Element) -> Evaluable:
    """A collection: an expression (``${list}``) or the name of a variable holding it."""
    source = text if ("${" in text or "#{" in text) else "${" + text + "}"
    return _template(ctx, node, "collection", source, at=at)


def _data_name(ctx: _Context, ref: str) -> str:
    """The variable a ``loopDataInputRef`` names: the referenced data element's
    name when it is a usable variable name, else the reference as written."""
    target = ctx.declarations.ids.get(ref)
    name = _name(target) if target is not None else ""
    return name if name.isidentifier() and not name.startswith("_") else ref


# --- user tasks ------------------------------------------------------------


def _build_user_task(ctx: _Context, node: etree._Element, scope: str | None) -> UserTask:
    owner_users, owner_groups = _potential_owners(ctx, node)
    assignee = _vendor_attr(node, "assignee") or _human_performer(ctx, node)
    users = _union(_split_list(_vendor_attr(node, "candidateUsers")), owner_users)
    groups = _union(_split_list(_vendor_attr(node, "candidateGroups")), owner_groups)
    roles = _split_list(node.get(f"{{{BPMR_NS}}}candidateRoles"))
    return UserTask(
        **_activity(ctx, node, scope),
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
    )


def _compile_condition(ctx: _Context, draft: _FlowDraft, expression: etree._Element) -> Evaluable:
    text = _text(expression)
    try:
        return compile_expression(text, language=expression.get("language") or None)
    except ExpressionError as exc:
        message = f"invalid condition '{text}': {exc.message}"
        raise _invalid(ctx.file, draft.node, message, at=expression) from exc


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


# --- dispatch table --------------------------------------------------------

_Builder: TypeAlias = Callable[[_Context, etree._Element, str | None], Element]

#: BPMN local tag -> builder of its spec element (other tags: tolerated, not
#: supported, or unsupported).
BUILDERS: dict[str, _Builder] = {
    "startEvent": _build_start_event,
    "endEvent": _build_end_event,
    "intermediateCatchEvent": _build_catch_event,
    "intermediateThrowEvent": _build_throw_event,
    "boundaryEvent": _build_boundary_event,
    "task": _build_task,
    "manualTask": _build_task,
    "userTask": _build_user_task,
    "scriptTask": _build_script_task,
    "serviceTask": _build_external_task,
    "sendTask": _build_external_task,
    "businessRuleTask": _build_external_task,
    "receiveTask": _build_receive_task,
    "callActivity": _build_call_activity,
    "exclusiveGateway": _build_exclusive_gateway,
    "parallelGateway": _build_parallel_gateway,
    "inclusiveGateway": _build_inclusive_gateway,
    "eventBasedGateway": _build_event_gateway,
    "subProcess": _build_subprocess,
}
