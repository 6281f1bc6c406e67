"""CPU per HTTP request of the service's hot routes against an empty Flask route, at the WSGI level.

No server and no sockets: WSGI environs are handed to the apps directly, so what is measured is
the CPU (``time.process_time``) of Flask, flask-smorest, our API layer and the use cases below it.
One *lifecycle* is the four requests of P2 (``bench/bench_compare.py``) on
``../shared/peers/approval.bpmn``: ``POST …/process/start``, ``GET …/instance/<id>/tasks``,
``POST …/tasks/<id>/claim``, ``POST …/tasks/<id>/complete``. The reference is four ``POST``s to
an empty Flask route answering a small JSON object.

Prints, per repetition and as medians over the repetitions:

- the CPU of one lifecycle and of four empty POSTs (ms), and their ratio (empty ÷ lifecycle,
  the WSGI-level analogue of P2);
- the CPU of each of the four routes (ms per request).

The request log is written to ``os.devnull`` (it is still formatted and written, as in production).
Memory backend by default; ``--backend redis://127.0.0.1:6379/N`` uses (and flushes) that Redis db.
``--code DIR`` imports ``app`` and ``bpm`` from another checkout (a before/after in one run).
``--profile`` prints a cProfile of the lifecycles instead (sorted by ``--sort``).

``--callgrind`` runs ``-n`` lifecycles (with ``--empty``: ``-n`` times four empty POSTs) after the
warm-up inside one ``functools.reduce`` call and prints nothing, for an instruction count of just
those, which does not move with the machine's load (divide callgrind's total by ``-n``)::

    valgrind --tool=callgrind --collect-atstart=no --toggle-collect=functools_reduce \
        "$(python3 -c 'import sys; print(sys.executable)')" bench/bench_wsgi.py --callgrind -n 100

(the interpreter itself, not a wrapper script such as pyenv's shim).

    python3 bench/bench_wsgi.py [--backend memory://] [-n 2000] [--repeat 3] [--code DIR]
        [--profile] [--sort tottime] [--lines 45] [--callgrind [--empty]]
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import io
import json
import os
import pstats
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
APPROVAL = ROOT.parent / "shared" / "peers" / "approval.bpmn"
BASE = "/BPMREST/service/runtime"
ROUTES = ("start", "instance tasks", "claim", "complete")

WsgiApp = Callable[..., Any]


def environ(method: str, path: str, body: bytes) -> dict[str, Any]:
    """A WSGI environ as gunicorn would pass it for a small JSON request."""
    route, _, query = path.partition("?")
    return {
        "REQUEST_METHOD": method,
        "PATH_INFO": route,
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "5000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1:5000",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
    }


def call(app: WsgiApp, method: str, path: str, body: bytes = b"") -> bytes:
    """One request; its body. Raises AssertionError unless the status is 2xx."""
    statuses: list[str] = []
    out = b"".join(app(environ(method, path, body), lambda status, headers, exc_info=None: statuses.append(status)))
    if not statuses[0].startswith("2"):
        raise AssertionError(f"{method} {path}: {statuses[0]} {out[:300]!r}")
    return out


class Lifecycle:
    """The four requests of one lifecycle, each one's CPU added to :attr:`cpu` when ``timed``."""

    def __init__(self, app: WsgiApp) -> None:
        self.app = app
        self.cpu = [0.0] * len(ROUTES)

    def _timed(self, index: int, method: str, path: str, body: bytes = b"") -> bytes:
        began = time.process_time()
        out = call(self.app, method, path, body)
        self.cpu[index] += time.process_time() - began
        return out

    def __call__(self) -> None:
        start = self._timed(0, "POST", f"{BASE}/process/start", b'{"processName": "approval", "object": {}}')
        instance_id = json.loads(start)["data"]
        tasks = self._timed(1, "GET", f"{BASE}/instance/{instance_id}/tasks")
        task_id = json.loads(tasks)["data"][0]["id"]
        self._timed(2, "POST", f"{BASE}/tasks/{task_id}/claim?user=clerk", b"{}")
        self._timed(3, "POST", f"{BASE}/tasks/{task_id}/complete?user=clerk", b'{"approved": true}')


