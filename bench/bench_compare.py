"""Side by side, in one run: this runtime against SpiffWorkflow and against an empty Flask route.

Prints one table per run and the medians over the runs:

- **P1** in-process lifecycles/s on the memory backend (start, claim, complete, end of
  ``../shared/peers/approval.bpmn``) ÷ SpiffWorkflow's rate for the same model with its state
  saved and restored at the wait (``spiff.sh approval-persist``);
- **parallel3** (fork, three user tasks, join) beside ``spiff.sh parallel3``;
- the same lifecycle in-process on Redis (a dedicated ``redis-server`` this script starts), its
  share of the memory backend's rate, **round trips** per lifecycle (requests written to Redis;
  a pipeline counts once) and **Redis CPU** per lifecycle (redis-server's own CPU time ÷ lifecycles),
  then the same from ``--clients`` processes at once (the server busy, not idle between requests);
- **bytes per open task**: Redis ``used_memory`` growth per started instance left at its first
  user task (instance, task, indexes, history, and the transient ``done:`` markers of the
  writes, also shown apart), on a second ``redis-server`` of its own;
- **P2** HTTP lifecycles/s (start, instance tasks, claim, complete) on gunicorn + Redis ÷ (an empty
  Flask POST route's requests/s ÷ 4), both under the same gunicorn settings and the same client,
  each timed after its workers have booted and served ``--warmup`` seconds of the same load,
  both servers up at once and timed in ``--slices`` alternating slices.

Not a test: run it by hand on a quiet machine and compare ratios from one run::

    python3 bench/bench_compare.py [--runs 3] [--seconds 4] [--warmup 1] [--slices 4] [--skip-http] [--skip-spiff]
        [--workers 2] [--threads 4] [--worker-class gthread|sync] [--clients 4]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PEERS = ROOT.parent / "shared" / "peers"
APPROVAL = PEERS / "approval.bpmn"
PARALLEL3 = PEERS / "parallel3.bpmn"
BASE = "/BPMREST/service/runtime"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: Callable[[], bool], what: str, tries: int = 200) -> None:
    for _ in range(tries):
        if check():
            return
        time.sleep(0.05)
    raise SystemExit(f"{what} did not come up")


@contextmanager
def redis_server() -> Iterator[str]:
    """A dedicated redis-server on a free port, so its CPU time is this benchmark's alone."""
    import redis

    port = free_port()
    workdir = tempfile.mkdtemp(prefix="bpm-bench-redis-")
    proc = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            workdir,
        ],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)

    def answers() -> bool:
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False

    try:
        wait_for(answers, "redis-server")
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


class RoundTrips:
    """Counts requests written to Redis: each ``send_packed_command`` is one round trip."""

    def __init__(self) -> None:
        self.count = 0

    @contextmanager
    def counting(self) -> Iterator[None]:
        from redis.connection import AbstractConnection

        original = AbstractConnection.send_packed_command
        counter = self

        def send(conn: Any, command: Any, check_health: bool = True) -> None:
            counter.count += 1
            original(conn, command, check_health)

        AbstractConnection.send_packed_command = send  # type: ignore[method-assign]
        try:
            yield
        finally:
            AbstractConnection.send_packed_command = original  # type: ignore[method-assign]


def make_runtime(backend: Any) -> Any:
    from bpm.runtime import Runtime

    runtime = Runtime(backend)
    runtime.deploy(APPROVAL.read_bytes(), file="approval.bpmn")
    runtime.deploy(PARALLEL3.read_bytes(), file="parallel3.bpmn")
    return runtime


def approval_lifecycle(runtime: Any) -> None:
    instance_id = runtime.start(process_name="approval", variables={}, user="clerk")
    (task,) = runtime.instance_tasks(instance_id)
    runtime.claim(task.id, "clerk")
    runtime.complete(task.id, "clerk", {"approved": True})


def parallel3_lifecycle(runtime: Any) -> None:
    instance_id = runtime.start(process_name="parallel3", variables={}, user="clerk")
    for task in runtime.instance_tasks(instance_id):
        runtime.complete(task.id, "clerk", {})


