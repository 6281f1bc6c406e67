"""``Idempotency-Key`` (API.md, "Writes that may be retried") on every backend: the
backend's records, then the contract over HTTP (replay, in progress, reuse).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from backends import once
from backends.base import Backend, InstanceQuery
from backends.partitions import id_scope
from bpm.api.idempotency import record_key, request_fingerprint, write_id
from bpm.errors import BackendUnavailable, Conflict
from bpm.runtime import Runtime
from tests.api_support import BASE, Api, fails, make_app, ok
from tests.conftest import DATA, PROCESSES
from tests.redis_cluster_support import wait_until

# -- the backend's records ------------------------------------------------------------------


def test_a_record_is_reserved_once_then_answers_what_was_stored(backend: Backend) -> None:
    assert backend.idempotency_begin("k1", "fp", 60_000) == ("new", None)
    assert backend.idempotency_begin("k1", "fp", 60_000) == ("running", None)
    assert backend.idempotency_begin("k1", "other", 60_000) == ("reused", None)
    backend.idempotency_finish("k1", "other", 200, "not mine", 60_000)  # not the holder: ignored
    backend.idempotency_finish("k1", "fp", 201, '{"data": "x"}', 60_000)
    assert backend.idempotency_begin("k1", "fp", 60_000) == ("done", {"status": 201, "body": '{"data": "x"}'})
    assert backend.idempotency_begin("k1", "other", 60_000) == ("reused", None)


def test_a_released_record_runs_again_as_a_retry_and_records_expire(backend: Backend) -> None:
    assert backend.idempotency_begin("k2", "fp", 60_000)[0] == "new"
    backend.idempotency_release("k2", "fp")
    assert backend.idempotency_begin("k2", "fp", 60_000)[0] == "retry"  # its write may have committed
    assert backend.idempotency_begin("k2", "fp", 60_000)[0] == "running"
    backend.idempotency_release("k2", "fp")
    assert backend.idempotency_begin("k2", "other", 60_000)[0] == "new"  # a released key may serve another request
    backend.idempotency_finish("k2", "other", 200, "{}", 50)
    wait_until(lambda: backend.idempotency_begin("k2", "fp", 60_000)[0] == "new", 10, "the record to expire")


def test_a_record_whose_lock_ran_out_is_reserved_again_as_a_retry(redis_backend: Backend) -> None:
    backend = redis_backend
    assert backend.idempotency_begin("k3", "fp", 50, 60_000)[0] == "new"
    wait_until(lambda: backend.idempotency_begin("k3", "fp", 60_000, 60_000)[0] == "retry", 10, "the lock to run out")
    assert backend.idempotency_begin("k3", "fp", 60_000, 60_000)[0] == "running"  # locked again, record kept
    assert backend.idempotency_begin("k3", "other", 60_000, 60_000)[0] == "reused"


def test_on_memory_a_running_record_stays_running(memory_backend: Backend) -> None:
    """A request can only vanish together with the memory backend's process and records."""
    assert memory_backend.idempotency_begin("k4", "fp", 1, 60_000)[0] == "new"
    assert memory_backend.idempotency_begin("k4", "fp", 1, 60_000)[0] == "running"


def test_a_keyed_write_is_made_once_and_replayed_on_every_later_run(redis_backend: Backend) -> None:
    runtime = Runtime(redis_backend, PROCESSES)
    runtime.deploy_directory()
    request_id = uuid.uuid4().hex
    runs = []
    for _ in range(3):  # three runs of one request (a worker died after the first one's write)
        with once.keyed(once.KeyedWrite(request_id, 60_000)) as write, id_scope(request_id):
            runs.append((runtime.start(process_name="booking room", user="alice"), write.replayed))
    first = runs[0][0]
    assert runs == [(first, False), (first, True), (first, True)]
    found, total = redis_backend.list_instances(InstanceQuery(process_key="bookingRoom"))
    assert total == 1 and found[0].id == first
    assert redis_backend.idempotency_committed(request_id)
    assert not redis_backend.idempotency_committed(uuid.uuid4().hex)