def empty_app() -> WsgiApp:
    from flask import Flask

    empty = Flask("empty")

    @empty.post("/empty")
    def answer() -> dict[str, Any]:
        return {"data": "", "code": 0}

    return empty


def cpu_ms(func: Callable[[], None], count: int) -> float:
    began = time.process_time()
    for _ in range(count):
        func()
    return (time.process_time() - began) / count * 1000


def build_app(backend: str, process_dir: str) -> WsgiApp:
    os.environ.update({"BPM_BACKEND": backend, "BPM_PROCESS_DIR": process_dir, "BPM_TIMERS_IN_WEB": "off"})
    if backend.startswith("redis"):
        import redis

        redis.Redis.from_url(backend).flushdb()
    from app import create_app

    return create_app()  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", default="memory://", help="memory:// (default) or redis://host:port/db")
    parser.add_argument("-n", "--lifecycles", type=int, default=2000, help="lifecycles per repetition")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions (medians are printed)")
    parser.add_argument("--code", type=Path, default=ROOT, help="the checkout to import app and bpm from")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the lifecycles instead")
    parser.add_argument("--sort", default="tottime", help="cProfile sort key")
    parser.add_argument("--lines", type=int, default=45, help="cProfile lines shown")
    parser.add_argument("--callgrind", action="store_true", help="run -n units in one functools.reduce call")
    parser.add_argument("--empty", action="store_true", help="with --callgrind: four empty POSTs per unit")
    args = parser.parse_args()

    sys.path.insert(0, str(args.code.resolve()))
    sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - the request log's stream, for the whole run
    process_dir = tempfile.mkdtemp(prefix="bpm-bench-wsgi-")
    shutil.copy(APPROVAL, process_dir)
    try:
        app = build_app(args.backend, process_dir)
        lifecycle, empty = Lifecycle(app), empty_app()

        def empties() -> None:
            for _ in range(4):
                call(empty, "POST", "/empty", b"{}")

        for _ in range(200):  # warm-up: caches, first-call paths
            lifecycle()
            empties()
        if args.callgrind:  # the units alone inside functools_reduce, callgrind's --toggle-collect
            unit = empties if args.empty else lifecycle
            functools.reduce(lambda _, __: unit(), range(args.lifecycles), None)
            return
        if args.profile:
            profile = cProfile.Profile()
            profile.runcall(cpu_ms, lifecycle, args.lifecycles)
            pstats.Stats(profile, stream=sys.stdout).sort_stats(args.sort).print_stats(args.lines)
            return
        print(f"{args.backend} ({args.code.resolve()}), {args.lifecycles} lifecycles x {args.repeat}")
        rows: list[tuple[float, float, list[float]]] = []
        for run in range(args.repeat):
            lifecycle.cpu = [0.0] * len(ROUTES)
            spent, reference = cpu_ms(lifecycle, args.lifecycles), cpu_ms(empties, args.lifecycles)
            routes = [c / args.lifecycles * 1000 for c in lifecycle.cpu]
            rows.append((spent, reference, routes))
            ratio = reference / spent
            print(f"  run {run + 1}: lifecycle {spent:.3f} ms, 4 empty {reference:.3f} ms, ratio {ratio:.3f}")
        spent = statistics.median(r[0] for r in rows)
        reference = statistics.median(r[1] for r in rows)
        print(f"median: lifecycle {spent:.3f} ms CPU, 4 empty {reference:.3f} ms, ratio {reference / spent:.3f}")
        for index, name in enumerate(ROUTES):
            print(f"  {name:15s} {statistics.median(r[2][index] for r in rows):.3f} ms")
    finally:
        shutil.rmtree(process_dir, ignore_errors=True)
        if args.backend.startswith("redis"):
            import redis

            redis.Redis.from_url(args.backend).flushdb()


if __name__ == "__main__":
    main()
