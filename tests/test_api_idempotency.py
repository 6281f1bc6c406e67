"""``Idempotency-Key`` (API.md, "Writes that may be retried") on every backend: the
backend's records, then the contract over HTTP (replay, in progress, reuse).
"""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from backends.base import Backend
from bpm.api.idempotency import record_key, request_fingerprint
from tests.api_support import BASE, Api, fails, make_app, ok
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


def test_a_released_record_runs_again_and_records_expire(backend: Backend) -> None:
    assert backend.idempotency_begin("k2", "fp", 60_000)[0] == "new"
    backend.idempotency_release("k2", "fp")
    assert backend.idempotency_begin("k2", "fp", 60_000)[0] == "new"
    backend.idempotency_finish("k2", "fp", 200, "{}", 50)
    wait_until(lambda: backend.idempotency_begin("k2", "fp", 60_000)[0] == "new", 10, "the record to expire")


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
