"""A completion on Redis costs one round trip when this process has just seen the task and its
instance (backends/redis_recent.py), and is never written on an out-of-date copy of them.

Two runtimes ("workers") share one store, each with its own RedisBackend: what one keeps is
out of date as soon as the other changes the task or the instance. The first worker then
completes exactly as it would reading the store: the same error, or a correct completion
after a retry. Round trips are counted as bench/bench_compare.py counts them (every request
redis-py sends).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import pytest
from redis.connection import AbstractConnection

from backends.base import Backend
from backends.redis import RedisBackend
from backends.redis_recent import LARGEST, RecentCopies
from bpm.errors import NotCandidate, TaskAlreadyClaimed, TaskNotActive
from bpm.records import Identity, Step
from bpm.runtime import Runtime
from tests.conftest import REDIS_URL, make_backend, make_cluster_backend, make_redis_backend

pytestmark = pytest.mark.redis

REVIEW = b"""<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL"
             xmlns:camunda="http://camunda.org/schema/1.0/bpmn" targetNamespace="t">
  <process id="review" isExecutable="true">
    <startEvent id="start" />
    <sequenceFlow id="f1" sourceRef="start" targetRef="check" />
    <userTask id="check" name="Check" camunda:candidateUsers="ann" camunda:candidateGroups="clerks" />
    <sequenceFlow id="f2" sourceRef="check" targetRef="end" />
    <endEvent id="end" />
  </process>
  <process id="pair" isExecutable="true">
    <startEvent id="s" />
    <sequenceFlow id="g1" sourceRef="s" targetRef="fork" />
    <parallelGateway id="fork" />
    <sequenceFlow id="g2" sourceRef="fork" targetRef="a" />
    <sequenceFlow id="g3" sourceRef="fork" targetRef="b" />
    <userTask id="a" name="A" camunda:candidateGroups="clerks" />
    <userTask id="b" name="B" camunda:candidateGroups="clerks" />
    <sequenceFlow id="g4" sourceRef="a" targetRef="join" />
    <sequenceFlow id="g5" sourceRef="b" targetRef="join" />
    <parallelGateway id="join" />
    <sequenceFlow id="g6" sourceRef="join" targetRef="e" />
    <endEvent id="e" />
  </process>
</definitions>
"""
B = TypeVar("B", bound=RedisBackend)
ANN = Identity("ann")  # a candidate by name only
CLERK = Identity("carl", frozenset({"clerks"}))
ZED = Identity("zed")  # no candidate


class Trips:
    """Requests redis-py writes to a server (each one round trip)."""

    def __init__(self) -> None:
        self.count = 0

    @contextmanager
    def counting(self, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
        original = AbstractConnection.send_packed_command

        def send(conn: Any, command: Any, check_health: bool = True) -> None:
            self.count += 1
            original(conn, command, check_health)

        with monkeypatch.context() as patch:
            patch.setattr(AbstractConnection, "send_packed_command", send)
            yield


def own_backend(cls: type[B], **options: Any) -> B:
    """A backend of class ``cls`` on the test server, under a prefix of its own."""
    probe = make_redis_backend()  # skips (fails under CI) when no Redis answers
    probe.clear()
    probe.close()
    return cls(REDIS_URL, prefix=f"bpmtest:{uuid.uuid4().hex[:12]}", **options)


def runtime_on(backend: Backend) -> Runtime:
    return Runtime(backend, definitions_max_age=3600.0)  # no definitions check within a test


@pytest.fixture(params=["redis", "cluster"])
def workers(request: pytest.FixtureRequest) -> Iterator[tuple[Runtime, Runtime]]:
    """Two runtimes, each with a backend of its own, on one store."""
    first = make_backend(request.param, request)
    assert isinstance(first, RedisBackend)
    first.clear()
    if request.param == "cluster":
        second = make_cluster_backend(request.getfixturevalue("redis_cluster_url"), prefix=first.prefix)
    else:
        second = make_redis_backend(prefix=first.prefix)
    one, other = runtime_on(first), runtime_on(second)
    one.deploy(REVIEW, file="review.bpmn")
    yield one, other
    first.clear()
    first.close()
    second.close()


def started(runtime: Runtime, process: str = "review") -> tuple[str, list[str]]:
    """A new instance and its tasks' ids, as this runtime lists them (which keeps them)."""
    instance_id = runtime.start(process_name=process, variables={}, user="ann")
    return instance_id, [task.id for task in runtime.instance_tasks(instance_id)]


def completions(runtime: Runtime, instance_id: str) -> list[tuple[str, str]]:
    return [(e["taskId"], e["user"]) for e in runtime.history(instance_id) if e["type"] == "task.completed"]


def status(runtime: Runtime, task_id: str) -> tuple[str, str | None]:
    task = runtime.backend.task(task_id)
    assert task is not None
    return task.status, task.assignee


# -- round trips ----------------------------------------------------------------------------


