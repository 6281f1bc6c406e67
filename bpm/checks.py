"""Deploy-time checks of a parsed process: what the parser cannot judge alone.

The parser already compiles every expression and template the engine will
evaluate (so syntax errors fail the deployment there). Here, with the engine's
timer rules at hand, the values that need no variables are checked too:

- a timer whose value is literal text (no ``${...}``) must be a valid ISO 8601
  date, duration or repeating interval, or a Quartz cron expression for a cycle;
- a timer start event at process level is evaluated with no variables (nothing
  else exists when it is scheduled), so it must evaluate, and give a valid value.

Each problem is an :class:`~bpm.errors.InvalidDefinition` naming the file, the
element, its line and the attribute (``timeCycle`` ...), with a fix where one is
known, so that nothing is stored when a check fails.
"""

from __future__ import annotations

from bpm.engine import timers
from bpm.engine.mappings import probe
from bpm.engine.scripts import is_runnable_language
from bpm.errors import ExpressionError, InvalidDefinition
from bpm.model.spec import DeployWarning, Element, Evaluable, EventDefinition, Listener, ProcessSpec, StartEvent

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


def check_spec(spec: ProcessSpec, file: str, now_ms: int) -> list[DeployWarning]:
    """Refuse what would fail later, when an instance or the timer worker reaches it. Raises InvalidDefinition.

    Returns warnings for what will be skipped: script listeners in a language the evaluator does not run.
    """
    warnings: list[DeployWarning] = []
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
