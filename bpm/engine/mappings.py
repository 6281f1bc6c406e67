"""Input/output mappings and listeners, run by the engine at an element's events.

The engine calls, each a one-line hook:

- :func:`entered` when a token enters an element: input mappings are evaluated against
  the variables the token sees and become the token's local variables (a user task gets
  them as task-local variables; a subprocess's scope sees them), then ``start`` listeners;
- :func:`task_created` when a user task opens: ``create`` listeners, then ``assignment``
  ones when it has an assignee;
- :func:`leaving` when a token leaves an element (or is consumed at an end event):
  ``complete`` task listeners, output mappings (set as instance variables), ``end``
  listeners;
- :func:`taken` for the sequence flows a token takes: their ``take`` listeners.

A mapping that calls a function the evaluator does not have (FEEL's ``string()`` ...)
is listed as a deployment warning and skipped. A target ``a.b`` sets ``b`` inside the map
variable ``a`` (created when missing), as Zeebe does; in Zeebe mappings a variable that does
not exist is null, and so is a Zeebe mapping that reads a property of null or a property a
map does not have (FEEL propagates null through paths; here the whole value is null).
Listener expressions run on the safe evaluator: a plain expression is evaluated (a
failure stops the step with EXPRESSION_ERROR, as a failing Camunda listener does) and its
value dropped; ``${execution.setVariable('x', v)}`` sets ``x``; a script listener runs as a
script task does, its assignments becoming instance variables.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol

from bpm.engine.scripts import is_runnable_language, run_script
from bpm.errors import ExpressionError
from bpm.expressions import compile_template
from bpm.model.spec import Element, IoMapping, Listener, UserTask

#: evaluator failures that FEEL answers with null (a path through null or a missing map entry)
_NULL_PATH = re.compile(r"cannot read property '[^']*' of null|unknown property '[^']*'")
_UNAVAILABLE = re.compile(r"\b(?:function|method) '[^']+' is not allowed")


class _Run(Protocol):
    """What the hooks use of the engine's step (``bpm.engine.engine._Run``)."""

    tokens: dict[str, dict[str, Any]]
    state: dict[str, Any]
    spec: Any

    def visible_vars(self, token_id: str | None) -> dict[str, Any]: ...


def entered(run: _Run, token_id: str, element: Element) -> None:
    """Inputs into the token's local variables, then ``start`` listeners."""
    if not element.io_inputs and not element.listeners:
        return
    if element.io_inputs:
        local = run.tokens[token_id].setdefault("vars", {})
        for name, value in evaluate_mappings(element.io_inputs, run.visible_vars(token_id), element, "input").items():
            _assign(local, name, value)
    _listen(run, token_id, element, element.listeners, "start")


def task_created(run: _Run, token_id: str, element: UserTask, task: Any) -> None:
    """``create`` listeners of a new user task, then ``assignment`` when it has an assignee."""
    _listen(run, token_id, element, element.listeners, "create")
    if getattr(task, "assignee", None):
        _listen(run, token_id, element, element.listeners, "assignment")


def leaving(run: _Run, token_id: str, element: Element) -> None:
    """``complete`` task listeners, outputs into the instance variables, ``end`` listeners."""
    if not element.io_outputs and not element.listeners:
        return
    if isinstance(element, UserTask):
        _listen(run, token_id, element, element.listeners, "complete")
    if element.io_outputs:
        outputs = evaluate_mappings(element.io_outputs, run.visible_vars(token_id), element, "output")
        for name, value in outputs.items():
            _assign(run.state["vars"], name, value)
    _listen(run, token_id, element, element.listeners, "end")


def taken(run: _Run, flow_ids: Iterable[str], token_id: str) -> None:
    """``take`` listeners of the sequence flows a token leaves by."""
    for flow_id in flow_ids:
        flow = run.spec.flow(flow_id)
        if flow.listeners:
            _listen(run, token_id, flow, flow.listeners, "take")


