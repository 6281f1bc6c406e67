"""The timer worker: fires due timers (and timer start events) in a bounded loop.

Run as its own process (the Procfile's ``worker:`` line)::

    bpm worker [--interval 1.0] [--batch 100] [--once]     (or python -m bpm.worker ...)

or inside the web process for a single-process setup (``BPM_TIMERS_IN_WEB``,
see :func:`start_in_thread`). Any number of workers may run against one
backend: each timer fires once (see :mod:`bpm.events`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from bpm.errors import BpmError

if TYPE_CHECKING:
    from bpm.runtime import Runtime

log = logging.getLogger(__name__)


def run_once(runtime: Runtime, batch: int = 100) -> int:
    """Fire what is due now, in batches until nothing due is left; return how many fired."""
    total = 0
    while True:
        fired = runtime.fire_due_timers(limit=batch)
        total += fired
        if fired < batch:
            return total


def run_loop(runtime: Runtime, stop: threading.Event, interval: float = 1.0, batch: int = 100) -> None:
    """Fire due timers every ``interval`` seconds until ``stop`` is set."""
    while not stop.is_set():
        try:
            log.debug("timer round: %d fired", run_once(runtime, batch))
        except BpmError as exc:  # e.g. the backend is down: log and try again next round
            log.warning("timer round failed: %s", exc.message)
        stop.wait(interval)


def start_in_thread(runtime: Runtime, interval: float = 1.0) -> Callable[[], None]:
    """Run the timer loop in a daemon thread of this process; return a function that stops it."""
    stop = threading.Event()
    thread = threading.Thread(target=run_loop, args=(runtime, stop, interval), name="bpm-timers", daemon=True)
    thread.start()

    def stopper() -> None:
        stop.set()
        thread.join(timeout=interval + 5)

    return stopper


def main(argv: list[str] | None = None) -> None:
    """``python -m bpm.worker``: the same as ``bpm worker`` (kept for existing Procfiles)."""
    from bpm.cli import cli

    cli.main(args=["worker", *(argv or [])], prog_name="bpm", standalone_mode=False)


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
