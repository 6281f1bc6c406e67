"""``GET /metrics`` (Prometheus text format) and the per-request hooks: HTTP metrics and the request log.

Every request is timed and counted by route template (``/BPMREST/.../tasks/<task_id>/claim``,
never the raw path, so ids do not explode the label set), and logged once on the
``bpm.requests`` logger with request id, user, method, route, status and duration
(the request id goes in the record's fields, not its message text).
With ``PROMETHEUS_MULTIPROC_DIR`` set (gunicorn, see ``bpm/gunicorn_conf.py``) the
values of every worker process are summed on each scrape.
"""

from __future__ import annotations

import dis
import logging
import os
import sys
import threading
import time
from typing import Any, cast

from flask import Flask, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from bpm import metrics
from bpm.api.errors import request_id
from bpm.api.flaskapp import app_context, current_request

request_log = logging.getLogger("bpm.requests")
_REQUEST_LINE = "%s %s %d %.1f ms"
UNMATCHED = "<unmatched>"


class IncidentsCollector:
    """``bpm_incidents_open``, read from the backend at scrape time where it can count them."""

    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime

    def collect(self) -> Any:
        count = getattr(self.runtime.backend, "count_open_incidents", None)
        family = GaugeMetricFamily("bpm_incidents_open", "Open incidents (failed external tasks and timers)")
        if callable(count):
            try:
                family.add_metric([], float(count()))
            except Exception:  # an unreachable backend: no sample, and one backend error counted
                metrics.backend_error("metrics")
        yield family


def _started() -> None:
    app_context().g.bpm_started = time.perf_counter()  # ``g.bpm_started = ...`` without the proxy


#: (method, route, status) -> its request counter and duration histogram (``labels()`` costs more than ``inc()``)
_SERIES: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def _series(method: str, route: str, status: int) -> tuple[Any, Any]:
    found = _SERIES.get((method, route, status))
    if found is None:
        found = (
            metrics.HTTP_REQUESTS.labels(method=method, route=route, status=str(status)),
            metrics.HTTP_DURATION.labels(route=route),
        )
        _SERIES[(method, route, status)] = found
    return found


#: raw query string -> its ``user`` parameter (the request log's user when nobody authenticated)
_QUERY_USERS: dict[bytes, str | None] = {}
_QUERY_USERS_SIZE = 1024
_UNSEEN = object()


def _query_user(req: Any) -> str | None:
    """``req.args.get("user")``, without parsing a query string seen before (the query
    schemas' loads are remembered too, so ``args`` is often not parsed otherwise)."""
    query = req.query_string
    if not query:
        return None
    known = _QUERY_USERS.get(query, _UNSEEN)  # (another thread may empty it meanwhile)
    if known is not _UNSEEN:
        return cast("str | None", known)
    user: str | None = req.args.get("user")
    if len(_QUERY_USERS) >= _QUERY_USERS_SIZE:
        _QUERY_USERS.clear()
    _QUERY_USERS[query] = user
    return user


def _finished(response: Response) -> Response:
    """After every request (errors included): count, time and log it.

    (The request and ``g`` are looked up once, not through their proxies per attribute; the
    log record is made (:func:`_request_record`) and handled as ``Logger.info`` would,
    without its caller lookup.)
    """
    req = current_request()
    ctx_g = app_context().g
    began = getattr(ctx_g, "bpm_started", None)
    duration = time.perf_counter() - began if began is not None else 0.0
    rule = req.url_rule
    route = rule.rule if rule is not None else UNMATCHED
    method = req.method
    status = response.status_code
    counted, timed = _series(method, route, status)
    counted.inc()
    timed.observe(duration)
    if status == 503:
        metrics.backend_error("unavailable")
    if request_log.isEnabledFor(logging.INFO):
        caller = getattr(ctx_g, "caller", None)
        name = getattr(caller, "actor", None) if caller is not None else None
        fields = {
            "request_id": ctx_g.get("request_id") or request_id(),
            "user": str(name or _query_user(req) or "-"),
            "method": method,
            "route": route,
            "status": status,
            "duration": round(duration, 6),
        }
        record = _request_record((method, route, status, duration * 1000), fields)
        request_log.handle(record)
    return response


