"""Deploy-time checks of a parsed process: what the parser cannot judge alone.

The parser already compiles every expression and template the engine will
evaluate (so syntax errors fail the deployment there). Here, with the engine's
timer rules at hand, the values that need no variables are checked too:

- a timer whose value is literal text (no ``${...}``) must be a valid ISO 8601
  date, duration or repeating interval, or a Quartz cron expression for a cycle;
- a timer start event at process level is evaluated with no variables (nothing
  else exists when it is scheduled), so it must evaluate, and give a valid value;
- every expression the engine evaluates (conditions, assignees, candidates, due
  dates, priorities, timers, called elements, ``camunda:in``/``out``, loop
  attributes, listeners; script tasks too with ``BPM_SCRIPT_CHECK=deploy``) may call only the evaluator's functions
  and the registered beans' public methods (:mod:`bpm.expressions.beans`):
  ``${approvalService.find(x)}`` without such a bean is refused, naming it.
  Input/output mappings are the exception: one calling an unknown function is a
  warning and skipped, as Part 4 of issue 11 decided.

Each problem is an :class:`~bpm.errors.InvalidDefinition` naming the file, the
element, its line and the attribute (``timeCycle`` ...), with a fix where one is
known, so that nothing is stored when a check fails.
"""

from __future__ import annotations

from collections.abc import Iterator

from bpm.engine import timers
from bpm.engine.mappings import probe
from bpm.engine.scripts import compile_script, is_runnable_language
from bpm.errors import ExpressionError, InvalidDefinition
from bpm.model.spec import (
    CallActivity,
    DeployWarning,
    Element,
    Evaluable,
    EventDefinition,
    Listener,
    ProcessSpec,
    ScriptTask,
    StartEvent,
    UserTask,
)

_TIMER_ATTRIBUTES = (("cycle", "timeCycle", "time_cycle"), ("date", "timeDate", "time_date"),
                     ("duration", "timeDuration", "time_duration"))  # fmt: skip
_TIMER_FIX = {
    "cycle": "write an ISO 8601 repeating interval such as R/PT5M or R3/2026-01-01T09:00:00Z/P1D, or a Quartz "
    "cron expression with seconds first such as 0 0/5 * * * ?",
    "date": "write an ISO 8601 date-time such as 2026-12-01T09:00:00Z",
    "duration": "write an ISO 8601 duration such as PT30M or P1DT2H",
}


def is_literal(template: Evaluable) -> bool:
    """Whether a compiled template is plain text (evaluates to itself, without variables)."""
    return "${" not in template.source and "#{" not in template.source


def timer_value(event: EventDefinition) -> tuple[str, str, Evaluable] | None:
    """(kind, attribute, template) of a timer event definition: ``cycle``/``date``/``duration``."""
    for kind, attribute, field in _TIMER_ATTRIBUTES:
        template = getattr(event, field)
        if template is not None:
            return kind, attribute, template
    return None


def check_spec(spec: ProcessSpec, file: str, now_ms: int, *, check_scripts: bool = False) -> list[DeployWarning]:
    """Refuse what would fail later, when an instance or the timer worker reaches it. Raises InvalidDefinition.

    Returns warnings for what will be skipped: script listeners in a language the evaluator does not run.
    """
    warnings: list[DeployWarning] = []
    _check_calls(spec, file, check_scripts=check_scripts)
    for element in spec.elements.values():
        event = getattr(element, "event", None)
        if isinstance(event, EventDefinition) and event.kind == "timer":
            at_process_start = isinstance(element, StartEvent) and element.id in spec.event_start_ids
            _check_timer(element, event, file, now_ms, evaluate=at_process_start)
        warnings.extend(_script_listener_warnings(file, element.id, element.listeners))
        warnings.extend(_mapping_warnings(file, element))
    for flow in spec.flows.values():
        warnings.extend(_script_listener_warnings(file, flow.id, flow.listeners))
    return warnings


def _mapping_warnings(file: str, element: Element) -> list[DeployWarning]:
    found = []
    for kind, mappings in (("input", element.io_inputs), ("output", element.io_outputs)):
        for mapping in mappings:
            missing = probe(mapping)
            if missing:
                found.append(DeployWarning(
                    file, element.id, mapping.line or element.line, f"{kind} mapping",
                    f"the {kind} mapping to '{mapping.target}' calls a {missing.split(' is ')[0]}, which the "
                    "evaluator does not have", f"the mapping is skipped ('{mapping.target}' is not set)",
                    "compute the value in a worker, or with the functions the README lists",
                ))  # fmt: skip
    return found


def _script_listener_warnings(file: str, owner: str, listeners: tuple[Listener, ...]) -> list[DeployWarning]:
    return [
        DeployWarning(
            file,
            owner,
            listener.line,
            "script",
            f"a {listener.event} listener script in '{listener.language}' cannot run (scripts run on the safe "
            "evaluator)",
            "the listener is skipped",
            "write the script as expressions (name = expression lines)",
        )
        for listener in listeners
        if listener.script is not None and not is_runnable_language(listener.language)
    ]


