"""Engine tests for events, timers, messages, signals, errors, gateways, loops and service work.

Each test drives a small model from ``tests/data/events/`` through the engine
the way a backend would (see ``tests/engine_driver.py``), with a fake clock.
"""

from __future__ import annotations

import pytest

from bpm.errors import ExpressionError, Unprocessable
from tests.engine_driver import NOW, Driver, load_spec

HOUR = 3_600_000
DAY = 24 * HOUR


def drive(name: str, **kwargs: object) -> Driver:
    return Driver(load_spec(f"events/{name}.bpmn")).start(**kwargs)  # type: ignore[arg-type]


# -- timers ------------------------------------------------------------------------------


def test_interrupting_boundary_timer_cancels_the_task_when_due() -> None:
    d = drive("boundary_timer_interrupting")
    assert d.waiting() == ["review"] and d.subscribed() == [("timer", "timeout")]
    d.advance(2 * HOUR - 1)
    assert d.waiting() == ["review"]
    d.reload().advance(1)
    assert d.waiting() == ["escalated"] and d.subs == {}
    assert len(d.cancelled) == 1


def test_boundary_timer_is_dropped_when_the_task_completes_first() -> None:
    d = drive("boundary_timer_interrupting").complete("review")
    assert d.ended and d.subs == {}


def test_non_interrupting_cycle_timer_fires_three_times_and_keeps_the_task() -> None:
    d = drive("boundary_timer_non_interrupting")
    d.advance(HOUR)
    assert d.waiting() == ["remind", "work"]
    d.advance(HOUR).advance(HOUR)
    assert d.waiting() == ["remind", "remind", "remind", "work"]
    assert d.subs == {}  # R3: three firings, then over
    d.advance(10 * HOUR)
    assert len(d.waiting()) == 4
    d.complete("work")
    assert not d.ended and d.waiting() == ["remind", "remind", "remind"]


def test_intermediate_timer_with_a_duration_variable() -> None:
    d = drive("timer_intermediate_catch", variables={"delay": "PT5M"}).complete("before")
    assert d.subscribed() == [("timer", "wait")]
    assert next(iter(d.subs.values())).due == NOW + 5 * 60_000
    d.advance(5 * 60_000)
    assert d.waiting() == ["after"]


def test_timer_with_a_bad_duration_is_an_expression_error() -> None:
    d = drive("timer_intermediate_catch", variables={"delay": "soon"})
    with pytest.raises(ExpressionError, match="wait"):
        d.complete("before")


def test_timer_date() -> None:
    d = drive("timer_date_catch")
    assert next(iter(d.subs.values())).due == 1893456000000


# -- messages and signals ----------------------------------------------------------------


def test_message_intermediate_catch_merges_the_payload() -> None:
    d = drive("message_intermediate_catch")
    assert d.subscribed() == [("message", "waitPayment")]
    d.message(next(iter(d.subs.values())).name, {"amount": 12})
    assert d.waiting() == ["ship"] and d.state["vars"]["amount"] == 12


def test_receive_task_with_timeout() -> None:
    d = drive("receive_task")
    assert d.subscribed() == [("message", "waitDocument"), ("timer", "tooLate")]
    d.message("document-received")
    assert d.ended and d.subs == {}
    late = drive("receive_task").advance(7 * DAY)
    assert late.ended
    assert [h["elementId"] for h in late.history if h["type"] == "element.entered"][-1] == "gaveUp"


def test_event_based_gateway_first_event_wins() -> None:
    d = drive("event_based_gateway")
    assert [k for k, _ in d.subscribed()] == ["message", "message", "timer"]
    d.message(next(s.name for s in d.subs.values() if s.element_id == "rejected"))
    assert d.ended and d.subs == {}
    timed = drive("event_based_gateway").advance(HOUR)
    assert timed.ended


def test_message_boundary_on_subprocess_interrupts_every_inner_task() -> None:
    d = drive("boundary_message_on_subprocess")
    assert d.waiting() == ["taskA", "taskB"]
    d.complete("taskA")
    d.message(next(s.name for s in d.subs.values()))
    assert d.waiting() == ["afterCancel"]
    assert len(d.state["scopes"]) == 1


def test_non_interrupting_signal_boundary_can_fire_repeatedly() -> None:
    d = drive("boundary_signal_non_interrupting")
    name = next(iter(d.subs.values())).name
    d.signal(name).signal(name)
    assert d.waiting() == ["note", "note", "trade"]
    d.complete("trade")
    assert d.subs == {} and d.waiting() == ["note", "note"]


