"""The Redis plumbing under :class:`backends.redis.RedisBackend`: the connection, the
key roots of the global slot and of each partition, running a Lua script in one slot (with
``?wait=N`` replication and the keyed write of a request with an Idempotency-Key), ids, health
and clearing. The key schema is in the docstring of :mod:`backends.redis`; the Backend
contract on top of this is :class:`backends.redis.RedisBackend`.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Callable
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.commands.core import Script
from redis.retry import Retry

from backends import once
from backends.base import (
    parse_member,
)
from backends.partitions import (
    DEFAULT_PARTITIONS,
    PartitionPicker,
    check_count,
    make_id,
    partition_of,
    partition_tags,
)
from backends.redis_call import ScriptCaller
from backends.redis_codec import (
    redact,
    script_error,
    split_options,
)
from backends.redis_functions import library
from backends.redis_scripts import (
    SCRIPTS,
    UNAVAILABLE,
    WRITE_SCRIPTS,
    PartitionCountMismatch,
    StoreLayoutMismatch,
    script_source,
    unavailable_as_domain_error,
)
from backends.redis_wire import command_packer
from bpm.errors import BackendUnavailable

__all__ = ["DEFAULT_PREFIX", "RedisStore"]

DEFAULT_PREFIX = "bpm"
#: the version of the key layout (the module docstring of backends.redis), kept in the
#: ``meta`` hash: a store another layout wrote is refused at start-up, not misread
LAYOUT = "3"
#: query parameters of the URL that are ours, not redis-py's
URL_OPTIONS = ("prefix", "partitions", "wait")


def _escape_glob(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\{}" else c for c in text)


# -- the keyed write of a request with an Idempotency-Key (backends/once.py, _once.lua) ----

#: write scripts never keyed: the record itself, and fetchAndLock's locks (a retry fetches
#: again; what a lost answer locked is fetchable again once its lock runs out)
UNKEYED_SCRIPTS = frozenset({"idempotency", "lock_externals"})


def _keyed_request_id(keyed: once.KeyedWrite) -> str:
    """``<mode><ttl>K<id>N<hex note>`` (see ``backends/lua/_once.lua``): mode ``R`` when an
    earlier run committed (this run may only replay), else ``K``; the note names this run
    and the instance the write starts."""
    mode = "R" if keyed.must_replay else "K"
    note = f"{keyed.run}|{keyed.starting}".encode("utf-8", "surrogatepass").hex()
    return f"{mode}{max(keyed.ttl_ms, 1)}K{keyed.request_id}N{note}"


def _settle_keyed(keyed: once.KeyedWrite, reply: Any) -> Any:
    """The script's own reply: a replay's stored one, noted in ``keyed``; an error reply as it is."""
    if isinstance(reply, list) and reply and reply[0] == "REPLAYED":
        run, _, started = bytes.fromhex(reply[1] or "").decode("utf-8", "surrogatepass").partition("|")
        if run == keyed.run:  # redis-py's retry of this very call: this run committed
            keyed.committed_now()
        else:
            keyed.replay(started)
        return reply[2]
    if isinstance(reply, list) and reply and reply[0] == "IDEMPOTENT_REPLAY_MISMATCH":
        raise once.replay_mismatch()
    failed = isinstance(reply, list) and reply and isinstance(reply[0], str) and reply[0] != "OK"
    if not (failed and re.fullmatch("[A-Z][A-Z_]+", reply[0])):  # an error reply changed nothing
        keyed.committed_now()
    return reply


class RedisStore:
    """The connection, key roots, script runner and ids of the Redis backend.

    ``url`` is ``redis://[[user]:password@]host:port/db``, ``rediss://...`` or
    ``unix:///path.sock?db=0``, with optional parameters ``prefix=`` (the key
    prefix, unless ``prefix`` is given), ``partitions=`` (default 16, fixed
    when the store is first used: another count later raises
    PartitionCountMismatch) and ``wait=N`` (writes confirmed by N replicas). No call
    waits longer than about ``socket_timeout``; when Redis is unreachable every method
    raises BackendUnavailable, and the client reconnects by itself once it is back.
    """

    #: the backend's settings (see :meth:`backends.base.Backend.configure`)
    history_limit: int | None
    retention_ms: int | None

    def __init__(
        self,
        url: str,
        prefix: str | None = None,
        socket_timeout: float = 2.0,
        *,
        id_block: int = 100,
        health_check_interval: int = 15,
        partitions: int | None = None,
    ) -> None:
        url, options = split_options(url, URL_OPTIONS)
        self.prefix = prefix or options.get("prefix") or DEFAULT_PREFIX
        if "{" in self.prefix or "}" in self.prefix:
            raise ValueError(f"the Redis key prefix must not contain braces: {self.prefix!r}")
        try:
            count = partitions or int(options.get("partitions") or DEFAULT_PARTITIONS)
        except ValueError:
            raise ValueError(f"partitions must be a whole number, not {options.get('partitions')!r}") from None
        self.partitions = check_count(count)
        wait = options.get("wait") or "0"
        if not wait.isdigit() or int(wait) > 16:
            raise ValueError(f"wait must be the number of replicas to confirm each write (0-16), not {wait!r}")
        self._wait = int(wait)
        self._wait_timeout_ms = max(int(socket_timeout * 500), 1)  # half the socket timeout
        self.url = redact(url)
        self._root = f"{{{self.prefix}}}:"
        self._roots = tuple(f"{self.prefix}:{{{tag}}}:" for tag in partition_tags(self.partitions))
        self._client = self._connect(url, socket_timeout, health_check_interval)
        self._scripts: dict[str, Script] = {name: self._client.register_script(script_source(name)) for name in SCRIPTS}
        # a single server: the lean call (backends/redis_call.py); a cluster: redis-py's routing
        self._lean = None
        if isinstance(self._client, redis.Redis):
            scripts = {name: (code.sha, str(code.script)) for name, code in self._scripts.items()}
            self._lean = ScriptCaller(self._client, scripts, library(), mark_first_send=True)
        self._picker = PartitionPicker(self.partitions)
        self._id_lock = threading.Lock()
        self._id_block = id_block
        self._id_ranges: dict[int, tuple[int, int]] = {}  # partition -> (next, last) reserved
        self._id_pid = os.getpid()
        self._meta_checked = False
        with contextlib.suppress(*UNAVAILABLE, BackendUnavailable):  # else checked before the first id
            self._check_partition_count()

    def _connect(self, url: str, socket_timeout: float, health_check_interval: int) -> Any:
        return redis.Redis.from_url(
            url,
            decode_responses=True,
            # lone surrogates (valid in Python strings) round-trip like in memory
            encoding_errors="surrogatepass",
            command_packer=command_packer(),
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_timeout,
            health_check_interval=health_check_interval,
            # one immediate retry on a dropped connection (a restarted server or a
            # stale pooled socket); a timeout is never retried, so no call hangs
            # much past socket_timeout
            retry=Retry(NoBackoff(), 1, supported_errors=(redis.exceptions.ConnectionError,)),
        )

    @property
    def client(self) -> Any:
        """The redis-py client (for tools and tests; the use cases never need it)."""
        return self._client

    # -- keys ----------------------------------------------------------------------------

    def key(self, *parts: str) -> str:
        """A key of the global slot: ``{<prefix>}:`` and the parts joined by ``:``."""
        return self._root + ":".join(parts)

    def partition(self, record_id: str) -> int:
        """The partition a record id lives in."""
        return partition_of(record_id, self.partitions)

    def pkey(self, partition: int, *parts: str) -> str:
        """A key of partition ``partition``: ``<prefix>:{<tag>}:`` and the parts."""
        return self._roots[partition] + ":".join(parts)

    def ikey(self, record_id: str, *parts: str) -> str:
        """A key of the partition of ``record_id``, ending in that id."""
        return self.pkey(self.partition(record_id), *parts, record_id)

    def _timer_key(self, member: str) -> str:
        """Start timers are global; an instance's timer waits live in its partition."""
        if member.startswith("inst|"):
            return self.pkey(self.partition(parse_member(member)[0]), "timers")
        return self.key("timers")

    # -- running scripts -----------------------------------------------------------------

    def _run(self, script: str, root: str, keys: list[str], *args: str) -> Any:
        """Run a script in the slot of ``root``; ``keys`` must hold at least one key of it.

        With ``?wait=N`` a script that writes returns only once N replicas have it. The
        first write of a request with an Idempotency-Key is keyed (:mod:`backends.once`)."""
        limit = "" if self.history_limit is None else str(self.history_limit)
        retention = "" if self.retention_ms is None else str(self.retention_ms)
        keyed = once.current() if script in WRITE_SCRIPTS and script not in UNKEYED_SCRIPTS else None
        if keyed is not None and not keyed.pending:
            keyed.unkeyed_write()
            keyed = None
        if keyed is not None:
            request_id = _keyed_request_id(keyed)
        else:
            request_id = os.urandom(16).hex() if script in WRITE_SCRIPTS else ""  # the same for redis-py's retries
        head = f"{request_id}|{limit}|{retention}|{root}"  # see the top of backends/lua/_common.lua
        if self._wait and script in WRITE_SCRIPTS:
            run = self._scripts[script]
            reply = self._replicated(keys[0], lambda pipe: run(keys=keys, args=[head, *args], client=pipe))
        elif self._lean is not None:
            reply = self._lean(script, keys, [head, *args])
        else:
            reply = self._scripts[script](keys=keys, args=[head, *args])
        return reply if keyed is None else _settle_keyed(keyed, reply)

    def _write(self, key: str, command: str, *args: Any) -> Any:
        """One plain write command on ``key`` (replicated first with ``?wait=N``)."""
        if self._wait:
            return self._replicated(key, lambda pipe: pipe.execute_command(command, key, *args))
        return self._client.execute_command(command, key, *args)

    def _layout_changed(self) -> None:
        """Hook: a node answered MOVED or failed (the cluster backend re-reads the slots)."""

    def _node_pipeline(self, key: str) -> Any:
        """A pipeline on the one connection that serves ``key`` (WAIT counts that connection's writes)."""
        return self._client.pipeline(transaction=False)

    def _replicated(self, key: str, queue: Callable[[Any], Any]) -> Any:
        """Queue one write on ``key``'s connection, then ``WAIT``; its reply once replicated.

        Raises BackendUnavailable when fewer replicas than asked confirm it in time: the
        write happened on the master but may be lost in a failover (outcome unknown)."""
        for attempt in (1, 2):
            try:
                with self._node_pipeline(key) as pipe:
                    queue(pipe)
                    pipe.execute_command("WAIT", self._wait, self._wait_timeout_ms)
                    reply, acknowledged = pipe.execute()
                break
            except (redis.exceptions.MovedError, redis.exceptions.AskError) as exc:
                self._layout_changed()  # the write did not run: retry once on the new owner
                if attempt == 2:
                    raise BackendUnavailable(f"the Redis Cluster is moving slots: {exc}") from exc
            except UNAVAILABLE:
                self._layout_changed()
                raise
            except redis.exceptions.ResponseError as exc:
                if "UNBLOCKED" not in str(exc):
                    raise
                # WAIT cut short: the node stopped being a master (a failover) after the write
                self._layout_changed()
                raise BackendUnavailable(f"the write's node failed over before replicas confirmed it: {exc}") from exc
        if int(acknowledged) < self._wait:
            raise BackendUnavailable(
                f"the write was not confirmed by {self._wait} replica(s) within {self._wait_timeout_ms} ms"
            )
        return reply

    def _prun(self, script: str, partition: int, keys: list[str] | None, *args: str) -> Any:
        """Run a script in a partition (its ``ids`` key is the anchor when no keys are named)."""
        return self._run(script, self._roots[partition], keys or [self.pkey(partition, "ids")], *args)

    def _checked(self, script: str, partition: int, keys: list[str], *args: str) -> Any:
        """Run a script answering ``["OK", payload]`` or an error reply; return the payload."""
        reply = self._prun(script, partition, keys, *args)
        if reply[0] != "OK":
            raise script_error(reply)
        return reply[1] if len(reply) > 1 else None

    def _pipeline(self) -> Any:
        return self._client.pipeline(transaction=False)

    # -- ids and health ---------------------------------------------------------------

    def _check_partition_count(self) -> None:
        """Fix the partition count and the key layout at first use; refuse a store set up otherwise."""
        meta = self.key("meta")
        self._write(meta, "HSETNX", "partitions", str(self.partitions))
        stored, layout = self._client.hmget(meta, "partitions", "layout")
        stored = int(stored or self.partitions)
        if stored != self.partitions:
            raise PartitionCountMismatch(
                f"the Redis store under prefix '{self.prefix}' was set up with {stored} partitions, "
                f"but the backend URL asks for {self.partitions}: use ?partitions={stored} "
                "(the count cannot change once the store is used)"
            )
        if layout is None:
            if self._holds_records():
                # a worker of this version records the layout before its first id, so a
                # layout still missing now means an earlier version wrote these records
                layout = self._client.hget(meta, "layout") or "1"
            else:
                self._write(meta, "HSETNX", "layout", LAYOUT)
                layout = self._client.hget(meta, "layout") or LAYOUT
        if layout != LAYOUT:
            raise StoreLayoutMismatch(
                f"the Redis store under prefix '{self.prefix}' holds data in key layout {layout}, written "
                f"by an earlier version of this service; this version reads layout {LAYOUT} only. Finish "
                "or drain its instances with the version that wrote them, or use a new key prefix "
                "(?prefix=) or an empty database"
            )
        self._meta_checked = True

    def _holds_records(self) -> bool:
        """Whether any partition has handed out ids (so holds instances or tasks)."""
        with self._pipeline() as pipe:
            self._queue_ids_exist(pipe)
            return any(pipe.execute())

    def _queue_ids_exist(self, pipe: Any) -> None:
        """Queue an EXISTS of every partition's id counter (a read of each partition's slot)."""
        for partition in range(self.partitions):
            pipe.exists(self.pkey(partition, "ids"))

    @unavailable_as_domain_error
    def new_id(self, near: str | None = None) -> str:
        if not self._meta_checked:
            self._check_partition_count()
        partition = self._picker.pick(near)
        with self._id_lock:
            if self._id_pid != os.getpid():  # a forked worker must not reuse the parent's blocks
                self._id_ranges.clear()
                self._id_pid = os.getpid()
            following, last = self._id_ranges.get(partition, (1, 0))
            if following > last:
                last = int(self._write(self.pkey(partition, "ids"), "INCRBY", self._id_block))
                following = last - self._id_block + 1
            self._id_ranges[partition] = (following + 1, last)
        return make_id(partition, following)

    @unavailable_as_domain_error
    def ping(self) -> None:
        self._client.ping()

    @unavailable_as_domain_error
    def health_check(self) -> dict[str, Any]:
        with self._pipeline() as pipe:
            pipe.hget(self.key("meta"), "partitions")
            self._queue_ids_exist(pipe)
            replies = pipe.execute()
        return {"partitions": self.partitions, "stored_partitions": int(replies[0] or self.partitions)}

    @unavailable_as_domain_error
    def clear(self) -> None:
        patterns = (_escape_glob(self._root) + "*", _escape_glob(self.prefix + ":{") + "*")
        batch: list[str] = []
        for pattern in patterns:
            for name in self._client.scan_iter(match=pattern, count=1000):
                batch.append(name)
                if len(batch) >= 1000:
                    self._client.unlink(*batch)
                    batch.clear()
        if batch:
            self._client.unlink(*batch)
        self._meta_checked = False
        with self._id_lock:
            self._id_ranges.clear()

    def close(self) -> None:
        self._client.close()
