"""Beans (issue 11, part 8), unknown calls refused at deployment (part 2) and the runtime's clock
reaching the evaluator. The beans are a real module, :mod:`tests.approval_beans`."""

from __future__ import annotations

from pathlib import Path

import pytest

from backends.base import Backend
from backends.memory import MemoryBackend
from bpm.errors import ExpressionError, InvalidDefinition
from bpm.expressions import WorkMeter, compile_template
from bpm.expressions.beans import BEAN_CALL_WORK, BeanRegistry, load_beans, use_beans
from bpm.runtime import Runtime
from tests import approval_beans
from tests.api_support import Api, fails, make_app, ok
from tests.conftest import DATA
from tests.test_vendor_checks import line_of, model

BEANS_DIR = DATA / "vendor" / "beans"
BEAN_MODEL = (BEANS_DIR / "bean_call.bpmn").read_bytes()
T0 = 1_764_421_200_000  # 2025-11-29T13:00:00Z
DAY_MS = 86_400_000


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def registry() -> BeanRegistry:
    return load_beans("tests.approval_beans")


def runtime_with(registry: BeanRegistry | None, clock: Clock | None = None) -> Runtime:
    return Runtime(MemoryBackend(), beans=registry, now_ms=clock or Clock())


# --------------------------------------------------------------------------- loading


def test_a_module_names_beans_by_its_dict_and_its_register_function(registry: BeanRegistry) -> None:
    assert registry.names() == ["approvalService", "calendar"]
    assert registry.has_method("approvalService", "findApprover")
    assert not registry.has_method("approvalService", "_secret")
    assert not registry.has_method("approvalService", "nothing")
    assert load_beans(None).names() == []