def _call_line(func: Any, attribute: str) -> int:
    """The line in ``func`` where ``attribute`` is looked up (found in its bytecode, so it
    follows edits of ``func``; no fixed offset to keep in step)."""
    for instruction in dis.get_instructions(func):
        if instruction.argval == attribute and instruction.positions and instruction.positions.lineno:
            return instruction.positions.lineno
    return int(func.__code__.co_firstlineno)


#: the line the request log records name as their origin (that of the call making the record)
_LOG_LINE = _call_line(_finished, "_request_record")


#: the attributes of a request log record that are the same in every one (see :func:`_request_record`)
_TEMPLATE = dict(
    request_log.makeRecord(
        request_log.name, logging.INFO, __file__, _LOG_LINE, _REQUEST_LINE, (), None, "_finished"
    ).__dict__
)


def _request_record(args: tuple[Any, ...], fields: dict[str, Any]) -> logging.LogRecord:
    """The record ``request_log.makeRecord(..., args, ..., extra=fields)`` would make.

    The attributes ``logging.LogRecord.__init__`` would compute again from constants (level
    name, file and module names ...) are copied from a record made at import, in the same
    order (the JSON log lists extra fields in that order); the time, thread and process ones
    are set as it sets them. With another record factory, a ``Logger`` subclass or logging's
    thread/process fields turned off, the record is made by ``makeRecord``.
    """
    if (
        logging.getLogRecordFactory() is not logging.LogRecord
        or type(request_log) is not logging.Logger
        or not (logging.logThreads and logging.logProcesses and logging.logMultiprocessing)
    ):
        return request_log.makeRecord(
            request_log.name, logging.INFO, __file__, _LOG_LINE, _REQUEST_LINE, args, None, "_finished", fields
        )
    record: logging.LogRecord = _new_record(logging.LogRecord)
    attributes = _TEMPLATE.copy()
    now = time.time()
    attributes["args"] = args
    attributes["created"] = now
    attributes["msecs"] = int((now - int(now)) * 1000) + 0.0
    attributes["relativeCreated"] = (now - logging._startTime) * 1000  # type: ignore[attr-defined]
    attributes["thread"] = threading.get_ident()
    attributes["threadName"] = threading.current_thread().name
    processes = sys.modules.get("multiprocessing")
    attributes["processName"] = processes.current_process().name if processes is not None else "MainProcess"
    attributes["process"] = os.getpid()
    attributes.update(fields)
    record.__dict__ = attributes
    return record


_new_record = object.__new__


def scrape(runtime: Any) -> bytes:
    """The text exposition: this process's registry, or every worker's with PROMETHEUS_MULTIPROC_DIR."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)
    else:
        registry = _SingleProcess(REGISTRY)
    registry.register(IncidentsCollector(runtime))
    return generate_latest(registry)


class _SingleProcess(CollectorRegistry):
    """The default registry's collectors plus per-scrape ones, without registering into the default."""

    def __init__(self, base: CollectorRegistry) -> None:
        super().__init__(auto_describe=False)
        self.base = base

    def collect(self) -> Any:
        yield from self.base.collect()
        yield from super().collect()


def init_metrics(app: Flask, runtime: Any) -> None:
    """Hook the request metrics and log into ``app``, count the runtime's commits, serve ``/metrics``."""
    metrics.install(runtime)
    app.before_request(_started)
    app.after_request(_finished)

    def metrics_view() -> Response:
        return Response(scrape(runtime), mimetype=CONTENT_TYPE_LATEST)

    app.add_url_rule("/metrics", endpoint="metrics", view_func=metrics_view, methods=["GET"])
