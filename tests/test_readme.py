"""The README's walk-through, run literally against a live ``python3 app.py``, so it cannot drift.

The blocks fenced as ``sh walkthrough`` are joined into one bash script (variables
carry over from block to block) run with ``set -euo pipefail``; the server runs on
a free port (``PORT``), started from this checkout. Each block must succeed: the
test names the first one that does not, with the script's output.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT

README = ROOT / "README.md"
FENCE = re.compile(r"^```sh walkthrough\n(.*?)^```$", re.MULTILINE | re.DOTALL)
STEP_DONE = "::walkthrough-step-done::"


def walkthrough_blocks(text: str) -> list[str]:
    return [match.group(1) for match in FENCE.finditer(text)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_health(url: str, server: subprocess.Popen[bytes], attempts: int = 300) -> None:
    """Poll ``/health`` until it answers 200 (bounded: ``attempts`` tries 0.1 s apart)."""
    for _ in range(attempts):
        if server.poll() is not None:
            raise AssertionError(f"python3 app.py exited with {server.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not answer 200")


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[int]:
    """``python3 app.py`` from this checkout on a free loopback port (the memory backend)."""
    port = _free_port()
    env = {**os.environ, "PORT": str(port), "PYTHONPATH": str(ROOT), "BPM_BACKEND": "memory://"}
    env.pop("HOST", None)
    env.pop("BPM_PROCESS_DIR", None)
    log = (tmp_path / "server.log").open("wb")
    server = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_for_health(f"http://127.0.0.1:{port}/health", server)
        yield port
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def test_the_readme_has_a_walkthrough_in_order() -> None:
    blocks = walkthrough_blocks(README.read_text(encoding="utf-8"))
    assert len(blocks) >= 10
    joined = "\n".join(blocks)
    for needle in ("fetchAndLock", "/message", "/signal", "/deployments", "$B/processes", "/ready", "/metrics"):
        assert needle in joined, needle
    assert "<task id>" not in joined and "<instance id>" not in joined  # ids are captured, never placeholders


def test_the_readme_walkthrough_runs_against_a_live_server(live_server: int, tmp_path: Path) -> None:
    for tool in ("bash", "curl", "jq"):
        if shutil.which(tool) is None:
            if os.environ.get("CI"):
                pytest.fail(f"the README walk-through needs {tool}")
            pytest.skip(f"the README walk-through needs {tool}")
    blocks = walkthrough_blocks(README.read_text(encoding="utf-8"))
    script = ["set -euo pipefail"]
    for number, block in enumerate(blocks, 1):
        script += [block, f"echo '{STEP_DONE}{number}'"]
    for path in ("/health", "/BPMREST/service/runtime/processes", "/BPMREST/service/runtime/instance/nope"):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{live_server}{path}", timeout=5) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:  # the 404 envelope
            body = exc.read()
        assert body.startswith(b"{") and body.endswith(b"}\n"), (path, body[-20:])  # one JSON object and a newline
    env = {**os.environ, "PORT": str(live_server)}
    result = subprocess.run(
        ["bash", "-c", "\n".join(script)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    done = [int(line[len(STEP_DONE) :]) for line in result.stdout.splitlines() if line.startswith(STEP_DONE)]
    if result.returncode != 0 or len(done) != len(blocks):
        failed = len(done) + 1
        raise AssertionError(
            f"walk-through block {failed} of {len(blocks)} failed (exit {result.returncode}):\n"
            f"{blocks[failed - 1] if failed <= len(blocks) else ''}\n--- output ---\n{result.stdout}\n{result.stderr}"
        )
    output = result.stdout
    assert '"ended":true' in output  # the booking ran to its end
    assert '"name":"Ship order"' in output  # the order reached the warehouse after the message
    assert '"triggered":0,"started":1' in output  # the alarm signal started a site check
    assert '["PayInvoice"]' in output  # the invoice waits, its timer with it
    assert re.search(r'^bpm_instances_started_total\{process="bookingRoom"\} 1\.0$', output, re.MULTILINE)


def test_the_readme_scenario_example_passes(tmp_path: Path) -> None:
    from bpm.scenarios import run_paths

    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Testing models") :]
    example = re.search(r"^```yaml\n(.*?)^```$", section, re.MULTILINE | re.DOTALL)
    assert example is not None
    (tmp_path / "booking_room.bpmn").write_bytes((ROOT / "processes" / "booking_room.bpmn").read_bytes())
    (tmp_path / "example.yaml").write_text(example.group(1), encoding="utf-8")
    report = run_paths([tmp_path / "example.yaml"])
    assert report.passed, [r.describe() for r in report.results]
