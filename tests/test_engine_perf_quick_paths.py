"""The shortcuts of the in-process lifecycle give what the general code gives.

- a condition comparing one variable with a literal (``approved == true``) is answered without
  the tree walk: same value, same work reported, and the same error (by the evaluator) where
  the shortcut does not apply;
- the plain exits of a spec (one unconditional flow, no listeners) are those the general flow
  selection takes.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from bpm.engine.layout import layout
from bpm.expressions import ExpressionError, compile_expression
from bpm.expressions.compiled import _truthy_value
from bpm.expressions.costs import record_work
from bpm.model.parser import parse_bpmn

VALUES: list[Any] = [True, False, None, 0, 1, -7, 2**70, 1.5, 0.0, "", "true", "false", "x", "a" * 300, [1], {"a": 1}]
LITERALS = ["true", "false", "null", "0", "1", "1.5", "'true'", "'x'", "''"]
OPS = ["==", "!=", "<", "<=", ">", ">="]


def _general(expression: Any, variables: dict[str, Any]) -> tuple[Any, int]:
    """The evaluator's answer (or error message) and the work it reported, without the shortcut."""
    with record_work() as log:
        try:
            answer: Any = expression._guard(variables, None, _truthy_value)
        except ExpressionError as exc:
            answer = ("error", exc.message)
    return answer, log.total


def _quick(expression: Any, variables: dict[str, Any]) -> tuple[Any, int]:
    with record_work() as log:
        try:
            answer: Any = expression.evaluate_condition(variables)
        except ExpressionError as exc:
            answer = ("error", exc.message)
    return answer, log.total


@pytest.mark.parametrize("template", ["${{v {op} {lit}}}", "={lit} {op} v", "v {op} {lit}"])
def test_quick_comparisons_answer_and_charge_as_the_evaluator(template: str) -> None:
    checked = 0
    for op, literal in itertools.product(OPS, LITERALS):
        feel = template.startswith("=")
        source = template.format(op="=" if feel and op == "==" else op, lit=literal)
        expression = compile_expression(source)
        assert expression.quick is not None, source
        for value in VALUES:
            variables = {"v": value, "other": 1}
            assert _quick(expression, variables) == _general(expression, variables), (source, value)
            checked += 1
        assert _quick(expression, {}) == _general(expression, {})  # a missing variable: the evaluator's error
    assert checked == len(OPS) * len(LITERALS) * len(VALUES)


def test_only_one_variable_against_one_literal_takes_the_shortcut() -> None:
    for source in ["a == b", "a.b == 1", "1 == 1", "a in 'xyz'", "a == 1 == a", "${a + 1 == 2}", "a", "not a"]:
        assert compile_expression(source).quick is None, source
    assert compile_expression("approved == True").quick == ("approved", "==", True, True)
    assert compile_expression("${100 < amount}").quick == ("amount", "<", 100, False)


def test_a_passed_meter_or_a_mapping_takes_the_evaluator() -> None:
    from types import MappingProxyType

    from bpm.expressions.costs import WorkMeter

    expression = compile_expression("n > 3")
    meter = WorkMeter()
    assert expression.evaluate_condition({"n": 5}, meter) is True
    assert meter.used > 0  # charged to the meter given
    assert expression.evaluate_condition(MappingProxyType({"n": 5})) is True


BPMN = b"""<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL"
             xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
             xmlns:camunda="http://camunda.org/schema/1.0/bpmn" targetNamespace="t">
  <process id="p" isExecutable="true">
    <startEvent id="start" />
    <sequenceFlow id="f1" sourceRef="start" targetRef="task" />
    <userTask id="task" />
    <sequenceFlow id="f2" sourceRef="task" targetRef="gw" />
    <exclusiveGateway id="gw" default="f4" />
    <sequenceFlow id="f3" sourceRef="gw" targetRef="check">
      <conditionExpression xsi:type="tFormalExpression">${ok}</conditionExpression>
    </sequenceFlow>
    <sequenceFlow id="f4" sourceRef="gw" targetRef="end" />
    <scriptTask id="check" scriptFormat="python"><script>x = 1</script></scriptTask>
    <sequenceFlow id="f5" sourceRef="check" targetRef="end">
      <extensionElements>
        <camunda:executionListener event="take" expression="${1}" />
      </extensionElements>
    </sequenceFlow>
    <endEvent id="end" />
  </process>
</definitions>
"""


def test_plain_exits_are_the_single_unconditional_flows_without_listeners() -> None:
    (spec,) = parse_bpmn(BPMN, file="p.bpmn").processes
    assert layout(spec).exits == {"start": ("f1", "task"), "task": ("f2", "gw")}  # not the gateway, not f5
    assert layout(spec) is layout(spec)  # worked out once per spec
    assert not layout(spec).inclusive_joins
    assert not layout(spec).conditional


def test_the_shortcut_walks_no_tree(monkeypatch: pytest.MonkeyPatch) -> None:
    from bpm.expressions.compiled import Expression

    def walk(*args: Any) -> Any:
        raise AssertionError("the evaluator ran")

    expression = compile_expression("${amount > 100}")
    monkeypatch.setattr(Expression, "_guard", walk)
    assert expression.evaluate_condition({"amount": 150}) is True
    assert compile_expression("approved == True").evaluate_condition({"approved": False}) is False
    with pytest.raises(AssertionError):
        expression.evaluate_condition({"amount": "150"})  # a string against a number: the evaluator's to refuse


def test_the_shortcut_leaves_a_comparison_past_the_budget_to_the_evaluator(monkeypatch: pytest.MonkeyPatch) -> None:
    import bpm.expressions.compiled as compiled

    ran: list[bool] = []
    general = compiled.Expression._guard

    def walk(self: Any, *args: Any) -> Any:
        ran.append(True)
        return general(self, *args)

    monkeypatch.setattr(compiled.Expression, "_guard", walk)
    monkeypatch.setattr(compiled, "MAX_WORK", compiled._QUICK_NODES_WORK)  # three node visits, nothing more
    for source, variables in (("ok == true", {"ok": True}), ("n > 3", {"n": 5}), ("s != 'x'", {"s": "y"})):
        assert compile_expression(source).evaluate_condition(variables) is True
    assert ran == [True, True, True]
