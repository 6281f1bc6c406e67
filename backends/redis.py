"""Redis backend: the production store, shared by every worker and host.

State is split into partitions (:mod:`backends.partitions`). Each partition is
one Redis Cluster hash tag, and everything of one instance lives in its
partition's slot; definitions, identities and the cache generation live in one
global slot. On a single Redis every slot is on the one server; on a Redis
Cluster (:mod:`backends.redis_cluster`) the partitions spread over the masters.
Keys are made only by :meth:`RedisBackend.key` (global) and
:meth:`RedisBackend.pkey` (a partition), under a prefix (default ``bpm``):

Global slot, ``{<prefix>}:``

==============================  ======  ===============================================
Key                             Type    Contents
==============================  ======  ===============================================
``{p}:meta``                    hash    ``partitions``: the count, fixed at first use
``{p}:cache-generation``        string  generation of the parsed-definition cache
``{p}:def-keys``                set     process keys with at least one version
``{p}:def-versions:<key>``      list    the key's versions, oldest first ("1", "2"...)
``{p}:def:<key>:<version>``     hash    :class:`Definition` fields
``{p}:user:<user>:groups``      set     the user's groups (identity store)
``{p}:user:<user>:roles``       set     the user's roles (identity store)
``{p}:timers``                  zset    timer start events: ``start|<definitionId>|<element>``
==============================  ======  ===============================================

Each partition, ``<prefix>:{<tag>}:`` (written ``P:``)

==============================  ======  ===============================================
``P:ids``                       string  last id counter reserved (INCRBY, in blocks)
``P:inst:<id>``                 hash    :class:`Instance` fields but ``state``; ``rev``; and
                                        ``tasks``: its active task ids, space-separated
``P:state:<id>``                string  the instance's engine state (JSON without its
                                        default members: see state_json), apart so the
                                        hash stays small (listpack)
``P:inst-closed:<id>``          zset    ``task:<id>``/``ext:<id>`` of its closed records,
                                        expired with it (retention)
``P:task:<id>``                 hash    :class:`Task` fields (kept after closing)
``P:assignee:<user>``           zset    active tasks assigned to ``user``, by queue score
``P:q:<kind>:<name>``           zset    active unassigned tasks naming candidate ``name``
                                        (``kind`` user, group or role), by queue score
``P:qa:<kind>:<name>``          zset    the same for active assigned tasks
``P:pq:<key>``, ``P:pqa:<key>``  zset    active un/assigned tasks of process key ``key``
``P:history:<id>``              list    the instance's audit entries, oldest first (JSON;
                                        element entries as arrays, times relative to the
                                        instance's create time: see history_json)
``P:inst-list:<state>[:pk:<k>|:bk:<k>]``  zset  instances by create time, ``active``/``ended``:
                                        all, of process key / business key (instance lists)
``P:inst-expiry``               zset    ``[id, pk, bk]`` of ended instances by expiry time:
                                        drops them from the ended lists (see redis_query)
``P:ext:<id>``                  hash    :class:`ExternalTaskRecord` fields (kept after closing)
``P:inst-ext:<id>``             zset    ids of the instance's active external tasks (score 0)
``P:ext-topic:<topic>``         zset    fetchable external tasks of ``topic``, by ``available_at``
``P:timers``                    zset    the partition's timer waits ``inst|<id>|<sub>`` by due time
``P:msg:<name>``                set     ``inst|<id>|<sub>`` waits for message ``name``
``P:sig:<name>``                set     ``inst|<id>|<sub>`` waits for signal ``name``
``P:idem:<key>``                hash    an Idempotency-Key's record: state, fingerprint,
                                        lock_until, status, body (kept BPM_IDEMPOTENCY_TTL)
``P:done:<request id>``         string  a write script's reply, for 30 s: a retry of the call
                                        answers it again instead of writing twice; for the
                                        write of a request with an Idempotency-Key (also
                                        ``{p}:done:``, a deploy) kept BPM_IDEMPOTENCY_TTL
                                        with the started instance id: a later run of the
                                        request replays it (backends/once.py)
==============================  ======  ===============================================

The queue score orders as the API sorts by default: priority descending, then
create time ascending (then the id): see :mod:`backends.redis_query`.

Hash fields are strings: ints in decimal, ``ended``/``incident``/``history_truncated`` as
``1``, lists and dicts (candidates, variables) as JSON; None and empty defaults ("", false,
[], {}) are absent fields. Per-instance sets are small sorted sets, since Redis keeps small
sorted sets compact (listpack) where small sets of strings are hash tables before 7.2. The
variable part of a key always comes last, after a fixed word, so no name a
client chooses can make two kinds of key collide.

Atomicity (STYLE.md point 6): every read-check-write (deploy, claim, unclaim,
assign, assign_instance, apply_steps, take_timer, the external-task updates,
set_identity) is one Lua script from ``backends/lua/`` that works in one slot:
it is given the slot's key root and at least one of its keys in KEYS, derives
only keys of that root (Redis Cluster allows undeclared keys of the declared
slot; ``tests/test_redis_cluster.py`` checks it; on a single Redis only, the claim
script also declares the claimer's identity sets: :meth:`RedisBackend.claim_as_stored`),
checks everything before its
first write and appends the operation's audit entry to the history in the same
script. Every write script runs once per request id (``backends/lua/_once.lua``):
redis-py's retry after a dropped connection gets the first run's reply. A
step list (a parent and the child it calls) always shares one
partition. Reads across partitions (task queries, due timers, subscriptions,
external-task fetching) read every partition and merge in Python.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.commands.core import Script
from redis.retry import Retry

from backends import once, redis_query
from backends.base import (
    Backend,
    Definition,
    ExternalTaskRecord,
    Identity,
    Instance,
    InstanceQuery,
    Principals,
    Step,
    Task,
    TaskQuery,
    parse_member,
)
from backends.partitions import (
    DEFAULT_PARTITIONS,
    PartitionPicker,
    check_count,
    check_one_partition,
    make_id,
    partition_of,
    partition_tags,
)
from backends.redis_codec import (
    as_json,
    decode_fields,
    encode,
    history_entry,
    history_json,
    pairs,
    redact,
    script_error,
    split_options,
    split_prefix,
    state_value,
    step_json,
)
from backends.redis_scripts import (
    SCRIPTS,
    UNAVAILABLE,
    WRITE_SCRIPTS,
    PartitionCountMismatch,
    script_source,
    unavailable_as_domain_error,
)
from backends.redis_wire import command_packer
from bpm.errors import BackendUnavailable, InstanceNotFound

__all__ = ["RedisBackend", "split_prefix"]

DEFAULT_PREFIX = "bpm"
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


class RedisBackend(Backend):
    """The contract of :class:`backends.base.Backend` on Redis (see the module docstring).

    ``url`` is ``redis://[[user]:password@]host:port/db``, ``rediss://...`` or
    ``unix:///path.sock?db=0``, with optional parameters ``prefix=`` (the key
    prefix, unless ``prefix`` is given) and ``partitions=`` (default 16, fixed
    when the store is first used: another count later raises
    PartitionCountMismatch). No call waits longer than about ``socket_timeout``;
    when Redis is unreachable every method raises BackendUnavailable, and the
    client reconnects by itself once it is back.
    """

    schemes: tuple[str, ...] = ("redis", "rediss", "unix")
    #: every slot is on one server, so a script may also declare keys of the global slot
    #: (the claim script reads the identity sets); False on a Redis Cluster
    scripts_span_slots = True

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
            request_id = uuid.uuid4().hex if script in WRITE_SCRIPTS else ""  # the same for redis-py's retries
        head = f"{limit}|{retention}|{request_id}|{root}"  # see the top of backends/lua/_common.lua
        if self._wait and script in WRITE_SCRIPTS:
            run = self._scripts[script]
            reply = self._replicated(keys[0], lambda pipe: run(keys=keys, args=[head, *args], client=pipe))
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
        meta = self.key("meta")
        self._write(meta, "HSETNX", "partitions", str(self.partitions))
        stored = int(self._client.hget(meta, "partitions") or self.partitions)
        if stored != self.partitions:
            raise PartitionCountMismatch(
                f"the Redis store under prefix '{self.prefix}' was set up with {stored} partitions, "
                f"but the backend URL asks for {self.partitions}: use ?partitions={stored} "
                "(the count cannot change once the store is used)"
            )
        self._meta_checked = True

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
            for partition in range(self.partitions):
                pipe.exists(self.pkey(partition, "ids"))
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

    # -- definitions ------------------------------------------------------------------

    @unavailable_as_domain_error
    def deploy(self, definition: Definition) -> tuple[Definition, bool]:
        data = encode(definition)
        del data["version"]
        args = [definition.key, definition.content_hash]
        for name, value in data.items():
            args += [name, value]
        keys = [self.key("def-versions", definition.key), self.key("def-keys")]
        created, stored = self._run("deploy", self._root, keys, *args)
        return self._definition(stored), bool(created)

    @unavailable_as_domain_error
    def definitions(self) -> list[Definition]:
        found = [self._definition(flat) for flat in self._run("definitions", self._root, [self.key("def-keys")])]
        return sorted(found, key=lambda d: (d.key, d.version))

    @unavailable_as_domain_error
    def definition(self, key: str, version: int) -> Definition | None:
        if version < 1:
            return None
        data = self._client.hgetall(self.key("def", key, str(version)))
        return Definition.from_dict(decode_fields(data)) if data else None

    @unavailable_as_domain_error
    def cache_generation(self) -> int:
        return int(self._client.get(self.key("cache-generation")) or 0)

    @unavailable_as_domain_error
    def bump_cache_generation(self) -> int:
        return int(self._write(self.key("cache-generation"), "INCR"))

    # -- instances and tasks ----------------------------------------------------------

    @unavailable_as_domain_error
    def instance(self, instance_id: str) -> Instance | None:
        return self._read_instances([instance_id])[0]

    @unavailable_as_domain_error
    def task(self, task_id: str) -> Task | None:
        data = self._client.hgetall(self.ikey(task_id, "task"))
        return Task.from_dict(decode_fields(data)) if data else None

    @unavailable_as_domain_error
    def task_and_instance(self, task_id: str) -> tuple[Task, Instance] | None:
        reply = self._prun("task_and_instance", self.partition(task_id), [self.ikey(task_id, "task")])
        if not reply:
            return None
        task = self._task(reply[0])
        instance = self._instance(pairs(reply[1]), reply[2] if len(reply) > 2 else None)
        if instance is None:
            raise InstanceNotFound(f"process instance '{task.instance_id}' does not exist")
        return task, instance

    @unavailable_as_domain_error
    def instance_tasks(self, instance_id: str) -> list[Task]:
        keys = [self.ikey(instance_id, "inst")]
        found = self._checked("instance_tasks", self.partition(instance_id), keys, instance_id)
        return sorted(map(self._task, found), key=lambda t: (t.create_time, t.id))

    @unavailable_as_domain_error
    def apply_steps(self, steps: list[Step]) -> None:
        if not steps:
            return
        partition = check_one_partition(steps, self.partition)
        payload = as_json([step_json(step) for step in steps])
        keys = list(dict.fromkeys(self.ikey(step.instance.id, "inst") for step in steps))
        self._checked("apply_steps", partition, keys, payload)

    @unavailable_as_domain_error
    def instances(self, instance_ids: Iterable[str]) -> list[Instance | None]:
        return self._read_instances(list(instance_ids))

    def _read_instances(self, wanted: list[str]) -> list[Instance | None]:
        """Instances and their states in one pipeline (one round trip per node)."""
        if not wanted:
            return []
        with self._pipeline() as pipe:
            for instance_id in wanted:
                pipe.hgetall(self.ikey(instance_id, "inst"))
                pipe.get(self.ikey(instance_id, "state"))
            replies = pipe.execute()
        return [self._instance(data, state) for data, state in zip(replies[::2], replies[1::2], strict=True)]

    @unavailable_as_domain_error
    def claim(
        self, task_id: str, user: str, candidates: Principals | None, *, audit: dict[str, Any] | None = None
    ) -> Task:
        principals = ""
        if candidates is not None:
            principals = as_json(
                {
                    "candidate_users": sorted(candidates.users),
                    "candidate_groups": sorted(candidates.groups),
                    "candidate_roles": sorted(candidates.roles),
                }
            )
        return self._task_op("claim", task_id, user, principals, self._audit(audit))

    @unavailable_as_domain_error
    def claim_as_stored(self, task_id: str, user: str, *, audit: dict[str, Any] | None = None) -> Task:
        """On one server the claim script reads the user's identity sets itself (one round trip,
        atomic with the claim); they are in the global slot, so a cluster reads them first."""
        if not self.scripts_span_slots:
            return super().claim_as_stored(task_id, user, audit=audit)
        keys = [self.ikey(task_id, "task"), self.key("user", user, "groups"), self.key("user", user, "roles")]
        reply = self._checked("claim", self.partition(task_id), keys, task_id, user, "@store", self._audit(audit))
        return self._task(reply)

    @unavailable_as_domain_error
    def unclaim(self, task_id: str, user: str | None, *, audit: dict[str, Any] | None = None) -> Task:
        check = "0" if user is None else "1"
        return self._task_op("unclaim", task_id, check, user or "", self._audit(audit))

    @unavailable_as_domain_error
    def assign(self, task_id: str, users: list[str], *, audit: dict[str, Any] | None = None) -> Task:
        if len(users) == 1:
            mode, value = "one", users[0]
        else:
            mode, value = "many", as_json(list(dict.fromkeys(users)))
        return self._task_op("assign", task_id, mode, value, self._audit(audit))

    @unavailable_as_domain_error
    def assign_instance(self, instance_id: str, user: str, *, audit: dict[str, Any] | None = None) -> list[str]:
        keys = [self.ikey(instance_id, "inst")]
        partition = self.partition(instance_id)
        assigned = self._checked("assign_instance", partition, keys, instance_id, user, self._audit(audit))
        return [task_id for task_id, _ in sorted(assigned, key=lambda pair: (int(pair[1]), pair[0]))]

    @unavailable_as_domain_error
    def history(self, instance_id: str) -> list[dict[str, Any]]:
        with self._pipeline() as pipe:
            pipe.hmget(self.ikey(instance_id, "inst"), "rev", "create_time")
            pipe.lrange(self.ikey(instance_id, "history"), 0, -1)
            (rev, created), entries = pipe.execute()
        if rev is None:
            raise InstanceNotFound(f"process instance '{instance_id}' does not exist")
        return [history_entry(entry, int(created or 0)) for entry in entries]

    @unavailable_as_domain_error
    def query_tasks(self, query: TaskQuery) -> tuple[list[Task], int]:
        return redis_query.query_tasks(self, query)

    @unavailable_as_domain_error
    def list_instances(self, query: InstanceQuery) -> tuple[list[Instance], int]:
        return redis_query.list_instances(self, query)

    # -- timers, messages and signals -------------------------------------------------

    @unavailable_as_domain_error
    def due_timers(self, now: int, limit: int = 100) -> list[tuple[str, int]]:
        return redis_query.due_timers(self, now, limit)

    @unavailable_as_domain_error
    def schedule_timer(self, member: str, due: int) -> None:
        self._write(self._timer_key(member), "ZADD", due, member)

    @unavailable_as_domain_error
    def take_timer(self, member: str, due: int, next_due: int | None) -> bool:
        next_arg = "" if next_due is None else str(next_due)
        key = self._timer_key(member)
        root = key.removesuffix("timers")
        return bool(self._run("take_timer", root, [key], member, str(due), next_arg))

    @unavailable_as_domain_error
    def remove_timer(self, member: str) -> None:
        self._write(self._timer_key(member), "ZREM", member)

    @unavailable_as_domain_error
    def subscriptions(self, kind: str, name: str) -> list[tuple[str, str]]:
        return redis_query.subscriptions(self, kind, name)

    # -- external tasks ---------------------------------------------------------------

    @unavailable_as_domain_error
    def external_task(self, external_id: str) -> ExternalTaskRecord | None:
        data = self._client.hgetall(self.ikey(external_id, "ext"))
        return ExternalTaskRecord.from_dict(decode_fields(data)) if data else None

    @unavailable_as_domain_error
    def instance_externals(self, instance_id: str) -> list[ExternalTaskRecord]:
        key = self.ikey(instance_id, "inst-ext")
        found = map(self._external, self._prun("instance_externals", self.partition(instance_id), [key]))
        return sorted(found, key=lambda e: (e.create_time, e.id))

    @unavailable_as_domain_error
    def fetch_and_lock(
        self, worker: str, topics: Mapping[str, int], max_tasks: int, now: int
    ) -> list[ExternalTaskRecord]:
        return redis_query.fetch_and_lock(self, worker, topics, max_tasks, now)

    @unavailable_as_domain_error
    def fail_external(
        self,
        external_id: str,
        worker: str,
        retries: int,
        retry_timeout: int,
        error_message: str | None,
        error_details: str | None,
        now: int,
    ) -> ExternalTaskRecord:
        args = {
            "worker": worker,
            "retries": str(retries),
            "retry_timeout": str(retry_timeout),
            "error_message": False if error_message is None else error_message,
            "error_details": False if error_details is None else error_details,
            "now": str(now),
        }
        return self._external_op("fail", external_id, args)

    @unavailable_as_domain_error
    def set_external_retries(self, external_id: str, retries: int, now: int) -> ExternalTaskRecord:
        return self._external_op("retries", external_id, {"retries": str(retries), "now": str(now)})

    @unavailable_as_domain_error
    def extend_external_lock(self, external_id: str, worker: str, duration: int, now: int) -> ExternalTaskRecord:
        args = {"worker": worker, "duration": str(duration), "now": str(now)}
        return self._external_op("extend", external_id, args)

    @unavailable_as_domain_error
    def unlock_external(self, external_id: str) -> ExternalTaskRecord:
        return self._external_op("unlock", external_id, {})

    # -- Idempotency-Key records ------------------------------------------------------

    @unavailable_as_domain_error
    def idempotency_begin(
        self, key: str, fingerprint: str, lock_ms: int, ttl_ms: int | None = None
    ) -> tuple[str, dict[str, Any] | None]:
        keep = max(lock_ms, ttl_ms or 0, 1)
        reply = self._idempotency("begin", key, fingerprint, lock_ms, str(keep))
        if reply[0] == "done":
            return "done", {"status": int(reply[1]), "body": reply[2]}
        return reply[0], None

    @unavailable_as_domain_error
    def idempotency_finish(self, key: str, fingerprint: str, status: int, body: str, ttl_ms: int) -> None:
        self._idempotency("finish", key, fingerprint, ttl_ms, str(status), body)

    @unavailable_as_domain_error
    def idempotency_release(self, key: str, fingerprint: str) -> None:
        self._idempotency("release", key, fingerprint, 0)

    @unavailable_as_domain_error
    def idempotency_committed(self, request_id: str) -> bool:
        """Whether a keyed write left its marker (``done:<request id>``) in some slot: it is
        in the slot of the write, which only the request's route knows, so look in all."""
        roots = (*self._roots, self._root)
        with self._pipeline() as pipe:
            for root in roots:
                pipe.exists(root + "done:" + request_id)
            return any(pipe.execute())

    def _idempotency(self, op: str, key: str, fingerprint: str, ms: int, *rest: str) -> Any:
        record = self.ikey(key, "idem")  # spread over the partitions by the key's CRC32
        return self._prun("idempotency", self.partition(key), [record], op, fingerprint, str(max(ms, 1)), *rest)

    # -- identity store ---------------------------------------------------------------

    @unavailable_as_domain_error
    def identity(self, user: str) -> Identity:
        return self.identities([user])[0]

    @unavailable_as_domain_error
    def identities(self, users: Iterable[str]) -> list[Identity]:
        wanted = list(users)
        if not wanted:
            return []
        with self._pipeline() as pipe:
            for user in wanted:
                pipe.smembers(self.key("user", user, "groups"))
                pipe.smembers(self.key("user", user, "roles"))
            replies = pipe.execute()
        return [
            Identity(user, frozenset(replies[2 * i]), frozenset(replies[2 * i + 1])) for i, user in enumerate(wanted)
        ]

    @unavailable_as_domain_error
    def set_identity(self, identity: Identity) -> None:
        keys = [self.key("user", identity.user, "groups"), self.key("user", identity.user, "roles")]
        self._run("set_identity", self._root, keys, as_json(sorted(identity.groups)), as_json(sorted(identity.roles)))

    # -- helpers ----------------------------------------------------------------------

    def _task_op(self, script: str, task_id: str, *args: str) -> Task:
        partition = self.partition(task_id)
        return self._task(self._checked(script, partition, [self.ikey(task_id, "task")], task_id, *args))

    def _external_op(self, op: str, external_id: str, args: Mapping[str, Any]) -> ExternalTaskRecord:
        keys = [self.ikey(external_id, "ext")]
        reply = self._checked("external", self.partition(external_id), keys, op, external_id, as_json(args))
        return self._external(reply)

    @staticmethod
    def _external(flat: list[str]) -> ExternalTaskRecord:
        return ExternalTaskRecord.from_dict(decode_fields(pairs(flat)))

    @staticmethod
    def _task(flat: list[str]) -> Task:
        return Task.from_dict(decode_fields(pairs(flat)))

    @staticmethod
    def _instance(data: Mapping[str, str], state: str | None) -> Instance | None:
        """An instance from its hash and its ``state`` key (None when the hash is missing)."""
        if not data:
            return None
        return Instance.from_dict({**decode_fields(data), "state": state_value(state)})

    @staticmethod
    def decode_task(data: Mapping[str, str]) -> Task:
        """A task from its hash fields (as HGETALL answers them)."""
        return Task.from_dict(decode_fields(data))

    @staticmethod
    def _definition(flat: list[str]) -> Definition:
        return Definition.from_dict(decode_fields(pairs(flat)))

    @staticmethod
    def _audit(audit: Mapping[str, Any] | None) -> str:
        """An audit entry as a script argument: a JSON object, or "" for none."""
        return "" if audit is None else history_json(audit)
