"""The API's shortcuts write what the schemas would: task records, plain envelopes, hooks."""

from __future__ import annotations

from typing import Any

from flask import Flask

from backends.base import Task
from backends.memory import MemoryBackend
from bpm.api import merge_request_hooks
from bpm.api.schemas import TaskSchema, task_to_api
from tests.api_support import make_app


def _tasks() -> list[Task]:
    bare = Task(
        id="3-a", name="Review", instance_id="3-9", definition_id="p:1", process_name="P", create_time=1,
        task_definition_key="review",
    )  # fmt: skip
    full = Task(
        id="3-b",
        name="Approve ünïcode",
        instance_id="3-9",
        definition_id="p:2",
        process_name="P",
        create_time=1732800000000,
        task_definition_key="approve",
        description="read it",
        create_by="carol",
        due_date=1732800009999,
        priority=99,
        assignee="bob",
        owner="ann",
        parent_task_id="3-a",
        loadlink_entity_id="order-7",
        loadlink_param="k=v",
        candidate_users=["bob", "dave"],
        candidate_groups=["managers"],
        candidate_roles=["approver"],
        form_key="embedded:app:forms/approve.html",
        variables={"secret": 1},
    )
    return [bare, full]


def test_task_to_api_is_what_the_task_schema_dumps_in_its_order() -> None:
    schema = TaskSchema()
    for task in _tasks():
        fast, dumped = task_to_api(task), schema.dump(task)
        assert fast == dumped
        assert list(fast) == list(dumped)
        assert "variables" not in fast


def test_merged_request_hooks_run_in_flasks_order() -> None:
    app = Flask("hooks")
    calls: list[str] = []

    @app.get("/x")
    def x() -> str:
        calls.append("view")
        return "ok"

    for name in ("b1", "b2"):
        app.before_request(lambda name=name: calls.append(name))  # type: ignore[misc]
    for name in ("a1", "a2"):

        def after(response: Any, name: str = name) -> Any:
            calls.append(name)
            return response

        app.after_request(after)
    merge_request_hooks(app)
    app.before_request(lambda: calls.append("late"))  # type: ignore[arg-type,func-returns-value]
    assert app.test_client().get("/x").data == b"ok"
    assert calls == ["b1", "b2", "late", "view", "a2", "a1"]
    calls.clear()

    def answer() -> str:
        return "answered"

    app.before_request_funcs[None].insert(0, answer)
    assert app.test_client().get("/x").data == b"answered"
    assert calls == ["a2", "a1"]  # no other before hook, no view; the after hooks still run


def test_plain_envelopes_and_security_headers_on_a_hot_route() -> None:
    client = make_app(MemoryBackend()).test_client()
    response = client.get("/BPMREST/service/runtime/tasks?user=nobody")
    assert response.status_code == 200
    body = response.get_json()
    assert list(body) == ["data", "code", "timestamp", "totalRecordCount"]
    assert body["data"] == [] and body["totalRecordCount"] == 0
    for name in ("X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy", "Cache-Control"):
        assert len(response.headers.getlist(name)) == 1
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