def test_signal_throw_is_reported_for_broadcast() -> None:
    d = drive("signal_throw_and_catch")
    assert d.subscribed() == [("signal", "waitGo")]
    d.complete("prepare")
    assert [(t.kind, t.name) for t in d.thrown] == [("signal", "go")]
    d.signal("go")
    assert d.ended


def test_message_throw_events_are_notifications() -> None:
    d = drive("message_throw_events")
    assert d.ended
    assert [t.kind for t in d.thrown] == ["message", "message"]
    assert [h["elementId"] for h in d.history if h["type"] == "message.thrown"] == ["notify", "done"]


def test_message_start_event_starts_at_that_event() -> None:
    spec = load_spec("events/message_start.bpmn")
    assert spec.event_start_ids == ("onOrder",)
    d = Driver(spec).start({"order": 1}, start_event="onOrder")
    assert d.waiting() == ["handle"]


# -- errors and escalations --------------------------------------------------------------


def test_error_end_event_is_caught_by_the_subprocess_boundary() -> None:
    d = drive("error_end_caught_by_boundary").complete("check", {"complete": False})
    assert d.waiting() == ["askMore"]
    assert d.state["vars"]["errorCode"] == "NOT_ENOUGH_INFO"


def test_error_end_event_not_thrown_on_the_normal_path() -> None:
    d = drive("error_end_caught_by_boundary").complete("check", {"complete": True})
    assert d.ended


def test_catch_all_error_boundary() -> None:
    d = drive("error_catch_all_boundary")
    assert d.ended
    assert [h["elementId"] for h in d.history if h["type"] == "element.entered"][-1] == "handled"
    assert d.state["vars"]["code"] is not None


def test_uncaught_error_end_event_ends_like_a_none_end_event() -> None:
    d = drive("error_uncaught")
    assert d.ended
    assert any(h["type"] == "error.uncaught" for h in d.history)
    assert "escaped_error" not in d.state  # reported in the step's result, for a calling process


def test_error_from_an_external_task_is_caught_by_its_boundary() -> None:
    d = drive("error_boundary_on_external_task")
    assert d.external_waiting() == ["charge"]
    d.throw_error("charge", "CARD_DECLINED")
    assert d.ended and d.externals == {}


def test_error_from_an_external_task_with_no_catcher_ends_its_token_and_is_reported() -> None:
    d = drive("error_boundary_on_external_task")
    result = d.engine.throw_error(d.spec, d.state, next(iter(d.externals)), "somethingElse", "why")
    assert result.ended and [(u.code, u.message, u.element_id) for u in result.uncaught] == [
        ("somethingElse", "why", "charge")
    ]
    assert [h["errorCode"] for h in result.history if h["type"] == "error.uncaught"] == ["somethingElse"]


def test_error_event_subprocess_interrupts_the_process() -> None:
    d = drive("event_subprocess_error").complete("validate", {"ok": False})
    assert d.waiting() == ["fix"]
    d.complete("fix")
    assert d.ended


def test_interrupting_escalation_end_event() -> None:
    d = drive("escalation_end_interrupting")
    assert d.ended
    assert [h["elementId"] for h in d.history if h["type"] == "element.entered"][-1] == "helped"


def test_non_interrupting_escalation_boundary_keeps_the_subprocess() -> None:
    d = drive("escalation_non_interrupting")
    assert d.waiting() == ["finish", "informBoss"]
    d.complete("finish")
    assert not d.ended
    d.complete("informBoss")
    assert d.ended


def test_event_subprocesses_inside_a_subprocess() -> None:
    d = drive("event_subprocess_in_subprocess")
    assert d.waiting() == ["note", "work"]  # non-interrupting escalation handler
    d.signal(next(s.name for s in d.subs.values() if s.kind == "signal"))
    assert d.waiting() == [] and d.ended  # interrupting abort handler ends the subprocess


def test_interrupting_message_event_subprocess() -> None:
    d = drive("event_subprocess_interrupting_message")
    d.message(next(iter(d.subs.values())).name)
    assert d.waiting() == ["refund"]
    d.complete("refund")
    assert d.ended


def test_non_interrupting_timer_event_subprocess() -> None:
    d = drive("event_subprocess_non_interrupting_timer").advance(DAY)
    assert d.waiting() == ["remind", "work"]
    d.complete("work")
    assert not d.ended
    d.complete("remind")
    assert d.ended


