"""Events and service work through the use cases, on every backend.

Timers are fired by moving an injected clock and calling ``fire_due_timers`` (as
the worker does); nothing sleeps. Races run two runtimes ("workers") on one store.
"""

from __future__ import annotations

import threading

import pytest

from backends.base import Backend
from backends.memory import MemoryBackend
from bpm.errors import Conflict, InvalidDefinition, NotFound
from bpm.runtime import Runtime
from tests.conftest import DATA, make_redis_backend

EVENTS = DATA / "events"
HOUR = 3_600_000
T0 = 1_900_000_000_000


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def runtime(backend: Backend, clock: Clock) -> Runtime:
    rt = Runtime(backend, EVENTS, now_ms=clock)
    report = rt.deploy_directory()
    assert not report.errors, report.errors
    return rt


def second_worker(runtime: Runtime, clock: Clock) -> Runtime:
    """Another runtime on the same store, as another worker process would have."""
    backend = runtime.backend
    if not isinstance(backend, MemoryBackend):
        backend = make_redis_backend(backend.prefix)  # type: ignore[attr-defined]
    other = Runtime(backend, EVENTS, now_ms=clock)
    other.cache.reload()
    return other


def open_elements(runtime: Runtime, instance_id: str) -> list[str]:
    return sorted(t.task_definition_key for t in runtime.instance_tasks(instance_id))


# -- timers ------------------------------------------------------------------------------


def test_boundary_timer_fires_when_due_and_only_then(runtime: Runtime, clock: Clock) -> None:
    instance_id = runtime.start(unique_id="boundary_timer_interrupting")
    assert runtime.fire_due_timers() == 0
    clock.now += 2 * HOUR - 1
    assert runtime.fire_due_timers() == 0
    clock.now += 1
    assert runtime.fire_due_timers() == 1
    assert open_elements(runtime, instance_id) == ["escalated"]
    assert runtime.fire_due_timers() == 0
    assert instance_timers(runtime, clock.now + 10 * HOUR) == []


def instance_timers(runtime: Runtime, until: int) -> list[str]:
    return [m for m, _ in runtime.backend.due_timers(until, 1000) if m.startswith("inst|")]


def test_completing_the_task_removes_its_boundary_timer(runtime: Runtime, clock: Clock) -> None:
    instance_id = runtime.start(unique_id="boundary_timer_interrupting")
    task = runtime.instance_tasks(instance_id)[0]
    runtime.complete(task.id, "kermit")
    assert instance_timers(runtime, clock.now + 10 * HOUR) == []


