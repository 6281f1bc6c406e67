"""Beans: named Python objects a deployer registers, whose public methods expressions may call.

Camunda and Flowable models call Spring beans: ``${approvalService.findApprover(x)}``
or ``#{mailer.recipients(order)}``. No Java runs here, but a deployer may supply
the same names in Python:

- a module named by ``BPM_BEANS`` (``BPM_BEANS=mypkg.beans``; several separated by
  commas) with a ``BEANS`` dict (name -> object) and/or a ``register(registry)``
  function calling ``registry.add(name, obj)``;
- installed packages' entry points in the group ``bpm.beans`` (the entry point's
  name is the bean's name, its value the object).

A bean's *public* methods (callable attributes whose name does not start with
``_``) may be called from expressions; nothing else of the object is reachable.
Arguments are the expression's JSON-like values (copied); a result must be JSON-like
(``dict`` with string keys, ``list``/``tuple``, ``str``, ``int``, ``float``, ``bool``,
``None``), else the evaluation fails. Each call is charged :data:`BEAN_CALL_WORK`
work units plus the size of its arguments and result (the bean's own CPU time is
not metered: beans are the deployer's trusted code). A bean that raises fails the
evaluation with :class:`~bpm.errors.ExpressionError` (so the step is refused with
422 ``EXPRESSION_ERROR`` and nothing changes). A variable of the same name hides
a bean, as in Camunda. Calling a bean or method that is not registered is found at
deployment (:meth:`Expression.unknown_calls`).

The registry in effect is the one :func:`use_beans` sets (the engine sets its own
for each step); outside it, :data:`EMPTY`.
"""

from __future__ import annotations

import copy
import importlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from importlib.metadata import entry_points
from typing import Any, Final

ENTRY_POINT_GROUP: Final = "bpm.beans"
BEAN_CALL_WORK: Final = 1000
"""Work units charged for each bean call, before its arguments and result are measured."""
_NAME_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


class BeanRegistry:
    """Named objects whose public methods expressions may call. Built at startup, then read-only."""

    def __init__(self, beans: Mapping[str, Any] | None = None) -> None:
        self._beans: dict[str, Any] = {}
        for name, obj in (beans or {}).items():
            self.add(name, obj)

    def add(self, name: str, obj: Any) -> None:
        """Register ``obj`` as ``name``; raises ValueError on a bad or duplicate name."""
        if not isinstance(name, str) or not name or name[0].isdigit() or name.startswith("_"):
            raise ValueError(f"bean name {name!r} must be an identifier not starting with '_'")
        if not set(name) <= _NAME_CHARS:
            raise ValueError(f"bean name {name!r} must be an identifier not starting with '_'")
        if name in self._beans:
            raise ValueError(f"bean '{name}' is registered twice")
        self._beans[name] = obj

    def __contains__(self, name: object) -> bool:
        return name in self._beans

    def __len__(self) -> int:
        return len(self._beans)

    def names(self) -> list[str]:
        return sorted(self._beans)

    def has_method(self, name: str, method: str) -> bool:
        """Whether ``name`` is a bean with a public method ``method``."""
        if name not in self._beans or not method or method.startswith("_"):
            return False
        return callable(getattr(self._beans[name], method, None))

    def method(self, name: str, method: str) -> Any:
        if not self.has_method(name, method):
            raise LookupError(f"bean '{name}' has no public method '{method}'")
        return getattr(self._beans[name], method)


EMPTY: Final = BeanRegistry()
_ACTIVE: ContextVar[BeanRegistry] = ContextVar("bpm_expression_beans", default=EMPTY)


@contextmanager
def use_beans(registry: BeanRegistry | None) -> Iterator[None]:
    """Evaluate with ``registry``'s beans (None: none) within the block."""
    token = _ACTIVE.set(registry if registry is not None else EMPTY)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def set_beans(registry: BeanRegistry | None) -> Token[BeanRegistry]:
    """:func:`use_beans` without the block: the token to pass to :func:`reset_beans`."""
    return _ACTIVE.set(registry if registry is not None else EMPTY)


def reset_beans(token: Token[BeanRegistry]) -> None:
    _ACTIVE.reset(token)


def active_beans() -> BeanRegistry:
    return _ACTIVE.get()


def load_beans(modules: str | None = None, *, entry_point_group: str | None = ENTRY_POINT_GROUP) -> BeanRegistry:
    """The registry of ``BPM_BEANS`` modules (comma-separated) and the ``bpm.beans`` entry points.

    Raises ValueError naming a module that cannot be imported or registers nothing usable.
    """
    registry = BeanRegistry()
    for module_name in [part.strip() for part in (modules or "").split(",") if part.strip()]:
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ValueError(f"BPM_BEANS: module '{module_name}' cannot be imported: {exc}") from exc
        beans = getattr(module, "BEANS", None)
        register = getattr(module, "register", None)
        if beans is None and not callable(register):
            raise ValueError(f"BPM_BEANS: module '{module_name}' has neither a BEANS dict nor a register function")
        if beans is not None:
            if not isinstance(beans, Mapping):
                raise ValueError(f"BPM_BEANS: {module_name}.BEANS must be a dict of name -> object")
            for name, obj in beans.items():
                registry.add(name, obj)
        if callable(register):
            register(registry)
    if entry_point_group:
        for entry in entry_points(group=entry_point_group):
            registry.add(entry.name, entry.load())
    return registry


def _json_like(value: Any, depth: int = 0) -> Any:
    """A plain copy of a bean's result; raises TypeError for anything not JSON-like."""
    if depth > 256:
        raise TypeError("a value nested deeper than 256 levels")
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_json_like(item, depth + 1) for item in value]
    if isinstance(value, Mapping):
        result = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"a map key of type {type(key).__name__}")
            result[key] = _json_like(item, depth + 1)
        return result
    raise TypeError(f"a {type(value).__name__}")


def call_bean(registry: BeanRegistry, name: str, method: str, args: list[Any]) -> Any:
    """Call ``name.method(*args)`` with copied arguments; the plain result. Raises ValueError/TypeError
    with a message for the evaluator (a failing bean, a result that is not JSON-like)."""
    target = registry.method(name, method)
    try:
        value = target(*copy.deepcopy(args))
    except Exception as exc:  # the bean's own failure: the step is refused
        detail = str(exc) or type(exc).__name__
        raise ValueError(f"bean call '{name}.{method}' failed: {detail}") from exc
    try:
        return _json_like(value)
    except TypeError as exc:
        raise TypeError(f"bean call '{name}.{method}' returned {exc}, not a JSON-like value") from None
