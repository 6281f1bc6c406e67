"""The audit trail: ``GET …/instance/<id>/history`` after claims, completions, assignments, on every backend."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from backends.base import Backend
from tests.api_support import BASE, Api, fails, make_app, ok

UNKNOWN_ID = "999-00000000-0000-0000-0000-000000000000"
KEYS = ["time", "type", "taskId", "taskName", "elementId", "user", "actor"]


@pytest.fixture
def app(backend: Backend) -> Flask:
    return make_app(backend)


@pytest.fixture
def api(app: Flask) -> Api:
    return Api(app.test_client())


def history(api: Api, instance_id: str) -> list[dict[str, Any]]:
    response = api.get(f"/instance/{instance_id}/history")
    entries = ok(response)
    assert response.get_json()["totalRecordCount"] == len(entries)
    for entry in entries:
        assert list(entry)[: len(KEYS)] == KEYS
        assert isinstance(entry["time"], int) and entry["time"] > 1_600_000_000_000
    assert [e["time"] for e in entries] == sorted(e["time"] for e in entries)
    return [e for e in entries if e["type"].startswith(("task.", "instance."))]  # the audit part of the trail


def brief(entries: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(e["type"], e["elementId"], e["user"], e["actor"]) for e in entries]


def test_a_new_instance_records_who_started_it(api: Api) -> None:
    instance_id = api.start("booking room", user="carol")
    [started] = history(api, instance_id)
    assert started["type"] == "instance.started" and started["definitionId"] == "bookingRoom:1"
    assert (started["user"], started["actor"], started["taskId"]) == ("carol", "carol", None)
    anonymous = ok(api.post("/process/start", json={"processName": "booking room"}))
    assert brief(history(api, anonymous)) == [("instance.started", None, None, None)]


def test_claim_unclaim_complete_are_recorded_per_task(api: Api) -> None:
    instance_id = api.start("booking room", {"RoomObject": {"capacity": 3}}, user="carol")
    review = api.task(instance_id, "ReviewBooking")
    api.identity("fred", groups=["facilities"])
    ok(api.claim(review["id"], "fred"))
    ok(api.claim(review["id"], "fred"))  # a repeated claim changes nothing and is not recorded
    ok(api.post(f"/tasks/{review['id']}/unclaim", query_string={"user": "fred"}))
    fails(api.claim(review["id"], "mallory"), 403, "NOT_CANDIDATE")  # refused: not recorded
    api.complete_ok(review["id"], "fred")  # unassigned: claimed and completed at once
    confirm = api.task(instance_id, "ConfirmBooking")
    api.complete_ok(confirm["id"], "carol")
    entries = history(api, instance_id)
    assert brief(entries) == [
        ("instance.started", None, "carol", "carol"),
        ("task.claimed", "ReviewBooking", "fred", "fred"),
        ("task.unclaimed", "ReviewBooking", "fred", "fred"),
        ("task.completed", "ReviewBooking", "fred", "fred"),
        ("task.completed", "ConfirmBooking", "carol", "carol"),
    ]
    assert {e["taskId"] for e in entries[1:4]} == {review["id"]}
    assert entries[1]["taskName"] == "Review booking" and entries[4]["taskId"] == confirm["id"]


def test_a_refused_completion_records_nothing(api: Api) -> None:
    instance_id = api.start("booking room")
    review = api.task(instance_id, "ReviewBooking")
    api.identity("fred", groups=["facilities"])
    fails(api.complete(review["id"], "fred", {"note": "no room object"}), 422, "EXPRESSION_ERROR")
    assert [e["type"] for e in history(api, instance_id)] == ["instance.started"]


def test_assign_delegate_and_instance_assign_are_recorded(api: Api) -> None:
    instance_id = api.start("parallel review", user="writer")
    legal = api.task(instance_id, "LegalReview")["id"]
    ok(api.post(f"/tasks/{legal}/assign", query_string={"user": "ann"}))
    ok(api.post(f"/tasks/{legal}/assign", query_string={"user": "ben"}))
    ok(api.post(f"/tasks/{legal}/assign?user=carl&user=dora"))
    ok(api.post(f"/instance/{instance_id}/tasks/assign", query_string={"user": "zoe"}))
    ok(api.client.delete(f"{BASE}/instance/{instance_id}"))
    entries = history(api, instance_id)[1:]
    assert [(e["type"], e["user"], e["previousAssignee"], e["owner"]) for e in entries[:3]] == [
        ("task.assigned", "ann", None, None),
        ("task.assigned", "ben", "ann", "ann"),
        ("task.delegated", None, "ben", "ann"),
    ]
    assert entries[2]["candidateUsers"] == ["carl", "dora"]
    assert sorted(e["elementId"] for e in entries[3:5]) == ["FinanceReview", "LegalReview"]
    assert {(e["type"], e["user"]) for e in entries[3:5]} == {("task.assigned", "zoe")}
    assert entries[5]["type"] == "instance.cancelled" and entries[5]["taskId"] is None
    assert len(entries) == 6
    assert all(e["actor"] is None for e in entries)  # no acting user for administration with auth off


def test_history_of_unknown_or_malformed_instances_is_404(api: Api) -> None:
    fails(api.get(f"/instance/{UNKNOWN_ID}/history"), 404, "INSTANCE_NOT_FOUND")
    for bad in ("%00", "a%20b", "x" * 201, ".."):
        fails(api.get(f"/instance/{bad}/history"), 404, "INSTANCE_NOT_FOUND")
    task_id = api.task(api.start("booking room"), "ReviewBooking")["id"]
    fails(api.get(f"/instance/{task_id}/history"), 404, "INSTANCE_NOT_FOUND")  # a task id is no instance id
