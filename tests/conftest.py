"""Shared fixtures: one ``backend`` fixture parametrised over every backend.

The Redis backend runs against a real server (``BPM_TEST_REDIS_URL``, default
``redis://127.0.0.1:6379/0``) under a key prefix of its own per test, deleted
afterwards. The cluster backend runs against ``BPM_TEST_REDIS_CLUSTER_URL``
(``redis+cluster://host:port,...``) or, without it, a 3-master/3-replica cluster
this test session creates on free loopback ports and stops at its end. Where no
Redis (or no cluster) can be had the cases skip, except under ``CI``, where they
fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import pytest
import redis

from backends.base import Backend
from backends.memory import MemoryBackend
from tests.redis_cluster_support import LocalCluster, free_ports, wait_until

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
PROCESSES = ROOT / "processes"
SHARED_BPMN = ROOT.parent / "shared" / "bpmn"
REDIS_URL = os.environ.get("BPM_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REDIS_CLUSTER_URL = os.environ.get("BPM_TEST_REDIS_CLUSTER_URL", "")
BACKENDS = ["memory", "redis", "cluster"]
#: test modules whose ``backend`` cases skip the cluster (thousands of generated requests
#: that would add minutes and no coverage of the cluster)


def redis_unavailable(reason: str) -> None:
    """Skip a Redis case locally; fail it under CI, where Redis must be there."""
    if os.environ.get("CI"):
        pytest.fail(f"Redis is required under CI: {reason}")
    pytest.skip(f"no Redis server: {reason}")


@contextmanager
def own_redis_server(folder: Path) -> Iterator[int]:
    """A redis-server of a test's own on a free loopback port (its files in ``folder``,
    nothing saved), answering when this yields its port; stopped afterwards."""
    binary = shutil.which("redis-server")
    if binary is None:
        redis_unavailable("redis-server is not installed")
    [port] = free_ports(1)
    proc = subprocess.Popen(
        [str(binary), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(folder)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_until(lambda: bool(redis.Redis(port=port).ping()), 20, "redis-server")
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


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


def make_cluster_backend(url: str, prefix: str | None = None, **options: Any) -> Backend:
    from backends.redis_cluster import RedisClusterBackend

    backend = RedisClusterBackend(url, prefix=prefix or f"bpmtest:{uuid.uuid4().hex[:12]}", **options)
    try:
        backend.ping()
    except Exception as exc:
        redis_unavailable(f"{url}: {exc}")
    return backend


@pytest.fixture(scope="session")
def local_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster | None]:
    """The cluster this session created (None when ``BPM_TEST_REDIS_CLUSTER_URL`` names one)."""
    if REDIS_CLUSTER_URL:
        yield None
        return
    cluster = LocalCluster(tmp_path_factory.mktemp("redis-cluster"))
    try:
        cluster.start()
    except Exception as exc:
        cluster.stop()
        redis_unavailable(f"no Redis Cluster could be created: {exc}")
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def redis_cluster_url(local_cluster: LocalCluster | None) -> str:
    """A ``redis+cluster://`` URL of a working 3-master cluster."""
    return REDIS_CLUSTER_URL or (local_cluster.url if local_cluster else "")


def make_backend(kind: str, request: pytest.FixtureRequest | None = None) -> Backend:
    if kind == "cluster":
        assert request is not None, "the cluster backend needs the session's cluster fixture"
        return make_cluster_backend(request.getfixturevalue("redis_cluster_url"))
    return MemoryBackend() if kind == "memory" else make_redis_backend()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """Every backend in turn, empty at the start of the test and cleared after it."""
    instance = make_backend(request.param, request)
    instance.clear()
    yield instance
    instance.clear()
    instance.close()


@pytest.fixture(params=[kind for kind in BACKENDS if kind != "memory"])
def redis_backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """The Redis backends in turn (single Redis and the cluster), for what only Redis has."""
    instance = make_backend(request.param, request)
    instance.clear()
    yield instance
    instance.clear()
    instance.close()


@pytest.fixture
def memory_backend() -> MemoryBackend:
    return MemoryBackend()


#: schemathesis requests sent, by backend and auth mode, over the run (every xdist worker's)
SCHEMATHESIS_REQUESTS: Counter[str] = Counter()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Sum what each schemathesis test recorded (its report reaches the controller from any worker)."""
    if report.when == "call":
        for name, value in report.user_properties:
            if name == "schemathesis_requests":
                SCHEMATHESIS_REQUESTS.update(cast("dict[str, int]", value))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """After a run that included the schemathesis tests: how many requests they sent."""
    if SCHEMATHESIS_REQUESTS:
        total = sum(SCHEMATHESIS_REQUESTS.values())
        detail = ", ".join(f"{kind} {n}" for kind, n in sorted(SCHEMATHESIS_REQUESTS.items()))
        terminalreporter.write_line(f"schemathesis: {total} requests generated ({detail})")