def test_terminate_inside_a_non_interrupting_event_subprocess_ends_the_instance() -> None:
    d = drive("terminate_from_event_subprocess")
    d.signal(next(iter(d.subs.values())).name)
    assert not d.ended and d.waiting() == ["work"]  # terminate ends only the event subprocess scope


# -- gateways ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "expected"),
    [(10, ["small"]), (70, ["large", "small"]), (500, ["large"])],
)
def test_inclusive_gateway_forks_on_every_true_condition(amount: int, expected: list[str]) -> None:
    assert drive("inclusive_gateway", variables={"amount": amount}).waiting() == expected


def test_inclusive_join_waits_only_for_tokens_that_can_still_arrive() -> None:
    d = drive("inclusive_gateway", variables={"amount": 70})
    d.complete("small")
    assert d.waiting() == ["large"] and not d.ended
    d.reload().complete("large")
    assert d.ended


# -- service work and scripts ------------------------------------------------------------


def test_service_send_and_rule_tasks_become_external_tasks_in_turn() -> None:
    d = drive("external_tasks")
    assert [(e.topic, e.priority, e.kind) for e in d.externals.values()] == [("payments", 10, "serviceTask")]
    d.complete_external("charge", {"charged": True})
    assert [e.topic for e in d.externals.values()] == ["mailer"]
    d.complete_external("mail")
    assert [e.topic for e in d.externals.values()] == ["decide"]
    d.complete_external("decide")
    assert [e.topic for e in d.externals.values()] == ["legacy"]
    d.complete_external("legacy")
    assert d.ended and d.state["vars"]["charged"] is True


def test_script_tasks_assign_variables_and_results() -> None:
    d = drive("script_tasks", variables={"price": 30, "quantity": 4, "name": "Ada"})
    assert d.ended
    assert d.state["vars"]["total"] == 120 and d.state["vars"]["discounted"] is True
    assert d.state["vars"]["doubled"] == 240 and d.state["vars"]["greeting"] == "Hello Ada"


def test_groovy_script_is_refused_when_reached() -> None:
    with pytest.raises(Unprocessable) as info:
        drive("script_task_groovy")
    assert info.value.code == "UNSUPPORTED_SCRIPT"


# -- multi-instance and loops ------------------------------------------------------------


def test_parallel_multi_instance_with_completion_condition() -> None:
    d = drive("multi_instance_parallel_cardinality")
    assert d.waiting() == ["vote", "vote", "vote"]
    assert sorted(t.variables["loopCounter"] for t in d.tasks.values()) == [0, 1, 2]
    first, second = list(d.tasks.values())[:2]
    d._apply(d.engine.complete_task(d.spec, d.state, first.id, None))
    del d.tasks[first.id]
    assert len(d.tasks) == 2
    d.reload()
    d._apply(d.engine.complete_task(d.spec, d.state, second.id, None))
    del d.tasks[second.id]
    assert d.ended and d.tasks == {} and len(d.cancelled) == 1


def test_sequential_multi_instance_over_a_collection() -> None:
    d = drive("multi_instance_sequential_collection", variables={"reviewers": ["ann", "bob", "cy"]})
    seen = []
    while d.tasks:
        task = next(iter(d.tasks.values()))
        seen.append((task.assignee, task.variables["loopCounter"]))
        d.complete("review")
    assert seen == [("ann", 0), ("bob", 1), ("cy", 2)] and d.ended


def test_multi_instance_with_an_empty_collection_is_skipped() -> None:
    assert drive("multi_instance_sequential_collection", variables={"reviewers": []}).ended


def test_multi_instance_collection_must_be_a_list() -> None:
    with pytest.raises(ExpressionError, match="not a list"):
        drive("multi_instance_sequential_collection", variables={"reviewers": 3})


def test_standard_multi_instance_data_input_on_a_script_task() -> None:
    d = drive("multi_instance_script_data_input", variables={"numbers": [2, 3, 4]})
    assert d.ended and d.state["vars"]["squared"] == 16


def test_multi_instance_subprocess_with_a_boundary_timer_on_the_whole_body() -> None:
    d = drive("multi_instance_subprocess", variables={"order": {"items": ["a", "b"]}})
    assert d.waiting() == ["pack", "pack"]
    assert sorted(s["vars"]["item"] for s in d.state["scopes"].values() if s.get("vars")) == ["a", "b"]
    d.complete("pack")
    d.reload().advance(4 * HOUR)
    assert d.ended and d.tasks == {} and d.state["mi"] == {}


