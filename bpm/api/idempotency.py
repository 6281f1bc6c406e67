"""``Idempotency-Key`` on state-changing POSTs (API.md, "Writes that may be retried").

The contract. The first request with a key reserves the key's record in the backend
(for the caller: who authentication says it is, and its ``?user=``), runs, and
stores its status and body for ``BPM_IDEMPOTENCY_TTL`` (default ``24h``). A repeat
with the same key and the same request (method, path, query and body) gets the
stored answer with ``Idempotent-Replayed: true`` and changes nothing; while the
first still runs it gets 409 ``REQUEST_IN_PROGRESS``; the same key with another
request is 422 ``IDEMPOTENCY_KEY_REUSED``. A 5xx answer is not stored (a 503 means
"outcome unknown"): the record is released and a retry runs again.

A write is never made twice, also when the worker dies between the write and
storing the answer (SIGKILL, OOM, deploy). The answer is stored after the response
is built, in the record's partition; the write happens in another slot (the
instance's), so the two cannot be one script on a Redis Cluster. Instead the write
script itself marks the commit, in its own slot, in the same script as the change:

1. The request runs with a :class:`backends.once.KeyedWrite` whose request id is
   derived from the record and the fingerprint (every run of the same request has
   it), inside an ``id_scope`` of that id (so an instance a start creates lands in
   the same partition on every run). The backend gives that id to the request's
   first write script that commits; ``backends/lua/_once.lua`` keeps its reply
   under ``done:<id>``, with the id of the instance it started, for the TTL.
2. A running record is locked for ``BPM_IDEMPOTENCY_LOCK`` (default ``10s``, longer
   than a request takes). Within the lock a repeat is 409; after it (or after a
   5xx released the record) the backend answers ``"retry"`` and the repeat runs
   again, as follows.
3. The retry asks the backend whether the write committed (``done:<id>`` in any
   slot). If not, it runs as a first request would; should the first run commit
   meanwhile, the retry's write finds the marker and is answered from it. If it
   did commit: a route whose success answer is the empty envelope (claim, unclaim,
   complete, assign, incident retry, external-task complete and bpmnError:
   :data:`EMPTY_ANSWERS`) answers it at once, as a replay; any other route runs
   again in "replay only" mode: its first write must be answered from the marker
   (a start answers the instance the first run started, not the one it planned:
   :func:`backends.once.committed_instance_id`; the engine skips the replayed
   write's outbox), and a write that would land elsewhere is refused with 409
   ``IDEMPOTENT_REPLAY_MISMATCH`` instead of being made a second time. A retry of an
   empty-answer route that fails its checks (409 ``TASK_NOT_ACTIVE``) because a first
   run still running past its lock committed meanwhile also answers success.

Routes (after a commit whose answer was lost; before a commit a retry simply runs):

- answered success at once (:data:`EMPTY_ANSWERS`): claim, unclaim, complete, task
  assign, incident retry, external-task complete and bpmnError;
- run again, the write answered from the marker, the answer built from that reply:
  both start forms (the first run's instance id), instance tasks/assign (the task
  ids the first run assigned), external-task failure / extendLock / unlock (the
  task as the first run left it, read now for its variables);
- never written twice, but the answer may differ from the first: a message
  delivered to a waiting instance (the re-run finds no wait any more: 404
  ``MESSAGE_NOT_CORRELATED``, or 409 ``IDEMPOTENT_REPLAY_MISMATCH`` where it would
  start an instance instead); a message that started an instance is a start.
- only the first write is keyed, so a request that makes several writes is covered
  for that one: a signal or condition reaching several waits or start events answers
  409 ``IDEMPOTENT_REPLAY_MISMATCH`` when its re-run's first write lands elsewhere
  (the first wait no longer waits), else replays it and makes the later writes again
  where they still apply (a wait that got the signal no longer waits, but the second
  and later start events start again); a deployment of several processes replays
  the first and deploys the others again (unchanged content is no new version).
- fetchAndLock is not keyed (``backends.redis_store.UNKEYED_SCRIPTS``): a retry after a
  lost answer fetches again, and what the lost answer locked is fetchable again
  once its lock runs out (as before).
- ``POST …/variables`` only reads and keeps nothing; DELETE (cancel) and PUT routes
  take no key.

Memory backend: a request can only vanish without storing or releasing its record
together with the process, which loses every record and instance with it, so a
retry there simply runs (nothing of the first run is left). Its lock never runs
out, and a ``"retry"`` only follows a 5xx; it keeps no commit markers (it never
answers 503, so a 5xx after its write is a bug, and the retry runs again).

Test hook: ``BPM_TEST_EXIT_BEFORE_IDEMPOTENCY_FINISH=1`` ends the worker process
(``os._exit``) right before it would store a keyed request's answer, to test the
crash between the write and the answer (``tests/test_idempotency_crash.py``).
Read only there; never set it in production.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from typing import Any

from flask import Flask, Response, current_app, g, jsonify, request

from backends import once
from backends.partitions import id_scope
from backends.retention import parse_retention
from bpm.api.common import get_runtime
from bpm.api.envelope import envelope, error_envelope
from bpm.api.flaskapp import app_context, current_request

HEADER = "Idempotency-Key"
_HEADER_ENVIRON = "HTTP_IDEMPOTENCY_KEY"
REPLAYED = "Idempotent-Replayed"
DEFAULT_TTL = "24h"
#: how long a running request holds its key before a retry may run again (``BPM_IDEMPOTENCY_LOCK``)
DEFAULT_LOCK = "10s"
#: POST routes that only read (their answers are not kept)
READ_ONLY_SUFFIXES = ("/variables",)
#: endpoints whose success answer is the empty envelope: a retry of a committed one answers it
EMPTY_ANSWERS = frozenset(
    {
        "tasks.ClaimTask",
        "tasks.UnclaimTask",
        "tasks.CompleteTask",
        "tasks.AssignTask",
        "instance.RetryTimerIncident",
        "external-task.CompleteExternalTask",
        "external-task.ReportBpmnError",
    }
)
#: the test hook (see the module docstring)
EXIT_HOOK = "BPM_TEST_EXIT_BEFORE_IDEMPOTENCY_FINISH"
FOREVER_MS = 10 * 365 * 86_400_000


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


def write_id(record: str, fingerprint: str) -> str:
    """The request id of the keyed write of one request (the same on every run of it)."""
    return hashlib.sha256(f"write\n{record}\n{fingerprint}".encode()).hexdigest()[:32]


def _error(status: int, error: str, message: str) -> Response:
    response = jsonify(error_envelope(status, error, message))
    response.status_code = status
    return response


#: ``app.extensions`` key of the settings read at start-up: (TTL ms, lock ms)
EXTENSION = "bpm_idempotency"


def _duration_ms(app: Flask, name: str, default: str) -> int:
    """A duration setting (app config, else the environment) in milliseconds."""
    raw = app.config.get(name, os.environ.get(name)) or default
    millis = re.fullmatch(r"(\d+)\s*ms", str(raw).strip())
    if millis:
        return int(millis.group(1))
    try:
        ms = parse_retention(str(raw))
    except ValueError:
        raise ValueError(f"{name} must be like 500ms, 10s, 15m, 24h, P1D or forever, not {raw!r}") from None
    return ms if ms is not None else FOREVER_MS


def _ttl_ms(app: Flask) -> int:
    """``BPM_IDEMPOTENCY_TTL`` in milliseconds."""
    return _duration_ms(app, "BPM_IDEMPOTENCY_TTL", DEFAULT_TTL)


def _lock_ms(app: Flask) -> int:
    """``BPM_IDEMPOTENCY_LOCK`` in milliseconds (at least one)."""
    return max(_duration_ms(app, "BPM_IDEMPOTENCY_LOCK", DEFAULT_LOCK), 1)


def begin() -> Response | None:
    """Before a POST with the header: reserve its key, or answer a replay / 409 / 422."""
    key = current_request().environ.get(_HEADER_ENVIRON)  # request.headers.get(HEADER), without a KeyError
    if key is None or request.method != "POST" or request.path.endswith(READ_ONLY_SUFFIXES):
        return None
    if not _valid(key):
        return _error(400, "VALIDATION_ERROR", f"The {HEADER} header must be 1 to 128 printable ASCII characters.")
    caller = g.get("caller")  # set by authentication, which runs first
    who = f"{getattr(caller, 'kind', '')}:{getattr(caller, 'name', '') or ''}"
    record = record_key(who, request.args.get("user", ""), key)
    fingerprint = request_fingerprint(request.method, request.full_path, request.get_data(cache=True))
    backend = get_runtime().backend
    ttl, lock = current_app.extensions[EXTENSION]
    state, stored = backend.idempotency_begin(record, fingerprint, lock, ttl)
    if state in ("new", "retry"):
        write = once.KeyedWrite(write_id(record, fingerprint), ttl, retry=state == "retry")
        g.idempotency = (record, fingerprint)
        if state == "retry" and backend.idempotency_committed(write.request_id):
            current_app.logger.info("an earlier run of this %s request committed: answering from it", HEADER)
            if request.endpoint in EMPTY_ANSWERS:  # the first run's answer, without running again
                return _replayed(jsonify(envelope("")))
            write.must_replay = True
        scope = contextlib.ExitStack()
        scope.enter_context(id_scope(write.request_id))
        scope.enter_context(once.keyed(write))
        g.idempotency_scope, g.idempotency_write = scope, write
        return None
    if state == "running":
        return _error(409, "REQUEST_IN_PROGRESS", f"A request with this {HEADER} is still running; retry later.")
    if state == "reused":
        return _error(
            422, "IDEMPOTENCY_KEY_REUSED", f"This {HEADER} was used for another request (route or body differ)."
        )
    assert stored is not None
    return _replayed(Response(stored["body"], status=stored["status"], mimetype="application/json"))


def _replayed(response: Response) -> Response:
    response.headers[REPLAYED] = "true"
    return response


def _leave_scope(ctx_g: Any = None) -> None:
    """Leave the request's keyed write and id scope (once; finish, else teardown)."""
    scope: contextlib.ExitStack | None = (ctx_g if ctx_g is not None else g).pop("idempotency_scope", None)
    if scope is not None:
        try:
            scope.close()
        except ValueError:  # left in another context (cannot happen in a WSGI request): clear it
            once.start(None)


