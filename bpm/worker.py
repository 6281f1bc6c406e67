"""The timer worker: fires due timers (and timer start events) in a bounded loop.

Run as its own process (the Procfile's ``worker:`` line)::

    bpm worker [--interval 1.0] [--batch 100] [--once]     (or python -m bpm.worker ...)

or inside the web process for a single-process setup (``BPM_TIMERS_IN_WEB``,
see :func:`start_in_thread`). Any number of workers may run against one
backend: each timer fires once (see :mod:`bpm.timer_cases`).
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
    """Fire due timers every ``interval`` seconds until ``stop`` is set.

    A round that fails (the backend is down, or anything else) is logged; the loop
    goes on with the next round. Each timer's own failures are handled inside the
    round (see :mod:`bpm.timer_cases`).
    """
    while not stop.is_set():
        try:
            fired = run_once(runtime, batch)
            if fired:
                log.debug("timer round fired %d timers", fired)
        except BpmError as exc:  # e.g. the backend is down: log and try again next round
            log.warning("timer round failed: %s", exc.message)
        except Exception:
            log.exception("timer round failed")
        stop.wait(interval)


class TimerThread:
    """The timer loop in a daemon thread of this process, supervised: restarted if it dies.

    Calling the object stops the loop (and its supervisor) and waits for them.
    """

    def __init__(self, runtime: Runtime, interval: float = 1.0, batch: int = 100) -> None:
        self.runtime = runtime
        self.interval = interval
        self.batch = batch
        self.stop_event = threading.Event()
        self.restarts = 0
        self.thread = self._spawn()
        self.supervisor = threading.Thread(target=self._supervise, name="bpm-timers-supervisor", daemon=True)
        self.supervisor.start()

    def _spawn(self) -> threading.Thread:
        thread = threading.Thread(
            target=run_loop,
            args=(self.runtime, self.stop_event, self.interval, self.batch),
            name="bpm-timers",
            daemon=True,
        )
        thread.start()
        return thread

    def _supervise(self) -> None:
        while not self.stop_event.is_set():
            self.thread.join(timeout=max(self.interval, 0.01))
            if not self.thread.is_alive() and not self.stop_event.is_set():
                self.restarts += 1
                log.error("the timer thread died; restarting it (restart %d)", self.restarts)
                self.thread = self._spawn()

    def __call__(self) -> None:
        self.stop_event.set()
        self.supervisor.join(timeout=self.interval + 5)
        self.thread.join(timeout=self.interval + 5)


def start_in_thread(runtime: Runtime, interval: float = 1.0) -> Callable[[], None]:
    """Run the supervised timer loop in this process; return a function that stops it."""
    return TimerThread(runtime, interval)


def main(argv: list[str] | None = None) -> None:
    """``python -m bpm.worker``: the same as ``bpm worker`` (kept for existing Procfiles)."""
    from bpm.cli import cli

    cli.main(args=["worker", *(argv or [])], prog_name="bpm", standalone_mode=False)


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
