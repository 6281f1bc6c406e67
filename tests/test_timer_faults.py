"""The timer loop survives anything: faults injected through real objects, on every backend.

Faults: a planner error (a call activity to a process that is not deployed), a
backend that refuses a commit or a take (a subclass of a real backend whose method
raises, as Redis does under OOM or MISCONF), a clock that jumps, a loop round that
raises, a timer thread that dies. Nothing sleeps: clocks are injected, threads are
awaited with bounded waits.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from backends.base import Backend, Step
from backends.memory import MemoryBackend
from bpm import worker
from bpm.runtime import Runtime
from bpm.timer_cases import TIMER_BACKOFF_MS, TIMER_RETRIES
from tests.conftest import REDIS_URL, make_redis_backend
from tests.test_runtime_events import EVENTS, HOUR, Clock, open_elements

MISSING_CALL = b"""<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="t">
  <process id="timerThenMissingCall" isExecutable="true">
    <startEvent id="s" />
    <sequenceFlow id="f1" sourceRef="s" targetRef="wait" />
    <intermediateCatchEvent id="wait">
      <timerEventDefinition><timeDuration>PT1H</timeDuration></timerEventDefinition>
    </intermediateCatchEvent>
    <sequenceFlow id="f2" sourceRef="wait" targetRef="call" />
    <callActivity id="call" calledElement="notDeployedAnywhere" />
    <sequenceFlow id="f3" sourceRef="call" targetRef="e" />
    <endEvent id="e" />
  </process>
