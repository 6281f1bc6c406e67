"""The engine's lean paths give what the general ones give: a step's fresh result, and the
clock and beans each engine method evaluates with (set only where not in effect already)."""

from __future__ import annotations

from typing import Any

from bpm.engine.evaluation import evaluating
from bpm.engine.results import StepResult, new_result
from bpm.expressions.beans import EMPTY, BeanRegistry, active_beans, use_beans
from bpm.expressions.temporal import fixed_now_ms


def test_new_result_is_a_fresh_step_result() -> None:
    state: dict[str, Any] = {"ended": False}
    first, second = new_result(state), new_result(state)
    assert first == StepResult(state) and first.now is None and first.state is state
    first.created.append("x")  # type: ignore[arg-type]
    assert second.created == [] and StepResult(state).created == []


class _Engine:
    def __init__(self, beans: BeanRegistry | None) -> None:
        self.beans = beans
        self.now_ms = lambda: 1234

    @evaluating
    def seen(self) -> tuple[BeanRegistry, int | None]:
        return active_beans(), fixed_now_ms()


def test_each_engine_method_sees_its_engines_beans_and_clock_and_leaves_them_as_they_were() -> None:
    mine, other = BeanRegistry({"a": object()}), BeanRegistry({"b": object()})
    assert _Engine(None).seen() == (EMPTY, 1234)  # in effect already: not set again
    assert _Engine(mine).seen() == (mine, 1234)
    assert active_beans() is EMPTY and fixed_now_ms() is None
    with use_beans(other):
        assert _Engine(None).seen() == (EMPTY, 1234)
        assert _Engine(other).seen() == (other, 1234)
        assert active_beans() is other and fixed_now_ms() is None
    assert active_beans() is EMPTY
