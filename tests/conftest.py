"""Shared fixtures: one ``backend`` fixture parametrised over every backend.

The Redis backend runs against a real server (``BPM_TEST_REDIS_URL``, default
``redis://127.0.0.1:6379/0``) under a key prefix of its own per test, deleted
afterwards. Where no Redis answers the Redis cases skip, except under ``CI``,
where they fail.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backends.base import Backend
from backends.memory import MemoryBackend

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
PROCESSES = ROOT / "processes"
SHARED_BPMN = ROOT.parent / "shared" / "bpmn"
REDIS_URL = os.environ.get("BPM_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
BACKENDS = ["memory", "redis"]


def redis_unavailable(reason: str) -> None:
    """Skip a Redis case locally; fail it under CI, where Redis must be there."""
    if os.environ.get("CI"):
        pytest.fail(f"Redis is required under CI: {reason}")
    pytest.skip(f"no Redis server: {reason}")


def make_redis_backend(prefix: str | None = None) -> Backend:
    try:
        from backends.redis import RedisBackend
    except ImportError as exc:  # pragma: no cover - until the module exists
        redis_unavailable(f"backends.redis cannot be imported ({exc})")
    backend = RedisBackend(REDIS_URL, prefix=prefix or f"bpmtest:{uuid.uuid4().hex[:12]}")
    try:
        backend.ping()
    except Exception as exc:
        redis_unavailable(f"{REDIS_URL}: {exc}")
    return backend


def make_backend(kind: str) -> Backend:
    return MemoryBackend() if kind == "memory" else make_redis_backend()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """Every backend in turn, empty at the start of the test and cleared after it."""
    instance = make_backend(request.param)
    instance.clear()
    yield instance
    instance.clear()
    instance.close()


@pytest.fixture
def memory_backend() -> MemoryBackend:
    return MemoryBackend()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """After a run that included the schemathesis tests: how many requests they sent."""
    module = sys.modules.get("tests.test_api_schemathesis")
    counts = getattr(module, "REQUESTS", None)
    if counts:
        total = sum(counts.values())
        detail = ", ".join(f"{kind} {n}" for kind, n in sorted(counts.items()))
        terminalreporter.write_line(f"schemathesis: {total} requests generated ({detail})")
