"""Conditional events, with Camunda 7's semantics, in the engine's steps.

A conditional event waits as a subscription of kind ``conditional`` in the
instance state (``subs``), never in the backend: nothing outside the instance
can make it true, only its own variables. The engine calls these hooks:

- :func:`passes_on_arrival` when a token reaches an intermediate conditional catch
  event: a condition already true lets it pass at once (no wait);
- :func:`settle` when a step has run every token to a wait state: the conditional
  subscriptions made in this step are evaluated (a boundary of an activity just
  entered, the start event of an event subprocess whose scope just opened: their
  condition is checked on creation, as Camunda does), and, when variables changed
  in this step, the older ones whose filters match the changes. Each that holds
  fires (an interrupting boundary cancels its activity, an interrupting event
  subprocess its scope, a non-interrupting one fires again on a later change);
  the step then runs on, and settles again, until nothing more fires.

Variable changes are the variables the step was given (completing a task, a
message, a worker's result: each is set, so a change even to the same value, as
in Camunda) and what the step itself changed, found by comparing the variables
(instance, scope and token-local) with those it started from, by name:
``create`` (new name), ``update`` (other value), ``delete`` (gone). ``camunda:variableName`` limits the
re-evaluation to changes of that variable, ``camunda:variableEvents`` to those
kinds of change. As Camunda's ``tryEvaluate``, a condition reading a variable
that does not exist is false, not an error; any other failure fails the step.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from bpm.errors import ExpressionError
from bpm.model.spec import Element, EventDefinition, ProcessSpec

KIND = "conditional"
#: where a step's evaluation state lives on the run (see :func:`begin`)
_SEEN = "conditions_seen"
_EXISTING = "conditions_existing_subs"


class _Run(Protocol):
    """What the hooks use of the engine's step (``bpm.engine.engine._Run``)."""

    spec: ProcessSpec
    state: dict[str, Any]
    tokens: dict[str, dict[str, Any]]
    scopes: dict[str, dict[str, Any]]
    subs: dict[str, dict[str, Any]]
    result: Any

    def visible_vars(self, token_id: str | None) -> dict[str, Any]: ...

    def fire(self, sub_id: str) -> None: ...


#: id(spec) -> (the spec, whether it has conditional events); specs are immutable and few
_HAS_CONDITIONS: dict[int, tuple[ProcessSpec, bool]] = {}


def has_conditions(spec: ProcessSpec) -> bool:
    """Whether any event of the spec is conditional (else the hooks have nothing to do)."""
    known = _HAS_CONDITIONS.get(id(spec))
    if known is not None and known[0] is spec:
        return known[1]
    found = any(_definition(element) is not None for element in spec.elements.values())
    if len(_HAS_CONDITIONS) > 4096:
        _HAS_CONDITIONS.clear()
    _HAS_CONDITIONS[id(spec)] = (spec, found)
    return found


def _definition(element: Element) -> EventDefinition | None:
    event = getattr(element, "event", None)
    return event if isinstance(event, EventDefinition) and event.kind == KIND else None


def begin(run: _Run, before: Mapping[str, Any] | None, given: Mapping[str, Any] | None = None) -> None:
    """Remember what a step starts from: ``before`` is the state given to the engine (None: a new
    instance), ``given`` the variables the step sets (each is a change, even to the same value)."""
    if not has_conditions(run.spec):
        setattr(run, _SEEN, None)
        return
    subs = (before or {}).get("subs") or {}
    setattr(run, _EXISTING, frozenset(subs))
    if before is None:
        setattr(run, _SEEN, ({}, frozenset(), {}))
        return
    known = frozenset(sub_id for sub_id, sub in subs.items() if sub.get("kind") == KIND)
    old = before.get("vars") or {}
    set_now = {name: {"update" if name in old else "create"} for name in (given or {})}
    setattr(run, _SEEN, (_containers(before), known, set_now))


