"""A worker that dies between its write and storing the answer (API.md, "Writes that may be
retried"): the retry with the same Idempotency-Key does not write again and answers success.

The service runs as ``python3 app.py`` in a subprocess against a real Redis (single and
cluster, a key prefix of its own). The first server has the test hook
``BPM_TEST_EXIT_BEFORE_IDEMPOTENCY_FINISH=1`` (bpm.api.idempotency): it ends its process
with ``os._exit`` right after the keyed request's write committed, before the answer is
stored. A second server, without the hook and with a short ``BPM_IDEMPOTENCY_LOCK``, gets
the retry. (On the memory backend the process takes every record with it: nothing to test.)
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from backends.base import Backend, InstanceQuery
from bpm.api.idempotency import EXIT_HOOK
from tests.api_support import BASE
from tests.conftest import PROCESSES, REDIS_URL, make_cluster_backend, make_redis_backend

pytestmark = [pytest.mark.redis, pytest.mark.slow]
ROOT = Path(__file__).resolve().parent.parent
EXIT_CODE = 70  # what the hook ends the process with


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """``python3 app.py`` on a free port, with the given extra environment."""

    def __init__(self, backend_url: str, **env: str) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}{BASE}"
        environment = {
            **os.environ,
            "BPM_BACKEND": backend_url,
            "BPM_PROCESS_DIR": str(PROCESSES),
            "BPM_IDEMPOTENCY_LOCK": "1s",
            "BPM_LOG_LEVEL": "WARNING",
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
        }
        environment.pop(EXIT_HOOK, None)  # only where the test asks for it
        environment.update(env)
        self.process = subprocess.Popen(
            [sys.executable, "app.py"], cwd=ROOT, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server ended: {self.process.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            try:
                if requests.get(f"http://127.0.0.1:{self.port}/health", timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        raise RuntimeError("the server did not answer /health in time")

    def post(self, path: str, key: str | None = None, **kwargs: Any) -> requests.Response:
        headers = {"Idempotency-Key": key} if key else {}
        return requests.post(self.url + path, headers=headers, timeout=10, **kwargs)

    def put(self, path: str, **kwargs: Any) -> requests.Response:
        return requests.put(self.url + path, timeout=10, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return requests.get(self.url + path, timeout=10, **kwargs)

    def exit_code(self, timeout: float = 10) -> int | None:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        if self.process.stderr:
            self.process.stderr.close()


@pytest.fixture(params=["redis", "cluster"])
def store(request: pytest.FixtureRequest) -> Iterator[tuple[Backend, str]]:
    """A backend under a prefix of its own, and the BPM_BACKEND URL of the same store."""
    prefix = f"bpmtest:{uuid.uuid4().hex[:12]}"
    if request.param == "cluster":
        cluster_url = request.getfixturevalue("redis_cluster_url")
        backend = make_cluster_backend(cluster_url, prefix=prefix)
        url = cluster_url
    else:
        backend = make_redis_backend(prefix)
        url = REDIS_URL
    url += ("&" if "?" in url else "?") + f"prefix={prefix}"
    yield backend, url
    backend.clear()
    backend.close()


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        server.stop()


def crash_with(server: Server, path: str, key: str, **kwargs: Any) -> None:
    """Send the keyed request the hook ends the server on: no answer, the process is gone."""
    with pytest.raises(requests.ConnectionError):
        server.post(path, key, **kwargs)
    assert server.exit_code() == EXIT_CODE


def retry_until_not_running(server: Server, path: str, key: str, **kwargs: Any) -> requests.Response:
    """The retry: 409 REQUEST_IN_PROGRESS until the dead worker's lock runs out (bounded)."""
    deadline = time.monotonic() + 15
    while True:
        answer = server.post(path, key, **kwargs)
        if answer.status_code != 409 or answer.json().get("error") != "REQUEST_IN_PROGRESS":
            return answer
        assert time.monotonic() < deadline, "the key stayed REQUEST_IN_PROGRESS"
        time.sleep(0.05)


def test_a_start_whose_worker_died_after_the_write_answers_the_same_instance(
    store: tuple[Backend, str], servers: list[Server]
) -> None:
    backend, url = store
    body = {"processName": "booking room"}
    first = Server(url, **{EXIT_HOOK: "1"})
    servers.append(first)
    crash_with(first, "/process/start?user=alice", "crash-start", json=body)
    found, total = backend.list_instances(InstanceQuery(process_key="bookingRoom"))
    assert total == 1  # the write committed before the worker died
    started = found[0].id

    second = Server(url)
    servers.append(second)
    answer = retry_until_not_running(second, "/process/start?user=alice", "crash-start", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"] == started and answer.headers["Idempotent-Replayed"] == "true"
    again = second.post("/process/start?user=alice", "crash-start", json=body)
    assert again.json()["data"] == started and again.headers["Idempotent-Replayed"] == "true"
    found, total = backend.list_instances(InstanceQuery(process_key="bookingRoom"))
    assert total == 1 and found[0].id == started
    assert len(backend.instance_tasks(started)) == 1


def test_a_complete_whose_worker_died_after_the_write_answers_success(
    store: tuple[Backend, str], servers: list[Server]
) -> None:
    backend, url = store
    first = Server(url, **{EXIT_HOOK: "1"})
    servers.append(first)
    instance_id = first.post("/process/start?user=alice", json={"processName": "booking room"}).json()["data"]
    assert first.put("/identity/fred", json={"groups": ["facilities"], "roles": []}).status_code == 200
    [task] = first.get(f"/instance/{instance_id}/tasks").json()["data"]
    path, body = f"/tasks/{task['id']}/complete?user=fred", {"RoomObject": {"capacity": 4}}
    crash_with(first, path, "crash-complete", json=body)
    completed = [e for e in backend.history(instance_id) if e["type"] == "task.completed"]
    assert len(completed) == 1  # the write committed before the worker died

    second = Server(url)
    servers.append(second)
    answer = retry_until_not_running(second, path, "crash-complete", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"] == "" and answer.headers["Idempotent-Replayed"] == "true"
    assert second.post(path, "crash-complete", json=body).status_code == 200
    completed = [e for e in backend.history(instance_id) if e["type"] == "task.completed"]
    assert len(completed) == 1