def test_a_run_that_may_only_replay_writes_nothing_elsewhere(redis_backend: Backend) -> None:
    runtime = Runtime(redis_backend, PROCESSES)
    runtime.deploy_directory()
    instance_id = runtime.start(process_name="booking room", user="alice")
    [task] = runtime.instance_tasks(instance_id)
    with once.keyed(once.KeyedWrite(uuid.uuid4().hex, 60_000, must_replay=True)), pytest.raises(Conflict) as raised:
        runtime.assign(task.id, ["fred"])
    assert raised.value.code == "IDEMPOTENT_REPLAY_MISMATCH"
    assert redis_backend.task(task.id).assignee is None  # type: ignore[union-attr]


# -- over HTTP ------------------------------------------------------------------------------


@pytest.fixture
def client(backend: Backend) -> FlaskClient:
    return make_app(backend).test_client()


def keyed(key: str) -> dict[str, str]:
    return {"Idempotency-Key": key}


def test_a_repeated_start_is_replayed_and_starts_nothing(client: FlaskClient) -> None:
    api = Api(client)
    body = {"processName": "booking room"}
    first = client.post(f"{BASE}/process/start?user=alice", json=body, headers=keyed("start-1"))
    instance_id = ok(first)
    assert "Idempotent-Replayed" not in first.headers
    again = client.post(f"{BASE}/process/start?user=alice", json=body, headers=keyed("start-1"))
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()
    api.identity("fred", groups=["facilities"])
    _, total = api.query(group="facilities")
    assert total == 1  # one instance, one review task
    other = ok(client.post(f"{BASE}/process/start?user=alice", json=body, headers=keyed("start-2")))
    assert other != instance_id


def test_a_repeated_complete_is_replayed_not_task_not_active(client: FlaskClient) -> None:
    api = Api(client)
    instance_id = api.start("booking room")
    api.identity("fred", groups=["facilities"])
    task_id = api.task(instance_id, "ReviewBooking")["id"]
    url = f"{BASE}/tasks/{task_id}/complete?user=fred"
    assert ok(client.post(url, json={"RoomObject": {"capacity": 4}}, headers=keyed("done-1"))) == ""
    again = client.post(url, json={"RoomObject": {"capacity": 4}}, headers=keyed("done-1"))
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    fails(client.post(url, json={"RoomObject": {"capacity": 4}}), 409, "TASK_NOT_ACTIVE")  # no key: a new request


def test_a_key_reused_for_another_request_is_422_and_a_running_one_409(client: FlaskClient, backend: Backend) -> None:
    api = Api(client)
    instance_id = api.start("booking room")
    api.identity("fred", groups=["facilities"])
    task_id = api.task(instance_id, "ReviewBooking")["id"]
    ok(client.post(f"{BASE}/tasks/{task_id}/claim?user=fred", headers=keyed("k")))
    fails(client.post(f"{BASE}/tasks/{task_id}/unclaim?user=fred", headers=keyed("k")), 422, "IDEMPOTENCY_KEY_REUSED")
    # a request still running holds its key: reserve it as the hook would
    record = record_key("anonymous:", "fred", "busy")  # authentication off: the anonymous caller
    fingerprint = request_fingerprint("POST", f"{BASE}/tasks/{task_id}/unclaim?user=fred", b"")
    assert backend.idempotency_begin(record, fingerprint, 60_000)[0] == "new"
    fails(client.post(f"{BASE}/tasks/{task_id}/unclaim?user=fred", headers=keyed("busy")), 409, "REQUEST_IN_PROGRESS")
    # an error answer is kept too: the same request gets the same answer
    url = f"{BASE}/tasks/{task_id}/claim?user=someone"
    first = client.post(url, headers=keyed("taken"))
    fails(first, 409, "TASK_ALREADY_CLAIMED")
    assert client.post(url, headers=keyed("taken")).headers["Idempotent-Replayed"] == "true"


def test_a_malformed_key_is_400(client: FlaskClient) -> None:
    for bad in ("", "x" * 129, "a b", "é"):
        response = client.post(f"{BASE}/process/start", json={"processName": "booking room"}, headers=keyed(bad))
        fails(response, 400, "VALIDATION_ERROR")


# -- a run cut off after its write (in process; tests/test_idempotency_crash.py kills a worker) --


@pytest.fixture
def short_lock_client(redis_backend: Backend) -> FlaskClient:
    return make_app(redis_backend, BPM_IDEMPOTENCY_LOCK="100ms").test_client()


