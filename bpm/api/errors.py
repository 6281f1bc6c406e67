"""Every error becomes the envelope of API.md here, and every response gets an X-Request-Id.

The domain errors (:class:`bpm.errors.BpmError`) carry their own HTTP status and
code; HTTP errors from Flask/werkzeug/webargs are mapped by the tables below;
anything else is a 500 that is logged with the request id and never shown.
Each error response is logged exactly once, with the request id: a 4xx at INFO,
a 503 at WARNING, a 500 at ERROR with its traceback (in the log, never the body).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from bpm.api.auth import challenge
from bpm.api.common import shown
from bpm.api.envelope import error_envelope
from bpm.api.flaskapp import app_context, header_list
from bpm.api.flaskapp import current_request as _current_request
from bpm.errors import BpmError, InvalidDefinition, Unauthorized

REQUEST_ID_HEADER = "X-Request-Id"
_REQUEST_ID_ENVIRON = "HTTP_X_REQUEST_ID"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{8,128}")

#: HTTP status -> (error code, message) where werkzeug's name or text is not ours
HTTP_ERRORS: dict[int, tuple[str, str]] = {
    400: ("VALIDATION_ERROR", "The request is malformed."),
    404: ("NOT_FOUND", "No such resource: check the URL."),
    405: ("METHOD_NOT_ALLOWED", "This HTTP method is not allowed on this URL."),
    413: ("PAYLOAD_TOO_LARGE", "The request body is larger than the configured maximum."),
    415: ("UNSUPPORTED_MEDIA_TYPE", "The request body has an unsupported Content-Type."),
    422: ("VALIDATION_ERROR", "The request has invalid fields."),
    500: ("INTERNAL_ERROR", "An internal error occurred; quote the X-Request-Id when reporting it."),
}
#: webargs validation (422 in flask-smorest's default) answers 400, as API.md says
VALIDATION_STATUS = {400: 400, 422: 400}
INTERNAL = HTTP_ERRORS[500]
#: a 503 names no host or port (the log does)
UNAVAILABLE = "The storage backend is unavailable; try again later."


def new_request_id() -> str:
    """A new uuid4 as 32 hex digits (``uuid.uuid4().hex``, without building a UUID object)."""
    value = int.from_bytes(os.urandom(16), "big") & _UUID4_CLEAR | _UUID4_SET
    return f"{value:032x}"


#: the bits of a random 128-bit number that ``uuid.uuid4`` clears and sets (version 4, RFC 4122 variant)
_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)


def request_id() -> str:
    """This request's id: a sane incoming X-Request-Id, else a new uuid4 hex."""
    ctx_g = app_context().g
    rid: str | None = ctx_g.get("request_id")
    if rid is None:
        incoming = _current_request().environ.get(_REQUEST_ID_ENVIRON, "")
        rid = incoming if _SANE_REQUEST_ID.fullmatch(incoming) else new_request_id()
        ctx_g.request_id = rid
    return rid


def _respond(status: int, error: str, message: str, data: Any = None) -> Response:
    """The error envelope; a client error is logged here (server errors by their handlers)."""
    if status < 500:
        current_app.logger.info(
            "%s %s -> %d %s: %s [request_id=%s]",
            request.method,
            shown(request.path, 200),
            status,
            error,
            shown(message, 300),
            request_id(),
        )
    response = jsonify(error_envelope(status, error, message, data))
    response.status_code = status
    return response


def _upper_snake(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_").upper() or "HTTP_ERROR"


def flatten_messages(messages: Any) -> dict[str, Any]:
    """webargs' ``{"json": {"x": [...]}, "query": {...}}`` -> ``{"x": [...]}``."""
    if not isinstance(messages, Mapping):
        return {"_request": messages if isinstance(messages, list) else [str(messages)]}
    flat: dict[str, Any] = {}
    for location, fields in messages.items():
        if isinstance(fields, Mapping):
            flat.update(fields)
        else:
            flat[str(location)] = fields
    return flat


def _validation_message(data: Mapping[str, Any]) -> str:
    names = ", ".join(str(k) for k in list(data)[:10])
    return f"The request has invalid or missing fields: {names}." if names else "The request has invalid fields."


def handle_bpm_error(error: BpmError) -> Response:
    """A domain error: its own status and code; positioned BPMN errors carry where."""
    data: Any = error.data
    if isinstance(error, InvalidDefinition):
        where = error.as_dict()
        data = {k: where[k] for k in ("file", "elementId", "tag", "line")}
        data.update({k: where[k] for k in ("attribute", "fix") if where.get(k)})
    if error.status == 503:
        current_app.logger.warning("%s [request_id=%s]", shown(error.message, 300), request_id())
        return _respond(503, error.code, UNAVAILABLE)
    if error.status >= 500:
        return handle_unexpected(error)
    response = _respond(error.status, error.code, _sentence(error.message), data)
    if isinstance(error, Unauthorized):
        response.headers["WWW-Authenticate"] = challenge(error)
    return response


def handle_http_error(error: HTTPException) -> Response:
    """werkzeug/Flask/webargs errors (routing, body size, validation ...)."""
    status = error.code or 500
    extra = getattr(error, "data", None) or {}
    if status >= 500:
        return handle_unexpected(getattr(error, "original_exception", None) or error)
    if "messages" in extra:
        data = flatten_messages(extra["messages"])
        response = _respond(VALIDATION_STATUS.get(status, status), "VALIDATION_ERROR", _validation_message(data), data)
    else:
        code, default = HTTP_ERRORS.get(status, (_upper_snake(error.name), f"{error.name}."))
        message = error.description if status == 415 and error.description else default
        response = _respond(status, code, _sentence(message), None)
    for name, value in error.get_headers():
        if name.lower() in ("allow", "retry-after", "www-authenticate"):
            response.headers[name] = value
    return response


def _sentence(text: str) -> str:
    text = text.strip()
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def handle_unexpected(error: BaseException) -> Response:
    """Anything unplanned: log the detail once with the request id; tell the client nothing."""
    current_app.logger.error(
        "unhandled %s on %s %s [request_id=%s]",
        type(error).__name__,
        request.method,
        shown(request.path, 200),
        request_id(),
        exc_info=error,
    )
    return _respond(500, *INTERNAL)


def _assign_request_id() -> None:
    request_id()


def add_request_id(response: Response) -> Response:
    rid = request_id()
    listed = header_list(response)
    for name, _ in listed:
        if name.lower() == "x-request-id":
            response.headers[REQUEST_ID_HEADER] = rid
            return response
    listed.append((REQUEST_ID_HEADER, rid))  # a sane id: no newline in it
    return response


#: seconds a client waits before retrying a 503 (a Redis failover takes a few seconds)
RETRY_AFTER_SECONDS = "1"


def add_retry_after(response: Response) -> Response:
    """Every 503 says when to retry: its outcome is unknown, retry with the same Idempotency-Key."""
    if response.status_code == 503 and "Retry-After" not in response.headers:
        response.headers["Retry-After"] = RETRY_AFTER_SECONDS
    return response


def register_error_handlers(app: Flask) -> None:
    """Install the handlers (replacing flask-smorest's) and the request-id hooks."""
    app.before_request(_assign_request_id)
    app.after_request(add_request_id)
    app.after_request(add_retry_after)
    app.register_error_handler(BpmError, handle_bpm_error)
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(Exception, handle_unexpected)
