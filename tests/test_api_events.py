"""Events, timers, service work and instances over HTTP (the extension routes), on every backend.

Time is an injected clock (``BPM_CLOCK``): timers fire when the test moves it and
calls the worker's ``run_once``, as the ``worker:`` process does; nothing sleeps.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from werkzeug.test import TestResponse

from app import create_app
from backends.base import Backend
from backends.memory import MemoryBackend
from bpm import worker
from tests.api_support import BASE, Api, fails, make_app, ok
from tests.auth_support import AUTH_CONFIG, CRM_KEY, as_admin, as_user, bearer
from tests.conftest import DATA

EVENTS = DATA / "events"
T0 = 1_900_000_000_000
HOUR = 3_600_000
INSTANCE_FIELDS = [
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
LOCKED_FIELDS = [
    "id",
    "topicName",
    "workerId",
    "lockExpirationTime",
    "processInstanceId",
    "processDefinitionId",
    "processDefinitionKey",
    "activityId",
    "activityName",
    "retries",
    "priority",
    "businessKey",
    "variables",
]
DETAIL_FIELDS = [*LOCKED_FIELDS, "status", "incident", "errorMessage", "errorDetails", "createTime"]
INCIDENT_FIELDS = ["id", "type", "elementId", "topic", "errorMessage", "errorDetails"]


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(backend: Backend, clock: Clock) -> Flask:
    return make_app(backend, EVENTS, BPM_CLOCK=clock)


@pytest.fixture
def api(app: Flask) -> Api:
    return Api(app.test_client())


def start(api: Api, key: str, variables: dict[str, Any] | None = None, **body: Any) -> str:
    instance_id = ok(api.post("/process/start", json={"uniqueId": key, "object": variables or {}, **body}))
    assert isinstance(instance_id, str)
    return instance_id


def message(api: Api, name: str, query: dict[str, str] | None = None, **body: Any) -> TestResponse:
    return api.post("/message", json={"messageName": name, **body}, query_string=query or {})


def fetch(api: Api, worker_id: str, *topics: str, lock: int = 60_000, max_tasks: int = 10) -> list[dict[str, Any]]:
    wanted = [{"topicName": topic, "lockDuration": lock} for topic in topics]
    body = {"workerId": worker_id, "maxTasks": max_tasks, "topics": wanted}
    response = api.post("/external-task/fetchAndLock", json=body)
    locked = ok(response)
    assert response.get_json()["totalRecordCount"] == len(locked)
    for task in locked:
        assert list(task) == LOCKED_FIELDS
    return locked


def external(api: Api, task_id: str, action: str, **body: Any) -> TestResponse:
    return api.post(f"/external-task/{task_id}/{action}", json=body)


def retries(api: Api, task_id: str, count: int, headers: dict[str, str] | None = None) -> TestResponse:
    return api.client.put(f"{BASE}/external-task/{task_id}/retries", json={"retries": count}, headers=headers)


def elements(api: Api, instance_id: str) -> list[str]:
    return list(api.instance(instance_id)["activeElements"])


# -- starting and reading instances ------------------------------------------------------


def test_instance_view_has_business_key_parent_elements_incidents_and_external_tasks(api: Api) -> None:
    instance_id = start(api, "message_intermediate_catch", {"n": 1}, businessKey="order-1")
    view = api.instance(instance_id)
    assert list(view) == INSTANCE_FIELDS
    assert view["businessKey"] == "order-1" and view["parentId"] is None
    assert view["activeElements"] == ["waitPayment"] and view["activeTasks"] == []
    assert view["incidents"] == [] and view["externalTasks"] == [] and view["variables"] == {"n": 1}
    old_form = ok(api.post("/process/message_intermediate_catch/start", query_string={"businessKey": "order-2"}))
    assert api.instance(old_form)["businessKey"] == "order-2"
    assert api.instance(start(api, "message_intermediate_catch"))["businessKey"] == ""


def test_business_key_is_validated(api: Api) -> None:
    body = {"uniqueId": "message_intermediate_catch", "businessKey": "x" * 201}
    fails(api.post("/process/start", json=body), 400, "VALIDATION_ERROR")
    fails(api.post("/process/start", json={**body, "businessKey": "a\x00b"}), 400, "VALIDATION_ERROR")


# -- messages ----------------------------------------------------------------------------


def test_message_is_correlated_by_business_key(api: Api) -> None:
    first = start(api, "message_intermediate_catch", businessKey="order-1")
    second = start(api, "message_intermediate_catch", businessKey="order-2")
    body = fails(message(api, "payment-received"), 409, "MESSAGE_AMBIGUOUS")
    assert body["data"] is None
    result = ok(message(api, "payment-received", businessKey="order-2", processVariables={"paid": 10}))
    assert result == {"resultType": "Execution", "instanceIds": [second]}
    assert elements(api, second) == ["ship"] and elements(api, first) == ["waitPayment"]
    assert api.instance(second)["variables"]["paid"] == 10
    fails(message(api, "payment-received", businessKey="order-2"), 404, "MESSAGE_NOT_CORRELATED")
    fails(message(api, "no-such-message"), 404, "MESSAGE_NOT_CORRELATED")


def test_message_by_instance_id_by_variables_and_to_all(api: Api) -> None:
    ids = [start(api, "message_intermediate_catch", {"region": r}) for r in ("north", "south", "south")]
    result = ok(message(api, "payment-received", processInstanceId=ids[0]))
    assert result["instanceIds"] == [ids[0]]
    fails(message(api, "payment-received", correlationKeys={"region": "south"}), 409, "MESSAGE_AMBIGUOUS")
    result = ok(message(api, "payment-received", correlationKeys={"region": "south"}, all=True))
    assert result == {"resultType": "Execution", "instanceIds": sorted(ids[1:])}
    fails(message(api, "payment-received", processInstanceId=ids[0]), 404, "MESSAGE_NOT_CORRELATED")


def test_message_start_event_records_the_starter_and_business_key(api: Api) -> None:
    result = ok(message(api, "order-received", {"user": "carol"}, businessKey="o-7", processVariables={"q": 2}))
    assert result["resultType"] == "ProcessDefinition"
    [instance_id] = result["instanceIds"]
    view = api.instance(instance_id)
    assert view["createBy"] == "carol" and view["businessKey"] == "o-7" and view["variables"] == {"q": 2}
    assert [t["taskDefinitionKey"] for t in api.tasks(instance_id)] == ["handle"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"messageName": ""},
        {"messageName": 7},
        {"messageName": "m", "processInstanceId": "not an id!"},
        {"messageName": "m", "correlationKeys": []},
        {"messageName": "m", "all": "maybe"},
    ],
)
def test_message_body_is_validated(api: Api, body: dict[str, Any]) -> None:
    fails(api.post("/message", json=body), 400, "VALIDATION_ERROR")


# -- signals -----------------------------------------------------------------------------


def test_signal_starts_processes_and_reaches_waiting_instances(api: Api) -> None:
    result = ok(api.post("/signal", json={"name": "alarm"}, query_string={"user": "sam"}))
    assert result["triggered"] == 0
    [started] = result["instanceIds"]
    assert api.instance(started)["createBy"] == "sam" and elements(api, started) == ["respond"]

    waiting = start(api, "signal_throw_and_catch")
    trading = start(api, "boundary_signal_non_interrupting")
    result = ok(api.post("/signal", json={"name": "go", "variables": {"goAt": 5}}))
    assert result == {"triggered": 1, "instanceIds": []}
    assert elements(api, waiting) == ["join", "prepare"] and api.instance(waiting)["variables"]["goAt"] == 5
    assert ok(api.post("/signal", json={"name": "price-updated"}))["triggered"] == 1
    assert sorted(t["taskDefinitionKey"] for t in api.tasks(trading)) == ["note", "trade"]
    assert ok(api.post("/signal", json={"name": "nobody-listens"})) == {"triggered": 0, "instanceIds": []}


def test_signal_body_is_validated(api: Api) -> None:
    fails(api.post("/signal", json={}), 400, "VALIDATION_ERROR")
    fails(api.post("/signal", json={"name": "go", "variables": "x"}), 400, "VALIDATION_ERROR")
    fails(api.post("/signal", data="name=go", content_type="text/plain"), 415, "UNSUPPORTED_MEDIA_TYPE")


# -- external tasks ----------------------------------------------------------------------


def test_external_task_cycle_with_retries_incident_and_resolution(api: Api, clock: Clock) -> None:
    instance_id = start(api, "external_tasks", {"amount": 5}, businessKey="inv-1")
    [task] = fetch(api, "w1", "payments", lock=30_000)
    assert task["topicName"] == "payments" and task["workerId"] == "w1" and task["activityId"] == "charge"
    assert task["lockExpirationTime"] == T0 + 30_000 and task["processInstanceId"] == instance_id
    assert task["processDefinitionId"] == "external_tasks:1" and task["businessKey"] == "inv-1"
    assert task["retries"] == 3 and task["priority"] == 10 and task["variables"] == {"amount": 5}
    assert api.instance(instance_id)["externalTasks"] == [task["id"]]
    assert fetch(api, "w2", "payments") == []

    failed = ok(
        external(api, task["id"], "failure", workerId="w1", errorMessage="gateway down", retries=1, retryTimeout=5000)
    )
    assert list(failed) == DETAIL_FIELDS
    assert failed["retries"] == 1 and failed["incident"] is False and failed["errorMessage"] == "gateway down"
    clock.now += 4999
    assert fetch(api, "w2", "payments") == []
    clock.now += 1
    [again] = fetch(api, "w2", "payments")
    assert again["id"] == task["id"] and again["retries"] == 1

    failed = ok(
        external(
            api, again["id"], "failure", workerId="w2", errorMessage="still down", errorDetails="trace ...", retries=0
        )
    )
    assert failed["incident"] is True and failed["retries"] == 0
    clock.now += HOUR
    assert fetch(api, "w2", "payments") == []
    incident = {
        "id": task["id"],
        "type": "externalTask",
        "elementId": "charge",
        "topic": "payments",
        "errorMessage": "still down",
        "errorDetails": "trace ...",
    }
    assert api.instance(instance_id)["incidents"] == [incident]
    response = api.get(f"/instance/{instance_id}/incidents")
    assert ok(response) == [incident] and response.get_json()["totalRecordCount"] == 1
    assert list(ok(response)[0]) == INCIDENT_FIELDS

    resolved = ok(retries(api, task["id"], 2))
    assert resolved["incident"] is False and resolved["retries"] == 2
    assert ok(api.get(f"/instance/{instance_id}/incidents")) == []
    [third] = fetch(api, "w3", "payments")
    assert ok(external(api, third["id"], "complete", workerId="w3", variables={"charged": True})) == ""
    assert elements(api, instance_id) == ["mail"]
    assert api.instance(instance_id)["variables"] == {"amount": 5, "charged": True}
    [mail] = fetch(api, "w3", "mailer", "payments")
    assert mail["topicName"] == "mailer" and mail["variables"]["charged"] is True

    done = ok(api.get(f"/external-task/{task['id']}"))
    assert list(done) == DETAIL_FIELDS and done["status"] == "completed"
    fails(external(api, task["id"], "complete", workerId="w3"), 409, "TASK_NOT_ACTIVE")
    fails(retries(api, task["id"], 1), 409, "TASK_NOT_ACTIVE")
    fails(api.post(f"/external-task/{task['id']}/unlock"), 409, "TASK_NOT_ACTIVE")
    history = [e["type"] for e in ok(api.get(f"/instance/{instance_id}/history"))]
    assert "external.completed" in history


def test_bpmn_error_is_caught_by_the_boundary_event(api: Api) -> None:
    uncaught = start(api, "error_boundary_on_external_task")
    [task] = fetch(api, "w", "charge-card")
    assert ok(external(api, task["id"], "bpmnError", workerId="w", errorCode="UNKNOWN")) == ""
    assert api.instance(uncaught)["ended"] is True  # nothing catches it: its token ends there (Camunda 7)
    assert ok(api.get(f"/external-task/{task['id']}"))["status"] == "completed"
    instance_id = start(api, "error_boundary_on_external_task")
    [task] = fetch(api, "w", "charge-card")
    response = external(
        api,
        task["id"],
        "bpmnError",
        workerId="w",
        errorCode="CARD_DECLINED",
        errorMessage="declined",
        variables={"reason": "limit"},
    )
    assert ok(response) == ""
    view = api.instance(instance_id)
    assert view["ended"] is True and view["variables"] == {"reason": "limit"} and view["externalTasks"] == []


def test_only_the_lock_owner_may_complete_fail_or_extend(api: Api) -> None:
    start(api, "external_tasks")
    [task] = fetch(api, "w1", "payments")
    task_id = task["id"]
    fails(external(api, task_id, "complete", workerId="w2"), 409, "LOCK_LOST")
    fails(external(api, task_id, "failure", workerId="w2", retries=1), 409, "LOCK_LOST")
    fails(external(api, task_id, "bpmnError", workerId="w2", errorCode="X"), 409, "LOCK_LOST")
    fails(external(api, task_id, "extendLock", workerId="w2", newDuration=1000), 409, "LOCK_LOST")
    assert ok(api.get(f"/external-task/{task_id}"))["workerId"] == "w1"


def test_lock_expiry_extend_lock_and_unlock(api: Api, clock: Clock) -> None:
    start(api, "external_tasks")
    [task] = fetch(api, "w1", "payments", lock=1000)
    extended = ok(external(api, task["id"], "extendLock", workerId="w1", newDuration=10_000))
    assert extended["lockExpirationTime"] == T0 + 10_000 and extended["workerId"] == "w1"
    clock.now += 5000
    assert fetch(api, "w2", "payments") == []
    unlocked = ok(api.post(f"/external-task/{task['id']}/unlock"))
    assert unlocked["workerId"] is None and unlocked["lockExpirationTime"] is None
    [again] = fetch(api, "w2", "payments", lock=1000)
    clock.now += 1001
    [third] = fetch(api, "w3", "payments")  # the lock expired: fetchable again
    assert again["id"] == third["id"] == task["id"]
    fails(external(api, task["id"], "complete", workerId="w2"), 409, "LOCK_LOST")


def test_unknown_external_task_is_404_on_every_route(api: Api) -> None:
    for task_id in ("1-no-such-task", "bad id!"):
        fails(api.get(f"/external-task/{task_id}"), 404, "EXTERNAL_TASK_NOT_FOUND")
        fails(external(api, task_id, "complete", workerId="w"), 404, "EXTERNAL_TASK_NOT_FOUND")
        fails(external(api, task_id, "failure", workerId="w", retries=0), 404, "EXTERNAL_TASK_NOT_FOUND")
        fails(external(api, task_id, "bpmnError", workerId="w", errorCode="E"), 404, "EXTERNAL_TASK_NOT_FOUND")
        fails(external(api, task_id, "extendLock", workerId="w", newDuration=5), 404, "EXTERNAL_TASK_NOT_FOUND")
        fails(api.post(f"/external-task/{task_id}/unlock"), 404, "EXTERNAL_TASK_NOT_FOUND")
        fails(retries(api, task_id, 1), 404, "EXTERNAL_TASK_NOT_FOUND")
    fails(api.get("/instance/1-no-such-instance/incidents"), 404, "INSTANCE_NOT_FOUND")


@pytest.mark.parametrize(
    ("action", "body"),
    [
        ("fetchAndLock", {"topics": [{"topicName": "t", "lockDuration": 1}]}),
        ("fetchAndLock", {"workerId": "w", "topics": []}),
        ("fetchAndLock", {"workerId": "w", "maxTasks": 0, "topics": [{"topicName": "t", "lockDuration": 1}]}),
        ("fetchAndLock", {"workerId": "w", "maxTasks": 101, "topics": [{"topicName": "t", "lockDuration": 1}]}),
        ("fetchAndLock", {"workerId": "w", "topics": [{"topicName": "t", "lockDuration": 0}]}),
        ("fetchAndLock", {"workerId": "w", "topics": [{"topicName": "t", "lockDuration": 86_400_001}]}),
        ("fetchAndLock", {"workerId": "w", "topics": [{"lockDuration": 10}]}),
        ("1-x/complete", {"variables": {}}),
        ("1-x/failure", {"workerId": "w", "retries": -1}),
        ("1-x/failure", {"workerId": "w"}),
        ("1-x/failure", {"workerId": "w", "retries": 1, "retryTimeout": -5}),
        ("1-x/bpmnError", {"workerId": "w"}),
        ("1-x/extendLock", {"workerId": "w", "newDuration": 0}),
    ],
)
def test_external_task_bodies_are_validated(api: Api, action: str, body: dict[str, Any]) -> None:
    fails(api.post(f"/external-task/{action}", json=body), 400, "VALIDATION_ERROR")


def test_retries_body_is_validated(api: Api) -> None:
    response = api.client.put(f"{BASE}/external-task/1-x/retries", json={"retries": -1})
    fails(response, 400, "VALIDATION_ERROR")


# -- timers ------------------------------------------------------------------------------


def test_boundary_timer_is_fired_by_the_worker_when_the_clock_moves(app: Flask, api: Api, clock: Clock) -> None:
    instance_id = start(api, "boundary_timer_interrupting")
    assert [t["taskDefinitionKey"] for t in api.tasks(instance_id)] == ["review"]
    runtime = app.extensions["bpm_runtime"]
    clock.now += 2 * HOUR - 1
    worker.run_once(runtime)
    assert elements(api, instance_id) == ["review"]
    clock.now += 1
    assert worker.run_once(runtime) >= 1
    assert elements(api, instance_id) == ["escalated"]
    [escalated] = api.tasks(instance_id)
    assert escalated["candidateGroups"] == ["management"]
    assert [t["id"] for t in api.query(group="management")[0]] == [escalated["id"]]


# -- call activities and cancelling -------------------------------------------------------

CALL_PARENT = b"""<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL"
             xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="d" targetNamespace="t">
  <process id="api_parent" name="API parent" isExecutable="true">
    <startEvent id="start" />
    <sequenceFlow id="f1" sourceRef="start" targetRef="callChild" />
    <callActivity id="callChild" calledElement="api_child">
      <extensionElements>
        <camunda:in variables="all" />
        <camunda:in businessKey="${orderId}" />
        <camunda:out variables="all" />
      </extensionElements>
    </callActivity>
    <sequenceFlow id="f2" sourceRef="callChild" targetRef="after" />
    <userTask id="after" name="After the child" camunda:assignee="${clerk}" />
    <sequenceFlow id="f3" sourceRef="after" targetRef="end" />
    <endEvent id="end" />
  </process>
  <process id="api_child" name="API child" isExecutable="true">
    <startEvent id="childStart" />
    <sequenceFlow id="c1" sourceRef="childStart" targetRef="childWork" />
    <userTask id="childWork" name="Child work" camunda:assignee="${clerk}" />
    <sequenceFlow id="c2" sourceRef="childWork" targetRef="childEnd" />
    <endEvent id="childEnd" />
  </process>
