"""Engine tests driven by .bpmn files: each element, state save-and-reload, errors."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from bpm.errors import ExpressionError, NoMatchingFlow, Unprocessable
from tests.engine_driver import NOW, Driver, load_spec

SHARED = Path(__file__).resolve().parents[2] / "shared" / "bpmn"


def drive(name: str, **kwargs: object) -> Driver:
    return Driver(load_spec(f"engine/{name}")).start(**kwargs)  # type: ignore[arg-type]


def test_pass_through_elements_reach_the_user_task_then_end() -> None:
    d = drive("passthrough.bpmn")
    assert d.waiting() == ["review"]
    assert d.task("review").name == "Review"
    d.reload().complete("review")
    assert d.ended and d.waiting() == []


@pytest.mark.parametrize(
    ("amount", "expected"),
    [(5000, "big"), (500, "medium"), (50, "small"), (1000, "medium"), (100, "small")],
)
def test_exclusive_gateway_takes_first_true_condition_else_default(amount: int, expected: str) -> None:
    assert drive("exclusive.bpmn", variables={"amount": amount}).waiting() == [expected]


def test_exclusive_gateway_missing_variable_is_an_expression_error() -> None:
    with pytest.raises(ExpressionError, match="amount"):
        drive("exclusive.bpmn", variables={})


def test_exclusive_gateway_with_no_match_and_no_default_fails_and_changes_nothing() -> None:
    d = drive("exclusive_no_default.bpmn")
    before = copy.deepcopy(d.state)
    with pytest.raises(NoMatchingFlow, match="gw"):
        d.complete("enter", {"decision": "maybe"})
    assert d.state == before and d.waiting() == ["enter"]


@pytest.mark.parametrize(("decision", "expected"), [("yes", "yes"), ("no", "no")])
def test_feel_and_python_conditions(decision: str, expected: str) -> None:
    d = drive("exclusive_no_default.bpmn").complete("enter", {"decision": decision})
    assert d.waiting() == [expected]


def test_expression_error_on_complete_leaves_state_untouched() -> None:
    d = drive("exclusive_no_default.bpmn")
    before = copy.deepcopy(d.state)
    with pytest.raises(ExpressionError):
        d.complete("enter", {})
    assert d.state == before


def test_parallel_fork_and_join_fire_once_after_every_branch() -> None:
    d = drive("parallel.bpmn")
    assert d.waiting() == ["a", "b"]
    d.complete("b").reload()
    assert d.waiting() == ["a"]
    d.complete("a")
    assert d.waiting() == ["after"]
    d.complete("after")
    assert d.ended


def test_parallel_join_state_survives_reload_between_branches() -> None:
    d = drive("parallel.bpmn").reload()
    d.complete("a").reload()
    d.complete("b").reload()
    assert d.waiting() == ["after"]


def test_embedded_subprocess_runs_its_scope_then_continues() -> None:
    d = drive("subprocess.bpmn")
    assert d.waiting() == ["inner1", "inner2"]
    d.complete("inner1").reload()
    assert d.waiting() == ["inner2"]
    d.complete("inner2")
    assert d.waiting() == ["after"]
    assert len(d.state["scopes"]) == 1
    d.complete("after")
    assert d.ended


def test_terminate_end_event_cancels_every_open_task_including_subprocess() -> None:
    d = drive("terminate.bpmn")
    assert d.waiting() == ["fast", "slow", "subTask"]
    d.complete("fast")
    assert d.ended and d.waiting() == []
    assert len(d.cancelled) == 2
    assert d.state["tokens"] == {}


def test_terminate_inside_subprocess_ends_only_that_subprocess() -> None:
    d = drive("terminate_in_sub.bpmn")
    assert d.waiting() == ["keep", "stop"]
    d.complete("stop")
    assert d.waiting() == ["after"] and not d.ended
    assert len(d.cancelled) == 1
    d.complete("after")
    assert d.ended


def test_assignment_extensions_and_standard_resource_assignment() -> None:
    d = drive(
        "assignment.bpmn",
        variables={"RoomObject": {"owner": "piggy"}, "team": "ops", "prio": 70},
        initiator="alice",
    )
    camunda = d.task("camundaTask")
    assert camunda.assignee == "alice"
    assert camunda.candidate_users == ("kermit", "piggy")
    assert camunda.candidate_groups == ("management", "ops")
    assert camunda.candidate_roles == ("approver",)
    assert camunda.priority == 70
    assert camunda.due_date == 1893553445000
    assert camunda.description.startswith("Do it for")
    flowable = d.task("flowableTask")
    assert flowable.candidate_groups == ("sales",)
    assert flowable.due_date == NOW + 3_600_000
    activiti = d.task("activitiTask")
    assert activiti.assignee == "fozzie" and activiti.priority == 99
    standard = d.task("standardTask")
    assert standard.candidate_users == ("gonzo",) and standard.candidate_groups == ("muppets",)
    assert d.state["vars"]["initiator"] == "alice"


def test_assignment_expression_with_missing_variable_is_an_expression_error() -> None:
    with pytest.raises(ExpressionError, match="RoomObject"):
        drive("assignment.bpmn", variables={"team": "ops", "prio": 1}, initiator="alice")


def test_endless_loop_without_wait_state_is_stopped() -> None:
    with pytest.raises(Unprocessable) as info:
        drive("loop.bpmn")
    assert info.value.code == "ENDLESS_LOOP"


def test_engine_never_mutates_the_state_it_is_given() -> None:
    d = drive("parallel.bpmn")
    frozen = copy.deepcopy(d.state)
    task = d.task("a")
    d.engine.complete_task(d.spec, d.state, task.id, {"x": 1})
    assert d.state == frozen


def test_cancel_ends_instance_and_cancels_tasks() -> None:
    d = drive("parallel.bpmn")
    result = d.engine.cancel(d.state)
    assert result.ended and sorted(result.cancelled) == sorted(d.tasks)


def test_camunda_unstructured_concurrency_two_forks() -> None:
    path = SHARED / "camunda-bpm-platform" / "ParallelGatewayTest.testUnstructuredConcurrencyTwoForks.bpmn20.xml"
    if not path.exists():
        pytest.skip("shared BPMN corpus not present")
    spec = load_spec(path)
    d = Driver(spec).start()
    assert d.ended  # manual tasks only: every join fires and the instance completes


@pytest.mark.parametrize(
    ("file", "vars_", "expected"),
    [
        ("ExclusiveGatewayTest.testDivergingExclusiveGateway.bpmn20.xml", {"input": 1}, "theTask1"),
        ("ExclusiveGatewayTest.testDivergingExclusiveGateway.bpmn20.xml", {"input": 2}, "theTask2"),
    ],
)
def test_camunda_exclusive_gateway_models(file: str, vars_: dict[str, int], expected: str) -> None:
    path = SHARED / "camunda-bpm-platform" / file
    if not path.exists():
        pytest.skip("shared BPMN corpus not present")
    assert Driver(load_spec(path)).start(vars_).waiting() == [expected]