def test_multi_instance_subprocess_completes_when_every_item_is_done() -> None:
    d = drive("multi_instance_subprocess", variables={"order": {"items": ["a", "b"]}})
    d.complete("pack").complete("pack")
    assert d.ended and d.subs == {}


def test_standard_loop_until_the_condition_fails() -> None:
    d = drive("standard_loop_condition", variables={"count": 0})
    assert d.ended and d.state["vars"]["count"] == 3


def test_standard_loop_tested_before_may_run_zero_times() -> None:
    d = drive("standard_loop_test_before", variables={"again": False})
    assert d.ended
    d = drive("standard_loop_test_before", variables={"again": True})
    assert d.waiting() == ["maybe"]
    d.complete("maybe", {"again": False})
    assert d.ended


# -- call activities ---------------------------------------------------------------------


def test_call_activity_asks_for_a_child_with_mapped_variables_and_resumes() -> None:
    d = drive("call_activity_mappings", variables={"amount": 21, "secret": "x", "orderId": "o-7"})
    assert len(d.calls) == 1
    call = d.calls[0]
    assert call.process_key == "call_activity_child" and call.business_key == "o-7"
    assert call.variables == {"input": 21, "next": 22}
    d.call_returned(call.child_id, {"result": 42, "input": 21})
    assert d.waiting() == ["after"] and d.state["vars"]["childResult"] == 42


def test_call_activity_all_variables_and_expression_key() -> None:
    d = drive("call_activity_all_variables", variables={"childKey": "call_activity_child", "input": 5})
    call = d.calls[0]
    assert call.process_key == "call_activity_child" and call.variables["input"] == 5
    d.call_returned(call.child_id, {"input": 5, "result": 10})
    assert d.ended and d.state["vars"]["result"] == 10


def test_cancelling_an_instance_reports_children_tasks_and_subscriptions() -> None:
    d = drive("call_activity_mappings", variables={"amount": 1, "orderId": "o-1"})
    result = d.engine.cancel(d.state)
    assert result.ended and result.calls_cancelled == [d.calls[0].child_id]


def _inline(process: str) -> Driver:
    from bpm.model.parser import parse_bpmn

    xml = (
        '<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" targetNamespace="t">'
        '<message id="m" name="poke" />' + process + "</definitions>"
    )
    return Driver(parse_bpmn(xml.encode(), file="inline.bpmn").processes[0])


def test_non_interrupting_message_boundary_keeps_the_task_and_can_repeat() -> None:
    d = _inline(
        '<process id="p" isExecutable="true"><startEvent id="s" />'
        '<sequenceFlow id="f1" sourceRef="s" targetRef="work" /><userTask id="work" />'
        '<boundaryEvent id="poked" attachedToRef="work" cancelActivity="false">'
        '<messageEventDefinition messageRef="m" /></boundaryEvent>'
        '<sequenceFlow id="f2" sourceRef="poked" targetRef="answer" /><userTask id="answer" />'
        '<sequenceFlow id="f3" sourceRef="work" targetRef="e" /><endEvent id="e" />'
        '<sequenceFlow id="f4" sourceRef="answer" targetRef="e2" /><endEvent id="e2" /></process>'
    ).start()
    d.message("poke").message("poke")
    assert d.waiting() == ["answer", "answer", "work"]
    d.complete("work")
    assert d.subs == {} and not d.ended
    d.complete("answer").complete("answer")
    assert d.ended


def test_interrupting_timer_event_subprocess_replaces_the_process_work() -> None:
    d = _inline(
        '<process id="p" isExecutable="true"><startEvent id="s" />'
        '<sequenceFlow id="f1" sourceRef="s" targetRef="work" /><userTask id="work" />'
        '<sequenceFlow id="f2" sourceRef="work" targetRef="e" /><endEvent id="e" />'
        '<subProcess id="late" triggeredByEvent="true"><startEvent id="lateStart">'
        "<timerEventDefinition><timeDuration>PT1H</timeDuration></timerEventDefinition></startEvent>"
        '<sequenceFlow id="l1" sourceRef="lateStart" targetRef="chase" /><userTask id="chase" />'
        '<sequenceFlow id="l2" sourceRef="chase" targetRef="le" /><endEvent id="le" /></subProcess></process>'
    ).start()
    d.advance(HOUR)
    assert d.waiting() == ["chase"] and len(d.cancelled) == 1
    d.complete("chase")
    assert d.ended and d.subs == {}
