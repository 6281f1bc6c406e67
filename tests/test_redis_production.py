"""Redis in production shape: races between threads and OS processes, durability
across a SIGKILL of the server, several app instances and gunicorn workers on one Redis.

All against real Redis servers: the one of ``BPM_TEST_REDIS_URL`` and, for the
durability test, a ``redis-server`` with ``appendonly yes`` started on a free port.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from backends.base import Backend
from bpm.errors import BackendUnavailable, TaskAlreadyClaimed
from bpm.runtime import Runtime
from tests.conftest import PROCESSES, REDIS_URL, ROOT, make_redis_backend, redis_unavailable

pytestmark = pytest.mark.redis


def _prefix() -> str:
    return f"bpmtest:{uuid.uuid4().hex[:12]}"


#: the real stores the races run on, and how often each race is repeated there
STORES = [pytest.param("redis", 200, id="redis"), pytest.param("cluster", 200, id="cluster")]


def store_url(kind: str, request: pytest.FixtureRequest) -> str:
    """The URL of the single Redis or of the session's cluster."""
    return REDIS_URL if kind == "redis" else str(request.getfixturevalue("redis_cluster_url"))


def store_backend(url: str, prefix: str) -> Backend:
    from backends import backend_from_url

    return backend_from_url(f"{url}{'&' if '?' in url else '?'}prefix={prefix}")


@pytest.fixture
def redis_runtime() -> Iterator[Runtime]:
    backend = make_redis_backend()
    runtime = Runtime(backend, PROCESSES)
    runtime.deploy_directory()
    yield runtime
    backend.clear()
    backend.close()


def _open_review(runtime: Runtime) -> tuple[str, list[str]]:
    instance_id = runtime.start(process_name="parallel review", user="author")
    return instance_id, [t.id for t in runtime.instance_tasks(instance_id)]


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "repeat"), STORES)
def test_32_threads_claim_one_task_repeatedly_exactly_one_wins(
    kind: str, repeat: int, request: pytest.FixtureRequest
) -> None:
    backend = store_backend(store_url(kind, request), _prefix())
    redis_runtime = Runtime(backend, PROCESSES)
    redis_runtime.deploy_directory()
    try:
        _claim_race(redis_runtime, repeat)
    finally:
        backend.clear()
        backend.close()


def _claim_race(redis_runtime: Runtime, repeat: int) -> None:
    for _ in range(repeat):
        task_id = _open_review(redis_runtime)[1][0]
        barrier = threading.Barrier(32)
        outcomes: list[str] = []

        def claim(user: str, task_id: str = task_id, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            try:
                redis_runtime.backend.claim(task_id, user, None)
                outcomes.append("won")  # noqa: B023 - the threads are joined within the iteration
            except TaskAlreadyClaimed:
                outcomes.append("lost")  # noqa: B023

        threads = [threading.Thread(target=claim, args=(f"u{i}",)) for i in range(32)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert sorted(outcomes) == ["lost"] * 31 + ["won"]


def _complete_worker(url: str, prefix: str, branch: int, jobs: Any, results: Any, barrier: Any) -> None:
    runtime = Runtime(store_backend(url, prefix), PROCESSES)
    runtime.cache.reload()
    while True:
        job = jobs.get()
        if job is None:
            return
        barrier.wait(timeout=30)
        try:
            runtime.complete(job[branch], "author", {f"branch{branch}": True})
            results.put("ok")
        except Exception as exc:
            results.put(f"{type(exc).__name__}: {exc}")


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "repeat"), STORES)
def test_two_processes_complete_parallel_branches_repeatedly_join_fires_once(
    kind: str, repeat: int, request: pytest.FixtureRequest
) -> None:
    prefix = _prefix()
    url = store_url(kind, request)
    backend = store_backend(url, prefix)
    runtime = Runtime(backend, PROCESSES)
    runtime.deploy_directory()
    for user, groups in (("author", ["legal", "finance"]),):
        runtime.set_identity(user, groups, [])
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(2)
    queues = [ctx.Queue(), ctx.Queue()]
    results = ctx.Queue()
    workers = [ctx.Process(target=_complete_worker, args=(url, prefix, i, queues[i], results, barrier)) for i in (0, 1)]
    for worker in workers:
        worker.start()
    try:
        for _ in range(repeat):
            instance_id, task_ids = _open_review(runtime)
            for queue in queues:
                queue.put(task_ids)
            assert [results.get(timeout=60), results.get(timeout=60)] == ["ok", "ok"]
            tasks = runtime.instance_tasks(instance_id)
            assert [t.task_definition_key for t in tasks] == ["Publish"]
            state = runtime.instance(instance_id).state
            assert len(state["tokens"]) == 1 and state["vars"]["branch0"] and state["vars"]["branch1"]
    finally:
        for queue in queues:
            queue.put(None)
        for worker in workers:
            worker.join(timeout=30)
        backend.clear()
        backend.close()


