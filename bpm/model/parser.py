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

Modules: :mod:`bpm.model.xmlsafe` (safe loading, XML helpers, positioned errors),
:mod:`bpm.model.context` (the per-process reading state, attribute and expression
helpers), :mod:`bpm.model.events` (event definitions and event builders),
:mod:`bpm.model.loops`, :mod:`bpm.model.forms` (form keys and generated forms),
:mod:`bpm.model.extensions` (input/output mappings, listeners, ``$INITIATOR``, and
:class:`~bpm.model.spec.DeployWarning` for every vendor attribute or extension not
honoured: :attr:`ParsedFile.warnings`) and :mod:`bpm.model.assembly` (the second pass).

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
from dataclasses import dataclass, replace
from typing import Any, TypeAlias

from lxml import etree

from bpm.errors import ExpressionError, InvalidDefinition
from bpm.model.extensions import resolve_initiator_literal, scan_unhonoured, with_extensions
from bpm.model.forms import form_fields, form_key
from bpm.model.loops import _loop
from bpm.model.spec import (
    CallActivity,
    DeployWarning,
    Element,
    Evaluable,
    EventBasedGateway,
    ExclusiveGateway,
    ExternalTask,
    InclusiveGateway,
    ParallelGateway,
    ProcessSpec,
    ReceiveTask,
    ScriptTask,
    SubProcess,
    UserTask,
    VariableMapping,
)

__all__ = ["DEFAULT_MAX_BYTES", "ParsedFile", "parse_bpmn"]

from bpm.model.assembly import (
    _assemble,
    _read_flow,
)
from bpm.model.context import (
    _bool_attr,
    _claim_id,
    _common,
    _compiled,
    _Context,
    _Declarations,
    _extension,
    _extensions,
    _int_attr,
    _template,
    _variable_name,
)
from bpm.model.events import (
    _build_boundary_event,
    _build_catch_event,
    _build_end_event,
    _build_start_event,
    _build_throw_event,
    _declared,
)
from bpm.model.xmlsafe import (
    BPMR_NS,
    DEFAULT_MAX_BYTES,
    VENDOR_NAMESPACES,
    ZEEBE_NS,
    _bpmn,
    _bpmn_children,
    _invalid,
    _load_xml,
    _local,
    _text,
    _unsupported,
    _vendor_attr,
)

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
_OWNER_ENTRY = re.compile(r"(user|group)\s*\((.*)\)", re.DOTALL)


@dataclass(frozen=True)
class ParsedFile:
    """What one BPMN file deploys: its executable processes and the skipped ones."""

    processes: tuple[ProcessSpec, ...]
    skipped: tuple[tuple[str, str], ...]  # (process id, reason)
    #: vendor extensions the engine does not honour (listeners it cannot run ...)
    warnings: tuple[DeployWarning, ...] = ()


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
    warnings: list[DeployWarning] = []
    for node in process_nodes:
        key = _claim_id(file, seen, node)
        flag = (node.get("isExecutable") or "").strip()
        if flag.lower() in ("false", "0"):
            skipped.append((key, f'not executable (isExecutable="{flag}")'))
            continue
        processes.append(_parse_process(file, seen, declarations, node, key, warnings))
    return ParsedFile(processes=tuple(processes), skipped=tuple(skipped), warnings=tuple(warnings))


def _parse_process(
    file: str,
    seen: dict[str, etree._Element],
    declarations: _Declarations,
    node: etree._Element,
    key: str,
    warnings: list[DeployWarning],
) -> ProcessSpec:
    ctx = _Context(file=file, seen=seen, declarations=declarations, warnings=warnings)
    scan_unhonoured(ctx, node)
    _parse_scope(ctx, node, None)
    resolve_initiator_literal(ctx)
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
        element = with_extensions(ctx, child, builder(ctx, child, scope))
        ctx.add_element(element, child)
        if isinstance(element, SubProcess):
            _parse_scope(ctx, child, element.id)


# --- element builders ------------------------------------------------------


def _activity(ctx: _Context, node: etree._Element, scope: str | None) -> dict[str, Any]:
    """The fields of an activity: the common ones and its loop characteristics."""
    if _bool_attr(ctx, node, node, "isForCompensation", False):
        raise _unsupported(ctx.file, node, "compensation handlers (isForCompensation) are not supported")
    return {**_common(node, scope), "loop": _loop(ctx, node)}


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


# --- user tasks ------------------------------------------------------------


def _build_user_task(ctx: _Context, node: etree._Element, scope: str | None) -> UserTask:
    owner_users, owner_groups = _potential_owners(ctx, node)
    assignee = _vendor_attr(node, "assignee") or _human_performer(ctx, node)
    users = _union(_split_list(_vendor_attr(node, "candidateUsers")), owner_users)
    groups = _union(_split_list(_vendor_attr(node, "candidateGroups")), owner_groups)
    roles = _split_list(node.get(f"{{{BPMR_NS}}}candidateRoles"))
    task = UserTask(
        **_activity(ctx, node, scope),
        assignee=_optional_template(ctx, node, "assignee", assignee),
        candidate_users=_templates(ctx, node, "candidateUsers", users),
        candidate_groups=_templates(ctx, node, "candidateGroups", groups),
        candidate_roles=_templates(ctx, node, "candidateRoles", roles),
        due_date=_optional_template(ctx, node, "dueDate", _vendor_attr(node, "dueDate")),
        priority=_optional_template(ctx, node, "priority", _vendor_attr(node, "priority")),
        form_key=form_key(node),
        form_fields=form_fields(ctx, node),
    )
    zeebe = _extension(node, ZEEBE_NS, "assignmentDefinition")
    return task if zeebe is None else _zeebe_assignment(ctx, node, zeebe, task)


def _zeebe_assignment(ctx: _Context, node: etree._Element, zeebe: etree._Element, task: UserTask) -> UserTask:
    """Zeebe's ``assignmentDefinition``: a FEEL expression (``= ...``) or literal text per attribute."""
    changes: dict[str, Any] = {}
    for attr, field in (("assignee", "assignee"), ("candidateUsers", "candidate_users"),
                        ("candidateGroups", "candidate_groups")):  # fmt: skip
        text = (zeebe.get(attr) or "").strip()
        if not text:
            continue
        if text.startswith("="):
            value: Any = _compiled(ctx, node, f"zeebe:{attr}", text, "feel", zeebe)
        else:
            entries = [text] if attr == "assignee" else _split_list(text)
            value = tuple(_template(ctx, node, f"zeebe:{attr}", entry, at=zeebe) for entry in entries)
            value = value[0] if attr == "assignee" else value
        changes[field] = value if attr == "assignee" or isinstance(value, tuple) else (value,)
    return replace(task, **changes)


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
