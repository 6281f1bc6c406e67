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
``P:inst:<id>``                 hash    :class:`Instance` fields; ``state`` JSON, ``rev``
``P:inst-tasks:<id>``           set     ids of the instance's active tasks
``P:task:<id>``                 hash    :class:`Task` fields (kept after closing)
``P:assignee:<user>``           set     ids of active tasks assigned to ``user``
``P:cand:user:<user>``          set     ids of active tasks naming candidate ``user``
``P:cand:group:<group>``        set     ids of active tasks naming candidate ``group``
``P:cand:role:<role>``          set     ids of active tasks naming candidate ``role``
``P:history:<id>``              list    the instance's audit entries, oldest first (JSON)
``P:ext:<id>``                  hash    :class:`ExternalTaskRecord` fields (kept after closing)
``P:inst-ext:<id>``             set     ids of the instance's active external tasks
``P:ext-topic:<topic>``         zset    fetchable external tasks of ``topic``, by ``available_at``
``P:timers``                    zset    the partition's timer waits ``inst|<id>|<sub>`` by due time
``P:msg:<name>``                set     ``inst|<id>|<sub>`` waits for message ``name``
``P:sig:<name>``                set     ``inst|<id>|<sub>`` waits for signal ``name``
==============================  ======  ===============================================

Hash fields are strings: ints in decimal, ``ended``/``incident`` as ``1``/``0``, lists and
dicts (candidates, variables, state) as JSON, and None as an absent field. The
variable part of a key always comes last, after a fixed word, so no name a
client chooses can make two kinds of key collide.

Atomicity (STYLE.md point 6): every read-check-write (deploy, claim, unclaim,
assign, assign_instance, apply_steps, take_timer, the external-task updates,
set_identity) is one Lua script from ``backends/lua/`` that works in one slot:
it is given the slot's key root and at least one of its keys in KEYS, derives
only keys of that root (Redis Cluster allows undeclared keys of the declared
slot; ``tests/test_redis_cluster.py`` checks it), checks everything before its
first write and appends the operation's audit entry to the history in the same
script. A step list (a parent and the child it calls) always shares one
partition. Reads across partitions (task queries, due timers, subscriptions,
external-task fetching) read every partition and merge in Python.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, ParamSpec, TypeVar, cast

import redis
from redis.backoff import NoBackoff
from redis.commands.core import Script
from redis.retry import Retry

