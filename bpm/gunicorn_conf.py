"""gunicorn settings for ``bpm serve`` and the Procfile (``--config python:bpm.gunicorn_conf``):
Prometheus multiprocess mode.

Each worker process writes its metric values to files in ``PROMETHEUS_MULTIPROC_DIR``
and ``/metrics`` sums them; the folder is emptied when gunicorn starts and a dead
worker's live gauges are dropped (``child_exit``). Unset, a private temporary folder
is used. Bind address and worker count come from the command line (Procfile).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="bpm-metrics-")
_METRICS_DIR = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
_METRICS_DIR.mkdir(parents=True, exist_ok=True)


def on_starting(server: Any) -> None:
    """Before the first worker: no values left over from an earlier run."""
    for entry in _METRICS_DIR.iterdir():
        if entry.is_file() and entry.suffix == ".db":
            entry.unlink()
        elif entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
