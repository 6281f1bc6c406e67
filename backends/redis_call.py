"""A lean script call for the single-server Redis backend's hot path.

redis-py's ``Script.__call__`` → ``Redis.execute_command`` → connection pool costs
about as much client CPU per call as the round trip's system calls themselves
(pool bookkeeping under a lock, the observability recorder of redis-py 8, argument
re-encoding, the NOSCRIPT handling). A lifecycle's every round trip is a script
call, so :class:`ScriptCaller` makes that one call with the same parts redis-py
uses underneath, minus the layers above them:

* the command is packed by hiredis (redis-py's Python packer with
  ``surrogatepass`` for what hiredis refuses: :mod:`backends.redis_wire`);
* it is written and its reply read by the pool's own connection objects
  (``send_packed_command``/``read_response``: redis-py's health check, timeouts,
  error mapping and disconnect-on-error, the reply decoded as every other reply);
* a dropped connection is retried exactly as redis-py retries it, with the
  connection's ``retry`` (the client's ``Retry``: one immediate retry on a
  ConnectionError, the connection closed first) — a retried write script finds
  its first run's reply (``_once.lua``), as under redis-py;
* with ``mark_first_send`` a call's first send marks its ARGV[1] as such
  (:data:`FIRST_SEND` before it; see ``_common.lua``): a write script
  need not look for its own request id's marker then (the id is new: no run of it can
  have committed), which saves a GET per write. Every later send of the same call (a
  retry after a failure, or a resend after loading the library) goes unmarked, as
  every send of redis-py, the cluster and ``?wait=N`` does: those look;
* the script runs as a function of the library of every script
  (:mod:`backends.redis_functions`: its helpers are defined once, not on every call),
  loaded when the server answers ``Function not found``; a server that cannot load it
  (Redis before 7) gets EVALSHA, and NOSCRIPT (a restarted or flushed server) sends
  the script once with EVAL, which also caches it again on the server.

Connections are taken from the client's pool once and kept on a stack of idle
ones (``list.pop``/``append`` are atomic, so threads share it without a lock);
they stay the pool's (``close``/``disconnect`` of the pool close them, and they
reconnect by themselves on their next use). A forked worker drops its parent's.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from redis.exceptions import NoPermissionError, NoScriptError, ResponseError

from backends.redis_wire import pack_plain

__all__ = ["ScriptCaller"]


class ScriptCaller:
    """A script call on a single Redis server through the client's pool: FCALL of its
    function in ``library`` (name, code), or EVALSHA of ``scripts[name]`` (sha, source)
    when there is no library or the server cannot load it."""

    def __init__(
        self,
        client: Any,
        scripts: Mapping[str, tuple[str, str]],
        library: tuple[str, str] | None = None,
        *,
        mark_first_send: bool = False,
    ) -> None:
        self._pool = client.connection_pool
        self._idle: list[Any] = []
        self._pid = os.getpid()
        self._scripts = scripts
        self._library = library
        self.functions = library is not None  # False once the server refused the library
        self._mark = FIRST_SEND if mark_first_send else None

    def __call__(self, script: str, keys: list[str], args: list[str]) -> Any:
        """The script's reply (decoded as redis-py decodes it); a ResponseError for an error reply."""
        if self._pid != os.getpid():  # a forked worker must not share its parent's sockets
            self._idle = []
            self._pid = os.getpid()
        try:
            conn = self._idle.pop()
        except IndexError:
            conn = self._pool.get_connection()
        sends = _Sends(args, self._mark)
        try:
            count = str(len(keys))
            if self.functions:
                reply = self._function(conn, script, count, keys, sends)
                if reply is not _REFUSED:
                    return reply
            sha, source = self._scripts[script]
            try:
                return sends.round_trip(conn, ("EVALSHA", sha, count, *keys))
            except NoScriptError:
                return sends.round_trip(conn, ("EVAL", source, count, *keys))
        except ResponseError:
            raise  # an error reply: the connection read all of it and is ready for the next command
        except BaseException:
            conn.disconnect()  # whatever happened mid-call: a reply may be left unread
            raise
        finally:
            self._idle.append(conn)

    def _function(self, conn: Any, script: str, count: str, keys: list[str], sends: _Sends) -> Any:
        """FCALL; the library loaded first when the server lacks it; _REFUSED when it cannot load it."""
        assert self._library is not None
        name, code = self._library
        call = ("FCALL", f"{name}_{script}", count, *keys)
        try:
            return sends.round_trip(conn, call)
        except ResponseError as exc:
            message = str(exc)
            if isinstance(exc, NoPermissionError):  # an ACL that allows scripts but not FCALL
                self.functions = False
                return _REFUSED
            if "Function not found" not in message and "unknown command" not in message.lower():
                raise
        try:  # a new, restarted or flushed server: load the library (REPLACE: a racing worker loads the same)
            sends.round_trip(conn, ("FUNCTION", "LOAD", "REPLACE", code), plain=True)
        except ResponseError:  # Redis before 7, or an ACL without FUNCTION: scripts it is
            self.functions = False
            return _REFUSED
        return sends.round_trip(conn, call)


#: the mark of a call's first send: the first character of its ARGV[1] (see _common.lua)
FIRST_SEND = "!"


class _Sends:
    """The sends of one call's arguments: the first with ARGV[1] marked by ``mark`` (None:
    never), every later one (after any failure or refusal) unmarked."""

    __slots__ = ("_args", "_mark", "first")

    def __init__(self, args: list[str], mark: str | None) -> None:
        self._args = args
        self._mark = mark
        self.first = mark is not None and len(args) > 0

    def round_trip(self, conn: Any, command: tuple[str, ...], plain: bool = False) -> Any:
        """``command`` with the call's arguments (``plain``: without), retried as redis-py retries."""

        def once() -> Any:
            if plain:
                packed = pack_plain(command)
            elif self.first:
                self.first = False  # whatever comes back, a later send is not the first
                packed = pack_plain((*command, f"{self._mark}{self._args[0]}", *self._args[1:]))
            else:
                packed = pack_plain((*command, *self._args))
            conn.send_packed_command(packed)
            return conn.read_response()

        return conn.retry.call_with_retry(once, lambda error, failures: conn.disconnect(), with_failure_count=True)


_REFUSED = object()
