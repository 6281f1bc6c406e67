"""What every engine step evaluates against: the runtime's clock and the deployer's beans.

Expressions read ``now()``, ``today()`` and ``dateTime()`` from the clock that
:func:`bpm.expressions.use_clock` sets and call the beans :func:`use_beans` sets;
:func:`evaluating` wraps an :class:`~bpm.engine.Engine` method so that a step sees
the engine's ``now_ms`` (a controllable clock in tests and ``bpm test`` scenarios)
and its :class:`~bpm.expressions.beans.BeanRegistry`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Concatenate, ParamSpec, Protocol, TypeVar

from bpm.expressions import use_clock
from bpm.expressions.beans import EMPTY, BeanRegistry, active_beans, reset_beans, set_beans, use_beans
from bpm.expressions.temporal import reset_clock, set_clock

P = ParamSpec("P")
R = TypeVar("R")


class _Evaluating(Protocol):
    now_ms: Callable[[], int]
    beans: BeanRegistry | None


@contextmanager
def evaluation_context(now_ms: Callable[[], int], beans: BeanRegistry | None) -> Iterator[None]:
    """Within the block, expressions see ``now_ms()`` (read once, at entry) and ``beans``."""
    with use_clock(now_ms()), use_beans(beans):
        yield


S = TypeVar("S", bound=_Evaluating)


def evaluating(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
    """Run an engine method within :func:`evaluation_context` of its engine."""

    @functools.wraps(method)
    def wrapped(self: S, *args: P.args, **kwargs: P.kwargs) -> R:
        # evaluation_context, without the generator-based context managers (once per step)
        clock = set_clock(self.now_ms())
        if active_beans() is (self.beans if self.beans is not None else EMPTY):
            try:  # the beans in effect already (the usual case): a context variable less to set
                return method(self, *args, **kwargs)
            finally:
                reset_clock(clock)
        beans = set_beans(self.beans)
        try:
            return method(self, *args, **kwargs)
        finally:
            reset_beans(beans)
            reset_clock(clock)

    return wrapped