</definitions>"""


class BackendFault(Exception):
    """What a backend raises when its store refuses a command (not a BpmError)."""


class FaultMixin:
    """Makes a real backend refuse chosen commits and takes, like Redis under OOM or MISCONF."""

    refuse_steps: Callable[[list[Step]], bool] = staticmethod(lambda steps: False)  # type: ignore[assignment]
    refuse_take: Callable[[str], bool] = staticmethod(lambda member: False)  # type: ignore[assignment]
    refuse_due: int = 0

    def apply_steps(self, steps: list[Step]) -> None:
        if self.refuse_steps(steps):
            raise BackendFault("OOM command not allowed when used memory > 'maxmemory'")
        super().apply_steps(steps)  # type: ignore[misc]

    def take_timer(self, member: str, due: int, next_due: int | None) -> bool:
        if self.refuse_take(member):
            raise BackendFault("MISCONF Redis is configured to save RDB snapshots, but it's currently unable")
        return super().take_timer(member, due, next_due)  # type: ignore[misc, no-any-return]

    def due_timers(self, now: int, limit: int = 100) -> list[tuple[str, int]]:
        if self.refuse_due > 0:
            self.refuse_due -= 1
            raise BackendFault("LOADING Redis is loading the dataset in memory")
        return super().due_timers(now, limit)  # type: ignore[misc, no-any-return]


class FaultyMemory(FaultMixin, MemoryBackend):
    pass


def faulty_backend(kind: str) -> Backend:
    if kind == "memory":
        return FaultyMemory()
    from backends.redis import RedisBackend

    make_redis_backend()  # skips (or fails under CI) when no Redis answers
    cls = type("FaultyRedis", (FaultMixin, RedisBackend), {})
    return cls(REDIS_URL, prefix=f"bpmtest:{uuid.uuid4().hex[:12]}")  # type: ignore[no-any-return]


@pytest.fixture(params=["memory", "redis"])
def faulty(request: pytest.FixtureRequest) -> Iterator[Any]:
    backend = faulty_backend(request.param)
    backend.clear()
    yield backend
    backend.clear()
    backend.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def rt(faulty: Any, clock: Clock) -> Runtime:
    runtime = Runtime(faulty, EVENTS, now_ms=clock)
    assert not runtime.deploy_directory().errors
    return runtime


def timer_subs(runtime: Runtime, instance_id: str) -> list[dict[str, Any]]:
    return [s for s in runtime.instance(instance_id).state["subs"].values() if s["kind"] == "timer"]


def instance_timers(runtime: Runtime, until: int) -> list[str]:
    return [m for m, _ in runtime.backend.due_timers(until, 1000) if m.startswith("inst|")]


# -- failing steps: back off, then an incident; the others still fire -------------------------


def test_three_failing_timers_do_not_starve_a_good_one_with_a_batch_of_three(rt: Runtime, clock: Clock) -> None:
    rt.deploy(MISSING_CALL, file="missing-call.bpmn")
    failing = [rt.start(unique_id="timerThenMissingCall") for _ in range(3)]
    good = rt.start(unique_id="boundary_timer_interrupting")  # due after the failing ones
    clock.now += 2 * HOUR
    rounds = 0
    while open_elements(rt, good) != ["escalated"]:
        rounds += 1
        assert rounds <= 3, "the good timer starved behind the failing ones"
        worker.run_once(rt, batch=3)
    for _ in range(TIMER_RETRIES):  # each failure backs off; the last one makes an incident
        clock.now += 8 * TIMER_BACKOFF_MS
        worker.run_once(rt, batch=3)
    for instance_id in failing:
        [sub] = timer_subs(rt, instance_id)
        assert sub["incident"] and sub["failures"] == TIMER_RETRIES
        assert "notDeployedAnywhere" in sub["error"]
        assert [i["type"] for i in rt.incidents(instance_id)] == ["timer"]
    assert instance_timers(rt, clock.now + 1000 * HOUR) == []


def test_a_backend_error_on_commit_backs_the_timer_off_and_makes_an_incident(
    rt: Runtime, faulty: Any, clock: Clock
) -> None:
    victim = rt.start(unique_id="boundary_timer_interrupting")
    other = rt.start(unique_id="boundary_timer_interrupting")

    def refuse(steps: list[Step]) -> bool:  # the firing step is refused; recording its failure is not
        return any(s.instance.id == victim and not any(h["type"] == "timer.failed" for h in s.history) for s in steps)

    faulty.refuse_steps = refuse
    clock.now += 2 * HOUR
    assert rt.fire_due_timers() == 1  # no exception escapes; the other instance's timer fires
    assert open_elements(rt, other) == ["escalated"]
    for _ in range(TIMER_RETRIES - 1):
        clock.now += 8 * TIMER_BACKOFF_MS
        assert rt.fire_due_timers() == 0
    [sub] = timer_subs(rt, victim)
    assert sub["incident"] and sub["failures"] == TIMER_RETRIES and "OOM" in sub["error"]
    assert [e["errorCode"] for e in rt.history(victim) if e["type"] == "timer.failed"] == ["BackendFault"] * 3
    faulty.refuse_steps = lambda steps: False
    rt.retry_timer(victim, next(iter(rt.instance(victim).state["subs"])))
    assert rt.fire_due_timers() == 1
    assert open_elements(rt, victim) == ["escalated"]


def test_a_backend_that_refuses_every_write_holds_timers_back_until_it_recovers(
    rt: Runtime, faulty: Any, clock: Clock
) -> None:
    first = rt.start(unique_id="boundary_timer_interrupting")
    faulty.refuse_steps = lambda steps: True  # nothing can be written, not even a failure
    faulty.refuse_take = lambda member: True
    clock.now += 10 * HOUR  # the timer start event (R3/PT10H) is due too: its take is refused
    assert rt.fire_due_timers() == 0  # nothing escapes, nothing fires
    assert rt.fire_due_timers() == 0  # held back in this process: not tried again at once
    faulty.refuse_steps = lambda steps: False
    faulty.refuse_take = lambda member: False
    assert rt.fire_due_timers() == 0  # still held back
    clock.now += TIMER_BACKOFF_MS
    assert rt.fire_due_timers() == 2  # recovered: the boundary timer and the timer start event
    assert open_elements(rt, first) == ["escalated"]


def test_the_loop_survives_a_round_that_raises_something_else_than_a_bpm_error(rt: Runtime, faulty: Any) -> None:
    faulty.refuse_due = 2  # the first two rounds fail listing what is due
    stop = threading.Event()
    rounds: list[int] = []
    real = rt.fire_due_timers

    def counting(now: int | None = None, limit: int = 100) -> int:
        rounds.append(1)
        if len(rounds) >= 3:
            stop.set()
        return real(now, limit)

    rt.fire_due_timers = counting  # type: ignore[method-assign]
    worker.run_loop(rt, stop, interval=0)
    assert len(rounds) == 3 and faulty.refuse_due == 0


# -- a clock that jumps ---------------------------------------------------------------------------


def test_a_clock_jump_fires_each_late_timer_once_and_a_jump_back_fires_nothing(rt: Runtime, clock: Clock) -> None:
    cycling = rt.start(unique_id="boundary_timer_non_interrupting")  # R3/PT1H reminders
    clock.now -= 100 * HOUR
    assert rt.fire_due_timers() == 0
    clock.now += 100 * HOUR + 1000 * HOUR
    assert worker.run_once(rt, batch=100) == 2  # the reminder cycle and the timer start event, once each
    assert open_elements(rt, cycling) == ["remind", "work"]
    assert all(s["due"] > clock.now or "left" in s for s in timer_subs(rt, cycling))
    assert worker.run_once(rt) == 0


# -- the in-web thread is supervised ------------------------------------------------------------


class Crash(BaseException):
    """Something that ends a thread (not an Exception: the loop does not catch it)."""


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_the_timer_thread_is_restarted_when_it_dies(memory_backend: MemoryBackend, clock: Clock) -> None:
    rt = Runtime(memory_backend, EVENTS, now_ms=clock)
    rt.deploy_directory()
    calls: list[int] = []
    second_round = threading.Event()

    def dying_once(now: int | None = None, limit: int = 100) -> int:
        calls.append(1)
        if len(calls) == 1:
            raise Crash("the thread dies")
        second_round.set()
        return 0

    rt.fire_due_timers = dying_once  # type: ignore[method-assign]
    timers = worker.TimerThread(rt, interval=0.01)
    try:
        assert second_round.wait(timeout=30), "the timer loop was not restarted"
        assert timers.restarts >= 1
    finally:
        timers()
    assert not timers.thread.is_alive() and not timers.supervisor.is_alive()
