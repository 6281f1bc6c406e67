"""Logs: BPM_LOG_LEVEL and BPM_LOG_FORMAT in the web service and the worker, start-up and request lines.

Each case runs a real process (the app factory or ``bpm worker``) from this checkout
and reads what it writes to stderr.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from queue import Empty, Queue

import pytest

from tests.conftest import ROOT

SERVE_ONE_REQUEST = """
from app import create_app
client = create_app({"TESTING": True}).test_client()
client.get("/BPMREST/service/runtime/tasks", query_string={"user": "alice"}, headers={"X-Request-Id": "log-test-0001"})
"""


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BPM_")}
    return {**env, "PYTHONPATH": str(ROOT), "BPM_BACKEND": "memory://", **extra}


def _run(code: str, **env: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=_env(**env), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stderr.splitlines()


def test_json_logs_have_one_object_per_line_with_the_request_fields() -> None:
    lines = _run(SERVE_ONE_REQUEST, BPM_LOG_FORMAT="json")
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"time", "level", "message"} <= set(r) for r in records)
    messages = [r["message"] for r in records]
    assert any(m.startswith("backend memory://") for m in messages)
    assert any(m.startswith("deployed bookingRoom:1 (booking room) from booking_room.bpmn") for m in messages)
    [request] = [r for r in records if r.get("request_id") == "log-test-0001"]
    assert request["level"] == "INFO" and request["user"] == "alice" and request["method"] == "GET"
    assert request["route"] == "/BPMREST/service/runtime/tasks" and request["status"] == 200
    assert isinstance(request["duration"], float) and request["duration"] >= 0


def test_text_logs_at_the_default_level_info() -> None:
    lines = _run(SERVE_ONE_REQUEST)
    assert any(" INFO app: deployed parallelReview:1 " in line for line in lines)
    [request] = [line for line in lines if "request_id=log-test-0001" in line]
    assert " INFO bpm.requests: GET /BPMREST/service/runtime/tasks 200 " in request
    assert "user=alice" in request and "status=200" in request


def test_log_level_warning_silences_info() -> None:
    assert _run(SERVE_ONE_REQUEST, BPM_LOG_LEVEL="warning") == []


def test_a_bad_log_setting_stops_start_up_with_its_name() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SERVE_ONE_REQUEST], cwd=ROOT, env=_env(BPM_LOG_FORMAT="xml"),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0 and "BPM_LOG_FORMAT='xml'" in result.stderr


DUE_TIMER_START = """<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="http://bpm-runtime.dev/t">
  <process id="dueAtOnce" isExecutable="true">
    <startEvent id="start"><timerEventDefinition><timeDate>2020-01-01T00:00:00Z</timeDate></timerEventDefinition>
    </startEvent>
    <sequenceFlow id="f" sourceRef="start" targetRef="end" />
    <endEvent id="end" />
  </process>
</definitions>
"""


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Queue[str]]]:
    """``bpm worker`` at DEBUG, every 0.05 s, with one timer start already due; stderr lines in a queue."""
    (tmp_path / "due.bpmn").write_text(DUE_TIMER_START, encoding="utf-8")
    process = subprocess.Popen(
        [sys.executable, "-m", "bpm.cli", "worker", "--interval", "0.05"],
        cwd=ROOT, env=_env(BPM_LOG_LEVEL="DEBUG", BPM_PROCESS_DIR=str(tmp_path)), stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines: Queue[str] = Queue()
    assert process.stderr is not None
    stream = process.stderr

    def pump() -> None:
        for line in stream:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    try:
        yield process, lines
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


def _wait_for(lines: Queue[str], text: str, seen: list[str]) -> None:
    """Read lines until one contains ``text`` (bounded by a generous per-line timeout)."""
    while True:
        try:
            line = lines.get(timeout=30)
        except Empty:
            raise AssertionError(f"no log line with {text!r}; seen: {seen}") from None
        seen.append(line)
        if text in line:
            return


def test_the_worker_logs_start_each_round_at_debug_and_stop(worker: tuple[subprocess.Popen[str], Queue[str]]) -> None:
    process, lines = worker
    seen: list[str] = []
    _wait_for(lines, "timer worker: backend memory://", seen)
    _wait_for(lines, "timer worker started", seen)
    _wait_for(lines, "DEBUG bpm.worker: timer round fired 1 timers", seen)
    process.send_signal(signal.SIGTERM)
    _wait_for(lines, "timer worker stopped", seen)
    assert process.wait(timeout=30) == 0


def test_the_worker_never_loads_flask_or_the_app_factory(tmp_path: Path) -> None:
    code = (
        "import sys\nfrom bpm.cli import cli\n"
        "cli.main(['worker', '--once'], standalone_mode=False)\n"
        "print(sorted(m for m in ('flask', 'app', 'bpm.api') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["fired 0 timers", "[]"]