from backends.base import (
    Backend,
    Definition,
    ExternalTaskRecord,
    Identity,
    Instance,
    Principals,
    Step,
    SubscriptionIndex,
    Task,
    TaskQuery,
    check_subscription,
    fetch_window,
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
from backends.redis_codec import (
    as_json,
    decode_fields,
    encode,
    pairs,
    redact,
    script_error,
    split_options,
    split_prefix,
)
from bpm.errors import BackendUnavailable, InstanceNotFound

__all__ = ["RedisBackend", "split_prefix"]

DEFAULT_PREFIX = "bpm"
LUA_DIR = Path(__file__).resolve().parent / "lua"
SCRIPTS = (
    "apply_steps",
    "assign",
    "assign_instance",
    "claim",
    "definitions",
    "deploy",
    "external",
    "fetch_candidates",
    "instance_externals",
    "instance_tasks",
    "lock_externals",
    "query_tasks",
    "set_identity",
    "take_timer",
    "task_and_instance",
    "unclaim",
)
#: query parameters of the URL that are ours, not redis-py's
URL_OPTIONS = ("prefix", "partitions", "wait")

#: errors meaning "Redis cannot serve us right now" rather than a bug of ours
UNAVAILABLE: tuple[type[Exception], ...] = (
    redis.exceptions.ConnectionError,  # includes refused, auth, loading, max connections
    redis.exceptions.TimeoutError,
    redis.exceptions.ReadOnlyError,  # a replica after failover
    redis.exceptions.ClusterDownError,
    redis.exceptions.TryAgainError,
    redis.exceptions.ClusterError,  # redirections or retries exhausted during a failover
    redis.exceptions.SlotNotCoveredError,
    redis.exceptions.MasterDownError,
)

P = ParamSpec("P")
R = TypeVar("R")


class PartitionCountMismatch(ValueError):
    """The store was set up with another number of partitions than the URL asks for."""


def unavailable_as_domain_error(method: Callable[P, R]) -> Callable[P, R]:
    """Turn every connection-level Redis failure into BackendUnavailable (HTTP 503)."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except UNAVAILABLE as exc:
            raise BackendUnavailable(f"the Redis backend is unreachable: {exc}") from exc

    return wrapper


def _escape_glob(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\{}" else c for c in text)


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

    schemes = ("redis", "rediss", "unix")

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
        self.url = redact(url)
        self._root = f"{{{self.prefix}}}:"
        self._roots = tuple(f"{self.prefix}:{{{tag}}}:" for tag in partition_tags(self.partitions))
        self._client = self._connect(url, socket_timeout, health_check_interval)
        common = (LUA_DIR / "_common.lua").read_text()
        self._scripts: dict[str, Script] = {
            name: self._client.register_script(common + "\n" + (LUA_DIR / f"{name}.lua").read_text())
            for name in SCRIPTS
        }
        self._picker = PartitionPicker(self.partitions)
        self._id_lock = threading.Lock()
        self._id_block = id_block
        self._id_ranges: dict[int, tuple[int, int]] = {}  # partition -> (next, last) reserved
        self._id_pid = os.getpid()
        self._meta_checked = False
        with contextlib.suppress(*UNAVAILABLE):  # else checked again before the first id is made
            self._check_partition_count()

    def _connect(self, url: str, socket_timeout: float, health_check_interval: int) -> Any:
        return redis.Redis.from_url(
            url,
            decode_responses=True,
            # lone surrogates (valid in Python strings) round-trip like in memory
            encoding_errors="surrogatepass",
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
        """Run a script in the slot of ``root``; ``keys`` must hold at least one key of it."""
        return self._scripts[script](keys=keys, args=[root, *args])

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
        self._client.hsetnx(meta, "partitions", str(self.partitions))
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
                last = int(self._client.incrby(self.pkey(partition, "ids"), self._id_block))
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
        return int(self._client.incr(self.key("cache-generation")))

    # -- instances and tasks ----------------------------------------------------------

    @unavailable_as_domain_error
    def instance(self, instance_id: str) -> Instance | None:
        data = self._client.hgetall(self.ikey(instance_id, "inst"))
        return Instance.from_dict(decode_fields(data)) if data else None

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
        if not reply[1]:
            raise InstanceNotFound(f"process instance '{task.instance_id}' does not exist")
        return task, Instance.from_dict(decode_fields(pairs(reply[1])))

    @unavailable_as_domain_error
    def instance_tasks(self, instance_id: str) -> list[Task]:
        keys = [self.ikey(instance_id, "inst"), self.ikey(instance_id, "inst-tasks")]
        found = self._checked("instance_tasks", self.partition(instance_id), keys, instance_id)
        return sorted(map(self._task, found), key=lambda t: (t.create_time, t.id))

    @unavailable_as_domain_error
    def apply_steps(self, steps: list[Step]) -> None:
        if not steps:
            return
        partition = self.partition(steps[0].instance.id)
        payload = as_json([self._step_json(step, partition) for step in steps])
        keys = list(dict.fromkeys(self.ikey(step.instance.id, "inst") for step in steps))
        self._checked("apply_steps", partition, keys, payload)

    @unavailable_as_domain_error
    def instances(self, instance_ids: Iterable[str]) -> list[Instance | None]:
        wanted = list(instance_ids)
        if not wanted:
            return []
        with self._pipeline() as pipe:
            for instance_id in wanted:
                pipe.hgetall(self.ikey(instance_id, "inst"))
            replies = pipe.execute()
        return [Instance.from_dict(decode_fields(data)) if data else None for data in replies]

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
        keys = [self.ikey(instance_id, "inst"), self.ikey(instance_id, "inst-tasks")]
        partition = self.partition(instance_id)
        assigned = self._checked("assign_instance", partition, keys, instance_id, user, self._audit(audit))
        return [task_id for task_id, _ in sorted(assigned, key=lambda pair: (int(pair[1]), pair[0]))]

    @unavailable_as_domain_error
    def history(self, instance_id: str) -> list[dict[str, Any]]:
        with self._pipeline() as pipe:
            pipe.exists(self.ikey(instance_id, "inst"))
            pipe.lrange(self.ikey(instance_id, "history"), 0, -1)
            exists, entries = pipe.execute()
        if not exists:
            raise InstanceNotFound(f"process instance '{instance_id}' does not exist")
        return [json.loads(entry) for entry in entries]

    @unavailable_as_domain_error
    def query_tasks(self, query: TaskQuery) -> tuple[list[Task], int]:
        named = [("assignee", user) for user in sorted(query.assignees)]
        for kind, names in (
            ("user", query.candidates.users),
            ("group", query.candidates.groups),
            ("role", query.candidates.roles),
        ):
            named += [("cand", kind, name) for name in sorted(names)]
        if not named:
            return [], 0
        include = "1" if query.include_assigned else "0"
        assignees = as_json(sorted(query.assignees))
        found: list[Task] = []
        for partition in range(self.partitions):
            keys = [self.pkey(partition, *parts) for parts in named]
            found += map(self._task, self._prun("query_tasks", partition, keys, include, assignees))
        return query.page(t for t in found if query.matches(t))

    # -- timers, messages and signals -------------------------------------------------

    @unavailable_as_domain_error
    def due_timers(self, now: int, limit: int = 100) -> list[tuple[str, int]]:
        if limit <= 0:
            return []
        keys = [self.key("timers")] + [self.pkey(p, "timers") for p in range(self.partitions)]
        with self._pipeline() as pipe:
            for key in keys:
                pipe.zrangebyscore(key, "-inf", now, start=0, num=limit, withscores=True)
            replies = pipe.execute()
        found = [(int(due), member) for reply in replies for member, due in cast("list[tuple[str, float]]", reply)]
        return [(member, due) for due, member in sorted(found)[:limit]]

    @unavailable_as_domain_error
    def schedule_timer(self, member: str, due: int) -> None:
        self._client.zadd(self._timer_key(member), {member: due})

    @unavailable_as_domain_error
    def take_timer(self, member: str, due: int, next_due: int | None) -> bool:
        next_arg = "" if next_due is None else str(next_due)
        key = self._timer_key(member)
        root = key.removesuffix("timers")
        return bool(self._run("take_timer", root, [key], member, str(due), next_arg))

    @unavailable_as_domain_error
    def remove_timer(self, member: str) -> None:
        self._client.zrem(self._timer_key(member), member)

    @unavailable_as_domain_error
    def subscriptions(self, kind: str, name: str) -> list[tuple[str, str]]:
        if kind not in ("message", "signal"):
            raise ValueError(f"subscriptions are kept for messages and signals, not {kind!r}")
        word = "msg" if kind == "message" else "sig"
        with self._pipeline() as pipe:
            for partition in range(self.partitions):
                pipe.smembers(self.pkey(partition, word, name))
            replies = pipe.execute()
        members = sorted(member for reply in replies for member in reply)
        return [parse_member(m) for m in members]

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
        """Read each partition's candidates, pick the best across partitions, then lock
        them partition by partition; a task a racing worker took meanwhile is skipped."""
        if max_tasks <= 0 or not topics:
            return []
        candidates: list[tuple[int, int, str, str, int]] = []  # (-priority, created, id, topic, partition)
        window = str(fetch_window(max_tasks))
        for partition in range(self.partitions):
            for ext_id, topic, priority, created in self._prun(
                "fetch_candidates", partition, None, str(now), window, *topics
            ):
                candidates.append((-int(priority), int(created), ext_id, topic, partition))
        chosen = sorted(candidates)[:max_tasks]
        locked: dict[str, ExternalTaskRecord] = {}
        for partition in sorted({c[4] for c in chosen}):
            args = [worker, str(now)]
            for _, _, ext_id, topic, _ in (c for c in chosen if c[4] == partition):
                args += [ext_id, topic, str(topics[topic])]
            for flat in self._prun("lock_externals", partition, None, *args):
                record = self._external(flat)
                locked[record.id] = record
        return [locked[c[2]] for c in chosen if c[2] in locked]

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

    def _step_json(self, step: Step, partition: int) -> dict[str, Any]:
        """One step as apply_steps.lua reads it: hash fields, decimal strings, false for None.

        Raises ValueError when a record of the step is not in ``partition`` (every
        record of one write lives in one partition: see :mod:`backends.partitions`).
        """
        for sub in (*step.subscribed, *step.unsubscribed):
            check_subscription(sub)
        if step.new and step.instance.rev != 1:
            raise ValueError(f"a new process instance starts at rev 1, not {step.instance.rev}")
        ids = [step.instance.id, *(t.id for t in step.created), *(e.id for e in step.externals)]
        ids += [sub.instance_id for sub in step.subscribed]
        for record_id in ids:
            if self.partition(record_id) != partition:
                raise ValueError(
                    f"id '{record_id}' is not in partition {partition} of this write: make it with "
                    "new_id(near=<instance id>) or inside id_scope(<instance id>)"
                )
        return {
            "id": step.instance.id,
            "new": step.new,
            "expected": str(step.instance.rev - 1),
            "instance": encode(step.instance),
            "now": str(step.now),
            "complete_task": step.complete_task or "",
            "completed_by": False if step.completed_by is None else step.completed_by,
            "cancelled": step.cancelled,
            "created": [encode(task) for task in step.created],
            "complete_external": step.complete_external or "",
            "external_worker": False if step.external_worker is None else step.external_worker,
            "externals": [encode(ext) for ext in step.externals],
            "externals_cancelled": step.externals_cancelled,
            "subscribed": [self._subscription(sub) for sub in step.subscribed],
            "unsubscribed": [self._subscription(sub) for sub in step.unsubscribed],
            "history": [as_json(entry) for entry in step.history],
        }

    @staticmethod
    def _subscription(sub: SubscriptionIndex) -> list[str]:
        due = "" if sub.due is None else str(sub.due)
        return [sub.kind, sub.name or "", sub.member, due]

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
    def _definition(flat: list[str]) -> Definition:
        return Definition.from_dict(decode_fields(pairs(flat)))

    @staticmethod
    def _audit(audit: Mapping[str, Any] | None) -> str:
        """An audit entry as a script argument: a JSON object, or "" for none."""
        return "" if audit is None else as_json(dict(audit))
