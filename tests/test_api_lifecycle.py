"""The example processes end to end through the API, and concurrent claims and completions."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from werkzeug.test import TestResponse

from backends.base import Backend
from tests.api_support import Api, fails, make_app, ok


@pytest.fixture
def app(backend: Backend) -> Flask:
    return make_app(backend)


@pytest.fixture
def api(app: Flask) -> Api:
    return Api(app.test_client())


def _booking_until_approval(api: Api, capacity: int) -> str:
    instance_id = api.start("booking room", {"RoomObject": {"capacity": capacity}}, user="alice")
    api.identity("fred", groups=["facilities"])
    review = api.task(instance_id, "ReviewBooking")
    ok(api.claim(review["id"], "fred"))
    api.complete_ok(review["id"], "fred")
    return instance_id


def test_booking_room_small_room_branch(api: Api) -> None:
    instance_id = _booking_until_approval(api, capacity=4)
    confirm = api.task(instance_id, "ConfirmBooking")
    assert confirm["assignee"] == "alice" and confirm["name"] == "Confirm booking"
    assert [t["id"] for t in api.query(user="alice")[0]] == [confirm["id"]]
    fails(api.complete(confirm["id"], "fred", {}), 409, "TASK_ALREADY_CLAIMED")
    api.complete_ok(confirm["id"], "alice")
    assert api.tasks(instance_id) == []
    instance = api.instance(instance_id)
    assert instance["ended"] is True and instance["activeTasks"] == []


def test_booking_room_large_room_approved(api: Api) -> None:
    instance_id = _booking_until_approval(api, capacity=25)
    [approval] = api.tasks(instance_id)
    assert approval["taskDefinitionKey"] == "ManagerApproval"
    api.identity("mona", groups=["managers"])
    ok(api.claim(approval["id"], "mona"))
    fails(api.complete(approval["id"], "mona", {}), 422, "EXPRESSION_ERROR")  # 'approved' missing
    assert api.task(instance_id, "ManagerApproval")["assignee"] == "mona"
    api.complete_ok(approval["id"], "mona", {"approved": True})
    confirm = api.task(instance_id, "ConfirmBooking")
    api.complete_ok(confirm["id"], "alice")
    assert api.instance(instance_id)["ended"] is True
    assert api.instance(instance_id)["variables"]["approved"] is True


def test_booking_room_large_room_rejected(api: Api) -> None:
    instance_id = _booking_until_approval(api, capacity=25)
    approval = api.task(instance_id, "ManagerApproval")
    api.identity("mona", groups=["managers"])
    api.complete_ok(approval["id"], "mona", {"approved": False})
    assert api.tasks(instance_id) == []
    assert api.instance(instance_id)["ended"] is True


def test_booking_room_started_without_a_user(api: Api) -> None:
    instance_id = api.start("booking room", {"RoomObject": {"capacity": 2}}, user=None)
    assert api.instance(instance_id)["variables"]["initiator"] is None
    api.identity("fred", groups=["facilities"])
    api.complete_ok(api.task(instance_id, "ReviewBooking")["id"], "fred")
    confirm = api.task(instance_id, "ConfirmBooking")
    assert confirm["assignee"] is None and confirm["createBy"] == ""
    api.complete_ok(confirm["id"], "fred")
    assert api.instance(instance_id)["ended"] is True


def test_parallel_review_join(api: Api) -> None:
    instance_id = api.start("parallel review", user="writer")
    legal = api.task(instance_id, "LegalReview")
    finance = api.task(instance_id, "FinanceReview")
    api.identity("lea", groups=["legal"])
    api.complete_ok(legal["id"], "lea", {"legalOk": True})
    assert [t["taskDefinitionKey"] for t in api.tasks(instance_id)] == ["FinanceReview"]
    api.complete_ok(finance["id"], "cfo", {"financeOk": True})  # a candidate user
    [publish] = api.tasks(instance_id)
    assert publish["taskDefinitionKey"] == "Publish" and publish["assignee"] == "writer"
    variables = ok(api.post(f"/tasks/{publish['id']}/variables"))
    assert variables == {"author": "writer", "legalOk": True, "financeOk": True}
    api.complete_ok(publish["id"], "writer")
    assert api.instance(instance_id)["ended"] is True


def test_onboarding_embedded_subprocess(api: Api) -> None:
    instance_id = api.start("employee onboarding", {"employee": "eve"}, user="hr-bot")
    api.identity("hank", groups=["hr"])
    api.identity("ivan", groups=["it"])
    api.complete_ok(api.task(instance_id, "PrepareContract")["id"], "hank")
    create = api.task(instance_id, "CreateAccount")
    assert create["candidateGroups"] == ["it"]
    assert [t["id"] for t in api.query(group="it")[0]] == [create["id"]]
    api.complete_ok(create["id"], "ivan")
    api.complete_ok(api.task(instance_id, "IssueLaptop")["id"], "ivan")
    welcome = api.task(instance_id, "Welcome")
    assert welcome["assignee"] == "eve"
    api.complete_ok(welcome["id"], "eve")
    assert api.tasks(instance_id) == []
    assert api.instance(instance_id)["ended"] is True


def _run_together(count: int, action: Callable[[int], TestResponse]) -> list[TestResponse]:
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def worker(index: int) -> None:
        barrier.wait()
        try:
            results[index] = action(index)
        except BaseException as exc:  # surfaced by the assertions below
            results[index] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(isinstance(r, TestResponse) for r in results), results
    return results


def test_sixteen_concurrent_claims_exactly_one_wins(app: Flask, api: Api) -> None:
    instance_id = api.start("booking room")
    task_id = api.task(instance_id, "ReviewBooking")["id"]
    users = [f"user{i}" for i in range(16)]
    for user in users:
        api.identity(user, groups=["facilities"])

    responses = _run_together(
        16, lambda i: app.test_client().post(f"/BPMREST/service/runtime/tasks/{task_id}/claim?user={users[i]}")
    )
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {200: 1, 409: 15}, statuses
    errors = {r.get_json()["error"] for r in responses if r.status_code == 409}
    assert errors == {"TASK_ALREADY_CLAIMED"}
    winner = users[next(i for i, r in enumerate(responses) if r.status_code == 200)]
    assert api.task(instance_id, "ReviewBooking")["assignee"] == winner


def test_concurrent_completion_of_both_branches_joins_once(app: Flask, api: Api) -> None:
    instance_id = api.start("parallel review", user="writer")
    branches = [
        (api.task(instance_id, "LegalReview")["id"], "lea"),
        (api.task(instance_id, "FinanceReview")["id"], "cfo"),
    ]
    api.identity("lea", groups=["legal"])

    responses = _run_together(
        2,
        lambda i: app.test_client().post(
            f"/BPMREST/service/runtime/tasks/{branches[i][0]}/complete?user={branches[i][1]}", json={f"done{i}": True}
        ),
    )
    assert [r.status_code for r in responses] == [200, 200], [r.get_json() for r in responses]
    tasks = api.tasks(instance_id)
    assert [t["taskDefinitionKey"] for t in tasks] == ["Publish"]
    assert api.instance(instance_id)["variables"] == {"author": "writer", "done0": True, "done1": True}


def test_concurrent_double_completion_of_one_task(app: Flask, api: Api) -> None:
    instance_id = api.start("onboarding", {"employee": "eve"})
    task_id = api.task(instance_id, "PrepareContract")["id"]
    api.identity("hank", groups=["hr"])
    responses = _run_together(
        8, lambda i: app.test_client().post(f"/BPMREST/service/runtime/tasks/{task_id}/complete?user=hank")
    )
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {200: 1, 409: 7}, statuses
    assert {r.get_json()["error"] for r in responses if r.status_code == 409} == {"TASK_NOT_ACTIVE"}
    assert [t["taskDefinitionKey"] for t in api.tasks(instance_id)] == ["CreateAccount"]
