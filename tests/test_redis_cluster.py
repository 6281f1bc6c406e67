"""The Redis backend on a real Redis Cluster (3 masters, 3 replicas): what the cluster
allows scripts to do, how partitions spread over the masters, ``?wait=1``, and the
service through a failover (a replica taking over on ``CLUSTER FAILOVER`` and after a
SIGKILL of its master).

The contract suite, the API suite and the races run on the session's cluster through
the ``backend`` fixture and ``tests/test_redis_production.py``; the failover tests
start a cluster of their own, since they take its masters down.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from backends.base import Identity, Instance, Step, Task
from bpm.errors import BackendUnavailable
from bpm.runtime import Runtime
from tests.api_support import BASE, make_app
from tests.conftest import PROCESSES, REDIS_CLUSTER_URL, make_cluster_backend, redis_unavailable
from tests.redis_cluster_support import LocalCluster, wait_until

pytestmark = pytest.mark.redis


@pytest.fixture
def cluster_backend(redis_cluster_url: str) -> Iterator[Any]:
    backend = make_cluster_backend(redis_cluster_url)
    yield backend
    backend.clear()
    backend.close()


def test_a_script_may_touch_undeclared_keys_of_its_declared_slot_but_no_other(cluster_backend: Any) -> None:
    """Why the scripts pass one key of their partition and derive the rest from its root."""
    client = cluster_backend.client
    root = cluster_backend.pkey(3)
    same = "redis.call('SET', ARGV[1] .. 'undeclared', 'x'); return redis.call('GET', ARGV[1] .. 'undeclared')"
    assert client.eval(same, 1, root + "ids", root) == "x"
    other = cluster_backend.pkey(12)  # another slot, on another master
    with pytest.raises(redis.exceptions.ResponseError):
        client.eval(same, 1, root + "ids", other)


def test_three_thousand_starts_spread_over_the_three_masters(cluster_backend: Any) -> None:
    now = 1_700_000_000_000
    for n in range(3000):
        instance_id = cluster_backend.new_id()
        instance = Instance(instance_id, "p:1", "p", "P", {"n": n}, now)
        task = Task(cluster_backend.new_id(near=instance_id), "T", instance_id, "p:1", "P", now, "t")
        cluster_backend.apply_steps([Step(instance=instance, created=[task], new=True)])
    client = cluster_backend.client
    shares: Counter[str] = Counter()
    for node in client.get_primaries():
        pattern = f"{cluster_backend.prefix}:{{*}}:inst:*"
        shares[node.name] = sum(1 for _ in client.scan_iter(match=pattern, count=1000, target_nodes=node))
    assert sum(shares.values()) == 3000 and len(shares) == 3
    assert all(0.20 <= n / 3000 <= 0.50 for n in shares.values()), shares


def test_health_check_reads_every_partition_and_counts_masters_and_replicas(cluster_backend: Any) -> None:
    report = cluster_backend.health_check()
    assert report["partitions"] == 16 and report["masters"] == 3 and report["replicas"] == 3


def test_with_wait_every_write_is_on_a_replica_when_it_returns(redis_cluster_url: str) -> None:
    backend: Any = make_cluster_backend(f"{redis_cluster_url}?wait=1")
    runtime = Runtime(backend, PROCESSES)
    try:
        runtime.deploy_directory()
        runtime.set_identity("author", ["legal", "finance"], [])
        instance_id = runtime.start(process_name="parallel review", user="author")
        task_id = runtime.instance_tasks(instance_id)[0].id
        runtime.claim(task_id, "author")
        key = backend.ikey(task_id, "task")
        node = backend.client.get_node_from_key(key)
        replicas = _replicas_of(node.host, node.port)
        assert replicas, f"the master {node.host}:{node.port} of the task's slot has no replica"
        seen = []
        for host, port in replicas:  # WAIT 1: at least one of them had it before claim returned
            reader = redis.Redis(host=host, port=port, decode_responses=True)
            reader.execute_command("READONLY")
            seen.append(reader.hget(key, "assignee"))
        assert "author" in seen, seen
    finally:
        backend.clear()
        backend.close()


def _replicas_of(host: str, port: int) -> list[tuple[str, int]]:
    """The replicas a master lists itself (``slave<n>:ip=...,port=...``): its own view, not the
    client's cached topology, which a failover under load can leave behind."""
    info = redis.Redis(host=host, port=port, decode_responses=True).info("replication")
    listed = [value for name, value in info.items() if name.startswith("slave") and isinstance(value, dict)]
    return [(str(entry["ip"]), int(entry["port"])) for entry in listed]


def test_wait_needs_a_replica_on_a_single_redis_it_is_unavailable() -> None:
    from backends.redis import RedisBackend
    from tests.conftest import REDIS_URL

    # WAIT gives up after half the socket timeout: 1 s, well inside the 2 s socket timeout
    backend = RedisBackend(f"{REDIS_URL}?wait=1", prefix=f"bpmtest:{uuid.uuid4().hex[:12]}", socket_timeout=2.0)
    try:
        backend.client.ping()
    except redis.exceptions.RedisError as exc:
        redis_unavailable(str(exc))
    try:
        if int(backend.client.info("replication").get("connected_slaves", 0)) == 0:
            with pytest.raises(BackendUnavailable, match="not confirmed by 1 replica"):
                backend.new_id()
        with pytest.raises(ValueError, match="wait must be"):
            RedisBackend(f"{REDIS_URL}?wait=yes")
    finally:
        backend.clear()
        backend.close()


# -- failover under load --------------------------------------------------------------------


