"""The response envelope of API.md: ``{"data", "code", "timestamp", "totalRecordCount"}``."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import marshmallow as ma
from marshmallow import fields


def epoch_ms() -> int:
    return int(time.time() * 1000)


def record_count(data: Any) -> int:
    """1 for a single object or id, 0 for ``""`` (and ``None``), the length of a list."""
    if data is None or data == "":
        return 0
    if isinstance(data, Sequence) and not isinstance(data, (str, bytes)):
        return len(data)
    return 1


def envelope(data: Any, total: int | None = None) -> dict[str, Any]:
    """A success envelope; ``total`` overrides the count (the matches of a paged list)."""
    return {
        "data": data,
        "code": 0,
        "timestamp": epoch_ms(),
        "totalRecordCount": record_count(data) if total is None else total,
    }


class PlainEnvelope(dict[str, Any]):
    """A success envelope whose ``data`` is already plain JSON, exactly what the route's
    response schema would dump: it is written as it is (the schema documents it)."""


def plain_envelope(data: Any, total: int | None = None) -> PlainEnvelope:
    """:func:`envelope` for data that is already plain (ids, ``""``, dicts made by ``to_api``)."""
    return PlainEnvelope(
        data=data,
        code=0,
        timestamp=epoch_ms(),
        totalRecordCount=record_count(data) if total is None else total,
    )


def error_envelope(status: int, error: str, message: str, data: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """An error envelope: ``code`` is the HTTP status, ``error`` the stable identifier."""
    return {
        "data": data,
        "code": status,
        "timestamp": epoch_ms(),
        "totalRecordCount": 0,
        "error": error,
        "message": message,
    }


def _envelope_fields(data: fields.Field) -> dict[str, fields.Field]:
    return {
        "data": data,
        "code": fields.Integer(required=True, metadata={"description": "0 on success, else the HTTP status"}),
        "timestamp": fields.Integer(required=True, metadata={"description": "server time, epoch ms"}),
        "totalRecordCount": fields.Integer(
            required=True, metadata={"description": "records matched: 1 for one object, 0 for '', all list matches"}
        ),
    }


def envelope_schema(name: str, data: fields.Field) -> type[ma.Schema]:
    """A schema class named ``name`` documenting (and dumping) an envelope around ``data``."""
    return ma.Schema.from_dict(_envelope_fields(data), name=name)


class ErrorEnvelopeSchema(ma.Schema):
    """Every error response (documentation only; errors are built by :func:`error_envelope`)."""

    data = fields.Raw(
        allow_none=True, metadata={"description": "null, or for validation errors a map field -> messages"}
    )
    code = fields.Integer(metadata={"description": "the HTTP status"})
    timestamp = fields.Integer(metadata={"description": "server time, epoch ms"})
    totalRecordCount = fields.Integer(metadata={"description": "always 0"})
    error = fields.String(metadata={"description": "stable UPPER_SNAKE identifier, e.g. TASK_NOT_FOUND"})
    message = fields.String(metadata={"description": "one sentence naming the offending thing"})
