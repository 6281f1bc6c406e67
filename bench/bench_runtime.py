"""Benchmark: lifecycles per second and to-do-list latency, memory vs Redis.

Prints, for each backend, full lifecycles per second in-process (start -> claim
-> complete -> end on a process with one user task and an exclusive gateway),
and, for Redis, the median latency of the ``tasks?user=`` query (through the
use case, as the API calls it) while the store holds 10k, 100k and 1M open
tasks of other users. Not a test: run it by hand.

    python3 bench/bench_runtime.py [--redis redis://127.0.0.1:6379/9] [--sizes 10000,100000,1000000]

Lifecycles on one Redis against a Redis Cluster (``--cluster URL``, or
``--cluster local`` to start a 3-master/3-replica cluster on free loopback ports
for the run), with ``--processes N`` client processes at once:

    python3 bench/bench_runtime.py --lifecycles-only --cluster local --processes 2
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backends.base import Backend, Instance, Step, Task
from backends.memory import MemoryBackend
from bpm.runtime import Runtime

HERE = Path(__file__).resolve().parent


def make_runtime(backend: Backend) -> Runtime:
    runtime = Runtime(backend)
    runtime.deploy((HERE / "lifecycle.bpmn").read_bytes(), file="lifecycle.bpmn")
    runtime.set_identity("clerk", ["clerks"], [])
    return runtime


def lifecycles_per_second(runtime: Runtime, seconds: float) -> tuple[float, int]:
    done = 0
    began = time.perf_counter()
    while time.perf_counter() - began < seconds:
        instance_id = runtime.start(process_name="bench lifecycle", variables={"amount": done}, user="clerk")
        task = runtime.instance_tasks(instance_id)[0]
        runtime.claim(task.id, "clerk")
        runtime.complete(task.id, "clerk", {"approved": done % 2 == 0})
        done += 1
    elapsed = time.perf_counter() - began
    return done / elapsed, done


def fill_open_tasks(backend: Backend, target: int, have: int, batch: int = 1000) -> None:
    """Store open tasks of 1000 other users and groups (bulk, as instances with one task each)."""
    now = int(time.time() * 1000)
    while have < target:
        for _ in range(min(batch, target - have)):
            n = have
            instance_id = backend.new_id()
            instance = Instance(
                id=instance_id,
                definition_id="benchLifecycle:1",
                process_key="benchLifecycle",
                process_name="bench lifecycle",
                state={"vars": {}, "tokens": {}},
                create_time=now,
            )
            task = Task(
                id=backend.new_id(near=instance_id),
                name="Approve",
                instance_id=instance.id,
                definition_id="benchLifecycle:1",
                process_name="bench lifecycle",
                create_time=now + n,
                task_definition_key="approve",
                assignee=f"user{n % 1000}",
                candidate_groups=[f"group{n % 1000}"],
            )
            backend.apply_steps([Step(instance=instance, created=[task], new=True)])
            have += 1


def median_query_ms(runtime: Runtime, repeats: int = 200) -> float:
    samples = []
    for _ in range(repeats):
        began = time.perf_counter()
        _tasks, total = runtime.query_tasks(users=["clerk"])
        samples.append((time.perf_counter() - began) * 1000)
    assert total == 20, total
    return statistics.median(samples)


def query_latencies(label: str, runtime: Runtime, backend: Backend, sizes: str) -> None:
    have = 0
    for size in (int(s) for s in sizes.split(",")):
        began = time.perf_counter()
        fill_open_tasks(backend, size, have)
        have = size
        filled = time.perf_counter() - began
        print(
            f"{label:7s} tasks?user= median with {size:>9,} other open tasks: {median_query_ms(runtime):7.3f} ms"
            f"   (filled in {filled:.0f} s)"
        )


def own_todo_list(runtime: Runtime) -> None:
    """clerk's own to-do list: 10 tasks assigned, 10 through the group."""
    for i in range(20):
        instance_id = runtime.start(process_name="bench lifecycle", user="clerk")
        if i % 2:
            runtime.claim(runtime.instance_tasks(instance_id)[0].id, "clerk")


def _lifecycle_worker(url: str, prefix: str, seconds: float, results: Any) -> None:
    from backends import backend_from_url

    backend = backend_from_url(f"{url}{'&' if '?' in url else '?'}prefix={prefix}")
    results.put(lifecycles_per_second(make_runtime(backend), seconds)[1])


def lifecycles_on(label: str, url: str, seconds: float, processes: int) -> None:
    """Lifecycles per second of ``processes`` client processes on the store at ``url``."""
    import multiprocessing as mp

    from backends import backend_from_url

    prefix = f"bench:{uuid.uuid4().hex[:8]}"
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    workers = [ctx.Process(target=_lifecycle_worker, args=(url, prefix, seconds, results)) for _ in range(processes)]
    for worker in workers:
        worker.start()
    done = sum(results.get(timeout=seconds + 120) for _ in workers)
    for worker in workers:
        worker.join()
    backend = backend_from_url(f"{url}{'&' if '?' in url else '?'}prefix={prefix}")
    backend.clear()
    backend.close()
    print(f"{label:7s} lifecycles/s: {done / seconds:9.1f}  ({done} in {seconds:.0f} s, {processes} process(es))")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/9")
    parser.add_argument("--cluster", default="", help="redis+cluster://host:port,... or 'local' to start one")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--lifecycles-only", action="store_true")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--memory-sizes", default="10000,100000")
    args = parser.parse_args()

    if args.lifecycles_only:
        lifecycles_on("redis", args.redis, args.seconds, args.processes)
        if args.cluster:
            with cluster_url(args.cluster) as url:
                lifecycles_on("cluster", url, args.seconds, args.processes)
        return

    memory = make_runtime(MemoryBackend())
    rate, count = lifecycles_per_second(memory, args.seconds)
    print(f"memory  lifecycles/s: {rate:9.1f}  ({count} in {args.seconds:.0f} s)")
    memory_backend = MemoryBackend()
    memory = make_runtime(memory_backend)
    own_todo_list(memory)
    query_latencies("memory", memory, memory_backend, args.memory_sizes)

    from backends.redis import RedisBackend

    backend = RedisBackend(args.redis, prefix=f"bench:{uuid.uuid4().hex[:8]}")
    try:
        redis_runtime = make_runtime(backend)
        rate, count = lifecycles_per_second(redis_runtime, args.seconds)
        print(f"redis   lifecycles/s: {rate:9.1f}  ({count} in {args.seconds:.0f} s)")
        backend.clear()
        redis_runtime = make_runtime(backend)
        own_todo_list(redis_runtime)
        query_latencies("redis", redis_runtime, backend, args.sizes)
    finally:
        backend.clear()
        backend.close()


@contextlib.contextmanager
def cluster_url(given: str) -> Iterator[str]:
    """``given``, or with ``local`` the URL of a cluster started (and stopped) for the run."""
    if given != "local":
        yield given
        return
    import tempfile

    from tests.redis_cluster_support import LocalCluster

    with tempfile.TemporaryDirectory() as folder:
        cluster = LocalCluster(Path(folder))
        try:
            cluster.start()
            yield cluster.url
        finally:
            cluster.stop()


if __name__ == "__main__":
    main()
