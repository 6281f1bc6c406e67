"""Uncaught BPMN errors behave as in Camunda 7, in every position, on every backend.

Camunda 7 (``BpmnExceptionHandler.propagateError``): a BPMN error is thrown at once
up the execution hierarchy, through call activities into the calling processes;
the first boundary or error event subprocess that matches catches it (the called
instances below it are cancelled). Nothing catching it anywhere, the execution
that threw it ends, as at a none end event, and it is logged; with the stricter
``enableExceptionsAfterUnhandledBpmnError`` (here ``BPM_UNHANDLED_BPMN_ERROR=fail``)
the command fails instead and nothing changes.
"""

from __future__ import annotations

import logging

import pytest

from backends.base import Backend
from bpm.errors import Unprocessable
from bpm.runtime import Runtime
from tests.api_support import Api, fails, make_app, ok
from tests.test_api_events import external, fetch, start
from tests.test_runtime_events import EVENTS, Clock, _all_instances, open_elements

MODELS = b"""<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL"
             xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="d" targetNamespace="t">
  <error id="e1" errorCode="E1" />
  <process id="subprocessThrows" isExecutable="true">
    <startEvent id="a0" />
    <sequenceFlow id="a1" sourceRef="a0" targetRef="sub" />
    <subProcess id="sub">
      <startEvent id="a_s" />
      <sequenceFlow id="a2" sourceRef="a_s" targetRef="a_throw" />
      <endEvent id="a_throw"><errorEventDefinition errorRef="e1" /></endEvent>
    </subProcess>
    <sequenceFlow id="a3" sourceRef="sub" targetRef="afterSub" />
    <userTask id="afterSub" />
    <sequenceFlow id="a4" sourceRef="afterSub" targetRef="a_end" />
    <endEvent id="a_end" />
  </process>
  <process id="child" isExecutable="true">
    <startEvent id="c0" />
    <sequenceFlow id="c1" sourceRef="c0" targetRef="c_fork" />
    <parallelGateway id="c_fork" />
    <sequenceFlow id="c2" sourceRef="c_fork" targetRef="childWork" />
    <sequenceFlow id="c3" sourceRef="c_fork" targetRef="otherBranch" />
    <userTask id="childWork" />
    <sequenceFlow id="c4" sourceRef="childWork" targetRef="c_throw" />
    <endEvent id="c_throw"><errorEventDefinition errorRef="e1" /></endEvent>
    <userTask id="otherBranch" />
    <sequenceFlow id="c5" sourceRef="otherBranch" targetRef="c_end" />
    <endEvent id="c_end" />
  </process>
  <process id="parent" isExecutable="true">
    <startEvent id="p0" />
    <sequenceFlow id="p1" sourceRef="p0" targetRef="callChild" />
    <callActivity id="callChild" calledElement="child" />
    <sequenceFlow id="p2" sourceRef="callChild" targetRef="afterCall" />
    <userTask id="afterCall" />
    <sequenceFlow id="p3" sourceRef="afterCall" targetRef="p_end" />
    <endEvent id="p_end" />
  </process>
  <process id="grandparent" isExecutable="true">
    <startEvent id="g0" />
    <sequenceFlow id="g1" sourceRef="g0" targetRef="callParent" />
    <callActivity id="callParent" calledElement="parent" />
    <boundaryEvent id="caught" attachedToRef="callParent"><errorEventDefinition errorRef="e1" /></boundaryEvent>
    <sequenceFlow id="g2" sourceRef="callParent" targetRef="g_end" />
    <sequenceFlow id="g3" sourceRef="caught" targetRef="handled" />
    <userTask id="handled" />
    <sequenceFlow id="g4" sourceRef="handled" targetRef="g_end" />
    <endEvent id="g_end" />
  </process>
  <process id="externalChild" isExecutable="true">
    <startEvent id="x0" />
    <sequenceFlow id="x1" sourceRef="x0" targetRef="work" />
    <serviceTask id="work" camunda:type="external" camunda:topic="child-work" />
    <sequenceFlow id="x2" sourceRef="work" targetRef="x_end" />
    <endEvent id="x_end" />
  </process>
  <process id="callsExternalChild" isExecutable="true">
    <startEvent id="y0" />
    <sequenceFlow id="y1" sourceRef="y0" targetRef="callIt" />
    <callActivity id="callIt" calledElement="externalChild" />
    <boundaryEvent id="anyError" attachedToRef="callIt"><errorEventDefinition /></boundaryEvent>
    <sequenceFlow id="y2" sourceRef="callIt" targetRef="y_end" />
    <sequenceFlow id="y3" sourceRef="anyError" targetRef="handleIt" />
    <userTask id="handleIt" />
    <sequenceFlow id="y4" sourceRef="handleIt" targetRef="y_end" />
    <endEvent id="y_end" />
  </process>
  <process id="throwsAtOnce" isExecutable="true">
    <startEvent id="t0" />
    <sequenceFlow id="t1" sourceRef="t0" targetRef="t_fork" />
    <parallelGateway id="t_fork" />
    <sequenceFlow id="t2" sourceRef="t_fork" targetRef="t_throw" />
    <sequenceFlow id="t3" sourceRef="t_fork" targetRef="stillOpen" />
    <endEvent id="t_throw"><errorEventDefinition errorRef="e1" /></endEvent>
    <userTask id="stillOpen" />
    <sequenceFlow id="t4" sourceRef="stillOpen" targetRef="t_end" />
    <endEvent id="t_end" />
  </process>
  <process id="passesItOn" isExecutable="true">
    <startEvent id="m0" />
    <sequenceFlow id="m1" sourceRef="m0" targetRef="callThrower" />
    <callActivity id="callThrower" calledElement="throwsAtOnce" />
    <sequenceFlow id="m2" sourceRef="callThrower" targetRef="m_end" />
    <endEvent id="m_end" />
  </process>
  <process id="catchesTwoLevelsDown" isExecutable="true">
    <startEvent id="k0" />
    <sequenceFlow id="k1" sourceRef="k0" targetRef="callPasser" />
    <callActivity id="callPasser" calledElement="passesItOn" />
    <boundaryEvent id="k_caught" attachedToRef="callPasser"><errorEventDefinition errorRef="e1" /></boundaryEvent>
    <sequenceFlow id="k2" sourceRef="callPasser" targetRef="k_end" />
    <sequenceFlow id="k3" sourceRef="k_caught" targetRef="handledAtStart" />
    <userTask id="handledAtStart" />
    <sequenceFlow id="k4" sourceRef="handledAtStart" targetRef="k_end" />
    <endEvent id="k_end" />
  </process>
</definitions>"""


