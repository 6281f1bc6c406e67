"""Prometheus metrics of the process runtime (no Flask): what the use cases did, counted per process.

The metric objects live in prometheus-client's process-wide default registry, as
that library requires (several app factories in one process share them). Under
gunicorn, ``PROMETHEUS_MULTIPROC_DIR`` makes every worker write its values to
files there, and ``/metrics`` sums them (see ``bpm/gunicorn_conf.py``).

The domain counters come from the steps the runtime commits (:func:`observe_steps`
is registered as a commit observer): a new instance is *started*, an instance whose
end time is the step's time has *ended*, a step that completes a task *completed* it,
and a timer subscription removed at or after its due time *fired* late by the difference
(not when the step records a failed attempt; timer start events are not timed).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter, Histogram

if TYPE_CHECKING:
    from bpm.records import Step

log = logging.getLogger(__name__)

HTTP_REQUESTS = Counter(
    "bpm_http_requests_total", "HTTP requests answered, by method, route and status", ["method", "route", "status"]
)
HTTP_DURATION = Histogram(
    "bpm_http_request_duration_seconds",
    "Time to answer an HTTP request, by route",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
INSTANCES_STARTED = Counter("bpm_instances_started_total", "Process instances started", ["process"])
INSTANCES_ENDED = Counter("bpm_instances_ended_total", "Process instances that reached their end", ["process"])
TASKS_COMPLETED = Counter("bpm_tasks_completed_total", "User tasks completed", ["process"])
TIMER_LAG = Histogram(
    "bpm_timer_lag_seconds",
    "How late a timer fired after its due time",
    buckets=(0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0),
)
BACKEND_ERRORS = Counter("bpm_backend_errors_total", "Calls to the storage backend that failed, by kind", ["kind"])


def process_of(definition_id: str) -> str:
    """The process key of a definition id ``<key>:<version>``."""
    return definition_id.rpartition(":")[0] or definition_id


def observe_steps(steps: Iterable[Step]) -> None:
    """Count what one committed plan did (called after the backend applied it); never raises,
    since the write it describes has happened."""
    try:
        _count(steps)
    except Exception:  # a metrics bug must not turn a committed write into an error
        log.exception("counting the metrics of a commit failed")


def _count(steps: Iterable[Step]) -> None:
    for step in steps:
        instance = step.instance
        process = process_of(instance.definition_id)
        if step.new:
            INSTANCES_STARTED.labels(process=process).inc()
        if instance.ended and instance.end_time == step.now:
            INSTANCES_ENDED.labels(process=process).inc()
        if step.complete_task:
            TASKS_COMPLETED.labels(process=process).inc()
        if any(entry.get("type") == "timer.failed" for entry in step.history):
            continue  # a failed attempt backs the timer off; it has not fired
        for sub in step.unsubscribed:
            if sub.kind == "timer" and sub.due is not None and sub.due <= step.now:
                TIMER_LAG.observe((step.now - sub.due) / 1000)


def backend_error(kind: str) -> None:
    BACKEND_ERRORS.labels(kind=kind).inc()


def install(runtime: Any) -> None:
    """Register :func:`observe_steps` with a runtime that takes commit observers (once)."""
    observers = getattr(runtime, "observers", None)
    if isinstance(observers, list) and observe_steps not in observers:
        observers.append(observe_steps)
