"""The ``bpm`` command: every subcommand has --help, ``token`` mints accepted credentials, ``serve`` serves."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import jwt
import pytest
from click.testing import CliRunner

from backends.memory import MemoryBackend
from bpm.cli import cli
from tests.api_support import BASE, make_app, ok
from tests.auth_support import AUDIENCE, AUTH_CONFIG, ISSUER, SECRET, bearer
from tests.conftest import ROOT

COMMANDS = ["serve", "worker", "lint", "test", "token", "token jwt", "token api-key"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str) -> None:
    result = CliRunner().invoke(cli, [*command.split(), "--help"])
    assert result.exit_code == 0 and result.output.startswith(f"Usage: bpm {command}")


def test_the_console_script_is_declared() -> None:
    assert 'bpm = "bpm.cli:main"' in (ROOT / "pyproject.toml").read_text(encoding="utf-8")


def test_token_jwt_and_api_key_are_accepted_by_the_service(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BPM_JWT_SECRET", SECRET)
    monkeypatch.setenv("BPM_JWT_ISSUER", ISSUER)
    monkeypatch.setenv("BPM_JWT_AUDIENCE", AUDIENCE)
    runner = CliRunner()
    minted = runner.invoke(cli, ["token", "jwt", "root", "--roles", "admin", "--groups", "ops,it", "--minutes", "5"])
    assert minted.exit_code == 0, minted.output
    token = minted.output.strip()
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience=AUDIENCE, issuer=ISSUER)
    assert claims["sub"] == "root" and claims["roles"] == ["admin"] and claims["groups"] == ["ops", "it"]
    assert claims["exp"] - claims["iat"] == 300
    made = runner.invoke(cli, ["token", "api-key", "erp"])
    key, entry = (line.split(": ")[1].strip() for line in made.output.splitlines())
    config = {**AUTH_CONFIG, "BPM_API_KEYS": f"{AUTH_CONFIG['BPM_API_KEYS']},{entry}"}
    client = make_app(MemoryBackend(), **config).test_client()
    ok(client.post(f"{BASE}/refreshCache", headers=bearer(token)))
    ok(client.get(f"{BASE}/processes", headers={"X-API-Key": key}))


def test_token_without_a_secret_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BPM_JWT_SECRET", raising=False)
    result = CliRunner().invoke(cli, ["token", "jwt", "alice"])
    assert result.exit_code == 2 and "BPM_JWT_SECRET" in result.output
    bad = CliRunner().invoke(cli, ["token", "jwt", "alice", "--secret", "s" * 40, "--claim", "x=not json"])
    assert bad.exit_code == 2 and "--claim" in bad.output


def test_serve_runs_gunicorn_on_loopback(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("BPM_") and k != "HOST"}
    env.update(PYTHONPATH=str(ROOT), PROMETHEUS_MULTIPROC_DIR=str(tmp_path), PORT=str(port))
    server = subprocess.Popen(
        [sys.executable, "-m", "bpm.cli", "serve", "--workers", "1"],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(300):  # poll, bounded
            assert server.poll() is None, "bpm serve exited"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as response:
                    assert response.status == 200
                    break
            except OSError:
                time.sleep(0.1)
        else:
            raise AssertionError("bpm serve did not answer")
    finally:
        server.terminate()
        server.wait(timeout=30)


LATE_TIMERS = """<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="http://bpm-runtime.dev/t">
  <process id="dueAtOnce" isExecutable="true">
    <startEvent id="start"><timerEventDefinition><timeDate>2020-01-01T00:00:00Z</timeDate></timerEventDefinition>
    </startEvent>
    <sequenceFlow id="f1" sourceRef="start" targetRef="wait" />
    <intermediateCatchEvent id="wait">
      <timerEventDefinition><timeDate>2020-01-01T00:00:00Z</timeDate></timerEventDefinition>
    </intermediateCatchEvent>
    <sequenceFlow id="f2" sourceRef="wait" targetRef="end" />
    <endEvent id="end" />
  </process>
</definitions>
"""


def test_the_worker_serves_its_timer_metrics(tmp_path: Path) -> None:
    (tmp_path / "due.bpmn").write_text(LATE_TIMERS, encoding="utf-8")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BPM_", "PROMETHEUS_"))}
    env.update(PYTHONPATH=str(ROOT), BPM_PROCESS_DIR=str(tmp_path))
    worker = subprocess.Popen(
        [sys.executable, "-m", "bpm.cli", "worker", "--interval", "0.05", "--metrics-port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    text = ""
    try:
        for _ in range(300):  # poll until the due timer start has fired and been counted, bounded
            assert worker.poll() is None, "bpm worker exited"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
                    text = response.read().decode()
            except OSError:
                text = ""
            if 'bpm_instances_ended_total{process="dueAtOnce"} 1.0' in text:
                break
            time.sleep(0.1)
        else:
            raise AssertionError(f"the worker's metrics never counted the instance's end:\n{text}")
        assert 'bpm_instances_started_total{process="dueAtOnce"} 1.0' in text
        assert "bpm_timer_lag_seconds_count 1.0" in text  # the intermediate timer (start timers are not timed)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