def runtime_for(backend: Backend, mode: str = "end") -> Runtime:
    runtime = Runtime(backend, EVENTS, now_ms=Clock(), unhandled_bpmn_error=mode)
    runtime.deploy(MODELS, file="uncaught.bpmn")
    return runtime


def child_of(runtime: Runtime, parent_id: str) -> str:
    [call] = [t for t in runtime.instance(parent_id).state["tokens"].values() if t.get("call")]
    return str(call["call"])


def task(runtime: Runtime, instance_id: str, element: str) -> str:
    return next(t.id for t in runtime.instance_tasks(instance_id) if t.task_definition_key == element)


def uncaught_logged(caplog: pytest.LogCaptureFixture, code: str) -> bool:
    return any(r.levelno == logging.WARNING and f"'{code}'" in r.getMessage() for r in caplog.records)


# -- an error end event anywhere ---------------------------------------------------------------


def test_an_uncaught_error_end_event_in_a_subprocess_ends_its_token_and_is_logged(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    runtime = runtime_for(backend)
    with caplog.at_level(logging.WARNING):
        instance_id = runtime.start(unique_id="subprocessThrows")
    assert open_elements(runtime, instance_id) == ["afterSub"]  # as a none end event: the subprocess completed
    assert [e["errorCode"] for e in runtime.history(instance_id) if e["type"] == "error.uncaught"] == ["E1"]
    assert uncaught_logged(caplog, "E1")


def test_the_strict_mode_refuses_an_uncaught_error_end_event_and_writes_nothing(backend: Backend) -> None:
    runtime = runtime_for(backend, "fail")
    with pytest.raises(Unprocessable) as info:
        runtime.start(unique_id="subprocessThrows")
    assert info.value.code == "UNHANDLED_BPMN_ERROR" and "a_throw" in info.value.message
    assert _all_instances(runtime) == []


# -- a called child's uncaught error ------------------------------------------------------------


def test_a_childs_error_goes_up_at_once_to_the_first_caller_that_catches_it(backend: Backend) -> None:
    runtime = runtime_for(backend)
    root = runtime.start(unique_id="grandparent")
    middle = child_of(runtime, root)
    leaf = child_of(runtime, middle)
    runtime.complete(task(runtime, leaf, "childWork"), "someone")  # throws E1; the other branch still runs
    assert open_elements(runtime, root) == ["handled"]
    assert runtime.instance(middle).ended and runtime.instance(leaf).ended
    assert runtime.instance_tasks(leaf) == []  # "otherBranch" was cancelled with the child


def test_an_error_thrown_while_starting_called_instances_is_caught_two_levels_up(backend: Backend) -> None:
    runtime = runtime_for(backend)
    root = runtime.start(unique_id="catchesTwoLevelsDown")  # one plan: three instances, the error, the catch
    assert open_elements(runtime, root) == ["handledAtStart"]
    children = [i for i in _all_instances(runtime) if i != root]
    assert len(children) == 2
    assert all(runtime.instance(i).ended and runtime.instance_tasks(i) == [] for i in children)


def test_a_childs_error_nobody_catches_ends_only_the_token_that_threw_it(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    runtime = runtime_for(backend)
    parent = runtime.start(unique_id="parent")
    child = child_of(runtime, parent)
    with caplog.at_level(logging.WARNING):
        runtime.complete(task(runtime, child, "childWork"), "someone")
    assert uncaught_logged(caplog, "E1")
    assert open_elements(runtime, child) == ["otherBranch"] and open_elements(runtime, parent) == []
    runtime.complete(task(runtime, child, "otherBranch"), "someone")
    assert runtime.instance(child).ended
    assert open_elements(runtime, parent) == ["afterCall"]  # the call activity completes normally


def test_the_strict_mode_refuses_a_childs_error_that_no_caller_catches(backend: Backend) -> None:
    runtime = runtime_for(backend, "fail")
    parent = runtime.start(unique_id="parent")
    child = child_of(runtime, parent)
    work = task(runtime, child, "childWork")
    with pytest.raises(Unprocessable) as info:
        runtime.complete(work, "someone")
    assert info.value.code == "UNHANDLED_BPMN_ERROR"
    assert open_elements(runtime, child) == ["childWork", "otherBranch"]  # nothing was written
    root = runtime.start(unique_id="grandparent")  # caught two levels up: no error in the strict mode
    leaf = child_of(runtime, child_of(runtime, root))
    runtime.complete(task(runtime, leaf, "childWork"), "someone")
    assert open_elements(runtime, root) == ["handled"]


# -- an external task's bpmnError ----------------------------------------------------------------


def test_an_external_tasks_error_in_a_child_is_caught_by_the_callers_boundary(backend: Backend) -> None:
    runtime = runtime_for(backend)
    parent = runtime.start(unique_id="callsExternalChild")
    child = child_of(runtime, parent)
    [(external, _)] = runtime.fetch_and_lock("w", {"child-work": 60_000})
    runtime.bpmn_error_external(external.id, "w", "ANY_CODE", "it failed")  # the old code answered 422
    assert open_elements(runtime, parent) == ["handleIt"]
    assert runtime.instance(child).ended
    assert runtime.external_task(external.id).status == "completed"


def test_an_external_tasks_uncaught_error_ends_its_token_or_is_refused_in_the_strict_mode(backend: Backend) -> None:
    lenient = runtime_for(backend)
    instance_id = lenient.start(unique_id="externalChild")
    [(external, _)] = lenient.fetch_and_lock("w", {"child-work": 60_000})
    lenient.bpmn_error_external(external.id, "w", "NOBODY_CATCHES")
    assert lenient.instance(instance_id).ended
    strict = runtime_for(backend, "fail")
    second = strict.start(unique_id="externalChild")
    [(external, _)] = strict.fetch_and_lock("w", {"child-work": 60_000})
    with pytest.raises(Unprocessable) as info:
        strict.bpmn_error_external(external.id, "w", "NOBODY_CATCHES")
    assert info.value.code == "UNHANDLED_BPMN_ERROR"
    assert not strict.instance(second).ended and strict.external_task(external.id).active


# -- the configuration ----------------------------------------------------------------------------


def test_bpm_unhandled_bpmn_error_fail_makes_the_route_answer_422_and_change_nothing(backend: Backend) -> None:
    api = Api(make_app(backend, EVENTS, BPM_UNHANDLED_BPMN_ERROR="fail").test_client())
    instance_id = start(api, "error_boundary_on_external_task")
    [locked] = fetch(api, "w", "charge-card")
    fails(external(api, locked["id"], "bpmnError", workerId="w", errorCode="UNKNOWN"), 422, "UNHANDLED_BPMN_ERROR")
    assert api.instance(instance_id)["activeElements"] == ["charge"]
    assert ok(api.get(f"/external-task/{locked['id']}"))["status"] == "active"
    with pytest.raises(ValueError, match="unhandled_bpmn_error"):
        make_app(backend, EVENTS, BPM_UNHANDLED_BPMN_ERROR="explode")
