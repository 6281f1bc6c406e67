"""More of the web layer's shortcuts against the generic paths they replace."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from bpm import logs


def general_line(record: logging.LogRecord) -> str:
    """The text format's line as its general path writes it: logging's line, then each request
    field the record carries, in REQUEST_FIELDS' order."""
    text = logging.Formatter(logs.TEXT_FORMAT).format(record)
    extra = [f"{name}={record.__dict__[name]}" for name in logs.REQUEST_FIELDS if name in record.__dict__]
    return f"{text} {' '.join(extra)}" if extra else text


FULL = {"request_id": "r-1", "user": "ann", "method": "POST", "route": "/a/<b>", "status": 404, "duration": 1.5e-05}


class Shown:
    def __format__(self, spec: str) -> str:
        return f"shown[{spec}]"


@pytest.mark.parametrize(
    "fields",
    [
        FULL,
        {**FULL, "extra": "not listed"},
        dict(reversed(FULL.items())),  # another order: the line's order is REQUEST_FIELDS'
        {**FULL, "duration": 0.0, "status": 200, "user": "-"},
        {**FULL, "user": Shown(), "route": "ünï\ncode"},
        {name: value for name, value in FULL.items() if name != "duration"},
        {name: value for name, value in FULL.items() if name != "request_id"},
        {"request_id": "only"},
        {},
    ],
)
def test_the_request_fields_follow_the_line_as_before(fields: dict[str, Any]) -> None:
    record = logging.LogRecord(
        "bpm.requests", logging.INFO, __file__, 1, "%s %s %d %.1f ms", ("GET", "/x", 200, 1.0), None
    )
    record.__dict__.update(fields)
    assert logs.formatter("text").format(record) == general_line(record)
