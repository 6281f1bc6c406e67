"""Logging set-up shared by the web service and the worker: ``BPM_LOG_LEVEL`` and ``BPM_LOG_FORMAT``.

``text`` (the default) writes one readable line per record; ``json`` writes one JSON
object per line (python-json-logger) with ``time``, ``level``, ``logger``,
``message`` and whatever the record carries in ``extra`` (the request log adds
``request_id``, ``user``, ``method``, ``route``, ``status``, ``duration``).
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, TextIO

from pythonjsonlogger.json import JsonFormatter

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: request-log fields, appended to a text line as ``key=value``
REQUEST_FIELDS = ("request_id", "user", "method", "route", "status", "duration")
_MARK = "_bpm_handler"


class TextFormatter(logging.Formatter):
    """The plain format, plus the request fields a record carries.

    The date and time of a second are formatted once for all of that second's records
    (the same text :meth:`logging.Formatter.formatTime` makes); a record with every request
    field gets them in one f-string (tests/test_web_fast_paths2.py checks it against the loop).
    """

    _second: tuple[int, str] = (-1, "")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        second = int(record.created)
        cached = self._second
        if cached[0] != second:
            cached = (second, time.strftime(self.default_time_format, self.converter(record.created)))
            self._second = cached
        return self.default_msec_format % (cached[1], record.msecs) if self.default_msec_format else cached[1]

    def format(self, record: logging.LogRecord) -> str:
        fields = record.__dict__  # where ``extra`` puts them
        if (
            self._fmt is TEXT_FORMAT
            and type(self._style) is logging.PercentStyle
            and not self._style._defaults  # type: ignore[attr-defined]
            and not (record.exc_info or record.exc_text or record.stack_info)
        ):
            # what logging.Formatter.format makes of TEXT_FORMAT, without its generic steps
            record.message = record.getMessage()
            record.asctime = self.formatTime(record, self.datefmt)
            text = "%s %s %s: %s" % (record.asctime, record.levelname, record.name, record.message)  # noqa: UP031
        else:
            text = super().format(record)
        try:  # a request log record (every field): the line below written out
            return (
                f"{text} request_id={fields['request_id']} user={fields['user']} method={fields['method']}"
                f" route={fields['route']} status={fields['status']} duration={fields['duration']}"
            )
        except KeyError:
            pass
        extra = [f"{name}={fields[name]}" for name in REQUEST_FIELDS if name in fields]
        return f"{text} {' '.join(extra)}" if extra else text


def level_of(value: Any) -> int:
    """A level name (``DEBUG`` ... ``CRITICAL``) or number. Raises ValueError for anything else."""
    if isinstance(value, int):
        return value
    text = str(value or "INFO").strip().upper()
    level = logging.getLevelName(text)
    if not isinstance(level, int):
        raise ValueError(f"BPM_LOG_LEVEL={value!r} is not one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
    return level


def formatter(kind: Any) -> logging.Formatter:
    """The formatter ``BPM_LOG_FORMAT`` names. Raises ValueError for an unknown one."""
    text = str(kind or "text").strip().lower()
    if text == "json":
        return JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )
    if text == "text":
        return TextFormatter(TEXT_FORMAT)
    raise ValueError(f"BPM_LOG_FORMAT={kind!r} is not one of {', '.join(FORMATS)}")


def configure(level: Any = "INFO", kind: Any = "text", stream: TextIO | None = None) -> logging.Handler:
    """Give the root logger one handler of ours (replacing the one a previous call added).

    Idempotent, so an app factory called many times (tests) never doubles lines.
    Other handlers (pytest's capture, gunicorn's) are left alone.
    """
    numeric = level_of(level)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter(kind))
    setattr(handler, _MARK, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _MARK, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    return handler