def test_a_lifecycle_is_four_round_trips(monkeypatch: pytest.MonkeyPatch) -> None:
    backend = own_backend(RedisBackend, id_block=100_000, partitions=1)  # ids reserved once
    try:
        runtime = runtime_on(backend)
        runtime.deploy(REVIEW, file="review.bpmn")

        def lifecycle() -> None:
            _, (task_id,) = started(runtime)
            runtime.claim(task_id, "ann")
            runtime.complete(task_id, "ann", {"ok": True})

        lifecycle()  # the first one reserves ids, loads the definition...
        trips = Trips()
        with trips.counting(monkeypatch):
            for _ in range(5):
                lifecycle()
        assert trips.count == 5 * 4  # start, instance tasks, claim, complete
    finally:
        backend.clear()
        backend.close()


def test_a_completion_on_kept_copies_is_one_round_trip_and_two_more_when_they_are_out_of_date(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = own_backend(RedisBackend)
    second = RedisBackend(REDIS_URL, prefix=first.prefix)
    try:
        one_trip_and_three(runtime_on(first), runtime_on(second), monkeypatch)
    finally:
        first.clear()
        first.close()
        second.close()


def one_trip_and_three(one: Runtime, other: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    one.deploy(REVIEW, file="review.bpmn")
    started(one)  # ids reserved, the definition read
    instance_id, (a, b) = started(one, "pair")
    other.complete(a, "carl", {"x": 1}, CLERK)  # the instance changes: the kept copy is out of date
    trips = Trips()
    with trips.counting(monkeypatch):
        one.complete(b, "carl", {}, CLERK)
    assert trips.count == 3  # refused, read again, written
    _, (c,) = started(one)
    with trips.counting(monkeypatch):
        one.complete(c, "carl", {}, CLERK)
    assert trips.count == 3 + 1
    assert completions(one, instance_id) == [(a, "carl"), (b, "carl")]


# -- out of date: another worker changed the task or the instance --------------------------


def test_claimed_by_another_worker(workers: tuple[Runtime, Runtime]) -> None:
    one, other = workers
    instance_id, (task_id,) = started(one)
    other.claim(task_id, "carl", CLERK)
    with pytest.raises(TaskAlreadyClaimed):
        one.complete(task_id, "ann", {}, ANN)
    assert status(one, task_id) == ("active", "carl")
    assert completions(one, instance_id) == []


def test_assigned_to_another_user_by_another_worker(workers: tuple[Runtime, Runtime]) -> None:
    one, other = workers
    _, (task_id,) = started(one)
    one.claim(task_id, "ann", ANN)  # kept as ann's
    other.assign(task_id, ["carl"])
    with pytest.raises(TaskAlreadyClaimed):
        one.complete(task_id, "ann", {}, ANN)
    assert status(one, task_id) == ("active", "carl")


def test_delegated_away_by_another_worker(workers: tuple[Runtime, Runtime]) -> None:
    """Kept: ann a candidate; stored: the candidate users are zed alone. A write checking only
    that the task is active and unassigned would complete it for ann."""
    one, other = workers
    instance_id, (task_id,) = started(one)
    other.assign(task_id, ["zed", "yan"])
    with pytest.raises(NotCandidate):
        one.complete(task_id, "ann", {}, ANN)
    assert status(one, task_id) == ("active", None)
    assert completions(one, instance_id) == []


def test_unclaimed_by_another_worker_then_delegated(workers: tuple[Runtime, Runtime]) -> None:
    """Kept: assigned to ann (no candidate check needed); stored: unassigned, ann no candidate."""
    one, other = workers
    _, (task_id,) = started(one)
    one.claim(task_id, "ann", ANN)
    other.unclaim(task_id, "ann")
    other.assign(task_id, ["zed", "yan"])
    with pytest.raises(NotCandidate):
        one.complete(task_id, "ann", {}, ANN)
    assert status(one, task_id) == ("active", None)


def test_unclaimed_by_another_worker_completes_for_a_candidate(workers: tuple[Runtime, Runtime]) -> None:
    one, other = workers
    instance_id, (task_id,) = started(one)
    one.claim(task_id, "ann", ANN)
    other.unclaim(task_id, "ann")
    one.complete(task_id, "ann", {}, ANN)
    assert status(one, task_id) == ("completed", "ann")
    assert completions(one, instance_id) == [(task_id, "ann")]


def test_assigned_to_this_user_by_another_worker(workers: tuple[Runtime, Runtime]) -> None:
    """Kept: zed no candidate (NotCandidate on the copy); stored: assigned to zed, who may complete."""
    one, other = workers
    instance_id, (task_id,) = started(one)
    other.assign(task_id, ["zed"])
    one.complete(task_id, "zed", {}, ZED)
    assert status(one, task_id) == ("completed", "zed")
    assert completions(one, instance_id) == [(task_id, "zed")]


def test_completed_by_another_worker(workers: tuple[Runtime, Runtime]) -> None:
    one, other = workers
    instance_id, (task_id,) = started(one)
    one.claim(task_id, "ann", ANN)
    other.complete(task_id, "ann", {}, ANN)
    with pytest.raises(TaskNotActive):
        one.complete(task_id, "ann", {}, ANN)
    assert completions(one, instance_id) == [(task_id, "ann")]


def test_cancelled_by_another_worker(workers: tuple[Runtime, Runtime]) -> None:
    one, other = workers
    instance_id, (task_id,) = started(one)
    one.claim(task_id, "ann", ANN)
    other.cancel_instance(instance_id)
    with pytest.raises(TaskNotActive):
        one.complete(task_id, "ann", {}, ANN)
    assert status(one, task_id) == ("cancelled", "ann")
    assert completions(one, instance_id) == []


def test_instance_changed_by_another_worker(workers: tuple[Runtime, Runtime]) -> None:
    one, other = workers
    instance_id, (a, b) = started(one, "pair")
    other.complete(a, "carl", {"x": 1}, CLERK)
    one.complete(b, "carl", {"y": 2}, CLERK)
    instance = one.instance(instance_id)
    assert instance.ended
    assert instance.state["vars"] == {"x": 1, "y": 2}  # the write of b was decided on a's
    assert sorted(completions(one, instance_id)) == sorted([(a, "carl"), (b, "carl")])


def test_reads_but_the_completion_read_the_store(workers: tuple[Runtime, Runtime]) -> None:
    one, other = workers
    instance_id, (a, b) = started(one, "pair")
    other.complete(a, "carl", {"x": 1}, CLERK)
    other.claim(b, "carl", CLERK)
    assert one.task_variables(b) == {"x": 1}
    assert status(one, b) == ("active", "carl")
    assert [t.assignee for t in one.instance_tasks(instance_id)] == ["carl"]


# -- threads of one process share the kept copies -------------------------------------------


class HeldBackend(RedisBackend):
    """Holds the first write that completes a task until released."""

    held = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reached, self.release = threading.Event(), threading.Event()

    def apply_steps(self, steps: list[Step]) -> None:
        if not self.held and any(step.complete_task for step in steps):
            self.held = True
            self.reached.set()
            assert self.release.wait(60)
        super().apply_steps(steps)


def test_a_write_checks_the_copy_its_own_thread_decided_on() -> None:
    """Thread A decides on a copy where ann is a candidate and is held before its write; meanwhile
    this process delegates the task (and keeps its new hash). A's write must check the copy A
    read, not the newest one kept."""
    backend = own_backend(HeldBackend)
    try:
        runtime = runtime_on(backend)
        runtime.deploy(REVIEW, file="review.bpmn")
        instance_id, (task_id,) = started(runtime)
        failed: list[BaseException] = []

        def complete() -> None:
            try:
                runtime.complete(task_id, "ann", {}, ANN)
            except BaseException as exc:
                failed.append(exc)

        thread = threading.Thread(target=complete)
        thread.start()
        assert backend.reached.wait(60)
        runtime.assign(task_id, ["zed", "yan"])
        backend.release.set()
        thread.join(60)
        assert not thread.is_alive()
        assert [type(exc) for exc in failed] == [NotCandidate]
        assert status(runtime, task_id) == ("active", None)
        assert completions(runtime, instance_id) == []
    finally:
        backend.release.set()
        backend.clear()
        backend.close()


def test_threads_completing_tasks_of_the_same_instances(workers: tuple[Runtime, Runtime]) -> None:
    """Two threads of one process (one backend) and a thread of another complete the two tasks
    of each instance: every instance ends, each task completed once."""
    one, other = workers
    instances = [started(one, "pair") for _ in range(12)]
    errors: list[BaseException] = []

    def run(runtime: Runtime, pick: int) -> None:
        for _, tasks in instances:
            try:
                runtime.complete(tasks[pick], "carl", {f"v{pick}": pick}, CLERK)
            except TaskNotActive:
                pass
            except BaseException as exc:
                errors.append(exc)

    threads = [
        threading.Thread(target=run, args=(one, 0)),
        threading.Thread(target=run, args=(one, 1)),
        threading.Thread(target=run, args=(other, 1)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    for instance_id, tasks in instances:
        assert one.instance(instance_id).ended
        assert sorted(t for t, _ in completions(one, instance_id)) == sorted(tasks)
        assert one.instance(instance_id).state["vars"] == {"v0": 0, "v1": 1}


def test_kept_copies_are_bounded() -> None:
    recent = RecentCopies(limit=3)
    for n in range(5):
        recent.keep_task(f"1-{n}", ["ii", "1-0", "ct", str(n)])
    recent.keep_instance("1-0", "1||1-2 1-3 1-4||[]")
    assert [recent.pair(f"1-{n}") is not None for n in range(5)] == [False, False, True, True, True]
    recent.keep_instance("1-9", "1||1-4||" + "x" * LARGEST)  # too large to keep
    recent.keep_task("1-4", ["ii", "1-9", "ct", "4"])
    assert recent.pair("1-4") is None