@pytest.mark.parametrize(
    ("modules", "message"),
    [("tests.no_such_module", "cannot be imported"), ("tests.api_support", "neither a BEANS dict nor a register")],
)
def test_a_bad_bpm_beans_module_is_a_startup_error(modules: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_beans(modules)


def test_a_bean_name_is_registered_once() -> None:
    registry = BeanRegistry({"a": object()})
    with pytest.raises(ValueError, match="twice"):
        registry.add("a", object())
    with pytest.raises(ValueError, match="identifier"):
        registry.add("_hidden", object())


# --------------------------------------------------------------------------- evaluating


def test_expressions_call_public_methods_and_get_plain_values(registry: BeanRegistry) -> None:
    with use_beans(registry):
        assert compile_template("${approvalService.findApprover(5000)}").evaluate({}) == "boss"
        assert compile_template("#{approvalService.groups(amount)}").evaluate({"amount": 1}) == ["finance"]
        assert compile_template("${approvalService.limits().levels}").evaluate({}) == [1, 2]
        assert compile_template("${calendar.workdays(5) + 1}").evaluate({}) == 8
        assert compile_expression_value("approvalService.limits()['small'] > 10", registry)


def compile_expression_value(text: str, registry: BeanRegistry) -> object:
    from bpm.expressions import compile_expression

    with use_beans(registry):
        return compile_expression(text).evaluate({})


def test_a_bean_call_is_charged_to_the_work_budget(registry: BeanRegistry) -> None:
    expression = compile_template("${approvalService.findApprover(5)}")
    meter = WorkMeter()
    with use_beans(registry):
        expression.evaluate({}, meter=meter)
    assert meter.used >= BEAN_CALL_WORK
    with use_beans(registry), pytest.raises(ExpressionError, match="budget"):
        expression.evaluate({}, meter=WorkMeter(BEAN_CALL_WORK))
    calls = approval_beans.APPROVALS.calls
    with use_beans(registry), pytest.raises(ExpressionError, match="budget"):
        expression.evaluate({}, meter=WorkMeter(BEAN_CALL_WORK // 2))
    assert approval_beans.APPROVALS.calls == calls  # refused before the bean ran


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("${approvalService.explode('x')}", "bean call 'approvalService.explode' failed: approval service is down"),
        ("${approvalService.leak()}", "returned a object, not a JSON-like value"),
        ("${approvalService._secret()}", "not allowed"),
        ("${approvalService.nothing()}", "method 'nothing' of bean 'approvalService' is not allowed"),
        ("${unknownService.find()}", "method 'find' is not allowed"),
    ],
)
def test_a_failing_or_unknown_bean_call_is_an_expression_error(registry: BeanRegistry, text: str, message: str) -> None:
    with use_beans(registry), pytest.raises(ExpressionError, match=message):
        compile_template(text).evaluate({})


def test_a_variable_of_the_same_name_hides_the_bean(registry: BeanRegistry) -> None:
    with use_beans(registry), pytest.raises(ExpressionError, match="method 'findApprover' is not allowed"):
        compile_template("${approvalService.findApprover(1)}").evaluate({"approvalService": {"a": 1}})


def test_without_beans_nothing_is_callable() -> None:
    with pytest.raises(ExpressionError, match="method 'findApprover' is not allowed"):
        compile_template("${approvalService.findApprover(1)}").evaluate({})


# --------------------------------------------------------------------------- engine


def test_the_engine_calls_the_runtimes_beans_for_assignee_and_candidates(registry: BeanRegistry) -> None:
    runtime = runtime_with(registry)
    runtime.deploy(BEAN_MODEL, file="bean_call.bpmn")
    instance_id = runtime.start(unique_id="bean_call", variables={"amount": 5000})
    [task] = runtime.instance_tasks(instance_id)
    assert task.assignee == "boss"
    assert set(task.candidate_groups) == {"finance", "management"}


def test_a_bean_that_raises_refuses_the_step_and_changes_nothing(registry: BeanRegistry) -> None:
    runtime = runtime_with(registry)
    runtime.deploy(BEAN_MODEL, file="bean_call.bpmn")
    instance_id = runtime.start(unique_id="bean_call", variables={"amount": 1})
    [task] = runtime.instance_tasks(instance_id)
    before = runtime.instance(instance_id)
    with pytest.raises(ExpressionError, match="approval service is down"):
        runtime.complete(task.id, "lead", {"reason": "maintenance"})
    after = runtime.instance(instance_id)
    assert (after.rev, after.state) == (before.rev, before.state)
    assert [t.id for t in runtime.instance_tasks(instance_id)] == [task.id]


def test_an_unknown_bean_fails_the_deployment_and_nothing_is_stored() -> None:
    runtime = runtime_with(None)
    with pytest.raises(InvalidDefinition) as info:
        runtime.deploy(BEAN_MODEL, file="bean_call.bpmn")
    error = info.value
    assert (error.file, error.element_id, error.attribute) == ("bean_call.bpmn", "approve", "assignee")
    assert error.line in (line_of(BEAN_MODEL, 'id="approve"'), line_of(BEAN_MODEL, 'id="approve"') + 1)
    assert "'approvalService.findApprover'" in error.detail
    assert runtime.backend.definitions() == []


def test_an_unknown_method_of_a_known_bean_fails_the_deployment(registry: BeanRegistry) -> None:
    data = BEAN_MODEL.replace(b"groups(amount)", b"teams(amount)")
    with pytest.raises(InvalidDefinition, match=r"'approvalService\.teams'") as info:
        runtime_with(registry).deploy(data, file="b.bpmn")
    assert info.value.attribute == "candidateGroups"


# --------------------------------------------------------------------------- unknown functions at deployment


@pytest.mark.parametrize(
    ("placeholder", "value", "element", "attribute", "name"),
    [
        ("ASSIGNEE", "${userService.pick(initiator)}", "review", "assignee", "userService.pick"),
        ("CANDIDATE_USERS", "ann, ${lookup(x)}", "review", "candidateUsers", "lookup"),
        ("DUE_DATE", "${dateTime().plusFortnights(1)}", "review", "dueDate", "plusFortnights"),
        ("PRIORITY", "${prio.intValue()}", "review", "priority", "prio.intValue"),
        ("CARDINALITY", "${size(list)}", "review", "loopCardinality", "size"),
        ("TIME_DURATION", "${timers.escalation()}", "late", "timeDuration", "timers.escalation"),
        ("CONDITION", "${rules.check(amount)}", "f3", "condition", "rules.check"),
        ("CALLED_ELEMENT", "${router.child()}", "call", "calledElement", "router.child"),
        ("SOURCE_EXPRESSION", "${math.twice(amount)}", "call", "sourceExpression", "math.twice"),
    ],
)
def test_an_unknown_function_fails_the_deployment_naming_it(
    placeholder: str, value: str, element: str, attribute: str, name: str
) -> None:
    runtime = Runtime(MemoryBackend())
    data = model(**{placeholder: value})
    with pytest.raises(InvalidDefinition) as info:
        runtime.deploy(data, file="unknown.bpmn")
    error = info.value
    assert (error.file, error.element_id, error.attribute) == ("unknown.bpmn", element, attribute)
    assert f"'{name}'" in error.detail
    assert error.line is not None and error.line >= line_of(data, f'id="{element}"')
    assert runtime.backend.definitions() == []


def test_a_listener_calling_an_unknown_function_fails_the_deployment() -> None:
    data = model().replace(
        b'<startEvent id="start" />',
        b'<startEvent id="start"><extensionElements><camunda:executionListener event="end" '
        b'expression="${audit.log(execution)}" /></extensionElements></startEvent>',
    )
    with pytest.raises(InvalidDefinition, match=r"'audit\.log'") as info:
        Runtime(MemoryBackend()).deploy(data, file="l.bpmn")
    assert (info.value.element_id, info.value.attribute) == ("start", "end listener expression")


# --------------------------------------------------------------------------- the clock


def test_a_due_date_from_dateTime_follows_the_runtimes_clock() -> None:
    clock = Clock()
    runtime = runtime_with(None, clock)
    data = model(DUE_DATE="${dateTime().plusDays(1).toDate()}", CARDINALITY="1")
    runtime.deploy(data, file="due.bpmn")
    first = runtime.start(unique_id="every_expression", variables={"initiator": "ann", "reviewers": "bob", "prio": 1})
    [task] = runtime.instance_tasks(first)
    assert task.due_date == T0 + DAY_MS
    clock.now += 3 * DAY_MS
    second = runtime.start(unique_id="every_expression", variables={"initiator": "ann", "reviewers": "bob", "prio": 1})
    [task] = runtime.instance_tasks(second)
    assert task.due_date == T0 + 4 * DAY_MS


_FEEL_NOW = b"""<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="http://t">
  <process id="feelNow" isExecutable="true">
    <startEvent id="start" /><sequenceFlow id="f1" sourceRef="start" targetRef="gw" />
    <exclusiveGateway id="gw" default="early" />
    <sequenceFlow id="late" sourceRef="gw" targetRef="lateTask">
      <conditionExpression>= now() &gt; date and time("2025-12-01T00:00:00Z")</conditionExpression>
    </sequenceFlow>
    <sequenceFlow id="early" sourceRef="gw" targetRef="earlyTask" />
    <userTask id="lateTask" /><userTask id="earlyTask" />
  </process>
</definitions>"""


def test_feel_now_in_a_condition_follows_the_clock() -> None:
    clock = Clock()
    runtime = runtime_with(None, clock)
    runtime.deploy(_FEEL_NOW, file="feel.bpmn")
    [task] = runtime.instance_tasks(runtime.start(unique_id="feelNow"))
    assert task.task_definition_key == "earlyTask"  # now() is before December
    clock.now += 3 * DAY_MS
    [task] = runtime.instance_tasks(runtime.start(unique_id="feelNow"))
    assert task.task_definition_key == "lateTask"


# --------------------------------------------------------------------------- over HTTP


def test_over_http_bpm_beans_names_the_module(backend: Backend, tmp_path: Path) -> None:
    api = Api(make_app(backend, tmp_path, BPM_BEANS="tests.approval_beans").test_client())
    ok(api.post("/deployments", data=BEAN_MODEL, content_type="application/xml",
                query_string={"fileName": "bean_call.bpmn"}))  # fmt: skip
    instance_id = api.start("bean_call", {"amount": 20})
    [task] = api.tasks(instance_id)
    assert task["assignee"] == "lead"
    body = fails(api.complete(task["id"], "lead", {"reason": "x"}), 422, "EXPRESSION_ERROR")
    assert "approval service is down" in body["message"]
    assert [t["id"] for t in api.tasks(instance_id)] == [task["id"]]


def test_over_http_an_unknown_bean_is_a_400_and_nothing_is_stored(backend: Backend, tmp_path: Path) -> None:
    api = Api(make_app(backend, tmp_path).test_client())
    before = sorted(d.definition_id for d in backend.definitions())
    response = api.post("/deployments", data=BEAN_MODEL, content_type="application/xml",
                        query_string={"fileName": "bean_call.bpmn"})  # fmt: skip
    body = fails(response, 400, "INVALID_BPMN")
    assert (body["data"]["file"], body["data"]["elementId"], body["data"]["attribute"]) == (
        "bean_call.bpmn", "approve", "assignee")  # fmt: skip
    assert body["data"]["line"] in (line_of(BEAN_MODEL, 'id="approve"'), line_of(BEAN_MODEL, 'id="approve"') + 1)
    assert "approvalService.findApprover" in body["message"]
    assert sorted(d.definition_id for d in backend.definitions()) == before


def test_a_bpm_test_scenario_controls_now_with_advance() -> None:
    from bpm.scenarios import run_paths

    report = run_paths([DATA / "vendor" / "clock"])
    assert [r.failure for r in report.results] == [None]
