"""Forms (API.md "Forms and queries"; issue 11, part 5), on every backend.

``formKey`` on task objects, ``GET …/tasks/<id>/form``, ``GET …/processes/<key>/form``, and
the checks of required fields and types on complete and start (422 FORM_INVALID naming each
field, changing nothing).
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from backends.base import Backend
from tests.api_support import Api, fails, make_app, ok
from tests.conftest import DATA

VENDOR = DATA / "vendor"


@pytest.fixture
def app(backend: Backend) -> Flask:
    return make_app(backend, VENDOR)


@pytest.fixture
def api(app: Flask) -> Api:
    return Api(app.test_client())


def start(api: Api, obj: dict[str, Any]) -> str:
    return ok(api.post("/process/start", json={"processName": "leave request", "object": obj}, query_string={
        "user": "carol"}))  # fmt: skip


def test_the_start_form(api: Api) -> None:
    form = ok(api.get("/processes/form_fields/form"))
    assert form == ok(api.get("/processes/leave request/form"))  # by name too
    assert form["formKey"] == "embedded:app:forms/request.html"
    assert form["fields"] == [
        {"id": "employee", "label": "Employee", "type": "string", "defaultValue": None, "required": True,
         "values": []},
        {"id": "days", "label": "Days", "type": "long", "defaultValue": 1, "required": True, "values": []},
    ]  # fmt: skip
    assert ok(api.get("/processes/form_fields/form", query_string={"version": "1"})) == form
    fails(api.get("/processes/nothing/form"), 404, "PROCESS_NOT_FOUND")
    fails(api.get("/processes/form_fields/form", query_string={"version": "9"}), 404, "PROCESS_NOT_FOUND")


def test_a_process_without_a_form_has_an_empty_one(api: Api) -> None:
    assert ok(api.get("/processes/cron_boundary/form")) == {"formKey": None, "fields": []}


def test_start_checks_the_start_form(api: Api) -> None:
    body = fails(api.post("/process/start", json={"processName": "leave request", "object": {"days": "many"}}),
                 422, "FORM_INVALID")  # fmt: skip
    assert body["data"] == {"employee": ["is required"], "days": ["must be a whole number"]}
    assert "'employee'" in body["message"] and "'days'" in body["message"]
    body = fails(
        api.post("/process/start", json={"processName": "leave request", "object": {"employee": "dan", "days": 31}}),
        422,
        "FORM_INVALID",
    )
    assert body["data"] == {"days": ["must be at most 30"]}
    assert api.query(group="managers")[1] == 0


def test_task_objects_carry_the_form_key_and_the_task_form(api: Api) -> None:
    instance_id = start(api, {"employee": "dan", "days": 3})
    [task] = api.tasks(instance_id)
    assert task["formKey"] is None  # generated form only
    form = ok(api.get(f"/tasks/{task['id']}/form"))
    assert form["formKey"] is None
    assert [f["id"] for f in form["fields"]] == ["approved", "kind", "returnDate", "note"]
    approved, kind, back, note = form["fields"]
    assert (approved["type"], approved["defaultValue"], approved["required"]) == ("boolean", False, True)
    assert kind["values"] == [{"id": "holiday", "name": "Holiday"}, {"id": "sick", "name": "Sick leave"}]
    assert (back["type"], back["defaultValue"], back["required"]) == ("date", None, False)
    assert note["defaultValue"] == "dan asks for 3 days"  # an expression default, with the task's variables
    fails(api.get("/tasks/no-such-task/form"), 404, "TASK_NOT_FOUND")
    fails(api.get("/tasks/bad%20id!/form"), 404, "TASK_NOT_FOUND")


def test_complete_checks_required_fields_and_types_and_changes_nothing(api: Api) -> None:
    instance_id = start(api, {"employee": "dan", "days": 3})
    api.identity("mia", groups=["managers"])
    [task] = api.tasks(instance_id)
    bad = {"approved": "perhaps", "kind": "party", "returnDate": "next week", "note": "x" * 21}
    body = fails(api.complete(task["id"], "mia", bad), 422, "FORM_INVALID")
    assert body["data"] == {
        "approved": ["must be true or false"],
        "kind": ["must be one of holiday, sick"],
        "returnDate": ["must be a date (dd/MM/yyyy or ISO 8601)"],
        "note": ["must have at most 20 characters"],
    }
    for name in bad:
        assert f"'{name}'" in body["message"]
    body = fails(api.complete(task["id"], "mia", {}), 422, "FORM_INVALID")
    assert body["data"] == {"approved": ["is required"]}
    [still] = api.tasks(instance_id)
    assert still["id"] == task["id"] and still["assignee"] is None  # not even claimed
    assert "approved" not in ok(api.post(f"/tasks/{task['id']}/variables", json={}))
    api.complete_ok(task["id"], "mia", {"approved": True, "kind": "sick", "returnDate": "24/12/2030"})
    [record] = api.tasks(instance_id)
    assert record["formKey"] == "record-leave"


def test_flowable_form_properties(api: Api) -> None:
    instance_id = start(api, {"employee": "dan", "days": 3})
    api.identity("mia", groups=["managers"])
    api.identity("hal", groups=["hr"])
    api.complete_ok(api.tasks(instance_id)[0]["id"], "mia", {"approved": True})
    [record] = api.tasks(instance_id)
    form = ok(api.get(f"/tasks/{record['id']}/form"))
    assert form["formKey"] == "record-leave"
    assert [(f["id"], f["label"], f["type"], f["required"]) for f in form["fields"]] == [
        ("ref", "HR reference", "long", True),
        ("employeeShown", "Employee", "string", True),
    ]
    # the value goes to the property's variable; a read-only field is not checked on submission
    body = fails(api.complete(record["id"], "hal", {"ref": 7}), 422, "FORM_INVALID")
    assert body["data"] == {"ref": ["is required"]}
    api.complete_ok(record["id"], "hal", {"hrReference": "1234"})
    [inform] = api.tasks(instance_id)
    assert (inform["formKey"], inform["assignee"]) == ("inform-form", "dan")  # camunda:formRef