def rate(fn: Callable[[], None], seconds: float) -> tuple[float, int]:
    fn()  # warm caches
    done = 0
    began = time.perf_counter()
    while time.perf_counter() - began < seconds:
        fn()
        done += 1
    return done / (time.perf_counter() - began), done


def redis_cpu(url: str) -> float:
    import redis

    info = redis.Redis.from_url(url).info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def spiff(mode: str, n: int) -> float | None:
    script = PEERS / "spiff.sh"
    if not script.exists():
        return None
    out = subprocess.run(["bash", str(script), mode, str(n)], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        print(f"  spiff.sh {mode} failed: {out.stderr.strip()[-300:]}", file=sys.stderr)
        return None
    return float(json.loads(out.stdout.strip().splitlines()[-1])["instances_per_s"])


def in_process(args: argparse.Namespace, url: str) -> dict[str, float]:
    from backends.memory import MemoryBackend
    from backends.redis import RedisBackend

    figures: dict[str, float] = {}
    memory = make_runtime(MemoryBackend())
    figures["memory_lifecycles_s"], _ = rate(lambda: approval_lifecycle(memory), args.seconds)
    figures["memory_parallel3_s"], _ = rate(lambda: parallel3_lifecycle(memory), args.seconds)

    backend = RedisBackend(url, prefix=f"bench{uuid.uuid4().hex[:6]}")
    try:
        runtime = make_runtime(backend)
        approval_lifecycle(runtime)
        trips = RoundTrips()
        cpu_before, client_before = redis_cpu(url), time.process_time()
        with trips.counting():
            figures["redis_lifecycles_s"], count = rate(lambda: approval_lifecycle(runtime), args.seconds)
        cpu_after, client_after = redis_cpu(url), time.process_time()
        figures["round_trips"] = trips.count / (count + 1)  # rate() runs one warm-up lifecycle too
        figures["redis_cpu_ms"] = (cpu_after - cpu_before) * 1000 / (count + 1)
        figures["redis_client_cpu_ms"] = (client_after - client_before) * 1000 / (count + 1)
        figures["redis_parallel3_s"], _ = rate(lambda: parallel3_lifecycle(runtime), args.seconds)
    finally:
        backend.clear()
        backend.close()
    figures.update(concurrent_redis(url, args.clients, args.seconds))
    figures.update(bytes_per_open_task(args.open_tasks))
    return figures


def _concurrent_client(url: str, seconds: float, ready: Any, go: Any, out: Any, stop: Any) -> None:
    """One process of :func:`concurrent_redis`: lifecycles on its own backend for ``seconds``."""
    from backends.redis import RedisBackend

    backend = RedisBackend(url, prefix=f"bench{uuid.uuid4().hex[:6]}")
    runtime = make_runtime(backend)
    approval_lifecycle(runtime)
    ready.put(True)
    go.wait()
    _, done = rate(lambda: approval_lifecycle(runtime), seconds)
    out.put(done + 1)  # rate() runs one warm-up lifecycle too
    stop.wait()  # clear only once the server's CPU is read
    backend.clear()
    backend.close()


def concurrent_redis(url: str, clients: int, seconds: float) -> dict[str, float]:
    """The same lifecycle from ``clients`` processes at once on the same redis-server: the lifecycles
    per second together, and redis-server's CPU per lifecycle while it is kept busy (a server that
    never waits idle between requests spends less per request than the serial figure's)."""
    ctx = multiprocessing.get_context("spawn")
    ready, out, go, stop = ctx.Queue(), ctx.Queue(), ctx.Event(), ctx.Event()
    procs = [ctx.Process(target=_concurrent_client, args=(url, seconds, ready, go, out, stop)) for _ in range(clients)]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=120)
    cpu_before = redis_cpu(url)
    go.set()
    done = sum(out.get(timeout=seconds + 120) for _ in procs)
    cpu_after = redis_cpu(url)
    stop.set()
    for p in procs:
        p.join()
    return {
        "redis_concurrent_s": done / seconds,
        "redis_concurrent_cpu_ms": (cpu_after - cpu_before) * 1000 / max(done, 1),
    }