# -- durability ------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """A ``redis-server`` with ``appendonly yes`` on a free port, killable with SIGKILL."""

    def __init__(self, directory: Path) -> None:
        self.port = _free_port()
        self.directory = directory
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            redis_unavailable("redis-server is not installed")
        self.proc = subprocess.Popen(
            [
                str(binary),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.directory),
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


@pytest.mark.slow
def test_sigkill_of_an_appendonly_redis_loses_nothing_acknowledged(tmp_path: Path) -> None:
    from backends.redis import RedisBackend

    server = RedisServer(tmp_path)
    server.start()
    backend = RedisBackend(server.url, prefix="durable", socket_timeout=1.0)
    runtime = Runtime(backend, PROCESSES)
    runtime.deploy_directory()
    runtime.set_identity("reviewer", ["legal", "finance"], [])
    started: list[str] = []
    completed: list[str] = []
    failures = 0
    after_restart = 0
    killer = threading.Timer(0.3, server.kill)  # SIGKILL at some moment in the middle of the run
    killer.start()
    try:
        deadline = time.monotonic() + 60
        while after_restart < 50 and time.monotonic() < deadline:
            try:
                instance_id, task_ids = _open_review(runtime)
                started.append(instance_id)
                runtime.complete(task_ids[0], "reviewer")
                completed.append(task_ids[0])
                after_restart += 1 if failures else 0
            except BackendUnavailable:
                failures += 1
                killer.join()
                server.start()  # restarted from its append-only file
        assert failures >= 1 and after_restart >= 50
        _assert_acknowledged_and_consistent(backend, started, completed)
    finally:
        killer.cancel()
        backend.close()
        if server.proc and server.proc.poll() is None:
            server.kill()


def _assert_acknowledged_and_consistent(backend: Backend, started: list[str], completed: list[str]) -> None:
    for instance_id in started:
        assert backend.instance(instance_id) is not None
    for task_id in completed:
        task = backend.task(task_id)
        assert task is not None and task.status == "completed"
    for instance_id in started:
        active = {t.id for t in backend.instance_tasks(instance_id)}
        state = backend.instance(instance_id).state  # type: ignore[union-attr]
        waiting = {tok["task"] for tok in state["tokens"].values() if tok.get("task")}
        assert active == waiting  # the instance index matches the engine state
        for task_id in active:
            task = backend.task(task_id)
            assert task is not None and task.active
    _assert_indexes_match_hashes(backend)


def _assert_indexes_match_hashes(backend: Backend) -> None:
    client = backend.client  # type: ignore[attr-defined]
    for partition in range(backend.partitions):  # type: ignore[attr-defined]
        for word in ("q", "qa", "assignee"):
            for key in client.scan_iter(match=backend.pkey(partition, word, "*")):  # type: ignore[attr-defined]
                for task_id in client.zrange(key, 0, -1):
                    task = backend.task(task_id)
                    assert task is not None and task.active, (key, task_id)


# -- several app instances / workers ---------------------------------------------------


def _client_for(url: str, prefix: str) -> Any:
    from app import create_app

    app = create_app({"TESTING": True, "BPM_BACKEND": f"{url}?prefix={prefix}", "BPM_PROCESS_DIR": str(PROCESSES)})
    return app, app.test_client()


BASE = "/BPMREST/service/runtime"

SMALL_PROCESS = """<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" targetNamespace="t">
  <process id="shared" name="shared process" isExecutable="true">
    <startEvent id="s" /><sequenceFlow id="f1" sourceRef="s" targetRef="{task}" />
    <userTask id="{task}" name="{task}" /><sequenceFlow id="f2" sourceRef="{task}" targetRef="e" />
    <endEvent id="e" />
  </process>
</definitions>"""


def test_a_deployment_on_one_app_instance_reaches_the_other_within_a_second() -> None:
    """Each worker reads the cache generation at most once a second (its monotonic clock,
    injected here), so a deployment on another worker is used there within 1 s."""
    prefix = _prefix()
    (app_a, a), (app_b, b) = _client_for(REDIS_URL, prefix), _client_for(REDIS_URL, prefix)
    now = [0.0]
    app_b.extensions["bpm_runtime"].cache.clock = lambda: now[0]

    def started_on_b() -> str:
        instance_id = b.post(f"{BASE}/process/start", json={"processName": "shared process"}).json["data"]
        (task,) = b.get(f"{BASE}/instance/{instance_id}/tasks").json["data"]
        return str(task["definitionId"])

    try:
        for version, task in ((1, "first"), (2, "second")):
            body = SMALL_PROCESS.format(task=task).encode()
            response = a.post(f"{BASE}/deployments?fileName=shared.bpmn", data=body, content_type="application/xml")
            assert response.status_code == 200, response.json
            if version == 2:
                now[0] += 0.5  # within the second: b may still start the version it knows
                assert started_on_b() == "shared:1"
                now[0] += 0.5
            else:
                now[0] += 1.0
            assert started_on_b() == f"shared:{version}"
        generation = app_b.extensions["bpm_runtime"].cache.generation
        assert a.post(f"{BASE}/refreshCache").status_code == 200
        now[0] += 1.0
        b.get(f"{BASE}/processes")
        assert app_b.extensions["bpm_runtime"].cache.generation == generation + 1
    finally:
        app_a.extensions["bpm_runtime"].backend.clear()


def _http(method: str, url: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _poll(check: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():
                return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def test_gunicorn_with_two_workers_on_redis_serves_a_full_lifecycle() -> None:
    make_redis_backend().close()  # fail or skip early without Redis
    prefix = _prefix()
    port = _free_port()
    env = dict(os.environ, BPM_BACKEND=f"{REDIS_URL}?prefix={prefix}", BPM_PROCESS_DIR=str(PROCESSES))
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", "2", "--bind", f"127.0.0.1:{port}", "app:create_app()"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    root = f"http://127.0.0.1:{port}"
    try:
        assert _poll(lambda: _http("GET", f"{root}/health")[0] == 200, 30), "gunicorn did not come up"
        status, body = _http("POST", f"{root}{BASE}/process/start?user=carol", {"processName": "parallel review"})
        assert status == 200, body
        instance_id = body["data"]
        for _ in range(2):
            tasks = _http("GET", f"{root}{BASE}/instance/{instance_id}/tasks")[1]["data"]
            review = next(t for t in tasks if t["taskDefinitionKey"] != "Publish")
            assert _http("POST", f"{root}{BASE}/tasks/{review['id']}/claim?user=cfo")[0] in (200, 403)
            _http("POST", f"{root}{BASE}/tasks/{review['id']}/assign?user=cfo")
            assert _http("POST", f"{root}{BASE}/tasks/{review['id']}/complete?user=cfo", {})[0] == 200
        tasks = _http("GET", f"{root}{BASE}/instance/{instance_id}/tasks")[1]["data"]
        assert [(t["taskDefinitionKey"], t["assignee"]) for t in tasks] == [("Publish", "carol")]
        assert _http("POST", f"{root}{BASE}/tasks/{tasks[0]['id']}/complete?user=carol", {})[0] == 200
        assert _http("GET", f"{root}{BASE}/instance/{instance_id}/tasks")[1]["data"] == []
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        make_redis_backend(prefix).clear()
