"""Benchmark: bytes of Redis per open task on the real start path.

Starts N instances of ``bench/lifecycle.bpmn`` (one user task for group
``clerks``, a business object of two small variables) through the use case, as
``POST /process/start`` does, and prints what they cost in Redis by MEMORY USAGE
(per key kind, with each kind's encoding), per open task in total, and the keys
per instance. Then completes them all and prints what an ended instance costs
while its retention runs. Not a test: run it by hand.

    python3 bench/bench_bytes.py [--redis redis://127.0.0.1:6379/9] [--count 1000]
"""

from __future__ import annotations

import argparse
import sys
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backends.redis import RedisBackend
from bpm.runtime import Runtime

HERE = Path(__file__).resolve().parent


def kind_of(backend: RedisBackend, key: str) -> str:
    """A key's kind: its first word after the slot root (``task``, ``q`` ...)."""
    rest = key.split("}:", 1)[1]
    return rest.split(":", 1)[0]


def measure(backend: RedisBackend) -> tuple[dict[str, int], dict[str, int], dict[str, set[str]]]:
    client: Any = backend.client
    sizes: dict[str, int] = Counter()
    counts: dict[str, int] = Counter()
    encodings: dict[str, set[str]] = defaultdict(set)
    for pattern in (f"{{{backend.prefix}}}:*", f"{backend.prefix}:{{*"):
        for key in client.scan_iter(match=pattern, count=1000):
            kind = kind_of(backend, key)
            sizes[kind] += int(client.memory_usage(key, samples=0) or 0)
            counts[kind] += 1
            encodings[kind].add(client.object("encoding", key))
    return sizes, counts, encodings


def report(title: str, before: dict[str, int], after: tuple[Any, ...], count: int) -> int:
    sizes, counts, encodings = after
    print(title)
    total = 0
    for kind in sorted(sizes):
        grown = sizes[kind] - before.get(kind, 0)
        if grown <= 0:
            continue
        if kind == "done":  # a write's reply, kept 30 s for retries: not the task's
            print(f"  ({kind:10s} {grown / count:8.1f} B  {counts[kind]:6d} keys, transient: expire after 30 s)")
            continue
        total += grown
        print(f"  {kind:12s} {grown / count:8.1f} B  {counts[kind]:6d} keys  {'/'.join(sorted(encodings[kind]))}")
    print(f"  {'total':12s} {total / count:8.1f} B per instance")
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/9")
    parser.add_argument("--count", type=int, default=1000)
    args = parser.parse_args()
    backend = RedisBackend(args.redis, prefix=f"bytes{uuid.uuid4().hex[:6]}")
    try:
        runtime = Runtime(backend)
        runtime.deploy((HERE / "lifecycle.bpmn").read_bytes(), file="lifecycle.bpmn")
        runtime.set_identity("clerk", ["clerks"], [])
        for _ in range(16):  # every partition's id counter exists before measuring
            backend.new_id()
        before_sizes, before_counts, _ = measure(backend)
        started = [
            runtime.start(process_name="bench lifecycle", variables={"amount": n, "customer": f"c{n}"}, user="clerk")
            for n in range(args.count)
        ]
        opened = measure(backend)
        total = report(f"{args.count} open instances, one open task each:", before_sizes, opened, args.count)
        keys = sum(n for kind, n in opened[1].items() if kind != "done") - sum(before_counts.values())
        print(
            f"BYTES PER OPEN TASK: {total / args.count:.0f}  (goal <= 1024); keys per instance: {keys / args.count:.1f}"
        )
        for instance_id in started:
            task = runtime.instance_tasks(instance_id)[0]
            runtime.complete(task.id, "clerk", {"approved": True})
        ended = measure(backend)
        report(f"{args.count} ended instances, kept until their retention runs out:", before_sizes, ended, args.count)
        kept = sum(n for kind, n in ended[1].items() if kind != "done") - sum(before_counts.values())
        print(f"keys per ended instance: {kept / args.count:.1f}")
    finally:
        backend.clear()
        backend.close()


if __name__ == "__main__":
    main()