def _check_timer(element: Element, event: EventDefinition, file: str, now_ms: int, *, evaluate: bool) -> None:
    found = timer_value(event)
    if found is None:
        return
    kind, attribute, template = found
    if not evaluate and not is_literal(template):
        return  # evaluated with the instance's variables when the timer starts
    try:
        text = str(template.evaluate({}))
        timers.check_timer(kind, text, now_ms)
    except ExpressionError as exc:
        where = "a timer start event is evaluated without variables: " if not is_literal(template) else ""
        raise InvalidDefinition(
            f"invalid {attribute} '{template.source}': {where}{exc.message}",
            file=file,
            element_id=element.id,
            tag=element.tag,
            line=event.line or element.line,
            attribute=attribute,
            fix=_TIMER_FIX[kind],
        ) from None


_CALL_FIX = (
    'use the functions the README lists ("Expression limits"), or register a bean of that name '
    'with that public method (BPM_BEANS, README "Beans")'
)


def _check_calls(spec: ProcessSpec, file: str, *, check_scripts: bool) -> None:
    """Refuse an expression calling a function, method or bean the evaluator will not have
    (script tasks' statements with ``check_scripts``: otherwise they fail when run)."""
    problems = []
    for element_id, tag, line, attribute, expression in _evaluated(spec, check_scripts):
        unknown_calls = getattr(expression, "unknown_calls", None)
        unknown = unknown_calls() if unknown_calls is not None else ()
        if unknown:
            problems.append((line or 0, element_id, tag, attribute, expression.source, unknown[0]))
    if problems:
        line, element_id, tag, attribute, source, name = min(problems)  # the first in the file
        what = "bean method" if "." in name else "function or method"
        raise InvalidDefinition(
            f"{attribute} '{source}' calls the {what} '{name}', which is neither a function of "
            "the evaluator nor a public method of a registered bean",
            file=file, element_id=element_id, tag=tag, line=line or None, attribute=attribute, fix=_CALL_FIX,
            )  # fmt: skip


Found = tuple[str, str, int | None, str, Evaluable]


def _evaluated(spec: ProcessSpec, check_scripts: bool) -> Iterator[Found]:
    """(element id, tag, line, attribute, expression) of every expression the engine evaluates (not mappings)."""
    for flow in spec.flows.values():
        if flow.condition is not None:
            yield flow.id, "sequenceFlow", flow.line, "condition", flow.condition
        yield from _listener_expressions(flow.id, "sequenceFlow", flow.line, flow.listeners)
    for element in spec.elements.values():
        yield from _element_expressions(element, check_scripts)
        yield from _listener_expressions(element.id, element.tag, element.line, element.listeners)


def _element_expressions(element: Element, check_scripts: bool) -> Iterator[Found]:
    def found(attribute: str, expression: Evaluable | None, line: int | None = None) -> Iterator[Found]:
        if expression is not None:
            yield element.id, element.tag, line or element.line, attribute, expression

    if isinstance(element, UserTask):
        yield from found("assignee", element.assignee)
        for attribute, templates in (("candidateUsers", element.candidate_users),
                                     ("candidateGroups", element.candidate_groups),
                                     ("candidateRoles", element.candidate_roles)):  # fmt: skip
            for template in templates:
                yield from found(attribute, template)
        yield from found("dueDate", element.due_date)
        yield from found("priority", element.priority)
    if isinstance(element, CallActivity):
        yield from found("calledElement", element.called_element)
        yield from found("businessKey", element.business_key)
        for mappings in (element.inputs, element.outputs):
            for mapping in mappings:
                yield from found("sourceExpression", mapping.source_expression)
    if check_scripts and isinstance(element, ScriptTask) and is_runnable_language(element.language):
        try:
            statements = compile_script(element.script, element.language)
        except ExpressionError:
            statements = ()  # the parser reports syntax; a failing script is refused when run
        for _, expression in statements:
            yield from found("script", expression)
    loop = element.loop
    if loop is not None:
        yield from found("loopCardinality", loop.cardinality)
        yield from found("collection", loop.collection)
        yield from found("completionCondition", loop.completion_condition)
        yield from found("loopCondition", loop.loop_condition)
    event = getattr(element, "event", None)
    if isinstance(event, EventDefinition):
        for _, attribute, field in _TIMER_ATTRIBUTES:
            yield from found(attribute, getattr(event, field), event.line)
        yield from found("condition", getattr(event, "condition", None), event.line)


def _listener_expressions(owner: str, tag: str, line: int | None, listeners: tuple[Listener, ...]) -> Iterator[Found]:
    for listener in listeners:
        if listener.expression is not None:
            yield owner, tag, listener.line or line, f"{listener.event} listener expression", listener.expression
        elif listener.script is not None and is_runnable_language(listener.language):
            try:
                statements = compile_script(listener.script, listener.language)
            except ExpressionError:
                continue
            for _, expression in statements:
                yield owner, tag, listener.line or line, f"{listener.event} listener script", expression
