"""Vendor extensions: input/output mappings, listeners, and warnings for what is not honoured.

- ``camunda:inputOutput``: ``inputParameter``/``outputParameter`` with text (a literal or
  a ``${...}`` template), ``camunda:list``, ``camunda:map`` (nested), or empty (null);
  a ``camunda:script`` value is compiled when its language is one the evaluator runs;
- ``zeebe:ioMapping``: ``input``/``output`` with a FEEL ``source`` (``= expr``; without
  ``=`` the source is a literal string);
- listeners: ``camunda:``/``flowable:``/``activiti:`` ``executionListener`` (``start``,
  ``end``, ``take``) and ``taskListener`` (``create``, ``assignment``, ``complete``) with
  ``expression=`` or a ``script`` child. ``class``/``delegateExpression`` listeners (Java)
  cannot run: each is a :class:`~bpm.model.spec.DeployWarning`.

:func:`scan_unhonoured` walks a process and warns about every vendor attribute and
extension element the engine does not honour, so that none is ignored silently.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from lxml import etree

from bpm.errors import ExpressionError
from bpm.expressions import compile_expression, compile_template
from bpm.model.context import _compiled, _Context, _template
from bpm.model.spec import Element, IoMapping, Listener, StartEvent, UserTask
from bpm.model.xmlsafe import (
    ACTIVITI_NS,
    BPMR_NS,
    CAMUNDA_NS,
    FLOWABLE_NS,
    VENDOR_NAMESPACES,
    ZEEBE_NS,
    _bpmn_children,
    _invalid,
    _is_bpmn,
    _local,
    _text,
)

EXECUTION_EVENTS = frozenset({"start", "end", "take"})
TASK_EVENTS = frozenset({"create", "assignment", "complete"})
_SET_VARIABLE = re.compile(
    r"\s*[$#]\{\s*(?:execution|task)\s*\.\s*setVariable(?:Local)?\s*\(\s*(['\"])([A-Za-z][A-Za-z0-9_]*)\1\s*,(.*)\)\s*\}\s*",
    re.DOTALL,
)
_PREFIX = {CAMUNDA_NS: "camunda", FLOWABLE_NS: "flowable", ACTIVITI_NS: "activiti", ZEEBE_NS: "zeebe"}
_JAVA = "Java code cannot run here"


def _prefixed(namespace: str | None, local: str) -> str:
    return f"{_PREFIX.get(namespace or '', 'ext')}:{local}"


def with_extensions(ctx: _Context, node: etree._Element, element: Element) -> Element:
    """``element`` with the input/output mappings and listeners of its node."""
    inputs, outputs = io_mappings(ctx, node)
    found = listeners(ctx, node)
    if not (inputs or outputs or found):
        return element
    return replace(element, io_inputs=inputs, io_outputs=outputs, listeners=found)


# --- input/output mappings ---------------------------------------------------------


def io_mappings(ctx: _Context, node: etree._Element) -> tuple[tuple[IoMapping, ...], tuple[IoMapping, ...]]:
    """(inputs, outputs) of an element, Camunda 7 and Zeebe forms together."""
    inputs: list[IoMapping] = []
    outputs: list[IoMapping] = []
    for extensions in _bpmn_children(node, "extensionElements"):
        for io in extensions.iterchildren(f"{{{CAMUNDA_NS}}}inputOutput"):
            for parameter in io.iterchildren(f"{{{CAMUNDA_NS}}}inputParameter", f"{{{CAMUNDA_NS}}}outputParameter"):
                mapping = _camunda_parameter(ctx, node, parameter)
                (inputs if _local(parameter) == "inputParameter" else outputs).append(mapping)
        for io in extensions.iterchildren(f"{{{ZEEBE_NS}}}ioMapping"):
            for entry in io.iterchildren(f"{{{ZEEBE_NS}}}input", f"{{{ZEEBE_NS}}}output"):
                zeebe = _zeebe_mapping(ctx, node, entry)
                if zeebe is not None:
                    (inputs if _local(entry) == "input" else outputs).append(zeebe)
    return tuple(inputs), tuple(outputs)


def _target(ctx: _Context, node: etree._Element, at: etree._Element, attribute: str, text: str | None) -> str:
    """A mapping's target: a variable name (FEEL names may hold spaces) or a dotted path into one."""
    target = (text or "").strip()
    parts = target.split(".")
    if len(target) > 200 or any(not p.strip() or p.strip().startswith("_") for p in parts):
        what = _prefixed(etree.QName(at).namespace, _local(at))
        raise _invalid(
            ctx.file, node, f"{what} {attribute}='{target}' is not a variable name", at=at, attribute=what,
            fix="name a variable (or a path a.b into one), not starting with _",
        )  # fmt: skip
    return target