def lose_the_answers(monkeypatch: pytest.MonkeyPatch, backend: Backend) -> None:
    """The worker "dies" after every write: the answer is never stored, the key stays running."""
    monkeypatch.setattr(backend, "idempotency_finish", lambda *args, **kwargs: None)


def once_not_running(send: Callable[[], Any]) -> Any:
    """Repeat a request while it is 409 REQUEST_IN_PROGRESS (until the lock runs out)."""
    answers: list[Any] = []

    def answered() -> bool:
        answers.append(send())
        return answers[-1].status_code != 409 or answers[-1].get_json()["error"] != "REQUEST_IN_PROGRESS"

    wait_until(answered, 10, "the lock to run out")
    return answers[-1]


def test_a_start_retried_after_its_answer_was_lost_answers_the_same_instance(
    short_lock_client: FlaskClient, redis_backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = short_lock_client
    url, body = f"{BASE}/process/start?user=alice", {"processName": "booking room"}
    lose_the_answers(monkeypatch, redis_backend)
    first = ok(client.post(url, json=body, headers=keyed("lost-start")))
    again = once_not_running(lambda: client.post(url, json=body, headers=keyed("lost-start")))
    assert ok(again) == first and again.headers["Idempotent-Replayed"] == "true"
    found, total = redis_backend.list_instances(InstanceQuery(process_key="bookingRoom"))
    assert total == 1 and found[0].id == first


def test_a_complete_retried_after_its_answer_was_lost_answers_success(
    short_lock_client: FlaskClient, redis_backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = short_lock_client
    api = Api(client)
    instance_id = api.start("booking room")
    api.identity("fred", groups=["facilities"])
    task_id = api.task(instance_id, "ReviewBooking")["id"]
    url, body = f"{BASE}/tasks/{task_id}/complete?user=fred", {"RoomObject": {"capacity": 4}}
    lose_the_answers(monkeypatch, redis_backend)
    assert ok(client.post(url, json=body, headers=keyed("lost-done"))) == ""
    again = once_not_running(lambda: client.post(url, json=body, headers=keyed("lost-done")))
    assert ok(again) == "" and again.headers["Idempotent-Replayed"] == "true"
    entries = [e["type"] for e in redis_backend.history(instance_id)]
    assert entries.count("task.completed") == 1


def test_a_claim_and_an_instance_assign_retried_after_a_lost_answer_succeed(
    short_lock_client: FlaskClient, redis_backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = short_lock_client
    api = Api(client)
    instance_id = api.start("booking room")
    api.identity("fred", groups=["facilities"])
    task_id = api.task(instance_id, "ReviewBooking")["id"]
    lose_the_answers(monkeypatch, redis_backend)
    claim = f"{BASE}/tasks/{task_id}/claim?user=fred"
    assert ok(client.post(claim, headers=keyed("lost-claim"))) == ""
    assert ok(once_not_running(lambda: client.post(claim, headers=keyed("lost-claim")))) == ""
    assign = f"{BASE}/instance/{instance_id}/tasks/assign?user=bob"
    first = client.post(assign, headers=keyed("lost-assign")).get_json()["data"]
    again = once_not_running(lambda: client.post(assign, headers=keyed("lost-assign")))
    assert again.status_code == 200 and again.get_json()["data"] == first == [task_id]
    entries = [e["type"] for e in redis_backend.history(instance_id)]
    assert entries.count("task.claimed") == 1 and entries.count("task.assigned") == 1


def test_a_write_answered_503_is_not_made_again_by_the_retry(
    redis_backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 503 after the write committed (a lost reply, a replica that did not confirm) releases
    the key; the retry finds the commit. (The memory backend never answers 503.)"""
    client = make_app(redis_backend).test_client()
    api = Api(client)
    instance_id = api.start("booking room")
    api.identity("fred", groups=["facilities"])
    task_id = api.task(instance_id, "ReviewBooking")["id"]
    runtime = client.application.extensions["bpm_runtime"]
    complete = runtime.complete

    def complete_then_unavailable(*args: Any, **kwargs: Any) -> None:
        complete(*args, **kwargs)
        raise BackendUnavailable("the reply was lost")

    monkeypatch.setattr(runtime, "complete", complete_then_unavailable)
    url, body = f"{BASE}/tasks/{task_id}/complete?user=fred", {"RoomObject": {"capacity": 4}}
    fails(client.post(url, json=body, headers=keyed("unknown")), 503, "BACKEND_UNAVAILABLE")
    monkeypatch.setattr(runtime, "complete", complete)
    again = client.post(url, json=body, headers=keyed("unknown"))
    assert ok(again) == "" and again.headers["Idempotent-Replayed"] == "true"
    entries = [e["type"] for e in redis_backend.history(instance_id)]
    assert entries.count("task.completed") == 1


def test_the_lock_is_a_setting_and_a_bad_one_stops_start_up(memory_backend: Backend) -> None:
    make_app(memory_backend, BPM_IDEMPOTENCY_LOCK="500ms")
    make_app(memory_backend, BPM_IDEMPOTENCY_LOCK="2s")
    with pytest.raises(ValueError, match="BPM_IDEMPOTENCY_LOCK"):
        make_app(memory_backend, BPM_IDEMPOTENCY_LOCK="soon")


def test_external_task_routes_retried_after_a_lost_answer(
    redis_backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fetchAndLock is not keyed: its retry fetches again (the lost answer's locks run out);
    a complete answers success and completes once."""
    client = make_app(redis_backend, DATA / "events", BPM_IDEMPOTENCY_LOCK="100ms").test_client()
    runtime = client.application.extensions["bpm_runtime"]
    instance_id = runtime.start(unique_id="external_tasks", variables={"amount": 5})
    lose_the_answers(monkeypatch, redis_backend)
    fetch = f"{BASE}/external-task/fetchAndLock"
    body = {"workerId": "w1", "maxTasks": 1, "topics": [{"topicName": "payments", "lockDuration": 60_000}]}
    [first] = ok(client.post(fetch, json=body, headers=keyed("lost-fetch")))
    again = once_not_running(lambda: client.post(fetch, json=body, headers=keyed("lost-fetch")))
    assert ok(again) == []  # fetched again: the one payments task is still locked by the lost answer
    url = f"{BASE}/external-task/{first['id']}/complete"
    done = {"workerId": "w1", "variables": {"paid": True}}
    assert ok(client.post(url, json=done, headers=keyed("lost-ext"))) == ""
    retried = once_not_running(lambda: client.post(url, json=done, headers=keyed("lost-ext")))
    assert ok(retried) == "" and retried.headers["Idempotent-Replayed"] == "true"
    entries = [e["type"] for e in redis_backend.history(instance_id)]
    assert entries.count("external.completed") == 1


def test_a_retry_racing_a_first_run_that_commits_after_its_lock_answers_success(
    short_lock_client: FlaskClient, redis_backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first run is slow, not dead: it commits right after the retry looked for its commit."""
    client = short_lock_client
    api = Api(client)
    instance_id = api.start("booking room")
    api.identity("fred", groups=["facilities"])
    task_id = api.task(instance_id, "ReviewBooking")["id"]
    url, body = f"{BASE}/tasks/{task_id}/complete?user=fred", {"RoomObject": {"capacity": 4}}
    record = record_key("anonymous:", "fred", "slow")
    fingerprint = request_fingerprint("POST", url, json.dumps(body).encode())
    assert redis_backend.idempotency_begin(record, fingerprint, 1, 60_000)[0] == "new"  # the first run
    runtime = client.application.extensions["bpm_runtime"]
    probe = redis_backend.idempotency_committed

    def first_run_commits_now(request_id: str) -> bool:
        monkeypatch.setattr(redis_backend, "idempotency_committed", probe)
        with once.keyed(once.KeyedWrite(write_id(record, fingerprint), 60_000)):
            runtime.complete(task_id, "fred", body)
        return False

    monkeypatch.setattr(redis_backend, "idempotency_committed", first_run_commits_now)
    headers = {**keyed("slow"), "Content-Type": "application/json"}
    again = once_not_running(lambda: client.post(url, data=json.dumps(body), headers=headers))
    assert ok(again) == "" and again.headers["Idempotent-Replayed"] == "true"
    entries = [e["type"] for e in redis_backend.history(instance_id)]
    assert entries.count("task.completed") == 1