def description(element: Element, variables: Mapping[str, Any]) -> str:
    """A task's description: its documentation, ``${...}`` parts resolved (as Flowable does);
    the text as written when it does not evaluate (prose may hold a stray ``${``)."""
    text = element.documentation
    if "${" not in text and "#{" not in text:
        return text
    try:
        return str(_compiled_text(text).evaluate(variables))
    except ExpressionError:
        return text


@functools.lru_cache(maxsize=512)
def _compiled_text(text: str) -> Any:
    return compile_template(text)


def evaluate_mappings(
    mappings: Iterable[IoMapping], variables: Mapping[str, Any], element: Element, kind: str
) -> dict[str, Any]:
    """Each mapping's value (in order: a later mapping sees the earlier ones). Raises ExpressionError."""
    scope = dict(variables)
    values: dict[str, Any] = {}
    for mapping in mappings:
        try:
            value = _value(mapping.value, _NullScope(scope) if mapping.missing_is_null else scope)
        except ExpressionError as exc:
            if unavailable_function(exc):
                continue  # listed as a warning at deployment: the mapping is skipped
            if mapping.missing_is_null and _NULL_PATH.search(exc.message):
                value = None
                values[mapping.target] = value
                _assign(scope, mapping.target, value)
                continue
            raise ExpressionError(
                f"{kind} mapping to '{mapping.target}' of '{element.label}' ({element.id}): {exc.message}"
            ) from None
        values[mapping.target] = value
        _assign(scope, mapping.target, value)
    return values


class _NullScope(Mapping[str, Any]):
    """Variables in which a name that does not exist is null, as FEEL in Zeebe mappings reads it."""

    def __init__(self, variables: Mapping[str, Any]) -> None:
        self._variables = variables

    def __getitem__(self, name: str) -> Any:
        return self._variables.get(name)

    def __contains__(self, name: object) -> bool:
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(self._variables)

    def __len__(self) -> int:
        return len(self._variables)


def unavailable_function(error: ExpressionError) -> str | None:
    """The function or method an evaluation failed on because the evaluator does not have it."""
    match = _UNAVAILABLE.search(error.message)
    return match.group(0) if match else None


def probe(mapping: IoMapping) -> str | None:
    """At deployment: the function a mapping calls that the evaluator does not have (None: none found).

    The mapping is evaluated with every variable null; only that kind of failure counts."""
    try:
        _value(mapping.value, _NullScope({}))
    except ExpressionError as exc:
        return unavailable_function(exc)
    return None


def _value(value: Any, variables: Mapping[str, Any]) -> Any:
    if value is None:
        return None
    if isinstance(value, list):
        return [_value(item, variables) for item in value]
    if isinstance(value, dict):
        return {key: _value(item, variables) for key, item in value.items()}
    return copy.deepcopy(value.evaluate(variables))


def _assign(variables: dict[str, Any], target: str, value: Any) -> None:
    """Set ``target`` (a name, or a dotted path into map variables) in ``variables``."""
    *path, last = [part.strip() for part in target.split(".")]
    holder = variables
    for part in path:
        inner = holder.get(part)
        if not isinstance(inner, dict):
            inner = {}
            holder[part] = inner
        holder = inner
    holder[last] = value


def _listen(run: _Run, token_id: str, owner: Any, listeners: Iterable[Listener], event: str) -> None:
    if not listeners:
        return
    for listener in listeners:
        if listener.event != event:
            continue
        variables = run.visible_vars(token_id)
        try:
            if listener.script is not None:
                if not is_runnable_language(listener.language):
                    continue  # reported as a warning at deployment
                assigned, _ = run_script(listener.script, listener.language, variables)
                run.state["vars"].update(assigned)
            elif listener.expression is not None:
                value = listener.expression.evaluate(variables)
                if listener.target is not None:
                    run.state["vars"][listener.target] = copy.deepcopy(value)
        except ExpressionError as exc:
            label = getattr(owner, "label", owner.id)
            raise ExpressionError(f"{event} listener of '{label}' ({owner.id}): {exc.message}") from None
