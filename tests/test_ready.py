"""``GET /ready``: 200 only when the backend answers and the process folder is deployed."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from app import create_app
from backends.memory import MemoryBackend
from tests.api_support import fails, make_app, ok
from tests.auth_support import AUTH_CONFIG

BASE = "/BPMREST/service/runtime"


def test_ready_after_deploying_the_process_folder() -> None:
    data = ok(make_app(MemoryBackend()).test_client().get("/ready"))
    assert data == {"status": "READY", "backend": "memory"}


def test_ready_needs_no_credentials_and_deploy_on_start_off_counts_as_ready() -> None:
    app = make_app(MemoryBackend(), BPM_DEPLOY_ON_START=False, **AUTH_CONFIG)
    ok(app.test_client().get("/ready"))


def test_not_ready_while_the_backend_is_unreachable() -> None:
    client = create_app({"TESTING": True, "BPM_BACKEND": "redis://127.0.0.1:1/0"}).test_client()
    fails(client.get("/ready"), 503, "BACKEND_UNAVAILABLE")
    assert client.get("/metrics").status_code == 200  # the process itself still answers


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def late_redis(tmp_path: Path) -> Iterator[tuple[int, list[subprocess.Popen[bytes]]]]:
    """A port where no Redis answers yet; the test starts ``redis-server`` there (stopped afterwards)."""
    if shutil.which("redis-server") is None:
        pytest.skip("needs the redis-server binary")
    started: list[subprocess.Popen[bytes]] = []
    yield _free_port(), started
    for server in started:
        server.terminate()
        server.wait(timeout=10)


def _start_redis(port: int, started: list[subprocess.Popen[bytes]]) -> None:
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    started.append(server)
    for _ in range(100):  # poll until it answers, bounded
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError("redis-server did not start")


@pytest.mark.redis
def test_a_start_up_without_backend_deploys_once_it_answers(
    late_redis: tuple[int, list[subprocess.Popen[bytes]]],
) -> None:
    port, started = late_redis
    app: Flask = create_app({"TESTING": True, "BPM_BACKEND": f"redis://127.0.0.1:{port}/0?socket_timeout=1"})
    client = app.test_client()
    fails(client.get("/ready"), 503, "BACKEND_UNAVAILABLE")
    _start_redis(port, started)
    ok(client.get("/health"))
    assert ok(client.get("/ready"))["status"] == "READY"  # the folder was deployed now
    keys = {d["key"] for d in ok(client.get(f"{BASE}/processes"))}
    assert {"bookingRoom", "order", "invoiceReminder"} <= keys