def _containers(state: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """Every variables map of a state, by where it lives (not copied: the caller's state is never changed)."""
    found: dict[str, Mapping[str, Any]] = {"": state.get("vars") or {}}
    for scope_id, scope in (state.get("scopes") or {}).items():
        if scope.get("vars"):
            found[f"s:{scope_id}"] = scope["vars"]
    for token_id, token in (state.get("tokens") or {}).items():
        if token.get("vars"):
            found[f"t:{token_id}"] = token["vars"]
    return found


def _changes(before: Mapping[str, Mapping[str, Any]], after: Mapping[str, Mapping[str, Any]]) -> dict[str, set[str]]:
    """Variable name -> kinds of change (``create``, ``update``, ``delete``) between two snapshots."""
    changes: dict[str, set[str]] = {}
    for where in before.keys() | after.keys():
        old, new = before.get(where, {}), after.get(where, {})
        if old is new:
            continue
        for name in old.keys() | new.keys():
            if name not in old:
                changes.setdefault(name, set()).add("create")
            elif name not in new:
                changes.setdefault(name, set()).add("delete")
            elif old[name] != new[name]:
                changes.setdefault(name, set()).add("update")
    return changes


def _matches(definition: EventDefinition, changes: Mapping[str, set[str]]) -> bool:
    """Whether ``changes`` re-evaluate a waiting condition (its variableName/variableEvents filters)."""
    if definition.variable_name is not None:
        kinds = changes.get(definition.variable_name, set())
    else:
        kinds = set().union(*changes.values()) if changes else set()
    if not kinds:
        return False
    return not definition.variable_events or bool(kinds & set(definition.variable_events))


def holds(definition: EventDefinition, variables: Mapping[str, Any], element: Element) -> bool:
    """The condition's value; a variable that does not exist makes it false (Camunda's ``tryEvaluate``)."""
    condition = definition.condition
    if condition is None:
        return False
    try:
        return bool(condition.evaluate_condition(variables))  # type: ignore[attr-defined]
    except ExpressionError as exc:
        if exc.message.startswith("unknown variable") or " unknown variable " in f" {exc.message} ":
            return False
        raise ExpressionError(f"condition of '{element.label}' ({element.id}): {exc.message}") from None


def passes_on_arrival(run: _Run, token_id: str, element: Element) -> bool:
    """An intermediate conditional catch event whose condition already holds is passed at once."""
    definition = _definition(element)
    return definition is not None and holds(definition, run.visible_vars(token_id), element)


def _scope_vars(run: _Run, scope_id: str) -> dict[str, Any]:
    """The variables a scope sees (an event subprocess start waits on its scope, not on a token)."""
    layers: list[Mapping[str, Any]] = []
    current: str | None = scope_id
    while current is not None:
        scope = run.scopes.get(current, {})
        if scope.get("vars"):
            layers.append(scope["vars"])
        current = scope.get("parent")
    merged = dict(run.state["vars"])
    for layer in reversed(layers):
        merged.update(layer)
    return merged


def settle(run: _Run) -> bool:
    """Fire the conditional subscriptions that hold now (see the module); True when any fired."""
    seen = getattr(run, _SEEN, None)
    if seen is None:
        return False
    before, known, set_now = seen
    now = _containers(run.state)
    changes = _changes(before, now)
    for name, kinds in set_now.items():
        changes.setdefault(name, set()).update(kinds)
    fired = False
    for sub_id in _waiting(run.subs):
        sub = run.subs.get(sub_id)
        if sub is None:
            continue  # dropped by an interrupting event that fired before it
        element = run.spec.element(sub["el"])
        definition = _definition(element)
        if definition is None:
            continue
        if sub_id in known and not _matches(definition, changes):
            continue
        token_id = sub.get("token")
        if token_id is not None and token_id not in run.tokens:
            continue
        variables = run.visible_vars(token_id) if token_id is not None else _scope_vars(run, sub["scope"])
        if holds(definition, variables, element):
            run.fire(sub_id)
            fired = True
    if fired:
        _tidy(run.result, getattr(run, _EXISTING))
    # from here on, a change is one made after this evaluation
    snapshot = copy.deepcopy(now) if fired else now
    setattr(run, _SEEN, (snapshot, frozenset(_waiting(run.subs)), {}))
    return fired


def _waiting(subs: Mapping[str, Mapping[str, Any]]) -> Iterable[str]:
    """The conditional subscriptions, oldest first (ids are ``e<seq>``)."""
    ids = [sub_id for sub_id, sub in subs.items() if sub.get("kind") == KIND]
    return sorted(ids, key=lambda sub_id: (len(sub_id), sub_id))


def _tidy(result: Any, existing: frozenset[str]) -> None:
    """A condition that holds when its scope opens interrupts in the step that made the work: drop the
    tasks, external tasks, children and subscriptions this step both made and cancelled (the backend
    never sees them)."""
    gone = set(result.cancelled) & {t.id for t in result.created}
    result.created = [t for t in result.created if t.id not in gone]
    result.cancelled = [t for t in result.cancelled if t not in gone]
    gone = set(result.externals_cancelled) & {e.id for e in result.externals}
    result.externals = [e for e in result.externals if e.id not in gone]
    result.externals_cancelled = [e for e in result.externals_cancelled if e not in gone]
    gone = set(result.calls_cancelled) & {c.child_id for c in result.calls}
    result.calls = [c for c in result.calls if c.child_id not in gone]
    result.calls_cancelled = [c for c in result.calls_cancelled if c not in gone]
    alive = result.state.get("subs") or {}
    result.subscribed = [s for s in result.subscribed if s.id in alive]
    result.unsubscribed = [s for s in result.unsubscribed if s.id in existing]
