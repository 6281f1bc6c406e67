"""CPU time and Python calls per in-process lifecycle on the memory backend (P1's workload).

    python3 bench/bench_p1.py [--n 3000] [--reps 3] [--profile approval|parallel3] [--sort tottime]
        [--callgrind approval|parallel3]

For each of ``approval`` and ``parallel3`` (the lifecycles of bench_compare.py) prints the median
over ``--reps`` of CPU ms per lifecycle (time.process_time) and Python function calls per
lifecycle (cProfile's count, a run of its own). ``--profile`` prints the cProfile table too.

``--callgrind KIND`` runs ``--n`` lifecycles of KIND after a warm-up inside one
``functools.reduce`` call and prints nothing, for an instruction count of just those, which does
not move with the machine's load (divide callgrind's "Collected" by ``--n``)::

    valgrind --tool=callgrind --collect-atstart=no --toggle-collect=functools_reduce \
        "$(python3 -c 'import sys; print(sys.executable)')" bench/bench_p1.py --callgrind approval --n 500
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_compare import approval_lifecycle, make_runtime, parallel3_lifecycle  # noqa: E402

from backends.memory import MemoryBackend  # noqa: E402

KINDS: dict[str, Callable[[Any], None]] = {"approval": approval_lifecycle, "parallel3": parallel3_lifecycle}


def cpu_ms(fn: Callable[[Any], None], n: int) -> float:
    runtime = make_runtime(MemoryBackend())
    for _ in range(50):
        fn(runtime)
    began = time.process_time()
    for _ in range(n):
        fn(runtime)
    return (time.process_time() - began) * 1000 / n


def calls(fn: Callable[[Any], None], n: int, sort: str | None = None) -> float:
    runtime = make_runtime(MemoryBackend())
    for _ in range(50):
        fn(runtime)
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(n):
        fn(runtime)
    profile.disable()
    stats = pstats.Stats(profile)
    if sort:
        stats.sort_stats(sort).print_stats(45)
    return float(stats.total_calls) / n  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--profile", choices=sorted(KINDS))
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--callgrind", choices=sorted(KINDS), help="run --n lifecycles in one functools.reduce call")
    args = parser.parse_args()
    if args.callgrind:  # the lifecycles alone inside functools_reduce, callgrind's --toggle-collect
        fn = KINDS[args.callgrind]
        runtime = make_runtime(MemoryBackend())
        for _ in range(50):
            fn(runtime)
        functools.reduce(lambda _, __: fn(runtime), range(args.n), None)
        return
    if args.profile:
        calls(KINDS[args.profile], args.n, args.sort)
        return
    for name, fn in KINDS.items():
        ms = [cpu_ms(fn, args.n) for _ in range(args.reps)]
        counts = [calls(fn, max(args.n // 5, 200)) for _ in range(args.reps)]
        print(
            f"{name:10s} cpu median {statistics.median(ms):.4f} min {min(ms):.4f} ms/lifecycle "
            f"(runs {', '.join(f'{m:.4f}' for m in ms)})  calls {statistics.median(counts):.1f}/lifecycle"
        )


if __name__ == "__main__":
    main()