def bytes_per_open_task(n: int) -> dict[str, float]:
    """used_memory growth per started instance, everything counted (transient done markers
    too), on a redis-server of its own: nothing else there frees memory meanwhile (the done
    markers of the lifecycles before expiring, their keys cleared, the keyspace tables shrinking
    after), and its keyspace tables grow from empty, so their cost is spread over the instances
    instead of depending on whether a power-of-two resize falls inside the measurement."""
    with redis_server() as url:
        return _bytes_per_open_task(url, n)


def _bytes_per_open_task(url: str, n: int) -> dict[str, float]:
    import redis

    from backends.redis import RedisBackend

    client = redis.Redis.from_url(url)
    backend = RedisBackend(url, prefix=f"bytes{uuid.uuid4().hex[:6]}")
    try:
        runtime = make_runtime(backend)
        for _ in range(backend.partitions):  # every partition's id counter exists before measuring
            backend.new_id()
        # one start first: the scripts are cached and the connection's buffers grown (once, not per task)
        runtime.start(process_name="approval", variables={"amount": -1}, user="clerk")
        before = int(client.info("memory")["used_memory"])
        for i in range(n):
            runtime.start(process_name="approval", variables={"amount": i}, user="clerk")
        after = int(client.info("memory")["used_memory"])
        done = [key for key in client.scan_iter(match=f"{backend.prefix}:{{*}}:done:*", count=1000)]
        done_bytes = sum(int(client.memory_usage(key, samples=0) or 0) for key in done)
    finally:
        backend.close()
    # one done marker per start (the warm-up's too)
    return {"bytes_per_open_task": (after - before) / n, "done_bytes_per_open_task": done_bytes / max(len(done), 1)}


# --- HTTP ---------------------------------------------------------------------------------------

EMPTY_APP = """
from flask import Flask

def create_app():
    app = Flask("empty")

    @app.post("/empty")
    def empty():
        return {"data": "", "code": 0}

    return app
"""


@contextmanager
def gunicorn(
    app_spec: str, env: dict[str, str], workers: int, threads: int, worker_class: str = "gthread"
) -> Iterator[int]:
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        worker_class,
        "--threads",
        str(threads),
        "--log-level",
        "warning",
        app_spec,
    ]
    # the service's request log (one line per request) goes to a file, not this script's output;
    # it is still formatted and written, as in production
    with tempfile.NamedTemporaryFile(prefix="bpm-bench-gunicorn-", suffix=".log") as log:
        proc = subprocess.Popen(cmd, env={**os.environ, **env}, cwd=env.get("PWD", str(ROOT)), stderr=log)

        def up() -> bool:
            if proc.poll() is not None:
                raise SystemExit(f"gunicorn exited with {proc.returncode}: {Path(log.name).read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return True
            except OSError:
                return False

        try:
            wait_for(up, "gunicorn")
            yield port
        finally:
            proc.terminate()
            proc.wait(20)


def _client(port: int, kind: str, seconds: float, out: Any, ready: Any = None, go: Any = None) -> None:
    """One client process: lifecycles (or units of 4 empty POSTs) for ``seconds`` (once ``go``
    is set, after saying it is ``ready``: every client's window is the same).

    Each unit runs on a new keep-alive connection. With one connection per client for the
    whole run, gunicorn hands each connection to one worker for good, and 4 connections
    sometimes all land on one of the 2 workers: the empty route then measured ~2,950
    instead of ~5,400 req/s, so one run's P2 could be off by 2x either way. A new
    connection per unit is accepted by whichever worker is free, for both sides alike."""
    import http.client

    hdr = {"Content-Type": "application/json"}
    conn: Any = None

    def post(path: str, body: str = "{}") -> Any:
        conn.request("POST", path, body=body, headers=hdr)
        resp = conn.getresponse()
        data = resp.read()
        if resp.status >= 400:
            raise SystemExit(f"{path}: {resp.status} {data[:200]!r}")
        return json.loads(data)

    def get(path: str) -> Any:
        conn.request("GET", path)
        resp = conn.getresponse()
        return json.loads(resp.read())

    if ready is not None:
        ready.put(True)
        go.wait()
    done = 0
    began = time.perf_counter()
    while time.perf_counter() - began < seconds:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        if kind == "empty":
            for _ in range(4):
                post("/empty")
            done += 4
        else:
            iid = post(f"{BASE}/process/start", json.dumps({"processName": "approval", "object": {}}))["data"]
            tid = get(f"{BASE}/instance/{iid}/tasks")["data"][0]["id"]
            post(f"{BASE}/tasks/{tid}/claim?user=clerk")
            post(f"{BASE}/tasks/{tid}/complete?user=clerk", json.dumps({"approved": True}))
            done += 1
        conn.close()
    out.put(done / (time.perf_counter() - began))


def http_rate(port: int, kind: str, clients: int, seconds: float) -> float:
    """Units per second of ``clients`` processes together, all timed over the same window (they
    start it together once every one of them has started up)."""
    ctx = multiprocessing.get_context("spawn")
    queue, ready, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=_client, args=(port, kind, seconds, queue, ready, go)) for _ in range(clients)]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=120)
    go.set()
    total = sum(queue.get(timeout=seconds + 60) for _ in procs)
    for p in procs:
        p.join()
    return float(total)