</definitions>
"""


def deploy_call_processes(api: Api) -> None:
    response = api.post(
        "/deployments", data=CALL_PARENT, content_type="application/xml", query_string={"fileName": "api_call.bpmn"}
    )
    assert sorted(d["key"] for d in ok(response)) == ["api_child", "api_parent"]


def test_call_activity_child_task_is_in_the_to_do_list_and_returns_to_the_parent(api: Api) -> None:
    deploy_call_processes(api)
    parent = start(api, "api_parent", {"clerk": "cleo", "orderId": "o-1"})
    assert elements(api, parent) == ["callChild"] and api.tasks(parent) == []
    [child_task], total = api.query(user="cleo")
    assert total == 1 and child_task["taskDefinitionKey"] == "childWork" and child_task["processName"] == "API child"
    child = api.instance(child_task["instanceId"])
    assert child["parentId"] == parent and child["businessKey"] == "o-1" and child["variables"]["clerk"] == "cleo"
    api.complete_ok(child_task["id"], "cleo", {"approved": True})
    assert api.instance(child["id"])["ended"] is True
    [after], _ = api.query(user="cleo")
    assert after["instanceId"] == parent and after["taskDefinitionKey"] == "after"
    assert api.instance(parent)["variables"]["approved"] is True


def test_deleting_an_instance_cancels_its_children(api: Api) -> None:
    deploy_call_processes(api)
    parent = start(api, "api_parent", {"clerk": "cleo", "orderId": "o-2"})
    [child_task], _ = api.query(user="cleo")
    assert ok(api.client.delete(f"{BASE}/instance/{parent}")) == ""
    assert api.instance(parent)["ended"] is True and api.instance(parent)["activeElements"] == []
    assert api.instance(child_task["instanceId"])["ended"] is True
    assert api.query(user="cleo") == ([], 0)
    assert ok(api.client.delete(f"{BASE}/instance/{parent}")) == ""  # ended: nothing to do
    fails(api.client.delete(f"{BASE}/instance/1-no-such-instance"), 404, "INSTANCE_NOT_FOUND")


def test_deleting_an_instance_cancels_its_external_tasks(api: Api) -> None:
    instance_id = start(api, "external_tasks")
    [task] = fetch(api, "w", "payments")
    ok(api.client.delete(f"{BASE}/instance/{instance_id}"))
    assert ok(api.get(f"/external-task/{task['id']}"))["status"] == "cancelled"
    fails(external(api, task["id"], "complete", workerId="w"), 409, "TASK_NOT_ACTIVE")


# -- authorisation -----------------------------------------------------------------------


@pytest.fixture
def secured(backend: Backend, clock: Clock) -> Api:
    return Api(make_app(backend, EVENTS, BPM_CLOCK=clock, **AUTH_CONFIG).test_client())


def _fetch_as(api: Api, headers: dict[str, str]) -> TestResponse:
    body = {"workerId": "w", "topics": [{"topicName": "payments", "lockDuration": 1000}]}
    return api.post("/external-task/fetchAndLock", json=body, headers=headers)


def test_service_work_needs_the_worker_role_an_api_key_or_admin(secured: Api) -> None:
    ok(secured.post("/process/start", json={"uniqueId": "external_tasks"}, headers=as_admin()))
    fails(_fetch_as(secured, as_user("wendy")), 403, "FORBIDDEN")
    fails(_fetch_as(secured, as_user("wendy", roles=["clerk"])), 403, "FORBIDDEN")
    fails(_fetch_as(secured, {}), 401, "UNAUTHORIZED")
    [task] = ok(_fetch_as(secured, as_user("wendy", roles=["worker"])))
    assert ok(_fetch_as(secured, bearer(CRM_KEY))) == []
    assert ok(_fetch_as(secured, as_admin())) == []
    response = secured.post(
        f"/external-task/{task['id']}/failure", json={"workerId": "w", "retries": 0}, headers=as_user("wendy")
    )
    fails(response, 403, "FORBIDDEN")
    ok(
        secured.post(
            f"/external-task/{task['id']}/failure",
            json={"workerId": "w", "retries": 0},
            headers=as_user("wendy", roles=["worker"]),
        )
    )
    fails(retries(secured, task["id"], 1, as_user("wendy", roles=["worker"])), 403, "FORBIDDEN")
    fails(retries(secured, task["id"], 1, bearer(CRM_KEY)), 403, "FORBIDDEN")
    assert ok(retries(secured, task["id"], 1, as_admin()))["incident"] is False
    assert ok(secured.get(f"/external-task/{task['id']}", headers=as_user("viewer")))["retries"] == 1


def test_the_worker_role_is_configurable(backend: Backend) -> None:
    api = Api(make_app(backend, EVENTS, BPM_WORKER_ROLE="robot", **AUTH_CONFIG).test_client())
    fails(_fetch_as(api, as_user("wendy", roles=["worker"])), 403, "FORBIDDEN")
    assert ok(_fetch_as(api, as_user("wendy", roles=["robot"]))) == []


def test_messages_and_signals_need_only_authentication(secured: Api) -> None:
    response = secured.post("/message", json={"messageName": "order-received"}, headers=as_user("mia"))
    [instance_id] = ok(response)["instanceIds"]
    assert ok(secured.get(f"/instance/{instance_id}", headers=as_user("mia")))["createBy"] == "mia"
    response = secured.post(
        "/message", json={"messageName": "order-received"}, query_string={"user": "bob"}, headers=as_user("mia")
    )
    fails(response, 403, "FORBIDDEN")
    assert ok(secured.post("/signal", json={"name": "alarm"}, headers=as_user("mia")))["triggered"] == 0
    fails(secured.post("/signal", json={"name": "alarm"}), 401, "UNAUTHORIZED")


def test_cancelling_an_instance_needs_admin(secured: Api) -> None:
    instance_id = ok(secured.post("/process/start", json={"uniqueId": "external_tasks"}, headers=as_admin()))
    fails(secured.client.delete(f"{BASE}/instance/{instance_id}", headers=as_user("mia")), 403, "FORBIDDEN")
    fails(secured.client.delete(f"{BASE}/instance/{instance_id}", headers=bearer(CRM_KEY)), 403, "FORBIDDEN")
    ok(secured.client.delete(f"{BASE}/instance/{instance_id}", headers=as_admin()))


# -- configuration -----------------------------------------------------------------------


def test_scripts_fail_when_reached_by_default(api: Api) -> None:
    body = {"uniqueId": "script_task_groovy"}
    fails(api.post("/process/start", json=body), 422, "UNSUPPORTED_SCRIPT")


def test_script_check_at_deployment(backend: Backend, tmp_path: Any) -> None:
    api = Api(make_app(backend, tmp_path, BPM_SCRIPT_CHECK="deploy").test_client())
    groovy = (EVENTS / "script_task_groovy.bpmn").read_bytes()
    response = api.post("/deployments", data=groovy, content_type="application/xml")
    body = fails(response, 400, "UNSUPPORTED_SCRIPT")
    assert body["data"]["elementId"] == "groovy"
    fails(api.post("/process/start", json={"uniqueId": "script_task_groovy"}), 404, "PROCESS_NOT_FOUND")


@pytest.mark.parametrize(
    "config",
    [{"BPM_SCRIPT_CHECK": "never"}, {"BPM_TIMERS_IN_WEB": "sometimes"}, {"BPM_TIMER_INTERVAL": 0}],
)
def test_bad_configuration_stops_start_up(config: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(config))):
        create_app({"TESTING": True, "BPM_DEPLOY_ON_START": False, **config})


def test_timers_run_in_the_web_process_for_the_memory_backend_only(backend: Backend) -> None:
    base = {"BPM_BACKEND_INSTANCE": backend, "BPM_DEPLOY_ON_START": False, "BPM_TIMER_INTERVAL": 60}
    app = create_app(base)
    stop = app.extensions.get("bpm_timers_stop")
    try:
        assert (stop is not None) == isinstance(backend, MemoryBackend)
    finally:
        if stop is not None:
            stop()
    assert "bpm_timers_stop" not in create_app({**base, "TESTING": True}).extensions
    assert "bpm_timers_stop" not in create_app({**base, "BPM_TIMERS_IN_WEB": "false"}).extensions
    forced = create_app({**base, "BPM_TIMERS_IN_WEB": True})
    forced.extensions["bpm_timers_stop"]()


def test_worker_cli_fires_what_is_due_once(capsys: pytest.CaptureFixture[str]) -> None:
    worker.main(["--once"])
    assert capsys.readouterr().out.strip() == "fired 0 timers"
