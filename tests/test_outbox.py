"""One committer and an outbox: nothing after a commit can fail the request that committed.

A step's signals are broadcast and its in-process handlers run after its write; a
signal loop there is stopped and logged, and the signal-loop depth belongs to the
request (a context variable), so no later or other request ever sees a stale one.
"""

from __future__ import annotations

import logging
import threading

import pytest

from backends.base import Backend
from bpm.message_cases import MAX_SIGNAL_DEPTH
from bpm.runtime import Runtime
from tests.api_support import Api, make_app, ok
from tests.test_runtime_events import EVENTS, Clock, open_elements

SIGNALS = b"""<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="t">
  <signal id="ping" name="ping" />
  <signal id="hello" name="hello" />
  <process id="pingLoop" isExecutable="true">
    <startEvent id="onPing"><signalEventDefinition signalRef="ping" /></startEvent>
    <sequenceFlow id="a1" sourceRef="onPing" targetRef="throwPing" />
    <intermediateThrowEvent id="throwPing"><signalEventDefinition signalRef="ping" /></intermediateThrowEvent>
    <sequenceFlow id="a2" sourceRef="throwPing" targetRef="a_end" />
    <endEvent id="a_end" />
  </process>
  <process id="workThenPing" isExecutable="true">
    <startEvent id="b_start" />
    <sequenceFlow id="b1" sourceRef="b_start" targetRef="work" />
    <userTask id="work" name="Work" />
    <sequenceFlow id="b2" sourceRef="work" targetRef="throwPing2" />
    <intermediateThrowEvent id="throwPing2"><signalEventDefinition signalRef="ping" /></intermediateThrowEvent>
    <sequenceFlow id="b3" sourceRef="throwPing2" targetRef="b_end" />
    <endEvent id="b_end" />
  </process>
  <process id="workThenHello" isExecutable="true">
    <startEvent id="c_start" />
    <sequenceFlow id="c1" sourceRef="c_start" targetRef="work2" />
    <userTask id="work2" name="Work" />
    <sequenceFlow id="c2" sourceRef="work2" targetRef="throwHello" />
    <intermediateThrowEvent id="throwHello"><signalEventDefinition signalRef="hello" /></intermediateThrowEvent>
    <sequenceFlow id="c3" sourceRef="throwHello" targetRef="c_end" />
    <endEvent id="c_end" />
  </process>
  <process id="waitForHello" isExecutable="true">
    <startEvent id="d_start" />
    <sequenceFlow id="d1" sourceRef="d_start" targetRef="catchHello" />
    <intermediateCatchEvent id="catchHello"><signalEventDefinition signalRef="hello" /></intermediateCatchEvent>
    <sequenceFlow id="d2" sourceRef="catchHello" targetRef="greeted" />
    <userTask id="greeted" name="Greeted" />
    <sequenceFlow id="d3" sourceRef="greeted" targetRef="d_end" />
    <endEvent id="d_end" />
  </process>
</definitions>"""


@pytest.fixture
def rt(backend: Backend) -> Runtime:
    runtime = Runtime(backend, EVENTS, now_ms=Clock())
    assert not runtime.deploy_directory().errors
    runtime.deploy(SIGNALS, file="signals.bpmn")
    return runtime


def signal_loop_logged(caplog: pytest.LogCaptureFixture) -> bool:
    return any(r.levelno >= logging.ERROR and "ping" in r.getMessage() for r in caplog.records)