def warm_up(port: int, kind: str, clients: int, seconds: float) -> None:
    """The same load for ``seconds``, untimed, before a rate is timed. The port accepts
    connections as soon as gunicorn's master binds it, before its workers have imported the app
    (~0.8 s for this service, ~0.1 s for the empty route), and a timed window that began then
    would count the boot: measured that way, P2 came out ~15% lower than the steady state it is
    meant to compare. (Each client's first request waits for a booted worker.)"""
    if seconds > 0:
        http_rate(port, kind, clients, seconds)


def interleaved(empty_port: int, port: int, args: argparse.Namespace) -> dict[str, float]:
    """The empty route's requests/s and the service's lifecycles/s, each warmed up, then timed in
    ``--slices`` alternating slices of ``--seconds / --slices`` (the mean of each side's slice
    rates): both servers run at once, so a drift of the machine's speed while it runs reaches
    both sides instead of only the one measured then. (Timed one after the other, the same code's
    P2 ranged 0.40-0.56 on one machine: the same instructions cost up to 1.5x more CPU time in
    some seconds than in others.)"""
    slices = max(1, args.slices)
    share = args.seconds / slices
    warm_up(empty_port, "empty", args.clients, args.warmup)
    warm_up(port, "lifecycle", args.clients, args.warmup)
    empty, lifecycles = [], []
    for _ in range(slices):
        empty.append(http_rate(empty_port, "empty", args.clients, share))
        lifecycles.append(http_rate(port, "lifecycle", args.clients, share))
    return {"empty_req_s": statistics.fmean(empty), "http_lifecycles_s": statistics.fmean(lifecycles)}


def http_figures(args: argparse.Namespace, url: str) -> dict[str, float]:
    figures: dict[str, float] = {}
    tmp = Path(tempfile.mkdtemp(prefix="bpm-bench-http-"))
    try:
        (tmp / "empty_app.py").write_text(EMPTY_APP)
        procs = tmp / "processes"
        procs.mkdir()
        shutil.copy(APPROVAL, procs / "approval.bpmn")
        settings = (args.workers, args.threads, getattr(args, "worker_class", "gthread"))
        env = {
            "BPM_BACKEND": url.rsplit("/", 1)[0] + "/1",
            "BPM_PROCESS_DIR": str(procs),
            "BPM_TIMERS_IN_WEB": "off",
            "PWD": str(ROOT),
        }
        with (
            gunicorn("empty_app:create_app()", {"PWD": str(tmp), "PYTHONPATH": str(tmp)}, *settings) as empty_port,
            gunicorn("app:create_app()", env, *settings) as port,
        ):
            figures.update(interleaved(empty_port, port, args))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    figures["p2"] = figures["http_lifecycles_s"] / (figures["empty_req_s"] / 4)
    return figures


