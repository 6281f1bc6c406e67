"""Helpers for the API tests: an app on a given backend, and envelope-checking calls."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from app import create_app
from backends.base import Backend
from tests.conftest import PROCESSES

BASE = "/BPMREST/service/runtime"
TASK_FIELDS = [
    "id",
    "name",
    "description",
    "instanceId",
    "definitionId",
    "processName",
    "createTime",
    "createBy",
    "dueDate",
    "priority",
    "assignee",
    "owner",
    "parentTaskId",
    "loadlinkEntityId",
    "loadlinkParam",
    "taskDefinitionKey",
    "candidateUsers",
    "candidateGroups",
    "candidateRoles",
    "formKey",
]


def make_app(backend: Backend, process_dir: Path | str = PROCESSES, **config: Any) -> Flask:
    return create_app({"TESTING": True, "BPM_BACKEND_INSTANCE": backend, "BPM_PROCESS_DIR": str(process_dir), **config})


def check_envelope(response: TestResponse) -> dict[str, Any]:
    """Every response is the envelope, with a request id header."""
    assert response.headers.get("X-Request-Id")
    body = response.get_json()
    assert isinstance(body, dict), response.get_data(as_text=True)
    assert list(body)[:4] == ["data", "code", "timestamp", "totalRecordCount"]
    assert isinstance(body["timestamp"], int) and body["timestamp"] > 1_600_000_000_000
    assert isinstance(body["totalRecordCount"], int)
    return body


def ok(response: TestResponse, status: int = 200) -> Any:
    """Assert a success envelope; return its data."""
    body = check_envelope(response)
    assert response.status_code == status, body
    assert body["code"] == 0
    assert set(body) == {"data", "code", "timestamp", "totalRecordCount"}
    return body["data"]


def fails(response: TestResponse, status: int, error: str) -> dict[str, Any]:
    """Assert an error envelope with this status and error code; return the body."""
    body = check_envelope(response)
    assert response.status_code == status, body
    assert body["code"] == status
    assert body["error"] == error, body
    assert isinstance(body["message"], str) and body["message"]
    assert body["totalRecordCount"] == 0
    return body


class Api:
    """A thin client for the routes of API.md (every call checks the envelope)."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def post(self, path: str, **kwargs: Any) -> TestResponse:
        return self.client.post(BASE + path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        return self.client.get(BASE + path, **kwargs)

    def start(self, name: str, obj: Mapping[str, Any] | None = None, user: str | None = "alice") -> str:
        body: dict[str, Any] = {"processName": name}
        if obj is not None:
            body["object"] = dict(obj)
        query = {"user": user} if user else {}
        instance_id = ok(self.post("/process/start", json=body, query_string=query))
        assert isinstance(instance_id, str) and instance_id
        return instance_id

    def tasks(self, instance_id: str) -> list[dict[str, Any]]:
        tasks = ok(self.get(f"/instance/{instance_id}/tasks"))
        for task in tasks:
            assert list(task) == TASK_FIELDS
        return tasks

    def task(self, instance_id: str, element_id: str) -> dict[str, Any]:
        found = [t for t in self.tasks(instance_id) if t["taskDefinitionKey"] == element_id]
        assert len(found) == 1, found
        return found[0]

    def instance(self, instance_id: str) -> dict[str, Any]:
        return ok(self.get(f"/instance/{instance_id}"))

    def identity(self, user: str, groups: Sequence[str] = (), roles: Sequence[str] = ()) -> None:
        ok(self.client.put(f"{BASE}/identity/{user}", json={"groups": list(groups), "roles": list(roles)}))

    def claim(self, task_id: str, user: str) -> TestResponse:
        return self.post(f"/tasks/{task_id}/claim", query_string={"user": user})

    def complete(self, task_id: str, user: str, variables: Mapping[str, Any] | None = None) -> TestResponse:
        kwargs: dict[str, Any] = {"query_string": {"user": user}}
        if variables is not None:
            kwargs["json"] = dict(variables)
        return self.post(f"/tasks/{task_id}/complete", **kwargs)

    def complete_ok(self, task_id: str, user: str, variables: Mapping[str, Any] | None = None) -> None:
        assert ok(self.complete(task_id, user, variables)) == ""

    def query(self, **params: Any) -> tuple[list[dict[str, Any]], int]:
        response = self.get("/tasks", query_string=params)
        data = ok(response)
        return data, response.get_json()["totalRecordCount"]
