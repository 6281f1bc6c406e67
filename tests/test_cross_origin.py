"""Cross-site writes are refused (issue 9 part 6): 403 CROSS_ORIGIN, with authentication off or on.

A browser sends ``Origin`` (and ``Sec-Fetch-Site``) with every POST; a bodiless
``fetch(..., {method: "POST", mode: "no-cors"})`` needs no CORS preflight, so the
check must happen on the request itself. Requests without these headers (curl,
servers) are unaffected. The browser version of this test is in
``tests/test_browser.py``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from backends.base import Backend
from backends.memory import MemoryBackend
from tests.api_support import BASE, Api, fails, make_app, ok
from tests.auth_support import AUTH_CONFIG, as_user
from tests.live_server import serving

ROOM = {"RoomObject": {"room": "Everest", "capacity": 20}}


def _review_task(api: Api, user: str = "carol") -> tuple[str, str]:
    api.identity("alice", groups=["facilities"])
    instance_id = api.start("booking room", ROOM, user=user)
    return instance_id, api.task(instance_id, "ReviewBooking")["id"]


@pytest.fixture
def app(backend: Backend) -> Flask:
    return make_app(backend)


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "http://localhost.evil.example"},
        {"Origin": "null"},
        {"Origin": "http://localhost:5001"},  # same host, another port: another origin
        {"Origin": "https://localhost"},  # same host, another scheme
        {"Sec-Fetch-Site": "cross-site"},
        {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
    ],
)
def test_a_cross_origin_claim_is_refused_and_changes_nothing(app: Flask, headers: dict[str, str]) -> None:
    api = Api(app.test_client())
    instance_id, task_id = _review_task(api)
    response = api.post(f"/tasks/{task_id}/claim", query_string={"user": "alice"}, headers=headers)
    body = fails(response, 403, "CROSS_ORIGIN")
    assert body["data"] is None
    assert api.task(instance_id, "ReviewBooking")["assignee"] is None


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_every_state_changing_method_is_checked(app: Flask, method: str) -> None:
    client = app.test_client()
    response = client.open(
        f"{BASE}/identity/mallory",
        method=method,
        json={"groups": ["managers"], "roles": []},
        headers={"Origin": "https://evil.example"},
    )
    fails(response, 403, "CROSS_ORIGIN")
    assert ok(client.get(f"{BASE}/identity/mallory"))["groups"] == []


def test_same_origin_and_header_less_writes_pass(app: Flask) -> None:
    api = Api(app.test_client())
    instance_id, task_id = _review_task(api)
    # the test client's own origin is http://localhost
    same = {"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"}
    ok(api.post(f"/tasks/{task_id}/claim", query_string={"user": "alice"}, headers=same))
    ok(api.post(f"/tasks/{task_id}/unclaim", query_string={"user": "alice"}, headers={"Origin": "HTTP://LOCALHOST/"}))
    ok(api.post(f"/tasks/{task_id}/claim", query_string={"user": "alice"}))  # curl, servers: no Origin
    ok(api.post(f"/tasks/{task_id}/unclaim", query_string={"user": "alice"}, headers={"Sec-Fetch-Site": "none"}))
    assert api.task(instance_id, "ReviewBooking")["assignee"] is None


def test_reads_are_not_checked(app: Flask) -> None:
    response = app.test_client().get(
        f"{BASE}/processes", headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
    )
    assert ok(response)


def test_configured_origins_may_write(backend: Backend) -> None:
    app = make_app(backend, BPM_CORS_ORIGINS="https://app.example, https://ops.example/")
    api = Api(app.test_client())
    instance_id, task_id = _review_task(api)
    for origin in ("https://app.example", "https://ops.example"):
        headers = {"Origin": origin, "Sec-Fetch-Site": "cross-site"}
        ok(api.post(f"/tasks/{task_id}/claim", query_string={"user": "alice"}, headers=headers))
        ok(api.post(f"/tasks/{task_id}/unclaim", query_string={"user": "alice"}, headers=headers))
    refused = api.post(
        f"/tasks/{task_id}/claim",
        query_string={"user": "alice"},
        headers={"Origin": "https://app.example.evil.example"},
    )
    fails(refused, 403, "CROSS_ORIGIN")
    # a cross-site request without an Origin is refused even when origins are configured
    refused = api.post(
        f"/tasks/{task_id}/claim", query_string={"user": "alice"}, headers={"Sec-Fetch-Site": "cross-site"}
    )
    fails(refused, 403, "CROSS_ORIGIN")
    assert api.task(instance_id, "ReviewBooking")["assignee"] is None


def test_refused_with_authentication_on_even_with_a_valid_token(backend: Backend) -> None:
    app = make_app(backend, **AUTH_CONFIG)
    client = app.test_client()
    admin = as_user("root", roles=["admin"])
    ok(client.put(f"{BASE}/identity/alice", json={"groups": ["facilities"], "roles": []}, headers=admin))
    instance_id = ok(
        client.post(
            f"{BASE}/process/start", json={"processName": "booking room", "object": ROOM}, headers=as_user("carol")
        )
    )
    [task] = ok(client.get(f"{BASE}/instance/{instance_id}/tasks", headers=as_user("carol")))
    alice = as_user("alice", groups=["facilities"])
    refused = client.post(f"{BASE}/tasks/{task['id']}/claim", headers={**alice, "Origin": "https://evil.example"})
    fails(refused, 403, "CROSS_ORIGIN")
    refused = client.post(f"{BASE}/tasks/{task['id']}/claim", headers={"Origin": "https://evil.example"})  # no token
    fails(refused, 403, "CROSS_ORIGIN")
    [task] = ok(client.get(f"{BASE}/instance/{instance_id}/tasks", headers=as_user("carol")))
    assert task["assignee"] is None
    ok(client.post(f"{BASE}/tasks/{task['id']}/claim", headers={**alice, "Origin": "http://localhost"}))


# -- with curl against a live server ----------------------------------------------------------


@pytest.fixture
def live() -> Iterator[Any]:
    with serving(make_app(MemoryBackend())) as server:
        yield server


def _curl(*args: str) -> tuple[int, dict[str, Any]]:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    done = subprocess.run(
        ["curl", "-sS", "-w", "\n%{http_code}", *args], capture_output=True, text=True, timeout=60, check=True
    )
    body, _, status = done.stdout.rpartition("\n")
    return int(status), json.loads(body)


def test_curl_against_a_live_server(live: Any) -> None:
    base = live.url + BASE
    status, _ = _curl(
        "-X",
        "PUT",
        f"{base}/identity/alice",
        "-H",
        "Content-Type: application/json",
        "-d",
        '{"groups": ["facilities"]}',
    )
    assert status == 200
    status, started = _curl(
        "-X",
        "POST",
        f"{base}/process/start?user=carol",
        "-H",
        "Content-Type: application/json",
        "-d",
        json.dumps({"processName": "booking room", "object": ROOM}),
    )
    instance_id = started["data"]
    status, tasks = _curl(f"{base}/instance/{instance_id}/tasks")
    task_id = tasks["data"][0]["id"]

    status, body = _curl("-X", "POST", f"{base}/tasks/{task_id}/claim?user=alice", "-H", "Origin: https://evil.example")
    assert (status, body["code"], body["error"]) == (403, 403, "CROSS_ORIGIN")
    status, body = _curl("-X", "POST", f"{base}/tasks/{task_id}/claim?user=alice", "-H", "Sec-Fetch-Site: cross-site")
    assert (status, body["error"]) == (403, "CROSS_ORIGIN")
    status, tasks = _curl(f"{base}/instance/{instance_id}/tasks")
    assert tasks["data"][0]["assignee"] is None

    status, body = _curl("-X", "POST", f"{base}/tasks/{task_id}/claim?user=alice", "-H", f"Origin: {live.url}")
    assert (status, body["code"]) == (200, 0)
    status, body = _curl("-X", "POST", f"{base}/tasks/{task_id}/unclaim?user=alice")  # plain curl
    assert (status, body["code"]) == (200, 0)