def test_two_workers_fire_each_timer_exactly_once(runtime: Runtime, clock: Clock) -> None:
    instances = [runtime.start(unique_id="boundary_timer_interrupting") for _ in range(20)]
    other = second_worker(runtime, clock)
    clock.now += 3 * HOUR
    fired: list[int] = []
    barrier = threading.Barrier(2)

    def work(worker: Runtime) -> None:
        barrier.wait()
        fired.append(worker.fire_due_timers(limit=7))
        fired.append(worker.fire_due_timers(limit=100))

    threads = [threading.Thread(target=work, args=(w,)) for w in (runtime, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sum(fired) == 20
    for instance_id in instances:
        assert open_elements(runtime, instance_id) == ["escalated"]


def test_non_interrupting_cycle_reschedules_until_done(runtime: Runtime, clock: Clock) -> None:
    instance_id = runtime.start(unique_id="boundary_timer_non_interrupting")
    for _ in range(5):
        clock.now += HOUR
        runtime.fire_due_timers()
    assert open_elements(runtime, instance_id) == ["remind", "remind", "remind", "work"]


def test_timer_start_event_starts_instances_on_its_cycle(runtime: Runtime, clock: Clock) -> None:
    assert runtime.fire_due_timers() == 0
    for _ in range(5):
        clock.now += 10 * HOUR
        runtime.fire_due_timers()
    assert len(_instances_of(runtime, "timer_start_cycle")) == 3  # R3/PT10H


def _instances_of(runtime: Runtime, key: str) -> list[str]:
    found = (runtime.backend.instance(i) for i in _all_instances(runtime))
    return sorted(i.id for i in found if i is not None and i.process_key == key)


def _all_instances(runtime: Runtime) -> list[str]:
    backend = runtime.backend
    if isinstance(backend, MemoryBackend):
        return list(backend._instances)
    client = backend.client  # type: ignore[attr-defined]
    prefixes = [backend.pkey(p, "inst", "") for p in range(backend.partitions)]  # type: ignore[attr-defined]
    return [k[len(prefix) :] for prefix in prefixes for k in client.scan_iter(match=prefix + "*")]


# -- messages and signals ----------------------------------------------------------------


def test_message_reaches_the_instance_with_that_business_key(runtime: Runtime) -> None:
    first = runtime.start(unique_id="message_intermediate_catch", business_key="order-1")
    second = runtime.start(unique_id="message_intermediate_catch", business_key="order-2")
    name = runtime.backend.instance(first).state["subs"].popitem()[1]["name"]  # type: ignore[union-attr]
    with pytest.raises(Conflict) as ambiguous:
        runtime.correlate_message(name)
    assert ambiguous.value.code == "MESSAGE_AMBIGUOUS"
    result = runtime.correlate_message(name, business_key="order-2", variables={"paid": 10})
    assert result["instanceIds"] == [second]
    assert open_elements(runtime, second) == ["ship"] and open_elements(runtime, first) == []
    assert runtime.backend.instance(second).state["vars"]["paid"] == 10  # type: ignore[union-attr]
    with pytest.raises(NotFound):
        runtime.correlate_message(name, business_key="order-2")


def test_message_start_event(runtime: Runtime) -> None:
    result = runtime.correlate_message(_message_name(runtime, "message_start"))
    assert result["resultType"] == "ProcessDefinition"
    assert open_elements(runtime, result["instanceIds"][0]) == ["handle"]


def _message_name(runtime: Runtime, key: str) -> str:
    spec = runtime.cache.spec(runtime.cache.find(key=key))
    start = spec.element(spec.event_start_ids[0])
    return start.event.ref  # type: ignore[attr-defined,no-any-return]


def test_unknown_message_is_not_found(runtime: Runtime) -> None:
    with pytest.raises(NotFound) as info:
        runtime.correlate_message("no-such-message")
    assert info.value.code == "MESSAGE_NOT_CORRELATED"


def test_signal_thrown_by_one_branch_is_caught_by_the_other(runtime: Runtime) -> None:
    instance_id = runtime.start(unique_id="signal_throw_and_catch")
    task = runtime.instance_tasks(instance_id)[0]
    runtime.complete(task.id, "someone")
    assert runtime.instance(instance_id).ended


def test_signal_broadcast_starts_processes_with_a_signal_start(runtime: Runtime) -> None:
    result = runtime.broadcast_signal("alarm")
    assert len(result["instanceIds"]) == 1
    assert open_elements(runtime, result["instanceIds"][0]) == ["respond"]


# -- external tasks ----------------------------------------------------------------------


def test_external_task_lifecycle_with_failure_incident_and_resolution(runtime: Runtime, clock: Clock) -> None:
    instance_id = runtime.start(unique_id="external_tasks", variables={"amount": 5})
    [(task, variables)] = runtime.fetch_and_lock("w1", {"payments": 60_000}, 5)
    assert task.topic == "payments" and variables["amount"] == 5
    assert runtime.fetch_and_lock("w2", {"payments": 60_000}, 5) == []
    with pytest.raises(Conflict):
        runtime.complete_external(task.id, "w2", {})
    runtime.fail_external(task.id, "w1", 1, 1000, "gateway down", None)
    assert runtime.fetch_and_lock("w2", {"payments": 60_000}, 5) == []
    clock.now += 1000
    [(again, _)] = runtime.fetch_and_lock("w2", {"payments": 60_000}, 5)
    failed = runtime.fail_external(again.id, "w2", 0, 0, "still down", "trace")
    assert failed.incident
    clock.now += HOUR
    assert runtime.fetch_and_lock("w2", {"payments": 60_000}, 5) == []
    assert [e.incident for e in runtime.backend.instance_externals(instance_id)] == [True]
    runtime.set_external_retries(again.id, 2)
    [(resolved, _)] = runtime.fetch_and_lock("w3", {"payments": 60_000}, 5)
    runtime.complete_external(resolved.id, "w3", {"charged": True})
    [(mail, _)] = runtime.fetch_and_lock("w3", {"mailer": 60_000}, 5)
    assert mail.element_id == "mail"
    assert runtime.backend.instance(instance_id).state["vars"]["charged"] is True  # type: ignore[union-attr]


def test_lock_expiry_makes_a_task_fetchable_again(runtime: Runtime, clock: Clock) -> None:
    runtime.start(unique_id="external_tasks")
    [(task, _)] = runtime.fetch_and_lock("w1", {"payments": 1000}, 1)
    clock.now += 1001
    [(again, _)] = runtime.fetch_and_lock("w2", {"payments": 1000}, 1)
    assert again.id == task.id
    with pytest.raises(Conflict):
        runtime.complete_external(task.id, "w1")


def test_bpmn_error_from_a_worker_is_caught_by_the_boundary(runtime: Runtime) -> None:
    instance_id = runtime.start(unique_id="error_boundary_on_external_task")
    [(task, _)] = runtime.fetch_and_lock("w", {"charge-card": 60_000}, 1)
    runtime.bpmn_error_external(task.id, "w", "CARD_DECLINED", "declined")
    assert runtime.instance(instance_id).ended
    assert runtime.backend.external_task(task.id).status == "completed"  # type: ignore[union-attr]
    second = runtime.start(unique_id="error_boundary_on_external_task")
    [(task2, _)] = runtime.fetch_and_lock("w", {"charge-card": 60_000}, 1)
    runtime.bpmn_error_external(task2.id, "w", "UNKNOWN")  # uncaught: its token ends there (Camunda 7)
    assert runtime.instance(second).ended
    assert [e["errorCode"] for e in runtime.history(second) if e["type"] == "error.uncaught"] == ["UNKNOWN"]


def test_in_process_handler_runs_service_work(runtime: Runtime) -> None:
    runtime.register_handler("payments", lambda v: {"charged": v["amount"] * 2})
    instance_id = runtime.start(unique_id="external_tasks", variables={"amount": 4})
    assert runtime.backend.instance(instance_id).state["vars"]["charged"] == 8  # type: ignore[union-attr]
    assert [e.topic for e in runtime.backend.instance_externals(instance_id)] == ["mailer"]


# -- call activities ---------------------------------------------------------------------


def test_call_activity_runs_the_child_and_returns_its_variables(runtime: Runtime) -> None:
    parent = runtime.start(unique_id="call_activity_mappings", variables={"amount": 21, "orderId": "o-9"})
    [child_task] = runtime.instance_tasks(_child_of(runtime, parent))
    assert child_task.task_definition_key == "childTask"
    child = runtime.instance(child_task.instance_id)
    assert child.parent_id == parent and child.business_key == "o-9"
    runtime.complete(child_task.id, "anyone")
    assert runtime.instance(child.id).ended
    assert open_elements(runtime, parent) == ["after"]
    assert runtime.instance(parent).state["vars"]["childResult"] == 42


def test_cancelling_the_parent_cancels_the_child(runtime: Runtime) -> None:
    parent = runtime.start(unique_id="call_activity_mappings", variables={"amount": 1, "orderId": "x"})
    child = _child_of(runtime, parent)
    runtime.cancel_instance(parent)
    assert runtime.instance(child).ended and runtime.instance_tasks(child) == []


def _child_of(runtime: Runtime, parent: str) -> str:
    token = next(t for t in runtime.instance(parent).state["tokens"].values() if t.get("call"))
    return str(token["call"])


# -- deployment options and history ------------------------------------------------------


def test_scripts_in_other_languages_can_be_refused_at_deployment(backend: Backend) -> None:
    strict = Runtime(backend, reject_scripts=True)
    with pytest.raises(InvalidDefinition) as info:
        strict.deploy((EVENTS / "script_task_groovy.bpmn").read_bytes(), file="script_task_groovy.bpmn")
    assert info.value.code == "UNSUPPORTED_SCRIPT" and info.value.element_id == "groovy"


def test_history_records_elements_entered_and_left(runtime: Runtime) -> None:
    instance_id = runtime.start(unique_id="script_tasks", variables={"price": 1, "quantity": 2, "name": "x"})
    entries = runtime.history(instance_id)
    assert entries[0]["type"] == "instance.started"
    entered = [e["elementId"] for e in entries if e["type"] == "element.entered"]
    assert entered == ["start", "compute", "feelScript", "juelScript", "end"]


FAILING_TIMER = b"""<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" targetNamespace="t">
  <process id="failingTimer" isExecutable="true">
    <startEvent id="s" /><sequenceFlow id="f1" sourceRef="s" targetRef="wait" />
    <intermediateCatchEvent id="wait"><timerEventDefinition><timeDuration>PT1H</timeDuration></timerEventDefinition>
    </intermediateCatchEvent>
    <sequenceFlow id="f2" sourceRef="wait" targetRef="gw" />
    <exclusiveGateway id="gw" />
    <sequenceFlow id="f3" sourceRef="gw" targetRef="e">
      <conditionExpression>${missing}</conditionExpression>
    </sequenceFlow>
    <endEvent id="e" />
  </process>
</definitions>"""


def test_a_failing_timer_backs_off_then_stops_without_starving_others(runtime: Runtime, clock: Clock) -> None:
    runtime.deploy(FAILING_TIMER, file="failing.bpmn")
    failing = runtime.start(unique_id="failingTimer")
    healthy = runtime.start(unique_id="boundary_timer_interrupting")
    clock.now += 2 * HOUR
    assert runtime.fire_due_timers() == 1  # the healthy one fires; the failing one is moved on
    assert open_elements(runtime, healthy) == ["escalated"]
    for _ in range(2):
        clock.now += 10 * 60_000
        assert runtime.fire_due_timers() == 0
    assert instance_timers(runtime, clock.now + 100 * HOUR) == []  # three failures: no longer due
    sub = next(iter(runtime.instance(failing).state["subs"].values()))
    assert sub["incident"] and sub["failures"] == 3 and "missing" in sub["error"]
    failures = [e for e in runtime.history(failing) if e["type"] == "timer.failed"]
    assert [e["failures"] for e in failures] == [1, 2, 3]


@pytest.mark.parametrize(("ok", "expected"), [(False, ["handle"]), (True, [])])
def test_bpmn_error_of_a_called_process_reaches_the_call_activity_boundary(
    runtime: Runtime, ok: bool, expected: list[str]
) -> None:
    parent = runtime.start(unique_id="call_activity_error_parent", variables={"ok": ok})
    child = _child_of(runtime, parent)
    [work] = runtime.instance_tasks(child)
    runtime.complete(work.id, "someone")
    assert runtime.instance(child).ended
    assert open_elements(runtime, parent) == expected
    assert runtime.instance(parent).ended is ok


# -- definitions across workers ------------------------------------------------------------

FRESH = """<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" targetNamespace="t">
  <process id="fresh" name="fresh" isExecutable="true">
    <startEvent id="s" /><sequenceFlow id="f1" sourceRef="s" targetRef="{task}" />
    <userTask id="{task}" /><sequenceFlow id="f2" sourceRef="{task}" targetRef="e" />
    <endEvent id="e" />
  </process>
</definitions>"""


def test_a_deployment_on_one_worker_is_used_by_another_within_a_second(runtime: Runtime, clock: Clock) -> None:
    """A worker reads the cache generation at most once a second of its monotonic clock (no
    backend read per use case), so another worker's deployment reaches it within 1 s."""
    seconds = [0.0]
    # another runtime, so another definition cache (the store's client may be shared: it caches nothing)
    other = Runtime(runtime.backend, EVENTS, now_ms=clock, monotonic=lambda: seconds[0])
    for version, task in ((1, "first"), (2, "second")):
        runtime.deploy(FRESH.format(task=task).encode(), file="fresh.bpmn")
        if version == 2:
            seconds[0] += 0.999  # within the second: the other worker may use the version it knows
            assert open_elements(other, other.start(unique_id="fresh")) == ["first"]
            seconds[0] += 0.001
        else:
            seconds[0] += 1.0
        assert open_elements(other, other.start(unique_id="fresh")) == [task]
    # the deploying worker itself uses the new version at once
    runtime.deploy(FRESH.format(task="third").encode(), file="fresh.bpmn")
    assert open_elements(runtime, runtime.start(unique_id="fresh")) == ["third"]
