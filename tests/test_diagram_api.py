"""The diagram routes: ``GET …/processes/<key>/diagram.svg`` and ``GET …/instance/<id>/diagram.svg``."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from lxml import etree

from backends.base import Backend
from backends.memory import MemoryBackend
from tests.api_support import BASE, Api, fails, make_app, ok
from tests.auth_support import AUTH_CONFIG, as_user

ROOM = {"RoomObject": {"room": "Everest", "capacity": 20}}
SVG_NS = "{http://www.w3.org/2000/svg}"
PAYMENT = b"""<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL"
             xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="d" targetNamespace="t">
  <process id="payment" name="payment" isExecutable="true">
    <startEvent id="s"/><sequenceFlow id="f1" sourceRef="s" targetRef="charge"/>
    <serviceTask id="charge" name="Charge card" camunda:type="external" camunda:topic="pay"/>
    <sequenceFlow id="f2" sourceRef="charge" targetRef="e"/><endEvent id="e"/>
  </process>
</definitions>"""


def states(response: Any) -> dict[str, set[str]]:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "image/svg+xml"
    root = etree.fromstring(response.get_data())
    return {
        g.get("data-element-id"): set(g.get("class", "").split())
        for g in root.iter(f"{SVG_NS}g")
        if g.get("data-element-id")
    }


@pytest.fixture
def app(backend: Backend) -> Flask:
    return make_app(backend)


def test_process_diagram_draws_the_latest_or_a_given_version(app: Flask) -> None:
    client = app.test_client()
    response = client.get(f"{BASE}/processes/bookingRoom/diagram.svg")
    found = states(response)
    assert {"Start", "ReviewBooking", "SizeGateway", "ManagerApproval", "Flow_large"} <= set(found)
    assert "bpm-userTask" in found["ReviewBooking"] and "bpm-exclusiveGateway" in found["SizeGateway"]
    assert not any(c & {"bpm-active", "bpm-done", "bpm-incident"} for c in found.values())
    csp = response.headers["Content-Security-Policy"]
    assert "script-src" not in csp and csp.startswith("default-src 'none'")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert states(client.get(f"{BASE}/processes/bookingRoom/diagram.svg", query_string={"version": "1"})) == found


@pytest.mark.parametrize(
    ("path", "query", "status", "error"),
    [
        ("/processes/nope/diagram.svg", {}, 404, "PROCESS_NOT_FOUND"),
        ("/processes/bookingRoom/diagram.svg", {"version": "7"}, 404, "PROCESS_NOT_FOUND"),
        ("/processes/bookingRoom/diagram.svg", {"version": "x"}, 400, "VALIDATION_ERROR"),
        ("/processes/bookingRoom/diagram.svg", {"version": "0"}, 400, "VALIDATION_ERROR"),
        ("/processes/%3Cimg%3E/diagram.svg", {}, 404, "PROCESS_NOT_FOUND"),
        ("/processes/" + "k" * 300 + "/diagram.svg", {}, 404, "PROCESS_NOT_FOUND"),
        ("/instance/nope/diagram.svg", {}, 404, "INSTANCE_NOT_FOUND"),
        ("/instance/a%20b/diagram.svg", {}, 404, "INSTANCE_NOT_FOUND"),
    ],
)
def test_bad_requests_get_the_envelope(app: Flask, path: str, query: dict[str, str], status: int, error: str) -> None:
    fails(app.test_client().get(BASE + path, query_string=query), status, error)


def test_instance_diagram_shows_active_and_done(app: Flask) -> None:
    api = Api(app.test_client())
    api.identity("alice", groups=["facilities"])
    instance_id = api.start("booking room", ROOM, user="carol")
    found = states(api.get(f"/instance/{instance_id}/diagram.svg"))
    assert "bpm-active" in found["ReviewBooking"]
    assert "bpm-done" in found["Start"] and "bpm-done" in found["Flow_toReview"]
    task = api.task(instance_id, "ReviewBooking")
    ok(api.claim(task["id"], "alice"))
    ok(api.complete(task["id"], "alice", {}))
    found = states(api.get(f"/instance/{instance_id}/diagram.svg"))
    assert "bpm-active" in found["ManagerApproval"]
    for done in ("Start", "ReviewBooking", "SizeGateway", "Flow_toReview", "Flow_toSize", "Flow_large"):
        assert "bpm-done" in found[done], done
    for untouched in ("Flow_small", "ConfirmBooking", "Booked", "Rejected"):
        assert not found[untouched] & {"bpm-done", "bpm-active"}, untouched


def test_instance_diagram_marks_incidents(app: Flask) -> None:
    api = Api(app.test_client())
    ok(api.post("/deployments", data=PAYMENT, content_type="application/xml", query_string={"fileName": "pay.bpmn"}))
    instance_id = ok(api.post("/process/start", json={"processName": "payment"}))
    [locked] = ok(
        api.post(
            "/external-task/fetchAndLock",
            json={"workerId": "w1", "maxTasks": 1, "topics": [{"topicName": "pay", "lockDuration": 60000}]},
        )
    )
    failure = {"workerId": "w1", "errorMessage": "<img src=x onerror=alert(1)>", "retries": 0, "retryTimeout": 0}
    ok(api.post(f"/external-task/{locked['id']}/failure", json=failure))
    found = states(api.get(f"/instance/{instance_id}/diagram.svg"))
    assert "bpm-incident" in found["charge"] and "bpm-serviceTask" in found["charge"]
    assert "bpm-done" in found["s"]


def test_diagrams_need_credentials_when_authentication_is_on() -> None:
    client = make_app(MemoryBackend(), **AUTH_CONFIG).test_client()
    fails(client.get(f"{BASE}/processes/bookingRoom/diagram.svg"), 401, "UNAUTHORIZED")
    assert states(client.get(f"{BASE}/processes/bookingRoom/diagram.svg", headers=as_user("carol")))
    instance_id = ok(
        client.post(
            f"{BASE}/process/start", json={"processName": "booking room", "object": ROOM}, headers=as_user("carol")
        )
    )
    fails(client.get(f"{BASE}/instance/{instance_id}/diagram.svg"), 401, "UNAUTHORIZED")
    assert (
        "bpm-active"
        in states(client.get(f"{BASE}/instance/{instance_id}/diagram.svg", headers=as_user()))["ReviewBooking"]
    )
