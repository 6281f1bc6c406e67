"""Forms (extension, API.md "Forms and queries"): what a task's or start event's form
shows, and the check of what is submitted with it.

A form is ``{"formKey", "fields": [{"id", "label", "type", "defaultValue", "required",
"values": [{"id", "name"}]}]}``. Submitting (completing a task, starting a process)
checks every writable field: a required one must have a value (submitted, or already a
variable), and a submitted value must fit the field's type (``long``/``integer``/
``short``, ``double``, ``boolean``, ``date``, ``enum``; other types are not checked) and
its Camunda ``min``/``max``/``minlength``/``maxlength`` constraints. Failures are one
422 ``FORM_INVALID`` naming each field, raised before anything changes.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from bpm.engine.evaluation import evaluation_context
from bpm.errors import ExpressionError, InstanceNotFound, ProcessNotFound, TaskNotFound, Unprocessable
from bpm.expressions import compile_template
from bpm.model.spec import FormField, ProcessSpec, StartEvent, UserTask

if TYPE_CHECKING:
    from bpm.records import Task
    from bpm.runtime import Runtime

__all__ = ["FormInvalid", "check_start_form", "check_task_form", "form_of", "process_form", "task_form"]

#: text a boolean field accepts: Camunda's true/false, and the Yes/No SpiffWorkflow forms send
_BOOLEAN_TEXT = frozenset({"true", "false", "yes", "no"})
_INTEGER_TYPES = frozenset({"long", "integer", "int", "short"})
_NUMBER_TYPES = frozenset({"double", "float", "number"})
_JAVA_DATE = {"dd": "%d", "MM": "%m", "yyyy": "%Y", "yy": "%y", "HH": "%H", "mm": "%M", "ss": "%S"}
_DEFAULT_DATE_PATTERN = "dd/MM/yyyy"  # Camunda's date form type


class FormInvalid(Unprocessable):
    """Submitted form values break the form's rules; ``data`` maps each field to its messages."""

    code = "FORM_INVALID"


def form_of(form_key: str | None, fields: tuple[FormField, ...], variables: Mapping[str, Any]) -> dict[str, Any]:
    """The form document of API.md, default values evaluated against ``variables``."""
    return {
        "formKey": form_key,
        "fields": [
            {
                "id": field.id,
                "label": field.label or field.id,
                "type": field.type,
                "defaultValue": _default_value(field, variables),
                "required": field.required,
                "values": [{"id": value_id, "name": name} for value_id, name in field.values],
            }
            for field in fields
        ],
    }


def task_form(runtime: Runtime, task_id: str) -> dict[str, Any]:
    """The form of an open or closed task. Raises TaskNotFound."""
    task = runtime.backend.task(task_id)
    if task is None:
        raise TaskNotFound(f"task '{task_id}' does not exist")
    try:
        spec = runtime.spec_of(runtime.instance(task.instance_id))
    except InstanceNotFound:
        raise TaskNotFound(f"task '{task_id}' does not exist") from None
    element = spec.elements.get(task.task_definition_key)
    fields = element.form_fields if isinstance(element, UserTask) else ()
    with evaluation_context(runtime.now_ms, runtime.engine.beans):  # defaults such as ${now()}
        return form_of(task.form_key, fields, runtime.task_variables(task_id))


def process_form(runtime: Runtime, key: str, version: str | None = None) -> dict[str, Any]:
    """The start form of a deployed process (by key, else by name). Raises ProcessNotFound."""
    runtime.cache.refresh_if_stale()
    try:
        definition = runtime.cache.find(key=key, version=version)
    except ProcessNotFound:  # by name, as the start routes find it
        definition = runtime.cache.find(name=key, version=version)
    start = _start_event(runtime.cache.spec(definition))
    if start is None:
        return form_of(None, (), {})
    with evaluation_context(runtime.now_ms, runtime.engine.beans):
        return form_of(start.form_key, start.form_fields, {})


def check_task_form(
    spec: ProcessSpec, task: Task, submitted: Mapping[str, Any] | None, instance_variables: Mapping[str, Any]
) -> None:
    """Before a task completes: its form's rules hold for ``submitted`` over the variables it sees.

    Raises FormInvalid."""
    element = spec.elements.get(task.task_definition_key)
    if isinstance(element, UserTask) and element.form_fields:
        current = {**instance_variables, **task.variables}
        _check(element.form_fields, submitted or {}, current, f"task '{element.label}'")