@pytest.fixture(scope="module")
def own_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A cluster of this module's own: the tests take its masters down."""
    if REDIS_CLUSTER_URL:
        pytest.skip("the failover tests need a cluster they may take down (BPM_TEST_REDIS_CLUSTER_URL is set)")
    cluster = LocalCluster(tmp_path_factory.mktemp("failover-cluster"))
    try:
        cluster.start()
    except Exception as exc:
        cluster.stop()
        redis_unavailable(f"no Redis Cluster could be created: {exc}")
    yield cluster
    cluster.stop()


class Load:
    """Clients starting and completing instances over HTTP until stopped; every answer counted."""

    def __init__(self, url: str, threads: int = 4) -> None:
        self.prefix = f"bpmtest:{uuid.uuid4().hex[:12]}"
        # WAIT gives up after half the socket timeout: 1.5 s, ample for a replica on a
        # loaded machine (a shorter one answers 503 while nothing is switching)
        backend = make_cluster_backend(url, prefix=self.prefix, socket_timeout=3.0)
        backend.set_identity(Identity("author", frozenset({"legal", "finance"})))
        self.app = make_app(backend)
        self.statuses: Counter[int] = Counter()
        self.started: list[str] = []
        self.completed: list[str] = []
        self.unavailable_phase: list[str] = []
        self.phase = "before"
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]
        self._lock = threading.Lock()

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def count(self) -> int:
        with self._lock:
            return sum(self.statuses.values())

    def _record(self, status: int) -> None:
        with self._lock:
            self.statuses[status] += 1
            if status == 503:
                self.unavailable_phase.append(self.phase)

    def _run(self) -> None:
        client = self.app.test_client()
        while not self._stop.is_set():
            response = client.post(f"{BASE}/process/start", json={"processName": "parallel review"})
            self._record(response.status_code)
            if response.status_code != 200:
                continue
            instance_id = response.get_json()["data"]
            with self._lock:
                self.started.append(instance_id)
            listed = client.get(f"{BASE}/instance/{instance_id}/tasks")
            self._record(listed.status_code)
            if listed.status_code != 200 or not listed.get_json()["data"]:
                continue
            task_id = listed.get_json()["data"][0]["id"]
            done = client.post(f"{BASE}/tasks/{task_id}/complete?user=author", json={})
            self._record(done.status_code)
            if done.status_code == 200:
                with self._lock:
                    self.completed.append(task_id)


def _wait_for_answers(load: Load, more: int, timeout: float = 60) -> None:
    target = load.count() + more
    wait_until(lambda: load.count() >= target, timeout, f"{more} more answers")


def _check_everything_acknowledged(url: str, load: Load) -> None:
    backend = make_cluster_backend(url, prefix=load.prefix)
    try:
        instances = backend.instances(load.started)
        assert all(i is not None for i in instances), "an acknowledged start was lost"
        for task_id in load.completed:
            task = backend.task(task_id)
            assert task is not None and task.status == "completed", task_id
        for instance in instances:
            assert instance is not None
            active = {t.id for t in backend.instance_tasks(instance.id)}
            waiting = {tok["task"] for tok in instance.state["tokens"].values() if tok.get("task")}
            assert active == waiting  # the instance's task list matches its state
        client = backend.client  # type: ignore[attr-defined]
        for partition in range(backend.partitions):  # type: ignore[attr-defined]
            for word in ("q", "qa", "assignee"):
                pattern = backend.pkey(partition, word, "*")  # type: ignore[attr-defined]
                for key in client.scan_iter(match=pattern, count=1000):
                    for task_id in client.zrange(key, 0, -1):
                        task = backend.task(task_id)
                        assert task is not None and task.active, (key, task_id)  # every queue matches its hashes
    finally:
        backend.clear()
        backend.close()


@pytest.mark.slow
def test_cluster_failover_of_a_replica_under_load_loses_nothing_acknowledged(own_cluster: LocalCluster) -> None:
    url = own_cluster.url + "?wait=1"
    with Load(url) as load:
        _wait_for_answers(load, 60)
        replica = own_cluster.replicas()[0]
        load.phase = "switch"
        own_cluster.node(replica).execute_command("CLUSTER", "FAILOVER")
        own_cluster.wait_healthy(60)
        _wait_for_answers(load, 30)  # the switch is seen by the clients
        load.phase = "after"
        _wait_for_answers(load, 150)
    assert set(load.statuses) <= {200, 503}, load.statuses  # never a 500 (nor anything else)
    assert "after" not in load.unavailable_phase, (load.statuses, Counter(load.unavailable_phase))
    assert load.statuses[200] > 150
    print(f"\nCLUSTER FAILOVER under load: {dict(load.statuses)}")
    _check_everything_acknowledged(url, load)


@pytest.mark.slow
def test_sigkill_of_a_master_under_load_a_replica_takes_over(own_cluster: LocalCluster) -> None:
    url = own_cluster.url + "?wait=1"
    with Load(url) as load:
        _wait_for_answers(load, 60)
        victim = own_cluster.masters()[0]
        load.phase = "switch"
        own_cluster.kill(victim)
        own_cluster.wait_healthy(60, masters=3, replicas=2)  # a replica took over
        own_cluster.start_node(victim)  # the operator restarts it: it rejoins as a replica
        own_cluster.wait_healthy(60)
        _wait_for_answers(load, 30)
        load.phase = "after"
        _wait_for_answers(load, 150)
    assert set(load.statuses) <= {200, 503}, load.statuses  # never a 500 (nor anything else)
    assert "after" not in load.unavailable_phase, (load.statuses, Counter(load.unavailable_phase))
    assert load.statuses[503] >= 1  # the switch was seen
    print(f"\nSIGKILL of a master under load: {dict(load.statuses)}")
    _check_everything_acknowledged(url, load)
