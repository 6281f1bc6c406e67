"""Values the engine works out for one element: expressions (their errors naming the element),
call activity mappings, which events catch an error, and a new user task's assignment."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from bpm.copying import maker
from bpm.engine import mappings, timers
from bpm.engine.results import NewTask
from bpm.errors import ExpressionError
from bpm.model.spec import CallActivity, Element, EventDefinition, UserTask

#: NewTask(...), positionally as the class takes it (bpm.copying.maker: no type.__call__)
_make_new_task = maker(NewTask)

DEFAULT_PRIORITY = 50


def _catches(definition: EventDefinition | None, kind: str, code: str | None) -> bool:
    return definition is not None and definition.kind == kind and definition.ref in (None, code)


def _catch_variables(kind: str, code: str | None, message: str) -> Callable[[EventDefinition | None], dict[str, Any]]:
    def extra(definition: EventDefinition | None) -> dict[str, Any]:
        found: dict[str, Any] = {}
        if definition is not None and definition.variable:
            found[definition.variable] = code
        if definition is not None and definition.message_variable:
            found[definition.message_variable] = message
        return found

    return extra


def _evaluate(template: Any, variables: Mapping[str, Any], element: Element, what: str) -> Any:
    try:
        return template.evaluate(variables)
    except ExpressionError as exc:
        raise ExpressionError(f"{what} of '{element.label}' ({element.id}): {exc.message}") from exc


def _condition(expression: Any, variables: Mapping[str, Any], element: Element, what: str) -> bool:
    try:
        return bool(expression.evaluate_condition(variables))
    except ExpressionError as exc:
        raise ExpressionError(f"{what} of '{element.label}' ({element.id}): {exc.message}") from exc


def _map_in(element: CallActivity, variables: Mapping[str, Any]) -> dict[str, Any]:
    mapped: dict[str, Any] = copy.deepcopy(dict(variables)) if element.in_all else {}
    for mapping in element.inputs:
        mapped[mapping.target] = _mapped_value(mapping, variables, element)
    return mapped


def _map_out(element: CallActivity, child: Mapping[str, Any], parent: Mapping[str, Any]) -> dict[str, Any]:
    mapped: dict[str, Any] = copy.deepcopy(dict(child)) if element.out_all else {}
    for mapping in element.outputs:
        mapped[mapping.target] = _mapped_value(mapping, child, element)
    return mapped


def _mapped_value(mapping: Any, variables: Mapping[str, Any], element: CallActivity) -> Any:
    if mapping.source_expression is not None:
        return _evaluate(mapping.source_expression, variables, element, f"mapping to '{mapping.target}'")
    return copy.deepcopy(variables.get(mapping.source)) if mapping.source else None


def resolve_task(
    task_id: str, element: UserTask, variables: Mapping[str, Any], now_ms: int, local: Mapping[str, Any]
) -> NewTask:
    """A user task's assignment, due date and priority, evaluated against ``variables``."""
    return _make_new_task(  # (each part evaluated only when the element has it)
        task_id,
        element.id,
        element.label,
        mappings.description(element, variables) if element.documentation else "",
        _one_name(element.assignee, variables, element) if element.assignee is not None else None,
        _names(element.candidate_users, variables, element) if element.candidate_users else (),
        _names(element.candidate_groups, variables, element) if element.candidate_groups else (),
        _names(element.candidate_roles, variables, element) if element.candidate_roles else (),
        _due_date(element, variables, now_ms) if element.due_date is not None else None,
        _priority(element, variables) if element.priority is not None else DEFAULT_PRIORITY,
        element.form_key,
        {**local},
    )


def _one_name(template: Any, variables: Mapping[str, Any], element: Element) -> str | None:
    if template is None:
        return None
    value = _evaluate(template, variables, element, "assignee")
    if value is None or value == "":
        return None
    if isinstance(value, (dict, list, bool)):
        raise ExpressionError(f"assignee of '{element.label}' ({element.id}) is not a user name: {value!r}")
    return str(value).strip() or None


def _names(templates: Iterable[Any], variables: Mapping[str, Any], element: Element) -> tuple[str, ...]:
    names: list[str] = []
    for template in templates:
        value = _evaluate(template, variables, element, "candidates")
        items = value if isinstance(value, (list, tuple)) else str(value if value is not None else "").split(",")
        for item in items:
            if isinstance(item, (dict, list)):
                raise ExpressionError(f"candidate of '{element.label}' ({element.id}) is not a name: {item!r}")
            name = str(item).strip() if item is not None else ""
            if name and name not in names:
                names.append(name)
    return tuple(names)


def _priority(element: UserTask, variables: Mapping[str, Any]) -> int:
    if element.priority is None:
        return DEFAULT_PRIORITY
    value = _evaluate(element.priority, variables, element, "priority")
    try:
        priority = int(str(value).strip())
    except (TypeError, ValueError):
        raise ExpressionError(f"priority of '{element.label}' ({element.id}) is not a number: {value!r}") from None
    return max(1, min(99, priority))


def parse_due(value: Any, now_ms: int) -> int | None:
    """An epoch-ms due date from epoch ms, an ISO 8601 date/date-time, or a duration from now."""
    if value is None or value == "":
        return None
    return timers.due_from_value(value, now_ms)


def _due_date(element: UserTask, variables: Mapping[str, Any], now_ms: int) -> int | None:
    if element.due_date is None:
        return None
    value = _evaluate(element.due_date, variables, element, "due date")
    try:
        return parse_due(value, now_ms)
    except ExpressionError:
        raise ExpressionError(
            f"due date of '{element.label}' ({element.id}) is not a date or duration: {value!r}"
        ) from None
