"""The service around the routes: health, OpenAPI, errors, request ids, input limits, configuration."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest
from flask import Flask

from app import create_app
from backends.base import Backend
from backends.memory import MemoryBackend
from tests.api_support import BASE, Api, check_envelope, fails, make_app, ok
from tests.conftest import PROCESSES

UNKNOWN_ID = "1-00000000-0000-0000-0000-000000000000"


@pytest.fixture
def app(backend: Backend) -> Flask:
    return make_app(backend)


@pytest.fixture
def api(app: Flask) -> Api:
    return Api(app.test_client())


def _open_task(api: Api) -> tuple[str, str]:
    """A booking instance and its open review task, completable by 'fred'."""
    instance_id = api.start("booking room")
    api.identity("fred", groups=["facilities"])
    return instance_id, api.task(instance_id, "ReviewBooking")["id"]


# -- health and docs ------------------------------------------------------------------


def test_health(api: Api, backend: Backend) -> None:
    response = api.client.get("/health")
    data = ok(response)
    scheme = "memory" if isinstance(backend, MemoryBackend) else backend.url.partition(":")[0]  # type: ignore[attr-defined]
    assert data == {"status": "UP", "backend": scheme} and scheme in ("memory", "redis", "redis+cluster")
    assert response.get_json()["totalRecordCount"] == 1


def test_health_is_503_while_the_backend_is_unreachable(caplog: pytest.LogCaptureFixture) -> None:
    pytest.importorskip("backends.redis")
    app = create_app({"TESTING": True, "BPM_BACKEND": "redis://127.0.0.1:1/0"})  # starts despite the outage
    client = app.test_client()
    body = fails(client.get("/health"), 503, "BACKEND_UNAVAILABLE")
    assert "127.0.0.1" not in json.dumps(body)
    body = fails(client.post(f"{BASE}/process/start", json={"processName": "booking room"}), 503, "BACKEND_UNAVAILABLE")
    assert body["data"] is None


def test_openapi_document_is_valid_and_documents_every_route(app: Flask) -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    response = app.test_client().get("/openapi.json")
    assert response.status_code == 200
    spec = response.get_json()
    validator.validate(spec)
    assert spec["openapi"] == "3.0.3" and spec["info"]["title"] == "BPM Process Runtime"

    documented = {
        (path, method.upper()) for path, item in spec["paths"].items() for method in item if method != "parameters"
    }
    routes = {
        (re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule), method)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith(BASE) or rule.rule in ("/health", "/ready")
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    }
    assert routes == documented
    assert (
        len(routes) == 39
    )  # the eleven routes, extensions (history, events, incidents, forms, diagrams, /instances), /ready
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            assert operation["summary"], (path, method)
            content = operation["responses"]["200"]["content"]
            if "application/json" not in content:  # the SVG diagrams
                assert list(content) == ["image/svg+xml"], (path, method)
                continue
            success = content["application/json"]["schema"]["$ref"]
            assert success.endswith("Envelope"), (path, method)
            for status, answer in operation["responses"].items():
                if status != "200" and "content" in answer:
                    assert answer["content"]["application/json"]["schema"]["$ref"].endswith("ErrorEnvelope")
    task = spec["components"]["schemas"]["Task"]["properties"]
    assert list(task)[:3] == ["id", "name", "description"] and len(task) == 20  # with formKey


def test_swagger_ui_is_served(app: Flask) -> None:
    assert app.test_client().get("/docs").status_code == 200


# -- generic errors and request ids ---------------------------------------------------


def test_unknown_route_and_method(api: Api) -> None:
    fails(api.client.get("/no/such/route"), 404, "NOT_FOUND")
    fails(api.get("/tasks/x/y/z"), 404, "NOT_FOUND")
    response = api.get("/process/start")
    fails(response, 405, "METHOD_NOT_ALLOWED")
    assert "POST" in response.headers["Allow"]
    fails(api.client.delete(f"{BASE}/tasks"), 405, "METHOD_NOT_ALLOWED")


def test_request_id_is_generated_or_reused(api: Api) -> None:
    generated = api.client.get("/health").headers["X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    assert api.client.get("/health").headers["X-Request-Id"] != generated
    reused = api.client.get("/health", headers={"X-Request-Id": "edge-1234-abcd"})
    assert reused.headers["X-Request-Id"] == "edge-1234-abcd"
    for insane in ("x", "has spaces in it", "a" * 500, "new\\nline-injection"):
        replaced = api.client.get("/nope", headers={"X-Request-Id": insane}).headers["X-Request-Id"]
        assert re.fullmatch(r"[0-9a-f]{32}", replaced)


def test_unexpected_exception_is_a_generic_500_logged_with_the_request_id(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(backend)

    def explode() -> str:
        raise RuntimeError("secret internal detail")

    app.add_url_rule("/explode", view_func=explode)
    with caplog.at_level(logging.ERROR):
        response = app.test_client().get("/explode")
    body = fails(response, 500, "INTERNAL_ERROR")
    assert body["data"] is None
    assert "secret" not in response.get_data(as_text=True) and "Traceback" not in response.get_data(as_text=True)
    request_id = response.headers["X-Request-Id"]
    logged = [r for r in caplog.records if request_id in r.getMessage()]
    assert len(logged) == 1 and logged[0].exc_info is not None


# -- request bodies -------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"{",
        b'{"a": 1,}',
        b"{'a': 1}",
        b'{"a": NaN}',
        b'{"a": Infinity}',
        b'{"a": 1e999}',
        b'{"a": ' + b"9" * 5000 + b"}",
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a": ' + b'{"b": ' * 100 + b"1" + b"}" * 100 + b"}",
        b"\xff\xfe\x00garbage",
        b'"\xc3\x28"',
    ],
)
def test_malformed_json_is_400_and_changes_nothing(api: Api, raw: bytes) -> None:
    instance_id, task_id = _open_task(api)
    before = api.instance(instance_id)
    response = api.post(f"/tasks/{task_id}/complete?user=fred", data=raw, content_type="application/json")
    body = fails(response, 400, "VALIDATION_ERROR")
    assert "body" in body["data"]
    assert api.instance(instance_id) == before
    fails(api.post("/process/start", data=raw, content_type="application/json"), 400, "VALIDATION_ERROR")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml", None])
def test_non_json_body_is_415(api: Api, content_type: str | None) -> None:
    instance_id, task_id = _open_task(api)
    payload = b'{"RoomObject": {"capacity": 1}}'
    response = api.post(f"/tasks/{task_id}/complete?user=fred", data=payload, content_type=content_type)
    fails(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert api.task(instance_id, "ReviewBooking")["id"] == task_id
    fails(
        api.post("/process/start", data=b'{"processName": "x"}', content_type=content_type),
        415,
        "UNSUPPORTED_MEDIA_TYPE",
    )
    fails(
        api.post("/classAction", data=b'{"processName": "x"}', content_type=content_type), 415, "UNSUPPORTED_MEDIA_TYPE"
    )


def test_json_content_type_variants_are_accepted(api: Api) -> None:
    body = b'{"processName": "booking room"}'
    ok(api.post("/process/start", data=body, content_type="application/json; charset=utf-8"))
    ok(api.post("/process/start", data=body, content_type="application/vnd.bpm+json"))


def test_absent_optional_body_with_any_content_type(api: Api) -> None:
    _, task_id = _open_task(api)
    ok(api.post(f"/tasks/{task_id}/claim?user=fred", content_type="application/x-www-form-urlencoded"))
    ok(api.post(f"/tasks/{task_id}/variables", data=b"", content_type="text/plain"))


def test_body_over_one_mib_is_413_and_changes_nothing(api: Api) -> None:
    instance_id, task_id = _open_task(api)
    before = api.instance(instance_id)
    huge = json.dumps({"RoomObject": {"capacity": 1}, "blob": "x" * (1024 * 1024)})
    response = api.post(f"/tasks/{task_id}/complete?user=fred", data=huge, content_type="application/json")
    fails(response, 413, "PAYLOAD_TOO_LARGE")
    assert api.instance(instance_id) == before
    fails(
        api.post("/process/booking%20room/start", data=huge, content_type="application/json"), 413, "PAYLOAD_TOO_LARGE"
    )
    fails(
        api.post(f"/tasks/{task_id}/claim?user=fred", data=huge, content_type="application/json"),
        413,
        "PAYLOAD_TOO_LARGE",
    )
    assert api.task(instance_id, "ReviewBooking")["assignee"] is None  # a route that reads no body refuses it too
    just_under = json.dumps({"blob": "x" * (1024 * 1024 - 100)})
    ok(api.post("/process/booking%20room/start", data=just_under, content_type="application/json"))


def test_odd_strings_are_stored_and_returned_unchanged(api: Api) -> None:
    odd = {
        "nul": "a\u0000b",
        "rtl": "\u202eevil\u202c",
        "emoji": "\U0001f600 \u00e9\u0301",
        "zero_width": "\u200b\ufeff",
        "big": 10**200,
        "small": -1.5e-300,
        "nested": {"\u0000key": [None, True, {"x": []}]},
    }
    instance_id = api.start("booking room", odd)
    task_id = api.task(instance_id, "ReviewBooking")["id"]
    variables = ok(api.post(f"/tasks/{task_id}/variables"))
    assert {k: variables[k] for k in odd} == odd


@pytest.mark.parametrize(
    "bad_id",
    ["%00", "a%20b", "x" * 201, "%3Cscript%3E", "t%C3%A2che", "a%0Ab", "..", "%FF"],
)
def test_odd_ids_in_paths_are_404(api: Api, bad_id: str) -> None:
    fails(api.post(f"/tasks/{bad_id}/claim?user=u"), 404, "TASK_NOT_FOUND")
    fails(api.post(f"/tasks/{bad_id}/complete?user=u"), 404, "TASK_NOT_FOUND")
    fails(api.post(f"/tasks/{bad_id}/variables"), 404, "TASK_NOT_FOUND")
    fails(api.post(f"/tasks/{bad_id}/assign?user=u"), 404, "TASK_NOT_FOUND")
    fails(api.get(f"/instance/{bad_id}/tasks"), 404, "INSTANCE_NOT_FOUND")
    fails(api.post(f"/instance/{bad_id}/tasks/assign?user=u"), 404, "INSTANCE_NOT_FOUND")
    fails(api.get(f"/instance/{bad_id}"), 404, "INSTANCE_NOT_FOUND")


def test_odd_process_names_are_404(api: Api) -> None:
    for name in ("%00", "a%2Fb", "x" * 1000, "%E2%80%AE", "booking%20room%20"):
        fails(api.post(f"/process/{name}/start"), 404, "PROCESS_NOT_FOUND")
    fails(api.post("/process/start", json={"processName": "\u0000"}), 404, "PROCESS_NOT_FOUND")


# -- configuration --------------------------------------------------------------------


def test_unknown_backend_scheme_fails_at_start_up() -> None:
    with pytest.raises(ValueError, match=r"unknown backend.*memory://.*redis://"):
        create_app({"BPM_BACKEND": "mongo://localhost/db"})


def test_backend_name_without_scheme_says_it_is_not_a_url() -> None:
    # "memory" or "redis" alone is an easy slip: the message names the value, not an empty scheme
    with pytest.raises(ValueError, match=r"BPM_BACKEND='memory' is not a backend URL.*memory://"):
        create_app({"BPM_BACKEND": "memory"})


def test_environment_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BPM_MAX_BODY_BYTES", "64")
    monkeypatch.setenv("BPM_DEPLOY_ON_START", "false")
    monkeypatch.setenv("BPM_PROCESS_DIR", str(tmp_path))
    monkeypatch.setenv("BPM_LOG_LEVEL", "warning")
    app = create_app({"TESTING": True})
    assert app.config["MAX_CONTENT_LENGTH"] == 64
    assert app.config["BPM_DEPLOY_ON_START"] is False
    client = app.test_client()
    assert ok(client.get(f"{BASE}/processes")) == []
    fails(client.post(f"{BASE}/process/start", json={"processName": "x" * 100}), 413, "PAYLOAD_TOO_LARGE")
    monkeypatch.setenv("BPM_MAX_BODY_BYTES", "lots")
    with pytest.raises(ValueError, match="BPM_MAX_BODY_BYTES"):
        create_app()


def test_relative_process_dir_falls_back_to_the_repository(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BPM_PROCESS_DIR", raising=False)
    app = create_app({"TESTING": True, "BPM_BACKEND_INSTANCE": MemoryBackend()})
    keys = {d["key"] for d in ok(app.test_client().get(f"{BASE}/processes"))}
    assert keys == {"bookingRoom", "parallelReview", "onboarding", "order", "invoiceReminder", "siteAlarm"}


def test_bad_file_in_process_dir_does_not_stop_start_up(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "broken.bpmn").write_text("<nope")
    (tmp_path / "review.bpmn").write_bytes((PROCESSES / "parallel_review.bpmn").read_bytes())
    with caplog.at_level(logging.ERROR):
        app = make_app(MemoryBackend(), tmp_path)
    assert any("broken.bpmn" in r.getMessage() for r in caplog.records)
    assert [d["key"] for d in ok(app.test_client().get(f"{BASE}/processes"))] == ["parallelReview"]


def test_cors_only_for_configured_origins() -> None:
    closed = make_app(MemoryBackend()).test_client()
    assert "Access-Control-Allow-Origin" not in closed.get("/health", headers={"Origin": "https://app.example"}).headers
    opened = make_app(MemoryBackend(), BPM_CORS_ORIGINS="https://app.example, https://other.example").test_client()
    allowed = opened.get("/health", headers={"Origin": "https://app.example"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "X-Request-Id" in allowed.headers.get("Access-Control-Expose-Headers", "")
    denied = opened.get("/health", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in denied.headers
    check_envelope(denied)
