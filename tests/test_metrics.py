"""``/metrics``: scraped from a real gunicorn with two workers on Redis, and the domain counters in-process."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from app import create_app
from backends.memory import MemoryBackend
from bpm import metrics
from bpm.runtime import Runtime
from tests.conftest import PROCESSES, REDIS_URL, ROOT, make_redis_backend

BASE = "/BPMREST/service/runtime"
API_MD_METRICS = (
    "bpm_http_requests_total",
    "bpm_http_request_duration_seconds",
    "bpm_instances_started_total",
    "bpm_instances_ended_total",
    "bpm_tasks_completed_total",
    "bpm_timer_lag_seconds",
    "bpm_backend_errors_total",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _call(url: str, method: str = "GET", body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read(), exc.code
    text = raw.decode()
    return status, json.loads(text) if text.startswith("{") else text


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.fixture
def gunicorn(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """gunicorn with bpm.gunicorn_conf and two workers, on Redis under a private prefix."""
    prefix = f"bpmtest:{uuid.uuid4().hex[:12]}"
    backend = make_redis_backend(prefix)  # skips (or fails under CI) without Redis
    port = _free_port()
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_999999.db").write_bytes(b"stale")  # removed by on_starting
    env = {k: v for k, v in os.environ.items() if not k.startswith("BPM_")}
    env.update(
        PYTHONPATH=str(ROOT),
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
        BPM_BACKEND=f"{REDIS_URL}?prefix={prefix}",
        BPM_PROCESS_DIR=str(PROCESSES),
    )
    command = [sys.executable, "-m", "gunicorn", "--config", "python:bpm.gunicorn_conf", "--workers", "2"]
    command += ["--bind", f"127.0.0.1:{port}", "app:create_app()"]
    log = (tmp_path / "gunicorn.log").open("wb")
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):  # poll /ready, bounded
            assert server.poll() is None, (tmp_path / "gunicorn.log").read_text()
            try:
                if _call(url + "/ready")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        else:
            raise AssertionError("gunicorn did not become ready")
        yield url, metrics_dir
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
        backend.clear()
        backend.close()


def _served_by_both_workers(url: str, metrics_dir: Path) -> int:
    """Send /health in concurrent bursts until both workers have counted a request (bounded; a
    burst keeps one worker busy, so the other accepts too); return how many were sent."""
    from concurrent.futures import ThreadPoolExecutor

    sent = 0
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(100):
            statuses = list(pool.map(lambda _: _call(url + "/health")[0], range(8)))
            assert statuses == [200] * 8
            sent += 8
            if len(list(metrics_dir.glob("counter_*.db"))) >= 2:
                return sent
    raise AssertionError("one worker answered every request")


@pytest.mark.redis
def test_two_gunicorn_workers_are_summed_in_one_scrape(gunicorn: tuple[str, Path]) -> None:
    url, metrics_dir = gunicorn
    assert not (metrics_dir / "counter_999999.db").exists()
    api = url + BASE
    assert _call(f"{api}/identity/alice", "PUT", {"groups": ["facilities"]})[0] == 200
    status, body = _call(f"{api}/process/start?user=carol", "POST",
                         {"processName": "booking room", "object": {"RoomObject": {"capacity": 4}}})  # fmt: skip
    assert status == 200, body
    instance = body["data"]
    for user in ("alice", "carol"):
        [task] = _call(f"{api}/instance/{instance}/tasks")[1]["data"]
        assert _call(f"{api}/tasks/{task['id']}/complete?user={user}", "POST", {})[0] == 200
    sent = _served_by_both_workers(url, metrics_dir)

    status, text = _call(url + "/metrics")
    assert status == 200
    samples = _samples(text)
    health = (("method", "GET"), ("route", "/health"), ("status", "200"))
    assert samples[("bpm_http_requests_total", health)] == sent  # every worker's requests, summed
    assert samples[("bpm_http_request_duration_seconds_count", (("route", "/health"),))] == sent
    assert samples[("bpm_instances_started_total", (("process", "bookingRoom"),))] == 1
    assert samples[("bpm_tasks_completed_total", (("process", "bookingRoom"),))] == 2
    assert samples[("bpm_instances_ended_total", (("process", "bookingRoom"),))] == 1
    names = {name for name, _ in samples}
    for metric in API_MD_METRICS[:-1]:
        assert any(n.startswith(metric) for n in names), metric
    assert re.search(r"^# TYPE bpm_timer_lag_seconds histogram$", text, re.MULTILINE)


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_timer_lag_is_how_late_a_timer_fired() -> None:
    now = [1_767_225_600_000]
    runtime = Runtime(MemoryBackend(), PROCESSES, now_ms=lambda: now[0])
    runtime.deploy_directory()
    metrics.install(runtime)
    metrics.install(runtime)  # once only
    assert runtime.observers.count(metrics.observe_steps) == 1
    before = (_value("bpm_timer_lag_seconds_count"), _value("bpm_timer_lag_seconds_sum"))
    runtime.start(process_name="invoice reminder")
    now[0] += 24 * 3600 * 1000 + 2500  # fired 2.5 s after its due time
    assert runtime.fire_due_timers() == 1
    assert _value("bpm_timer_lag_seconds_count") == before[0] + 1
    assert _value("bpm_timer_lag_seconds_sum") == pytest.approx(before[1] + 2.5)


def test_backend_errors_are_counted_and_metrics_need_no_credentials() -> None:
    app = create_app({"TESTING": True, "BPM_BACKEND": "redis://127.0.0.1:1/0", "BPM_AUTH": "apikey",
                      "BPM_API_KEYS": "ops:" + "0" * 64})  # fmt: skip
    client = app.test_client()
    before = _value("bpm_backend_errors_total", kind="unavailable")
    assert client.get("/health").status_code == 503
    response = client.get("/metrics")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    assert _value("bpm_backend_errors_total", kind="unavailable") == before + 1
    assert 'bpm_http_requests_total{method="GET",route="/health",status="503"}' in response.get_data(as_text=True)


def test_routes_are_labelled_by_template_not_by_id() -> None:
    client = create_app({"TESTING": True, "BPM_BACKEND": "memory://"}).test_client()
    for n in range(3):
        client.get(f"{BASE}/instance/no-such-{n}/tasks")
    client.get("/no/such/route")
    text = client.get("/metrics").get_data(as_text=True)
    assert "no-such-" not in text
    assert f'route="{BASE}/instance/<instance_id>/tasks",status="404"' in text
    assert 'route="<unmatched>",status="404"' in text


FAILING_TIMER = """<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="http://bpm-runtime.dev/t">
  <process id="failingTimer" isExecutable="true">
    <startEvent id="start" />
    <sequenceFlow id="f1" sourceRef="start" targetRef="wait" />
    <intermediateCatchEvent id="wait"><timerEventDefinition><timeDuration>PT1H</timeDuration></timerEventDefinition>
    </intermediateCatchEvent>
    <sequenceFlow id="f2" sourceRef="wait" targetRef="choose" />
    <exclusiveGateway id="choose" />
    <sequenceFlow id="f3" sourceRef="choose" targetRef="end"><conditionExpression>${missing}</conditionExpression>
    </sequenceFlow>
    <endEvent id="end" />
  </process>
</definitions>
"""


def test_a_timer_whose_step_fails_is_not_timed_as_fired(tmp_path: Path) -> None:
    (tmp_path / "failing.bpmn").write_text(FAILING_TIMER, encoding="utf-8")
    now = [1_767_225_600_000]
    runtime = Runtime(MemoryBackend(), tmp_path, now_ms=lambda: now[0])
    runtime.deploy_directory()
    metrics.install(runtime)
    before = _value("bpm_timer_lag_seconds_count")
    instance = runtime.start(process_name="failingTimer")
    now[0] += 3600 * 1000 + 10
    for _ in range(3):  # the step fails (EXPRESSION_ERROR): backed off twice, then an incident, unsubscribed
        runtime.fire_due_timers()
        now[0] += 10 * 60 * 1000
    assert [e["type"] for e in runtime.history(instance) if e["type"].startswith("timer.")] == ["timer.failed"] * 3
    assert runtime.incidents(instance)
    assert _value("bpm_timer_lag_seconds_count") == before
