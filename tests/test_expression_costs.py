"""The evaluator charges every operation for its real work before doing it.

Regression tests for the bypasses of issue 9 (a repeated list whose shared
references blow up when converted or compared, deep ``==`` between big nested
values, loops that allocate), asserted by the work units the evaluation
counted - never by seconds - and property tests that generate nested values and
operators and check that the count stays within the budget and that the memory
allocated stays proportional to it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bpm.engine.scripts import run_script
from bpm.expressions import (
    CHARS_PER_UNIT,
    MAX_WORK,
    NODE_WORK,
    ExpressionError,
    WorkMeter,
    compile_expression,
    compile_template,
    record_work,
)

ROOT = Path(__file__).resolve().parents[1]
#: Bytes an evaluation may allocate per work unit it was charged (a list slot is 8 bytes
#: for 1 unit, 8 characters are 8-32 bytes for 1 unit; JSON encoding buffers add some).
BYTES_PER_UNIT = 64
#: Allocations independent of the work: the meter, the evaluator, small results.
BASE_BYTES = 64 * 1024
#: A property-test budget small enough to be quick, large enough for real blow-ups.
PROPERTY_BUDGET = 200_000
#: The largest work any generated expression reached (printed at the end of the module).
LARGEST: dict[str, Any] = {"work": 0, "text": ""}


def refused(text: str, variables: dict[str, Any] | None = None, budget: int | None = None) -> int:
    """Evaluate ``text`` as a condition; it must fail on the work budget. Return the work counted."""
    meter = WorkMeter(budget)
    with pytest.raises(ExpressionError, match="budget of"):
        compile_expression(text).evaluate_condition(variables or {}, meter=meter)
    assert meter.used <= meter.budget
    return meter.used


def work_of(text: str, variables: dict[str, Any] | None = None) -> tuple[Any, int]:
    meter = WorkMeter()
    result = compile_expression(text).evaluate(variables or {}, meter=meter)
    return result, meter.used


# --------------------------------------------------------------------------- the cases


def test_converting_a_repeated_list_to_text_is_charged_for_every_shared_item() -> None:
    # 1000 references to one list of 100 000 zeros: 10**8 items once written out
    used = refused("str([[0]*100000]*1000) != ''")
    assert used < MAX_WORK // 2  # refused before the conversion, not when the budget ran out
    assert refused("${str([[0]*100000]*1000) != ''}") < MAX_WORK // 2
    template = compile_template("a ${[[0]*100000]*1000} b")
    meter = WorkMeter()
    with pytest.raises(ExpressionError, match="budget of"):
        template.evaluate({}, meter=meter)
    assert meter.used < MAX_WORK // 2


def test_deep_equality_of_big_nested_values_is_charged_by_their_size() -> None:
    assert refused("[[0]*100000]*1000 == [[0]*100000]*1000") < MAX_WORK // 2
    distinct = {"a": [[0] * 1000 for _ in range(1000)], "b": [[0] * 1000 for _ in range(1000)]}
    refused("a == b", distinct)
    refused("a != b", distinct)
    refused("a.equals(b)", distinct)
    refused("[a] == [b]", distinct)
    refused("a is b", distinct)


def test_equality_costs_no_more_than_its_smaller_side() -> None:
    variables = {"big": [[0] * 1000 for _ in range(900)], "small": [1, 2]}
    result, used = work_of("big == small", variables)
    assert result is False
    # the small side, big's first level and the first list in it: then the walk stops
    assert used < 4 * NODE_WORK + 4 * 900 + 1000 + 10


def test_loops_that_allocate_run_out_of_budget() -> None:
    refused("len(for x in [0]*100000 return [0]*100000) > 0")
    refused("len(for x in [0]*1000 return [0]*1000) > 0")
    refused("some x in [0]*5000 satisfies x == 1")
    refused("len(for x in [0]*2000 return str([x]*1000)) > 0")


def test_membership_and_scans_of_big_values_are_charged_per_item() -> None:
    big = {"xs": list(range(300_000)), "nested": [[i] for i in range(100_000)]}
    refused("-1 in xs", big)
    refused("xs.contains(-1)", big)
    refused("contains(xs, -1)", big)
    refused("max(xs) > 0", big)
    refused("[-1] in nested", big)
    assert compile_expression("-1 in [1, 2]").evaluate({}) is False


def test_repetition_and_concatenation_are_charged_for_what_they_build() -> None:
    _, used = work_of("len('ab' * 40000)")
    assert used >= 80_000 // CHARS_PER_UNIT
    _, used = work_of("len([0, 1] * 40000)")
    assert used >= 80_000
    _, used = work_of("len([0] * 40000 + [1] * 40000)")
    assert used >= 160_000
    refused("len(for x in [0]*100 return [0]*90000) > 0")


def test_shared_references_returned_as_a_value_are_charged_when_stored() -> None:
    # nothing here walks the value, but the engine will serialise it: the result is charged
    meter = WorkMeter()
    with pytest.raises(ExpressionError, match="budget of"):
        compile_expression("[[0]*100000]*1000").evaluate({}, meter=meter)
    assert meter.used < MAX_WORK // 2
    value = compile_expression("[[0]*100]*100").evaluate({})
    assert len(value) == 100 and value[0] == [0] * 100


def test_a_script_shares_one_budget_across_its_statements() -> None:
    # each statement alone is cheap; together the values they build are not
    script = "a = [0] * 1000\nb = [a] * 1000\nc = [b] * 1000\nd = 1"
    with pytest.raises(ExpressionError, match="budget of"):
        run_script(script, None, {})
    small = "a = [0] * 10\nb = [a] * 10\nc = len(b)"
    assigned, result = run_script(small, None, {})
    assert result == 10 and len(assigned["b"]) == 10
    statements = "\n".join(["x = [0] * 90000"] * 20)  # 20 statements of 90 000 items each
    with pytest.raises(ExpressionError, match="budget of"):
        run_script(statements, None, {})


def test_values_nested_too_deep_are_refused_not_overflowing() -> None:
    deep: list[Any] = []
    node = deep
    for _ in range(5000):
        node.append([])
        node = node[0]
    for text in ("str(deep)", "deep == deep", "[1] in [deep]", "deep"):
        with pytest.raises(ExpressionError, match="nested deeper than"):
            compile_expression(text).evaluate({"deep": deep})


def test_budget_can_be_given_per_meter_and_the_work_is_readable() -> None:
    meter = WorkMeter(budget=5 * NODE_WORK)
    assert compile_expression("1 + 2").evaluate({}, meter=meter) == 3
    assert meter.used == 3 * NODE_WORK + 1
    with pytest.raises(ExpressionError, match="budget of 500 work units"):
        compile_expression("1 + 2 + 3").evaluate({}, meter=meter)
    assert meter.used <= 500
    assert WorkMeter().budget == MAX_WORK


def test_record_work_sees_every_evaluation_of_its_context() -> None:
    with record_work() as log:
        compile_expression("1 + 1").evaluate({})
        with pytest.raises(ExpressionError):
            compile_expression("str([[0]*100000]*1000)").evaluate({})
    assert log.evaluations == 2
    assert 0 < log.largest <= MAX_WORK and log.total <= 2 * MAX_WORK
    compile_expression("1").evaluate({})
    assert log.evaluations == 2  # outside the context: not recorded


def _budget_in_subprocess(value: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BPM_EXPRESSION_WORK_BUDGET": value, "PYTHONPATH": str(ROOT)}
    code = "import bpm.expressions as e; print(e.MAX_WORK, e.WorkMeter().budget)"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT, check=False)


def test_the_budget_is_configured_by_environment() -> None:
    done = _budget_in_subprocess("250000")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["250000", "250000"]
    for bad in ("lots", "0", "-5"):
        failed = _budget_in_subprocess(bad)
        assert failed.returncode != 0
        assert "BPM_EXPRESSION_WORK_BUDGET" in failed.stderr


# --------------------------------------------------------------------------- property tests

_SIZES = st.sampled_from([0, 1, 3, 10, 100, 1000, 10_000, 100_000, 10**6])
_LIST_ATOMS = st.sampled_from(["xs", "[1, 'a']", "[]", "[0] * 1000", "[s]", "[m, m]"])
_TEXT_ATOMS = st.sampled_from(["s", "'ab'", "''"])
_SCALARS = st.sampled_from(["0", "1", "-2", "2.5", "true", "null", "'x'", "now()", "duration('P1D')"])


def _leaf(draw: st.DrawFn, depth: int) -> bool:
    return depth > 4 or draw(st.integers(0, 5)) == 0


@st.composite
def _lists(draw: st.DrawFn, depth: int = 0) -> str:
    """List-valued expressions: repetition (sharing references), concatenation, displays, loops."""
    if _leaf(draw, depth):
        return draw(_LIST_ATOMS)
    item = draw(_values(depth + 1))
    form = draw(st.integers(0, 5))
    if form == 0:
        return f"([{item}] * {draw(_SIZES)})"
    if form == 1:
        return f"({draw(_lists(depth + 1))} * {draw(_SIZES)})"
    if form == 2:
        return f"({draw(_lists(depth + 1))} + {draw(_lists(depth + 1))})"
    if form == 3:
        return f"[{item}, {draw(_values(depth + 1))}, {item}]"
    if form == 4:
        return f"(for v in {draw(_lists(depth + 1))} return {item})"
    return f"(for v in {draw(_lists(depth + 1))} return [v, {item}])"


@st.composite
def _texts(draw: st.DrawFn, depth: int = 0) -> str:
    if _leaf(draw, depth):
        return draw(_TEXT_ATOMS)
    form = draw(st.integers(0, 2))
    if form == 0:
        return f"str({draw(_values(depth + 1))})"
    if form == 1:
        return f"({draw(_texts(depth + 1))} * {draw(_SIZES)})"
    return f"({draw(_texts(depth + 1))} + {draw(_texts(depth + 1))})"


@st.composite
def _booleans(draw: st.DrawFn, depth: int = 0) -> str:
    left, right = draw(_values(depth + 1)), draw(_values(depth + 1))
    form = draw(st.integers(0, 4))
    if form == 0:
        return f"({left} {draw(st.sampled_from(['==', '!=', 'is', 'is not']))} {right})"
    if form == 1:
        return f"({left} {draw(st.sampled_from(['in', 'not in']))} {draw(_lists(depth + 1))})"
    if form == 2:
        return f"({draw(_texts(depth + 1))} {draw(st.sampled_from(['<', '>=', 'in']))} {draw(_texts(depth + 1))})"
    if form == 3:
        kind = draw(st.sampled_from(["some", "every"]))
        return f"({kind} v in {draw(_lists(depth + 1))} satisfies v == {right})"
    method = draw(st.sampled_from(["equals", "contains"]))
    return f"({draw(_lists(depth + 1))}).{method}({left})"


@st.composite
def _values(draw: st.DrawFn, depth: int = 0) -> str:
    if _leaf(draw, depth):
        return draw(_SCALARS | _LIST_ATOMS | _TEXT_ATOMS)
    form = draw(st.integers(0, 5))
    if form == 0:
        return draw(_lists(depth))
    if form == 1:
        return draw(_texts(depth))
    if form == 2:
        return draw(_booleans(depth))
    if form == 3:
        return f"{draw(st.sampled_from(['len', 'max', 'min']))}({draw(_lists(depth + 1))})"
    if form == 4:
        return f"{draw(_lists(depth + 1))}[{draw(st.sampled_from(['0', '-1', '2']))}]"
    return f"({draw(_booleans(depth + 1))} ? {draw(_values(depth + 1))} : {draw(_values(depth + 1))})"


_VARIABLES = {"xs": [[0] * 100] * 100, "s": "abc" * 1000, "m": {"a": [1, 2], "b": "x"}}
_PROPERTIES = settings(max_examples=250, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


def _evaluate_measured(text: str, run: str) -> tuple[int, int]:
    """Evaluate once under tracemalloc; return (work counted, peak bytes allocated)."""
    meter = WorkMeter(PROPERTY_BUDGET)
    expression = compile_expression(text)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        try:
            getattr(expression, run)(_VARIABLES, meter=meter)
        except ExpressionError as error:
            assert "evaluation failed" not in str(error), str(error)
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    return meter.used, peak


@pytest.fixture(scope="module", autouse=True)
def _report_largest() -> Iterator[None]:
    yield
    print(f"\nlargest work of a generated expression: {LARGEST['work']} units ({LARGEST['text'][:120]})")


@pytest.mark.slow
@_PROPERTIES
@given(_values(), st.sampled_from(["evaluate", "evaluate_condition"]))
def test_generated_expressions_stay_within_the_budget_in_work_and_memory(text: str, run: str) -> None:
    used, peak = _evaluate_measured(text, run)
    assert used <= PROPERTY_BUDGET, text
    assert peak <= BASE_BYTES + BYTES_PER_UNIT * used, (text, used, peak)
    if used > LARGEST["work"]:
        LARGEST.update(work=used, text=text)


@pytest.mark.slow
@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(_values())
def test_generated_expressions_stay_within_the_default_budget(text: str) -> None:
    meter = WorkMeter()
    try:
        compile_expression(text).evaluate(_VARIABLES, meter=meter)
    except ExpressionError as error:
        assert "evaluation failed" not in str(error), str(error)
    assert meter.used <= MAX_WORK, text
    if meter.used > LARGEST["work"]:
        LARGEST.update(work=meter.used, text=text)
