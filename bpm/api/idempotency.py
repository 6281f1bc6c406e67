"""``Idempotency-Key`` on state-changing POSTs (API.md, "Writes that may be retried").

The first request with a key reserves the key's record in the backend (for the
caller: who authentication says it is, and its ``?user=``), runs, and stores its status
and body for ``BPM_IDEMPOTENCY_TTL`` (default ``24h``). A repeat with the same key
and the same request (method, path, query and body) gets the stored answer with
``Idempotent-Replayed: true`` and changes nothing; while the first still runs it
gets 409 ``REQUEST_IN_PROGRESS``; the same key with another request is 422
``IDEMPOTENCY_KEY_REUSED``. A 5xx answer is not stored (a 503 means "outcome
unknown"): the record is released and a retry runs again.

The answer is stored right after the write, not inside the backend's write
script: a worker dying between the two leaves the key "running" until its lock
(``LOCK_MS``) runs out, after which a retry runs again.
"""

from __future__ import annotations

import hashlib
import os

from flask import Flask, Response, current_app, g, jsonify, request

from backends.retention import parse_retention
from bpm.api.common import get_runtime
from bpm.api.envelope import error_envelope

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
DEFAULT_TTL = "24h"
#: how long a running request holds its key (longer than any request may take)
LOCK_MS = 60_000
#: POST routes that only read (their answers are not kept)
READ_ONLY_SUFFIXES = ("/variables",)


def _valid(key: str) -> bool:
    return 1 <= len(key) <= 128 and all(0x20 < ord(c) < 0x7F for c in key)


def record_key(caller: str, user: str, key: str) -> str:
    """The backend record of ``key`` for one caller (authenticated name, then ``?user=``)."""
    return hashlib.sha256(f"{caller}\n{user}\n{key}".encode("utf-8", "surrogatepass")).hexdigest()


def request_fingerprint(method: str, full_path: str, body: bytes) -> str:
    """What makes a request the same request: method, path with query, body."""
    digest = hashlib.sha256(f"{method} {full_path}\n".encode("utf-8", "surrogatepass"))
    digest.update(body)
    return digest.hexdigest()


def _error(status: int, error: str, message: str) -> Response:
    response = jsonify(error_envelope(status, error, message))
    response.status_code = status
    return response


def _ttl_ms(app: Flask) -> int:
    """``BPM_IDEMPOTENCY_TTL`` (app config, else the environment) in milliseconds."""
    raw = app.config.get("BPM_IDEMPOTENCY_TTL", os.environ.get("BPM_IDEMPOTENCY_TTL")) or DEFAULT_TTL
    ttl = parse_retention(str(raw))
    return ttl if ttl is not None else 10 * 365 * 86_400_000


def begin() -> Response | None:
    """Before a POST with the header: reserve its key, or answer a replay / 409 / 422."""
    key = request.headers.get(HEADER)
    if key is None or request.method != "POST" or request.path.endswith(READ_ONLY_SUFFIXES):
        return None
    if not _valid(key):
        return _error(400, "VALIDATION_ERROR", f"The {HEADER} header must be 1 to 128 printable ASCII characters.")
    caller = g.get("caller")  # set by authentication, which runs first
    who = f"{getattr(caller, 'kind', '')}:{getattr(caller, 'name', '') or ''}"
    record = record_key(who, request.args.get("user", ""), key)
    fingerprint = request_fingerprint(request.method, request.full_path, request.get_data(cache=True))
    backend = get_runtime().backend
    state, stored = backend.idempotency_begin(record, fingerprint, LOCK_MS)
    if state == "new":
        g.idempotency = (record, fingerprint)
        return None
    if state == "running":
        return _error(409, "REQUEST_IN_PROGRESS", f"A request with this {HEADER} is still running; retry later.")
    if state == "reused":
        return _error(
            422, "IDEMPOTENCY_KEY_REUSED", f"This {HEADER} was used for another request (route or body differ)."
        )
    assert stored is not None
    response = Response(stored["body"], status=stored["status"], mimetype="application/json")
    response.headers[REPLAYED] = "true"
    return response


def finish(response: Response) -> Response:
    """After the request that holds a key: store its answer (or release the key on a 5xx)."""
    held: tuple[str, str] | None = g.pop("idempotency", None)
    if held is None:
        return response
    record, fingerprint = held
    backend = get_runtime().backend
    try:
        if response.status_code >= 500:
            backend.idempotency_release(record, fingerprint)
        else:
            body = response.get_data(as_text=True)
            backend.idempotency_finish(record, fingerprint, response.status_code, body, _ttl_ms(current_app))
    except Exception:  # the answer stands; the key is released by its lock running out
        current_app.logger.warning("could not store the %s record", HEADER, exc_info=True)
    return response


def init_idempotency(app: Flask) -> None:
    """Install the hooks (after authentication, so only callers it let in reserve keys)."""
    _ttl_ms(app)  # a bad BPM_IDEMPOTENCY_TTL stops start-up
    app.before_request(begin)
    app.after_request(finish)