def _camunda_parameter(ctx: _Context, node: etree._Element, parameter: etree._Element) -> IoMapping:
    target = _target(ctx, node, parameter, "name", parameter.get("name"))
    return IoMapping(target=target, value=_camunda_value(ctx, node, parameter), line=parameter.sourceline)


def _camunda_value(ctx: _Context, node: etree._Element, holder: etree._Element) -> Any:
    """The value held by a parameter, list value or map entry: text, list, map, script or null."""
    children = [child for child in holder if isinstance(child.tag, str)]
    if not children:
        text = (holder.text or "").strip()
        if not text:
            return None
        return _template(ctx, node, f"camunda:{_local(holder)}", text, at=holder)
    child = children[0]
    local = _local(child)
    if local == "list":
        return [_camunda_value(ctx, node, value) for value in child.iterchildren(f"{{{CAMUNDA_NS}}}value")]
    if local == "map":
        entries = child.iterchildren(f"{{{CAMUNDA_NS}}}entry")
        return {(entry.get("key") or ""): _camunda_value(ctx, node, entry) for entry in entries}
    if local == "script":
        language = (child.get("scriptFormat") or "").strip().lower()
        text = _text(child)
        if language in ("feel", "juel", "el", "") and text:
            return _compiled(ctx, node, "camunda:script", text, language or None, child)
        ctx.warn(node, child, "camunda:script", f"a {language or 'script'} mapping value cannot run here",
                 "the variable is set to null", "write the value as an expression (${...})")  # fmt: skip
        return None
    raise _invalid(ctx.file, node, f"<camunda:{local}> is not a mapping value", at=child, attribute="camunda:" + local)


def _zeebe_mapping(ctx: _Context, node: etree._Element, entry: etree._Element) -> IoMapping | None:
    target = _target(ctx, node, entry, "target", entry.get("target"))
    source = (entry.get("source") or "").strip()
    what = f"zeebe:{_local(entry)}"
    if not source:
        value: Any = None
    elif source.startswith("="):
        try:
            value = compile_expression(source, language="feel")
        except ExpressionError as exc:  # FEEL the evaluator does not read (a context literal ...)
            ctx.warn(node, entry, what, f"{what} source '{source}' cannot be evaluated here: {exc.message}",
                     f"the mapping to '{target}' is skipped", "write it in the FEEL subset of the README")  # fmt: skip
            return None
    else:
        value = _template(ctx, node, what, source, at=entry)
    return IoMapping(target=target, value=value, line=entry.sourceline, missing_is_null=True)


# --- listeners -----------------------------------------------------------------------


def listeners(ctx: _Context, node: etree._Element, *, flow: bool = False) -> tuple[Listener, ...]:
    """The listeners of an element (or sequence flow) that the engine runs; warnings for the others."""
    found: list[Listener] = []
    for extensions in _bpmn_children(node, "extensionElements"):
        for namespace in VENDOR_NAMESPACES:
            for tag, events in (("executionListener", EXECUTION_EVENTS), ("taskListener", TASK_EVENTS)):
                for listener in extensions.iterchildren(f"{{{namespace}}}{tag}"):
                    read = _listener(ctx, node, listener, _prefixed(namespace, tag), events, flow)
                    if read is not None:
                        found.append(read)
    return tuple(found)


def _listener(
    ctx: _Context,
    node: etree._Element,
    listener: etree._Element,
    what: str,
    events: frozenset[str],
    flow: bool,
) -> Listener | None:
    default = "take" if flow else ("start" if "execution" in what else "create")
    event = (listener.get("event") or default).strip()
    for java in ("class", "delegateExpression"):
        if listener.get(java):
            ctx.warn(node, listener, what, f"{what} {java}='{listener.get(java)}' ({event}): {_JAVA}",
                     "the listener is skipped", "use expression= or an inline script the evaluator runs")  # fmt: skip
            return None
    if event not in events:
        ctx.warn(node, listener, what, f"{what} event '{event}' is not supported", "the listener is skipped")
        return None
    expression = (listener.get("expression") or "").strip()
    if expression:
        match = _SET_VARIABLE.fullmatch(expression)
        if match is not None:
            value = _template(ctx, node, what, "${" + match.group(3).strip() + "}", at=listener)
            return Listener(event, value, match.group(2), line=listener.sourceline)
        return Listener(event, _template(ctx, node, what, expression, at=listener), line=listener.sourceline)
    for script in listener.iterchildren(f"{{{CAMUNDA_NS}}}script", f"{{{FLOWABLE_NS}}}script"):
        text = _text(script)
        if text:
            language = (script.get("scriptFormat") or "").strip() or None
            return Listener(event, script=text, language=language, line=script.sourceline)
    ctx.warn(node, listener, what, f"{what} ({event}) has no expression or script", "the listener is skipped")
    return None


