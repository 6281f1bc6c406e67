"""The routes of API.md through the Flask test client, on every backend."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from backends.base import Backend
from tests.api_support import BASE, TASK_FIELDS, Api, check_envelope, fails, make_app, ok

UNKNOWN_ID = "999-00000000-0000-0000-0000-000000000000"


@pytest.fixture
def app(backend: Backend) -> Flask:
    return make_app(backend)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def api(client: FlaskClient) -> Api:
    return Api(client)


# -- 1, 2: starting instances ---------------------------------------------------------


def test_start_by_name_returns_the_instance_id(api: Api) -> None:
    response = api.post("/process/start", json={"processName": "booking room"}, query_string={"user": "alice"})
    instance_id = ok(response)
    assert response.get_json()["totalRecordCount"] == 1
    instance = api.instance(instance_id)
    assert instance["createBy"] == "alice"
    assert instance["definitionId"] == "bookingRoom:1"
    assert instance["variables"] == {"initiator": "alice"}
    [task] = api.tasks(instance_id)
    assert task["createBy"] == "alice"
    assert instance["activeTasks"] == [task["id"]]


def test_start_by_key_and_unique_id_and_version(api: Api) -> None:
    by_key = ok(api.post("/process/start", json={"processName": "bookingRoom"}))
    by_unique_id = ok(api.post("/process/start", json={"uniqueId": "parallelReview", "snapVersion": "1"}))
    assert api.instance(by_key)["definitionId"] == "bookingRoom:1"
    assert api.instance(by_unique_id)["definitionId"] == "parallelReview:1"
    assert api.instance(by_key)["createBy"] == ""


def test_start_object_becomes_variables(api: Api) -> None:
    obj = {"RoomObject": {"capacity": 4, "name": "Blue"}, "tags": ["a", "b"], "n": None}
    instance_id = api.start("booking room", obj)
    assert api.instance(instance_id)["variables"] == {**obj, "initiator": "alice"}


def test_start_ignores_unknown_body_fields_and_null_or_empty_extras(api: Api) -> None:
    ok(api.post("/process/start", json={"processName": "booking room", "somethingElse": 1}))
    ok(api.post("/process/start", json={"processName": "", "uniqueId": "bookingRoom", "object": None}))


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"processName": ""},
        {"appName": "x"},
        {"processName": "booking room", "object": [1, 2]},
        {"processName": "booking room", "object": "text"},
        {"processName": 42},
        [],
        "booking room",
    ],
)
def test_start_rejects_malformed_bodies(api: Api, body: object) -> None:
    body_ = fails(api.post("/process/start", json=body), 400, "VALIDATION_ERROR")
    assert isinstance(body_["data"], dict) and body_["data"]


def test_start_names_the_field_in_error(api: Api) -> None:
    body = fails(api.post("/process/start", json={"processName": "x", "object": [1]}), 400, "VALIDATION_ERROR")
    assert "object" in body["data"]
    body = fails(api.post("/process/start", json={}), 400, "VALIDATION_ERROR")
    assert "processName" in body["data"]


@pytest.mark.parametrize(
    "body",
    [
        {"processName": "no such process"},
        {"uniqueId": "noSuchKey"},
        {"processName": "booking room", "snapVersion": "7"},
        {"uniqueId": "booking room"},  # uniqueId matches the BPMN id only
    ],
)
def test_start_unknown_process_is_404(api: Api, body: dict[str, str]) -> None:
    fails(api.post("/process/start", json=body), 404, "PROCESS_NOT_FOUND")


def test_old_start_form_with_spaces_in_the_name(api: Api) -> None:
    response = api.post(
        "/process/booking%20room/start", json={"RoomObject": {"capacity": 3}}, query_string={"user": "bo"}
    )
    instance_id = ok(response)
    instance = api.instance(instance_id)
    assert instance["variables"] == {"RoomObject": {"capacity": 3}, "initiator": "bo"}
    assert instance["createBy"] == "bo"
    assert instance["processName"] == "booking room"


def test_old_start_form_body_is_optional(api: Api) -> None:
    assert ok(api.post("/process/parallel review/start"))
    assert ok(api.post("/process/onboarding/start", data=b"", content_type="application/json"))
    assert ok(api.post("/process/bookingRoom/start", query_string={"snapVersion": "1", "appName": "x"}))


def test_old_start_form_errors(api: Api) -> None:
    fails(api.post("/process/no%20such/start", json={}), 404, "PROCESS_NOT_FOUND")
    fails(api.post("/process/booking%20room/start", json=[1, 2]), 400, "VALIDATION_ERROR")
    fails(
        api.post("/process/booking%20room/start", data="a=b", content_type="text/plain"), 415, "UNSUPPORTED_MEDIA_TYPE"
    )


# -- 3: claim / unclaim ---------------------------------------------------------------


def test_claim_by_candidate_then_idempotent(api: Api) -> None:
    instance_id = api.start("booking room")
    task = api.task(instance_id, "ReviewBooking")
    api.identity("fred", groups=["facilities"])
    response = api.claim(task["id"], "fred")
    assert ok(response) == ""
    assert response.get_json()["totalRecordCount"] == 0
    assert api.task(instance_id, "ReviewBooking")["assignee"] == "fred"
    assert ok(api.claim(task["id"], "fred")) == ""
    assert api.task(instance_id, "ReviewBooking")["assignee"] == "fred"


def test_claim_errors(api: Api) -> None:
    instance_id = api.start("booking room")
    task_id = api.task(instance_id, "ReviewBooking")["id"]
    api.identity("fred", groups=["facilities"])
    api.identity("gina", groups=["facilities"])
    fails(api.post(f"/tasks/{task_id}/claim"), 400, "VALIDATION_ERROR")
    body = fails(api.post(f"/tasks/{task_id}/claim", query_string={"user": ""}), 400, "VALIDATION_ERROR")
    assert "user" in body["data"]
    fails(api.claim(UNKNOWN_ID, "fred"), 404, "TASK_NOT_FOUND")
    fails(api.claim(task_id, "mallory"), 403, "NOT_CANDIDATE")
    ok(api.claim(task_id, "fred"))
    fails(api.claim(task_id, "gina"), 409, "TASK_ALREADY_CLAIMED")
    api.complete_ok(task_id, "fred", {"RoomObject": {"capacity": 2}})
    fails(api.claim(task_id, "fred"), 409, "TASK_NOT_ACTIVE")


def test_claim_by_group_member_through_identity_store(api: Api) -> None:
    instance_id = api.start("booking room", {"RoomObject": {"capacity": 50}})
    review = api.task(instance_id, "ReviewBooking")
    api.identity("fred", groups=["facilities"])
    api.complete_ok(review["id"], "fred")
    approval = api.task(instance_id, "ManagerApproval")
    assert approval["candidateGroups"] == ["managers"] and approval["candidateRoles"] == ["approver"]
    fails(api.claim(approval["id"], "rita"), 403, "NOT_CANDIDATE")
    api.identity("rita", roles=["approver"])
    ok(api.claim(approval["id"], "rita"))


def test_unclaim(api: Api) -> None:
    instance_id = api.start("booking room")
    task_id = api.task(instance_id, "ReviewBooking")["id"]
    api.identity("fred", groups=["facilities"])
    fails(api.post(f"/tasks/{task_id}/unclaim", query_string={"user": "fred"}), 409, "TASK_NOT_CLAIMED")
    ok(api.claim(task_id, "fred"))
    fails(api.post(f"/tasks/{task_id}/unclaim", query_string={"user": "gina"}), 409, "TASK_ALREADY_CLAIMED")
    fails(api.post(f"/tasks/{task_id}/unclaim"), 400, "VALIDATION_ERROR")
    fails(api.post(f"/tasks/{UNKNOWN_ID}/unclaim", query_string={"user": "fred"}), 404, "TASK_NOT_FOUND")
    assert ok(api.post(f"/tasks/{task_id}/unclaim", query_string={"user": "fred"})) == ""
    assert api.task(instance_id, "ReviewBooking")["assignee"] is None


# -- 4: complete ----------------------------------------------------------------------


def test_complete_merges_variables_and_moves_on(api: Api) -> None:
    instance_id = api.start("booking room")
    task_id = api.task(instance_id, "ReviewBooking")["id"]
    api.identity("fred", groups=["facilities"])
    ok(api.claim(task_id, "fred"))
    response = api.complete(task_id, "fred", {"RoomObject": {"capacity": 3}, "note": "ok"})
    assert ok(response) == ""
    assert response.get_json()["totalRecordCount"] == 0
    [confirm] = api.tasks(instance_id)
    assert confirm["taskDefinitionKey"] == "ConfirmBooking" and confirm["assignee"] == "alice"
    assert api.instance(instance_id)["variables"]["note"] == "ok"


def test_complete_unassigned_by_candidate_claims_it(api: Api, backend: Backend) -> None:
    instance_id = api.start("booking room")
    task_id = api.task(instance_id, "ReviewBooking")["id"]
    api.identity("fred", groups=["facilities"])
    api.complete_ok(task_id, "fred", {"RoomObject": {"capacity": 3}})
    done = backend.task(task_id)
    assert done is not None and done.status == "completed" and done.assignee == "fred"


def test_complete_errors(api: Api) -> None:
    instance_id = api.start("booking room")
    task_id = api.task(instance_id, "ReviewBooking")["id"]
    api.identity("fred", groups=["facilities"])
    api.identity("gina", groups=["facilities"])
    fails(api.post(f"/tasks/{task_id}/complete", json={}), 400, "VALIDATION_ERROR")
    fails(api.complete(UNKNOWN_ID, "fred", {}), 404, "TASK_NOT_FOUND")
    fails(api.complete(task_id, "mallory", {}), 403, "NOT_CANDIDATE")
    ok(api.claim(task_id, "fred"))
    fails(api.complete(task_id, "gina", {"RoomObject": {"capacity": 1}}), 409, "TASK_ALREADY_CLAIMED")
    api.complete_ok(task_id, "fred", {"RoomObject": {"capacity": 1}})
    fails(api.complete(task_id, "fred", {}), 409, "TASK_NOT_ACTIVE")
    assert [t["taskDefinitionKey"] for t in api.tasks(instance_id)] == ["ConfirmBooking"]


def test_complete_body_is_optional(api: Api) -> None:
    instance_id = api.start("onboarding", {"employee": "eve"})
    task_id = api.task(instance_id, "PrepareContract")["id"]
    api.identity("hank", groups=["hr"])
    response = api.post(f"/tasks/{task_id}/complete", query_string={"user": "hank"})
    assert ok(response) == ""
    assert api.task(instance_id, "CreateAccount")


def test_complete_with_empty_json_object_and_no_content_type(api: Api) -> None:
    instance_id = api.start("onboarding", {"employee": "eve"})
    task_id = api.task(instance_id, "PrepareContract")["id"]
    api.identity("hank", groups=["hr"])
    ok(api.post(f"/tasks/{task_id}/complete", query_string={"user": "hank"}, data=b"", content_type=None))
    create = api.task(instance_id, "CreateAccount")["id"]
    api.identity("ivan", groups=["it"])
    ok(api.post(f"/tasks/{create}/complete", query_string={"user": "ivan"}, json={}))


def test_complete_missing_gateway_variable_is_422_and_changes_nothing(api: Api) -> None:
    instance_id = api.start("booking room")
    before_task = api.task(instance_id, "ReviewBooking")
    before_instance = api.instance(instance_id)
    api.identity("fred", groups=["facilities"])
    body = fails(api.complete(before_task["id"], "fred", {"note": "forgot the room"}), 422, "EXPRESSION_ERROR")
    assert "RoomObject" in body["message"]
    assert api.task(instance_id, "ReviewBooking") == before_task  # still open, still unassigned
    assert api.instance(instance_id) == before_instance  # variables not merged
    api.complete_ok(before_task["id"], "fred", {"RoomObject": {"capacity": 2}})
    assert api.task(instance_id, "ConfirmBooking")["assignee"] == "alice"


# -- 5: instance tasks, and the instance extension ------------------------------------


def test_instance_tasks_shape(api: Api) -> None:
    instance_id = api.start("parallel review", user="writer")
    response = api.get(f"/instance/{instance_id}/tasks")
    tasks = ok(response)
    assert response.get_json()["totalRecordCount"] == 2
    for task in tasks:
        assert list(task) == TASK_FIELDS
        assert isinstance(task["createTime"], int)
        assert task["instanceId"] == instance_id
        assert task["definitionId"] == "parallelReview:1"
        assert task["processName"] == "parallel review"
        assert task["createBy"] == "writer"
        assert task["priority"] == 50
        assert task["loadlinkEntityId"] == "" and task["loadlinkParam"] == "="
        assert task["owner"] is None and task["parentTaskId"] is None and task["dueDate"] is None
        assert "variables" not in task
    by_key = {t["taskDefinitionKey"]: t for t in tasks}
    assert by_key["LegalReview"]["name"] == "Legal review"
    assert by_key["LegalReview"]["description"] == ""
    assert by_key["FinanceReview"]["candidateUsers"] == ["cfo"]
    assert by_key["FinanceReview"]["candidateGroups"] == ["finance"]


def test_task_description_and_due_date(api: Api) -> None:
    instance_id = api.start("booking room", {"RoomObject": {"capacity": 30}})
    review = api.task(instance_id, "ReviewBooking")
    assert review["description"].startswith("Check that the requested room")
    assert review["priority"] == 60
    api.identity("fred", groups=["facilities"])
    api.complete_ok(review["id"], "fred")
    approval = api.task(instance_id, "ManagerApproval")
    two_days = 2 * 24 * 3600 * 1000
    assert isinstance(approval["dueDate"], int)
    assert abs(approval["dueDate"] - approval["createTime"] - two_days) < 5000


def test_instance_tasks_unknown_is_404(api: Api) -> None:
    fails(api.get(f"/instance/{UNKNOWN_ID}/tasks"), 404, "INSTANCE_NOT_FOUND")
    fails(api.get(f"/instance/{UNKNOWN_ID}"), 404, "INSTANCE_NOT_FOUND")
    fails(api.client.delete(f"{BASE}/instance/{UNKNOWN_ID}"), 404, "INSTANCE_NOT_FOUND")


def test_cancel_instance(api: Api, backend: Backend) -> None:
    instance_id = api.start("parallel review")
    task_ids = [t["id"] for t in api.tasks(instance_id)]
    assert ok(api.client.delete(f"{BASE}/instance/{instance_id}")) == ""
    assert api.tasks(instance_id) == []
    instance = api.instance(instance_id)
    assert instance["ended"] is True and isinstance(instance["endTime"], int) and instance["activeTasks"] == []
    for task_id in task_ids:
        fails(api.claim(task_id, "cfo"), 409, "TASK_NOT_ACTIVE")
    assert ok(api.client.delete(f"{BASE}/instance/{instance_id}")) == ""  # again: nothing to do


def test_instance_extension_fields(api: Api) -> None:
    instance_id = api.start("onboarding", {"employee": "eve"}, user="hr-bot")
    instance = api.instance(instance_id)
    assert list(instance) == [
        "id",
        "definitionId",
        "processName",
        "createBy",
        "createTime",
        "ended",
        "endTime",
        "variables",
        "activeTasks",
        "businessKey",
        "parentId",
        "activeElements",
        "incidents",
        "externalTasks",
        "historyTruncated",
    ]
    assert instance["id"] == instance_id and instance["processName"] == "employee onboarding"
    assert instance["ended"] is False and instance["endTime"] is None
    assert instance["businessKey"] == "" and instance["parentId"] is None
    assert instance["activeElements"] and instance["incidents"] == [] and instance["externalTasks"] == []
    assert instance["historyTruncated"] is False


# -- 6: task lists --------------------------------------------------------------------


def test_tasks_requires_user_group_or_role(api: Api) -> None:
    fails(api.get("/tasks"), 400, "VALIDATION_ERROR")
    fails(api.get("/tasks", query_string={"user": "", "group": ""}), 400, "VALIDATION_ERROR")
    fails(api.get("/tasks", query_string={"foo": "bar"}), 400, "VALIDATION_ERROR")


def test_tasks_by_user_group_role_union(api: Api) -> None:
    booking = api.start("booking room", {"RoomObject": {"capacity": 40}})
    review = api.start("parallel review", user="writer")
    api.identity("fred", groups=["facilities"])
    api.identity("rita", roles=["approver"])
    legal = api.task(review, "LegalReview")["id"]
    finance = api.task(review, "FinanceReview")["id"]
    booking_review = api.task(booking, "ReviewBooking")["id"]

    def ids(**params: object) -> set[str]:
        tasks, total = api.query(**params)
        assert total == len(tasks)
        for task in tasks:
            assert list(task) == TASK_FIELDS
        return {t["id"] for t in tasks}

    assert ids(user="fred") == {booking_review}  # through the identity store
    assert ids(user="cfo") == {finance}  # candidate user
    assert ids(group="legal") == {legal}
    assert ids(group=["legal", "finance"]) == {legal, finance}
    assert ids(group="legal", user="cfo") == {legal, finance}
    assert ids(user=["fred", "cfo"], group="finance") == {booking_review, finance}
    assert ids(role="approver") == set()
    api.complete_ok(booking_review, "fred")
    approval = api.task(booking, "ManagerApproval")["id"]
    assert ids(role="approver") == {approval}
    assert ids(user="rita") == {approval}
    assert ids(group="managers", role="approver") == {approval}  # each task once

    ok(api.post(f"/tasks/{legal}/assign", query_string={"user": "lars"}))
    assert ids(group="legal") == set()
    assert ids(group="legal", includeAssigned="true") == {legal}
    assert ids(user="lars") == {legal}  # assigned to lars


def test_tasks_paging_sorting_and_total(api: Api) -> None:
    api.identity("pat", groups=["facilities", "hr"])
    bookings = [api.start("booking room") for _ in range(3)]
    onboardings = [api.start("onboarding", {"employee": "eve"}) for _ in range(3)]
    booking_tasks = [api.task(i, "ReviewBooking")["id"] for i in bookings]
    onboarding_tasks = [api.task(i, "PrepareContract")["id"] for i in onboardings]

    tasks, total = api.query(user="pat")
    assert total == 6
    everything = [t["id"] for t in tasks]
    assert set(everything[:3]) == set(booking_tasks)  # priority 60 first
    assert set(everything[3:]) == set(onboarding_tasks)
    assert [t["createTime"] for t in tasks[:3]] == sorted(t["createTime"] for t in tasks[:3])

    page, total = api.query(user="pat", start=2, size=2)
    assert total == 6 and [t["id"] for t in page] == everything[2:4]
    page, total = api.query(user="pat", start=5, size=100)
    assert total == 6 and [t["id"] for t in page] == everything[5:]
    page, total = api.query(user="pat", start=10)
    assert total == 6 and page == []

    tasks, _ = api.query(user="pat", sort="priority", order="asc")
    assert [t["priority"] for t in tasks] == [50, 50, 50, 60, 60, 60]
    tasks, _ = api.query(user="pat", sort="createTime")
    assert [t["createTime"] for t in tasks] == sorted(t["createTime"] for t in tasks)
    tasks, _ = api.query(user="pat", sort="createTime", order="desc")
    assert [t["createTime"] for t in tasks] == sorted((t["createTime"] for t in tasks), reverse=True)
    tasks, total = api.query(user="pat", sort="dueDate", order="asc", size=1000)
    assert total == 6


@pytest.mark.parametrize(
    "params",
    [
        {"user": "a", "size": "0"},
        {"user": "a", "size": "1001"},
        {"user": "a", "size": "ten"},
        {"user": "a", "start": "-1"},
        {"user": "a", "start": "1.5"},
        {"user": "a", "sort": "name"},
        {"user": "a", "order": "up"},
        {"user": "a", "includeAssigned": "maybe"},
    ],
)
def test_tasks_bad_query_values_are_400(api: Api, params: dict[str, str]) -> None:
    body = fails(api.get("/tasks", query_string=params), 400, "VALIDATION_ERROR")
    [name] = [k for k in params if k != "user"]
    assert name in body["data"]


def test_tasks_ignores_unknown_query_parameters(api: Api) -> None:
    tasks, total = api.query(user="nobody", whatever="x")
    assert tasks == [] and total == 0


# -- 7: variables ---------------------------------------------------------------------


def test_task_variables(api: Api) -> None:
    instance_id = api.start("booking room", {"RoomObject": {"capacity": 8}, "note": "x", "n": 1})
    task_id = api.task(instance_id, "ReviewBooking")["id"]
    everything = {"RoomObject": {"capacity": 8}, "note": "x", "n": 1, "initiator": "alice"}
    response = api.post(f"/tasks/{task_id}/variables")
    assert ok(response) == everything
    assert response.get_json()["totalRecordCount"] == 1
    assert ok(api.post(f"/tasks/{task_id}/variables", json={})) == everything
    assert ok(api.post(f"/tasks/{task_id}/variables", json={"names": ["note", "missing", "n"]})) == {
        "note": "x",
        "n": 1,
    }
    assert ok(api.post(f"/tasks/{task_id}/variables", json={"names": []})) == {}


def test_task_variables_errors(api: Api) -> None:
    instance_id = api.start("booking room")
    task_id = api.task(instance_id, "ReviewBooking")["id"]
    fails(api.post(f"/tasks/{UNKNOWN_ID}/variables"), 404, "TASK_NOT_FOUND")
    fails(api.post(f"/tasks/{task_id}/variables", json={"names": "note"}), 400, "VALIDATION_ERROR")
    fails(
        api.post(f"/tasks/{task_id}/variables", data="names=x", content_type="text/plain"),
        415,
        "UNSUPPORTED_MEDIA_TYPE",
    )


# -- 8, 9: assign ---------------------------------------------------------------------


def test_assign_one_user_then_another_sets_owner(api: Api) -> None:
    instance_id = api.start("booking room")
    task_id = api.task(instance_id, "ReviewBooking")["id"]
    assert ok(api.post(f"/tasks/{task_id}/assign", query_string={"user": "ann"})) == ""
    task = api.task(instance_id, "ReviewBooking")
    assert task["assignee"] == "ann" and task["owner"] is None
    ok(api.post(f"/tasks/{task_id}/assign", query_string={"user": "ben"}))
    task = api.task(instance_id, "ReviewBooking")
    assert task["assignee"] == "ben" and task["owner"] == "ann"
    api.complete_ok(task_id, "ben", {"RoomObject": {"capacity": 1}})  # the assignee need not be a candidate


def test_assign_several_users_makes_them_candidates(api: Api) -> None:
    instance_id = api.start("booking room")
    task_id = api.task(instance_id, "ReviewBooking")["id"]
    ok(api.post(f"/tasks/{task_id}/assign", query_string={"user": "ann"}))
    ok(api.post(f"/tasks/{task_id}/assign?user=carl&user=dora&user=carl"))
    task = api.task(instance_id, "ReviewBooking")
    assert task["assignee"] is None and task["candidateUsers"] == ["carl", "dora"]
    assert {t["id"] for t in api.query(user="dora")[0]} == {task_id}
    ok(api.claim(task_id, "dora"))
    fails(api.claim(task_id, "carl"), 409, "TASK_ALREADY_CLAIMED")


def test_assign_errors(api: Api) -> None:
    instance_id = api.start("booking room")
    task_id = api.task(instance_id, "ReviewBooking")["id"]
    fails(api.post(f"/tasks/{task_id}/assign"), 400, "VALIDATION_ERROR")
    fails(api.post(f"/tasks/{task_id}/assign", query_string={"user": ""}), 400, "VALIDATION_ERROR")
    fails(api.post(f"/tasks/{UNKNOWN_ID}/assign", query_string={"user": "ann"}), 404, "TASK_NOT_FOUND")
    ok(api.client.delete(f"{BASE}/instance/{instance_id}"))
    fails(api.post(f"/tasks/{task_id}/assign", query_string={"user": "ann"}), 409, "TASK_NOT_ACTIVE")


def test_assign_instance_tasks(api: Api) -> None:
    instance_id = api.start("parallel review")
    expected = [t["id"] for t in api.tasks(instance_id)]
    response = api.post(f"/instance/{instance_id}/tasks/assign", query_string={"user": "zoe"})
    assert sorted(ok(response)) == sorted(expected)
    assert response.get_json()["totalRecordCount"] == 2
    assert {t["assignee"] for t in api.tasks(instance_id)} == {"zoe"}
    assert {t["id"] for t in api.query(user="zoe")[0]} == set(expected)


def test_assign_instance_errors(api: Api) -> None:
    instance_id = api.start("parallel review")
    fails(api.post(f"/instance/{instance_id}/tasks/assign"), 400, "VALIDATION_ERROR")
    fails(api.post(f"/instance/{UNKNOWN_ID}/tasks/assign", query_string={"user": "zoe"}), 404, "INSTANCE_NOT_FOUND")
    ok(api.client.delete(f"{BASE}/instance/{instance_id}"))
    response = api.post(f"/instance/{instance_id}/tasks/assign", query_string={"user": "zoe"})
    assert ok(response) == [] and response.get_json()["totalRecordCount"] == 0


# -- identity extension ---------------------------------------------------------------


def test_identity_roundtrip(api: Api) -> None:
    assert ok(api.get("/identity/nobody")) == {"user": "nobody", "groups": [], "roles": []}
    response = api.client.put(f"{BASE}/identity/fred", json={"groups": ["b", "a"], "roles": ["r"]})
    assert ok(response) == {"user": "fred", "groups": ["a", "b"], "roles": ["r"]}
    assert ok(api.get("/identity/fred")) == {"user": "fred", "groups": ["a", "b"], "roles": ["r"]}
    assert ok(api.client.put(f"{BASE}/identity/fred", json={})) == {"user": "fred", "groups": [], "roles": []}


def test_identity_errors(api: Api) -> None:
    fails(api.client.put(f"{BASE}/identity/fred", json={"groups": "a"}), 400, "VALIDATION_ERROR")
    fails(api.client.put(f"{BASE}/identity/fred", json={"groups": [], "x": 1}), 400, "VALIDATION_ERROR")
    fails(
        api.client.put(f"{BASE}/identity/fred", data="<x/>", content_type="application/xml"),
        415,
        "UNSUPPORTED_MEDIA_TYPE",
    )
    fails(api.get("/identity/%01bad"), 400, "VALIDATION_ERROR")


def test_error_envelope_shape(client: FlaskClient) -> None:
    response = client.post(f"{BASE}/tasks/{UNKNOWN_ID}/claim", query_string={"user": "x"})
    body = check_envelope(response)
    assert list(body) == ["data", "code", "timestamp", "totalRecordCount", "error", "message"]
    assert body["data"] is None and body["code"] == 404 and body["error"] == "TASK_NOT_FOUND"
    assert UNKNOWN_ID in body["message"] and body["message"].endswith(".")