def test_complete_whose_next_step_loops_a_signal_succeeds_and_the_loop_is_logged(
    rt: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    instance_id = rt.start(unique_id="workThenPing")
    [task] = rt.instance_tasks(instance_id)
    with caplog.at_level(logging.ERROR):
        rt.complete(task.id, "someone")  # the old code answered 422 SIGNAL_LOOP here
    assert rt.instance(instance_id).ended
    assert not rt.instance_tasks(instance_id)
    assert signal_loop_logged(caplog)


def test_broadcast_of_a_looping_signal_answers_what_it_did_and_logs_the_loop(
    rt: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        result = rt.broadcast_signal("ping")  # the old code answered 422 with the instances left behind
    assert result["triggered"] == 0 and len(result["instanceIds"]) == 1
    assert signal_loop_logged(caplog)


def test_a_stale_depth_cannot_fail_an_unrelated_complete(rt: Runtime) -> None:
    rt.broadcast_signal("ping")  # a loop that reached the depth limit
    waiting = rt.start(unique_id="waitForHello")
    instance_id = rt.start(unique_id="workThenHello")
    [task] = rt.instance_tasks(instance_id)
    rt.complete(task.id, "someone")  # throws "hello" once: one level deep, not past the limit
    assert rt.instance(instance_id).ended
    assert open_elements(rt, waiting) == ["greeted"]


def test_the_depth_of_one_thread_is_not_seen_by_another(rt: Runtime) -> None:
    """While one thread is deep in a signal loop, another's complete() delivers its signal."""
    waiting = rt.start(unique_id="waitForHello")
    instance_id = rt.start(unique_id="workThenHello")
    [task] = rt.instance_tasks(instance_id)
    inside = threading.Event()
    release = threading.Event()
    real = rt.messages.broadcast_signal

    def slow_at_the_bottom(name: str, variables: object = None, *, user: str | None = None) -> dict[str, object]:
        from bpm.message_cases import _signal_depth

        if name == "ping" and _signal_depth.get() == MAX_SIGNAL_DEPTH:
            inside.set()  # this thread is at the deepest level: hold it there
            assert release.wait(timeout=60)
        return real(name, variables, user=user)  # type: ignore[arg-type]

    rt.messages.broadcast_signal = slow_at_the_bottom  # type: ignore[method-assign]
    looping = threading.Thread(target=rt.broadcast_signal, args=("ping",))
    looping.start()
    try:
        assert inside.wait(timeout=60)
        rt.complete(task.id, "someone")
        assert open_elements(rt, waiting) == ["greeted"]
    finally:
        release.set()
        looping.join(timeout=60)
    assert not looping.is_alive()


def test_a_failing_in_process_handler_does_not_fail_the_start_that_committed(
    rt: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(variables: object) -> dict[str, object]:
        raise RuntimeError("the handler is broken")

    rt.register_handler("payments", broken)
    instance_id = rt.start(unique_id="external_tasks", variables={"amount": 4})
    [external] = rt.instance_externals(instance_id)
    assert external.incident and "broken" in (external.error_message or "")
    rt.register_handler("payments", lambda variables: 5)  # type: ignore[arg-type,return-value]
    with caplog.at_level(logging.ERROR):
        second = rt.start(unique_id="external_tasks", variables={"amount": 4})  # the old code raised TypeError
    assert [e.topic for e in rt.instance_externals(second)] == ["payments"]
    assert any("after a commit" in r.getMessage() for r in caplog.records)


def test_over_http_complete_and_signal_answer_200_when_the_loop_comes_after_the_commit(backend: Backend) -> None:
    app = make_app(backend, EVENTS, BPM_CLOCK=Clock())
    app.extensions["bpm_runtime"].deploy(SIGNALS, file="signals.bpmn")
    api = Api(app.test_client())
    instance_id = ok(api.post("/process/start", json={"uniqueId": "workThenPing"}))
    [task] = ok(api.get(f"/instance/{instance_id}/tasks"))
    assert ok(api.post(f"/tasks/{task['id']}/complete", query_string={"user": "someone"}, json={})) == ""
    assert api.instance(instance_id)["ended"] is True  # the old code answered 422 SIGNAL_LOOP; a retry got 409
    result = ok(api.post("/signal", json={"name": "ping"}))
    assert result["triggered"] == 0 and len(result["instanceIds"]) == 1