# --- Flowable's $INITIATOR --------------------------------------------------------------

INITIATOR_LITERAL = "$INITIATOR"
DEFAULT_INITIATOR_VARIABLE = "initiator"


def resolve_initiator_literal(ctx: _Context) -> None:
    """Flowable's ``$INITIATOR`` assignee or candidate user is the starter: it becomes ``${v}``,
    ``v`` the initiator variable of the process-level none start events (``initiator`` when they
    name none, and they are given it, so the starter is recorded as Flowable does)."""
    tasks = [e for e in ctx.elements.values() if isinstance(e, UserTask) and _uses_initiator_literal(e)]
    if not tasks:
        return
    starts = [e for e in ctx.elements.values() if isinstance(e, StartEvent) and e.scope is None and e.event is None]
    variable = next((s.initiator for s in starts if s.initiator), DEFAULT_INITIATOR_VARIABLE)
    for start in starts:
        if not start.initiator:
            ctx.elements[start.id] = replace(start, initiator=variable)
    starter = compile_template("${" + variable + "}")
    for task in tasks:
        ctx.elements[task.id] = replace(
            task,
            assignee=starter if _is_initiator_literal(task.assignee) else task.assignee,
            candidate_users=tuple(starter if _is_initiator_literal(u) else u for u in task.candidate_users),
        )


def _is_initiator_literal(template: Any) -> bool:
    return template is not None and template.source.strip() == INITIATOR_LITERAL


def _uses_initiator_literal(task: UserTask) -> bool:
    return _is_initiator_literal(task.assignee) or any(_is_initiator_literal(u) for u in task.candidate_users)


# --- what is not honoured ----------------------------------------------------------------

#: vendor attributes (camunda/flowable/activiti local names) the engine reads
HONOURED_ATTRIBUTES = frozenset(
    {
        "assignee", "candidateUsers", "candidateGroups", "dueDate", "priority", "formKey", "formRef",
        "initiator", "topic", "taskPriority", "resultVariable", "collection", "elementVariable",
        "calledElementBinding", "calledElementVersion", "calledElementVersionTag", "errorCodeVariable",
        "errorMessageVariable", "escalationCodeVariable", "versionTag", "type", "resource", "variableName",
        "variableEvents",
    }
)  # fmt: skip
#: vendor attributes with a known reason for not being honoured, and what happens instead
KNOWN_ATTRIBUTES = {
    "class": (_JAVA, "the task waits as an external task (topic: its element id) for a worker"),
    "delegateExpression": (_JAVA, "the task waits as an external task (topic: its element id) for a worker"),
    "expression": ("service-task expressions are not run", "the task waits as an external task for a worker"),
    "decisionRef": ("DMN decisions are not evaluated", "the task waits as an external task for a worker"),
    "asyncBefore": ("asynchronous continuations are not used", "the engine runs on in the same step"),
    "asyncAfter": ("asynchronous continuations are not used", "the engine runs on in the same step"),
    "async": ("asynchronous continuations are not used", "the engine runs on in the same step"),
    "exclusive": ("job exclusivity is not used", "steps of one instance are serialised anyway"),
    "historyTimeToLive": ("history time to live is not used", "BPM_RETENTION applies"),
    "isStartableInTasklist": ("no effect", "every deployed process can be started"),
    "candidateStarterGroups": ("start permissions are not checked", "anyone allowed to start may start it"),
    "candidateStarterUsers": ("start permissions are not checked", "anyone allowed to start may start it"),
    "formRefBinding": ("form versions are not resolved", "formKey is the formRef as written"),
}
#: vendor extension elements the parser reads (by namespace)
HONOURED_EXTENSIONS = {
    "camunda": frozenset({"in", "out", "inputOutput", "executionListener", "taskListener", "formData", "formProperty"}),
    "flowable": frozenset({"in", "out", "executionListener", "taskListener", "formProperty"}),
    "activiti": frozenset({"in", "out", "executionListener", "taskListener", "formProperty"}),
    "zeebe": frozenset({"taskDefinition", "ioMapping", "calledElement", "loopCharacteristics", "formDefinition",
                        "assignmentDefinition", "userTask"}),
}  # fmt: skip
KNOWN_EXTENSIONS = {
    "properties": ("extension properties are not used", "they stay in the file"),
    "field": ("field injection is for Java delegates", "it is not used"),
    "connector": ("connectors cannot run here", "the task waits as an external task for a worker"),
    "failedJobRetryTimeCycle": ("job retry cycles are not used", "external tasks use their retries"),
    "taskHeaders": ("task headers are not passed to workers", "workers get the variables only"),
    "subscription": ("Zeebe correlation keys are not used", "correlate by businessKey or correlationKeys"),
    "userTaskForm": ("embedded Camunda Forms are not served", "formKey names the form"),
    "calledDecision": ("DMN decisions are not evaluated", "the task waits as an external task for a worker"),
    "script": ("Zeebe script expressions are not run", "the task waits as an external task for a worker"),
    "executionListeners": ("Zeebe job-worker listeners are not run", "the element runs without them"),
    "taskListeners": ("Zeebe job-worker listeners are not run", "the task runs without them"),
}