ROWS = [
    ("P1 memory lifecycles/s", "memory_lifecycles_s", "{:,.0f}"),
    ("   SpiffWorkflow approval-persist/s", "spiff_persist_s", "{:,.0f}"),
    ("   P1 ratio (goal >= 10)", "p1", "{:.2f}x"),
    ("parallel3 memory/s", "memory_parallel3_s", "{:,.0f}"),
    ("   SpiffWorkflow parallel3/s", "spiff_parallel3_s", "{:,.0f}"),
    ("   ratio", "parallel3_ratio", "{:.2f}x"),
    ("Redis in-process lifecycles/s", "redis_lifecycles_s", "{:,.0f}"),
    ("   share of memory (goal >= 0.5)", "redis_share", "{:.2f}"),
    ("Redis parallel3/s", "redis_parallel3_s", "{:,.0f}"),
    ("Redis round trips/lifecycle (goal <= 5)", "round_trips", "{:.1f}"),
    ("Redis CPU ms/lifecycle (goal <= 0.25)", "redis_cpu_ms", "{:.3f}"),
    ("   this process's CPU ms/lifecycle on Redis", "redis_client_cpu_ms", "{:.3f}"),
    ("   Redis lifecycles/s, --clients at once", "redis_concurrent_s", "{:,.0f}"),
    ("   Redis CPU ms/lifecycle then (busy)", "redis_concurrent_cpu_ms", "{:.3f}"),
    ("Redis bytes per open task (goal <= 1024)", "bytes_per_open_task", "{:,.0f}"),
    ("   of which transient done markers (30 s)", "done_bytes_per_open_task", "{:,.0f}"),
    ("P2 HTTP lifecycles/s", "http_lifecycles_s", "{:,.0f}"),
    ("   empty Flask POST req/s", "empty_req_s", "{:,.0f}"),
    ("   P2 ratio (goal >= 0.5)", "p2", "{:.2f}"),
]


def one_run(args: argparse.Namespace, url: str) -> dict[str, float]:
    figures = in_process(args, url)
    if not args.skip_spiff:
        persist = spiff("approval-persist", args.spiff_n)
        par = spiff("parallel3", args.spiff_n)
        if persist:
            figures["spiff_persist_s"] = persist
            figures["p1"] = figures["memory_lifecycles_s"] / persist
        if par:
            figures["spiff_parallel3_s"] = par
            figures["parallel3_ratio"] = figures["memory_parallel3_s"] / par
    figures["redis_share"] = figures["redis_lifecycles_s"] / figures["memory_lifecycles_s"]
    if not args.skip_http:
        figures.update(http_figures(args, url))
    return figures


def print_table(title: str, figures: dict[str, float]) -> None:
    print(f"\n{title}")
    for label, key, fmt in ROWS:
        if key in figures:
            print(f"  {label:44s} {fmt.format(figures[key]):>12s}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--spiff-n", type=int, default=1000)
    parser.add_argument(
        "--warmup", type=float, default=1.0, help="untimed seconds of HTTP load once the workers serve (0: none)"
    )
    parser.add_argument("--open-tasks", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--worker-class", default="gthread", help="gunicorn worker class (gthread, sync)")
    parser.add_argument(
        "--clients", type=int, default=4, help="client processes (HTTP, and the concurrent Redis figure)"
    )
    parser.add_argument(
        "--slices", type=int, default=4, help="P2: alternate the empty route and the service this many times"
    )
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--skip-spiff", action="store_true")
    args = parser.parse_args()

    runs: list[dict[str, float]] = []
    with redis_server() as url:
        for n in range(args.runs):
            load = os.getloadavg()
            figures = one_run(args, url)
            runs.append(figures)
            print_table(f"run {n + 1} (load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f})", figures)
    keys = set().union(*runs)
    medians = {k: statistics.median(r[k] for r in runs if k in r) for k in keys}
    load = os.getloadavg()
    settings = f"gunicorn -w {args.workers} -k {args.worker_class} --threads {args.threads}, {args.clients} clients"
    print_table(
        f"medians of {len(runs)} runs ({settings}; load average now {load[0]:.2f} {load[1]:.2f} {load[2]:.2f})", medians
    )


if __name__ == "__main__":
    main()