def check_start_form(spec: ProcessSpec, start_event: str | None, submitted: Mapping[str, Any] | None) -> None:
    """Before an instance starts at ``start_event`` (None: where a start by key begins). Raises FormInvalid."""
    start = spec.elements.get(start_event) if start_event else _start_event(spec)
    if isinstance(start, StartEvent) and start.form_fields:
        _check(start.form_fields, submitted or {}, {}, f"the start form of '{spec.label}'")


def _start_event(spec: ProcessSpec) -> StartEvent | None:
    try:
        start = spec.elements.get(spec.default_start_id())
    except Unprocessable:
        return None
    return start if isinstance(start, StartEvent) else None


def _check(fields: tuple[FormField, ...], submitted: Mapping[str, Any], current: Mapping[str, Any], what: str) -> None:
    problems: dict[str, list[str]] = {}
    for field in fields:
        if not field.writable:
            continue
        name = field.target
        if name in submitted:
            value, given = submitted[name], True
        else:
            value, given = current.get(name), False
        if value is None or value == "":
            if field.required:
                problems.setdefault(field.id, []).append("is required")
            continue
        if given:
            problems.setdefault(field.id, []).extend(_type_problems(field, value))
    problems = {k: v for k, v in problems.items() if v}
    if problems:
        named = "; ".join(f"'{k}' {', '.join(v)}" for k, v in problems.items())
        raise FormInvalid(f"the form of {what} is not valid: {named}", data=problems)


def _type_problems(field: FormField, value: Any) -> list[str]:
    kind = field.type.lower()
    if kind in _INTEGER_TYPES and not _is_integer(value):
        return ["must be a whole number"]
    if kind in _NUMBER_TYPES and not _is_number(value):
        return ["must be a number"]
    if kind == "boolean" and not isinstance(value, bool) and str(value).lower() not in _BOOLEAN_TEXT:
        return ["must be true or false"]
    if kind == "enum" and field.values and str(value) not in {value_id for value_id, _ in field.values}:
        return [f"must be one of {', '.join(value_id for value_id, _ in field.values)}"]
    if kind == "date" and not _is_date(value, field.date_pattern):
        return [f"must be a date ({field.date_pattern or _DEFAULT_DATE_PATTERN} or ISO 8601)"]
    return _constraint_problems(field, value)


def _constraint_problems(field: FormField, value: Any) -> list[str]:
    problems = []
    for name, config in field.constraints:
        limit = float(config)
        if name in ("min", "max") and _is_number(value):
            number = float(value)
            if (name == "min" and number < limit) or (name == "max" and number > limit):
                problems.append(f"must be {'at least' if name == 'min' else 'at most'} {config}")
        elif (
            name in ("minlength", "maxlength")
            and isinstance(value, str)
            and ((name == "minlength" and len(value) < limit) or (name == "maxlength" and len(value) > limit))
        ):
            problems.append(f"must have {'at least' if name == 'minlength' else 'at most'} {config} characters")
    return problems


def _is_integer(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    if isinstance(value, float):
        return value.is_integer()
    return isinstance(value, str) and re.fullmatch(r"[+-]?\d{1,18}", value.strip()) is not None


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return False
        return True
    return False


def _is_date(value: Any, pattern: str | None) -> bool:
    if not isinstance(value, str) or len(value) > 64:
        return False
    text = value.strip()
    try:
        dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        return True
    except ValueError:
        pass
    strptime = pattern or _DEFAULT_DATE_PATTERN
    for java, python in _JAVA_DATE.items():
        strptime = strptime.replace(java, python)
    try:
        dt.datetime.strptime(text, strptime)
    except ValueError:
        return False
    return True


def _default_value(field: FormField, variables: Mapping[str, Any]) -> Any:
    default = field.default_value
    if default is None:
        return None
    if "${" in default or "#{" in default:
        try:
            return compile_template(default).evaluate(variables)
        except ExpressionError:
            return None
    kind = field.type.lower()
    if kind in _INTEGER_TYPES and _is_integer(default):
        return int(float(default))
    if kind in _NUMBER_TYPES and _is_number(default):
        return float(default)
    if kind == "boolean" and default.lower() in ("true", "false"):
        return default.lower() == "true"
    return default