def _committed_meanwhile(response: Response, write: once.KeyedWrite) -> Response:
    """A retry that failed its checks (409 TASK_NOT_ACTIVE ...) because the first run, still
    running past its lock, committed meanwhile: the first run's answer, where it is known."""
    try:
        if request.endpoint in EMPTY_ANSWERS and get_runtime().backend.idempotency_committed(write.request_id):
            return _replayed(jsonify(envelope("")))
    except Exception:  # the 4xx stands
        current_app.logger.warning("could not look for the %s commit", HEADER, exc_info=True)
    return response


def finish(response: Response) -> Response:
    """After the request that holds a key: store its answer (or release the key on a 5xx)."""
    ctx_g = app_context().g  # one look-up for both
    _leave_scope(ctx_g)
    held: tuple[str, str] | None = ctx_g.pop("idempotency", None)
    if held is None:
        return response
    write: once.KeyedWrite | None = g.pop("idempotency_write", None)
    if write is not None and write.replayed and response.status_code < 300:
        _replayed(response)  # answered from the first run's commit: nothing changed now
    if write is not None and write.retry and not write.committed and 400 <= response.status_code < 500:
        response = _committed_meanwhile(response, write)
    record, fingerprint = held
    backend = get_runtime().backend
    try:
        if response.status_code >= 500:
            backend.idempotency_release(record, fingerprint)
        else:
            if os.environ.get(EXIT_HOOK) == "1":  # test hook: die between the write and the answer
                os._exit(70)
            body = response.get_data(as_text=True)
            backend.idempotency_finish(
                record, fingerprint, response.status_code, body, current_app.extensions[EXTENSION][0]
            )
    except Exception:  # the answer stands; a retry runs again once the lock ran out
        current_app.logger.warning("could not store the %s record", HEADER, exc_info=True)
    return response


def teardown(_exc: BaseException | None) -> None:
    """Leave the scope also when the after-request hooks did not run."""
    _leave_scope(app_context().g)


def init_idempotency(app: Flask) -> None:
    """Install the hooks (after authentication, so only callers it let in reserve keys)."""
    # read once (a bad BPM_IDEMPOTENCY_TTL or BPM_IDEMPOTENCY_LOCK stops start-up): (ttl ms, lock ms)
    app.extensions[EXTENSION] = (_ttl_ms(app), _lock_ms(app))
    app.before_request(begin)
    app.after_request(finish)
    app.teardown_request(teardown)