def scan_unhonoured(ctx: _Context, process: etree._Element) -> None:
    """Warn about each vendor attribute or extension element in ``process`` the engine ignores.

    Engine vendors' extensions (Camunda, Flowable, Activiti, Zeebe) are warned one by one; other
    tools' extension elements (modeler metadata: Signavio, Trisotech ...) once per namespace."""
    foreign: dict[str, tuple[etree._Element, etree._Element, int]] = {}
    for node in process.iter():
        if not isinstance(node.tag, str) or not _is_bpmn(node):
            continue
        owner = node if node.get("id") else node.getparent()
        for name, value in node.attrib.items():
            qname = etree.QName(name)
            if qname.namespace in _PREFIX and qname.namespace != ZEEBE_NS:
                _check_attribute(ctx, owner, node, qname.namespace, qname.localname, value)
        if _local(node) == "extensionElements":
            for child in node:
                if not isinstance(child.tag, str):
                    continue
                namespace = etree.QName(child).namespace or ""
                if namespace in _PREFIX or namespace == BPMR_NS:
                    _check_extension(ctx, owner, child, at_process=owner is process)
                else:
                    first_owner, first, count = foreign.get(namespace, (owner, child, 0))
                    foreign[namespace] = (first_owner, first, count + 1)
    for namespace, (owner, child, count) in foreign.items():
        what = f"{child.prefix or 'ns'}:*"
        ctx.warn(owner, child, what, f"{count} extension element(s) of {namespace or 'no namespace'} (another "
                 "tool's, e.g. modeler metadata) are not used", "they are ignored")  # fmt: skip


def _check_attribute(
    ctx: _Context, owner: etree._Element, node: etree._Element, namespace: str, local: str, value: str
) -> None:
    if local in HONOURED_ATTRIBUTES and not (local == "type" and value.strip() != "external"):
        return
    what = _prefixed(namespace, local)
    if local == "type":
        ctx.warn(owner, node, what, f"{what}='{value}' is not supported", KNOWN_ATTRIBUTES["class"][1])
        return
    reason, instead = KNOWN_ATTRIBUTES.get(local, (f"{what} is not supported", "it is ignored"))
    ctx.warn(owner, node, what, f"{what}='{value}': {reason}", instead)


def _check_extension(ctx: _Context, owner: etree._Element, child: etree._Element, *, at_process: bool) -> None:
    namespace = etree.QName(child).namespace
    if namespace == BPMR_NS:
        return
    prefix = _PREFIX.get(namespace or "")
    local = _local(child)
    what = _prefixed(namespace, local)
    if at_process and local in ("executionListener", "taskListener"):
        ctx.warn(owner, child, what, f"<{what}> on the process: process-level listeners are not run",
                 "the listener is skipped", "put it on the start or end event")  # fmt: skip
        return
    if prefix is not None and local in HONOURED_EXTENSIONS[prefix]:
        return
    reason, instead = KNOWN_EXTENSIONS.get(local, (f"<{what}> is not supported", "it is ignored"))
    ctx.warn(owner, child, what, f"<{what}>: {reason}", instead)
