"""Redis backend: the production store, shared by every worker and host.

Every key comes from :meth:`RedisBackend.key` as ``{<prefix>}:<part>:<part>...``
(default prefix ``bpm``). The braces make the prefix the Redis Cluster hash tag,
so all keys of one runtime live in one slot and every Lua script and MULTI/EXEC
may touch any of them. Only *active* tasks are members of the index sets.

==============================  ======  ===============================================
Key                             Type    Contents
==============================  ======  ===============================================
``{p}:id-counter``              string  last id counter reserved (INCRBY, blocks of 100)
``{p}:cache-generation``        string  generation of the parsed-definition cache
``{p}:def-keys``                set     process keys with at least one version
``{p}:def-versions:<key>``      list    the key's versions, oldest first ("1", "2"...)
``{p}:def:<key>:<version>``     hash    :class:`Definition` fields
``{p}:inst:<id>``               hash    :class:`Instance` fields; ``state`` JSON, ``rev``
``{p}:inst-tasks:<id>``         set     ids of the instance's active tasks
``{p}:task:<id>``               hash    :class:`Task` fields (kept after closing)
``{p}:assignee:<user>``         set     ids of active tasks assigned to ``user``
``{p}:cand:user:<user>``        set     ids of active tasks naming candidate ``user``
``{p}:cand:group:<group>``      set     ids of active tasks naming candidate ``group``
``{p}:cand:role:<role>``        set     ids of active tasks naming candidate ``role``
``{p}:user:<user>:groups``      set     the user's groups (identity store)
``{p}:user:<user>:roles``       set     the user's roles (identity store)
``{p}:history:<id>``            list    the instance's audit entries, oldest first (JSON)
``{p}:ext:<id>``                hash    :class:`ExternalTaskRecord` fields (kept after closing)
``{p}:inst-ext:<id>``           set     ids of the instance's active external tasks
``{p}:ext-topic:<topic>``       zset    fetchable external tasks of ``topic``, by ``available_at``
``{p}:incidents``               set     ids of active external tasks that are incidents
``{p}:timers``                  zset    timer waits by due time: ``inst|<id>|<sub>`` and
                                        ``start|<definitionId>|<element>`` members
``{p}:msg:<name>``              set     ``inst|<id>|<sub>`` waits for message ``name``
``{p}:sig:<name>``              set     ``inst|<id>|<sub>`` waits for signal ``name``
==============================  ======  ===============================================

Hash fields are strings: ints in decimal, ``ended``/``incident`` as ``1``/``0``, lists and
dicts (candidates, variables, state) as JSON, and None as an absent field. The
variable part of a key always comes last, after a fixed word, so no name a
client chooses can make two kinds of key collide.

Atomicity (STYLE.md point 6): read-check-write operations (deploy, claim,
unclaim, assign, assign_instance, apply_steps, take_timer, fetch_and_lock and the
external-task updates) are each one Lua script from ``backends/lua/`` that checks
everything before its first write, and appends the operation's audit entry to
``history:<id>`` in the same script; multi-key writes without a read
(create_instance, set_identity) are one MULTI/EXEC; single-command writes
(schedule_timer, remove_timer) are one command. Reads are one round trip each
(a script, a pipeline or one command).
"""

from __future__ import annotations

import functools
import json
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any, ParamSpec, TypeVar, cast
from urllib.parse import unquote, urlsplit

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
from bpm.errors import (
    BackendUnavailable,
    BpmError,
    ConcurrentModification,
    Conflict,
    ExternalTaskNotFound,
    InstanceNotFound,
    NotCandidate,
    TaskAlreadyClaimed,
    TaskNotActive,
    TaskNotFound,
)

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
    "fetch_and_lock",
    "instance_externals",
    "instance_tasks",
    "query_tasks",
    "take_timer",
    "task_and_instance",
    "unclaim",
)

#: errors meaning "Redis cannot serve us right now" rather than a bug of ours
UNAVAILABLE = (
    redis.exceptions.ConnectionError,  # includes refused, auth, loading, max connections
    redis.exceptions.TimeoutError,
    redis.exceptions.ReadOnlyError,  # a replica after failover
    redis.exceptions.ClusterDownError,
    redis.exceptions.TryAgainError,
)

_INT_FIELDS = frozenset(
    {
        "available_at",
        "create_time",
        "deploy_time",
        "due_date",
        "end_time",
        "lock_expiry",
        "priority",
        "retries",
        "rev",
        "version",
    }
)
_JSON_FIELDS = frozenset({"candidate_groups", "candidate_roles", "candidate_users", "state", "variables"})
_BOOL_FIELDS = frozenset({"ended", "incident"})

P = ParamSpec("P")
R = TypeVar("R")


def unavailable_as_domain_error(method: Callable[P, R]) -> Callable[P, R]:
    """Turn every connection-level Redis failure into BackendUnavailable (HTTP 503)."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except UNAVAILABLE as exc:
            raise BackendUnavailable(f"the Redis backend is unreachable: {exc}") from exc

    return wrapper


def split_prefix(url: str) -> tuple[str, str | None]:
    """Remove a ``prefix`` query parameter from ``url``; return (url, prefix or None).

    Everything else is kept byte for byte, since redis-py parses the URL itself.
    """
    base, mark, rest = url.partition("?")
    query, hash_mark, fragment = rest.partition("#")
    prefix = None
    kept = []
    for item in query.split("&") if mark else []:
        name, _, value = item.partition("=")
        if unquote(name) == "prefix":
            prefix = unquote(value)
        elif item:
            kept.append(item)
    rebuilt = base + ("?" + "&".join(kept) if kept else "") + hash_mark + fragment
    return rebuilt, prefix


def redact(url: str) -> str:
    """The URL without its password, for logs and messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user, _, host = parts.netloc.rpartition("@")
    name = user.partition(":")[0]
    return url.replace(parts.netloc, f"{name}:***@{host}", 1)


def encode(record: Task | Instance | Definition | ExternalTaskRecord) -> dict[str, str]:
    """A record as hash fields: strings, JSON for lists and dicts, None left out."""
    out: dict[str, str] = {}
    for f in fields(record):
        value = getattr(record, f.name)
        if value is None:
            continue
        if f.name in _JSON_FIELDS:
            out[f.name] = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        elif f.name in _BOOL_FIELDS:
            out[f.name] = "1" if value else "0"
        else:
            out[f.name] = str(value)
    return out


def decode_fields(data: Mapping[str, str]) -> dict[str, Any]:
    """Hash fields back to Python values (the inverse of :func:`encode`)."""
    out: dict[str, Any] = {}
    for name, raw in data.items():
        if name in _JSON_FIELDS:
            out[name] = json.loads(raw)
        elif name in _INT_FIELDS:
            out[name] = int(raw)
        elif name in _BOOL_FIELDS:
            out[name] = raw == "1"
        else:
            out[name] = raw
    return out


def pairs(flat: list[str]) -> dict[str, str]:
    """A flat HGETALL reply from a script ``[f1, v1, f2, v2...]`` as a dict."""
    return dict(zip(flat[::2], flat[1::2], strict=True))


def script_error(reply: list[Any]) -> BpmError:
    """The domain error for a script's error reply ``[CODE, id, detail]``."""
    code, ident, detail = reply
    if code == "TASK_NOT_FOUND":
        return TaskNotFound(f"task '{ident}' does not exist")
    if code == "TASK_NOT_ACTIVE":
        return TaskNotActive(f"task '{ident}' is {detail}")
    if code == "TASK_ALREADY_CLAIMED":
        return TaskAlreadyClaimed(f"task '{ident}' is claimed by another user")
    if code == "TASK_NOT_CLAIMED":
        return Conflict(f"task '{ident}' is not claimed", code="TASK_NOT_CLAIMED")
    if code == "NOT_CANDIDATE":
        return NotCandidate(f"user '{detail}' is not a candidate for task '{ident}'")
    if code == "INSTANCE_NOT_FOUND":
        return InstanceNotFound(f"process instance '{ident}' does not exist")
    if code == "CONCURRENT_MODIFICATION":
        return ConcurrentModification(f"process instance '{ident}' changed meanwhile")
    if code == "INSTANCE_EXISTS":
        return Conflict(f"process instance '{ident}' already exists", code="INSTANCE_EXISTS")
    if code == "EXTERNAL_TASK_NOT_FOUND":
        return ExternalTaskNotFound(f"external task '{ident}' does not exist")
    if code == "EXTERNAL_TASK_NOT_ACTIVE":
        return TaskNotActive(f"external task '{ident}' is {detail}")
    if code == "LOCK_LOST":
        return Conflict(f"external task '{ident}' is not locked by worker '{detail}'", code="LOCK_LOST")
    raise RuntimeError(f"unexpected reply from a Redis script: {reply!r}")  # pragma: no cover


class RedisBackend(Backend):
    """The contract of :class:`backends.base.Backend` on Redis (see the module docstring).

    ``url`` is ``redis://[[user]:password@]host:port/db``, ``rediss://...`` or
    ``unix:///path.sock?db=0``; an optional ``?prefix=`` parameter names the key
    prefix unless ``prefix`` is given. No call waits longer than about
    ``socket_timeout``; when Redis is unreachable every method raises
    BackendUnavailable, and the client reconnects by itself once it is back.
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
    ) -> None:
        url, url_prefix = split_prefix(url)
        self.prefix = prefix or url_prefix or DEFAULT_PREFIX
        if "{" in self.prefix or "}" in self.prefix:
            raise ValueError(f"the Redis key prefix must not contain braces: {self.prefix!r}")
        self.url = redact(url)
        self._root = f"{{{self.prefix}}}:"
        self._client = redis.Redis.from_url(
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
        common = (LUA_DIR / "_common.lua").read_text()
        self._scripts: dict[str, Script] = {
            name: self._client.register_script(common + "\n" + (LUA_DIR / f"{name}.lua").read_text())
            for name in SCRIPTS
        }
        self._id_lock = threading.Lock()
        self._id_block = id_block
        self._id_next = self._id_last = 0
        self._id_pid = os.getpid()

    @property
    def client(self) -> redis.Redis:
        """The redis-py client (for tools and tests; the use cases never need it)."""
        return self._client

    def key(self, *parts: str) -> str:
        """The one place keys are made: ``{<prefix>}:`` and the parts joined by ``:``."""
        return self._root + ":".join(parts)

    def _run(self, script: str, keys: list[str], *args: str) -> Any:
        return self._scripts[script](keys=keys, args=[self._root, *args])

    def _checked(self, script: str, keys: list[str], *args: str) -> Any:
        """Run a script answering ``["OK", payload]`` or an error reply; return the payload."""
        reply = self._run(script, keys, *args)
        if reply[0] != "OK":
            raise script_error(reply)
        return reply[1] if len(reply) > 1 else None

    # -- ids and health ---------------------------------------------------------------

    @unavailable_as_domain_error
    def new_id(self) -> str:
        with self._id_lock:
            if self._id_pid != os.getpid():  # a forked worker must not reuse the parent's block
                self._id_next = self._id_last = 0
                self._id_pid = os.getpid()
            if self._id_next == 0 or self._id_next > self._id_last:
                self._id_last = int(self._client.incrby(self.key("id-counter"), self._id_block))
                self._id_next = self._id_last - self._id_block + 1
            counter = self._id_next
            self._id_next += 1
        return f"{counter}-{uuid.uuid4()}"

    @unavailable_as_domain_error
    def ping(self) -> None:
        self._client.ping()

    @unavailable_as_domain_error
    def clear(self) -> None:
        escaped = "".join("\\" + c if c in "*?[]\\" else c for c in self._root)
        batch: list[str] = []
        for name in self._client.scan_iter(match=escaped + "*", count=1000):
            batch.append(name)
            if len(batch) >= 1000:
                self._client.unlink(*batch)
                batch.clear()
        if batch:
            self._client.unlink(*batch)

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
        created, stored = self._run("deploy", keys, *args)
        return self._definition(stored), bool(created)

    @unavailable_as_domain_error
    def definitions(self) -> list[Definition]:
        found = [self._definition(flat) for flat in self._run("definitions", [self.key("def-keys")])]
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
    def create_instance(
        self, instance: Instance, tasks: list[Task], history: list[dict[str, Any]] | None = None
    ) -> None:
        with self._client.pipeline(transaction=True) as pipe:
            self._replace_hash(pipe, self.key("inst", instance.id), encode(instance))
            for task in tasks:
                self._replace_hash(pipe, self.key("task", task.id), encode(task))
                if task.active:
                    for index in self._index_keys(task):
                        pipe.sadd(index, task.id)
            if history:
                pipe.rpush(self.key("history", instance.id), *map(self._json, history))
            pipe.execute()

    @unavailable_as_domain_error
    def instance(self, instance_id: str) -> Instance | None:
        data = self._client.hgetall(self.key("inst", instance_id))
        return Instance.from_dict(decode_fields(data)) if data else None

    @unavailable_as_domain_error
    def task(self, task_id: str) -> Task | None:
        data = self._client.hgetall(self.key("task", task_id))
        return Task.from_dict(decode_fields(data)) if data else None

    @unavailable_as_domain_error
    def task_and_instance(self, task_id: str) -> tuple[Task, Instance] | None:
        reply = self._run("task_and_instance", [self.key("task", task_id)])
        if not reply:
            return None
        task = self._task(reply[0])
        if not reply[1]:
            raise InstanceNotFound(f"process instance '{task.instance_id}' does not exist")
        return task, Instance.from_dict(decode_fields(pairs(reply[1])))

    @unavailable_as_domain_error
    def instance_tasks(self, instance_id: str) -> list[Task]:
        keys = [self.key("inst", instance_id), self.key("inst-tasks", instance_id)]
        tasks = [self._task(flat) for flat in self._checked("instance_tasks", keys, instance_id)]
        return sorted(tasks, key=lambda t: (t.create_time, t.id))

    def apply_step(self, step: Step) -> None:
        self.apply_steps([step])

    @unavailable_as_domain_error
    def apply_steps(self, steps: list[Step]) -> None:
        if steps:
            self._checked("apply_steps", [], self._json([self._step_json(step) for step in steps]))

    @unavailable_as_domain_error
    def instances(self, instance_ids: Iterable[str]) -> list[Instance | None]:
        wanted = list(instance_ids)
        if not wanted:
            return []
        with self._client.pipeline(transaction=False) as pipe:
            for instance_id in wanted:
                pipe.hgetall(self.key("inst", instance_id))
            replies = pipe.execute()
        return [Instance.from_dict(decode_fields(data)) if data else None for data in replies]

    @unavailable_as_domain_error
    def claim(
        self, task_id: str, user: str, candidates: Principals | None, *, audit: dict[str, Any] | None = None
    ) -> Task:
        principals = ""
        if candidates is not None:
            principals = self._json(
                {
                    "candidate_users": sorted(candidates.users),
                    "candidate_groups": sorted(candidates.groups),
                    "candidate_roles": sorted(candidates.roles),
                }
            )
        reply = self._checked("claim", [self.key("task", task_id)], task_id, user, principals, self._audit(audit))
        return self._task(reply)

    @unavailable_as_domain_error
    def unclaim(self, task_id: str, user: str | None, *, audit: dict[str, Any] | None = None) -> Task:
        check = "0" if user is None else "1"
        keys = [self.key("task", task_id)]
        return self._task(self._checked("unclaim", keys, task_id, check, user or "", self._audit(audit)))

    @unavailable_as_domain_error
    def assign(self, task_id: str, users: list[str], *, audit: dict[str, Any] | None = None) -> Task:
        if len(users) == 1:
            mode, value = "one", users[0]
        else:
            mode, value = "many", self._json(list(dict.fromkeys(users)))
        keys = [self.key("task", task_id)]
        return self._task(self._checked("assign", keys, task_id, mode, value, self._audit(audit)))

    @unavailable_as_domain_error
    def assign_instance(self, instance_id: str, user: str, *, audit: dict[str, Any] | None = None) -> list[str]:
        keys = [self.key("inst", instance_id), self.key("inst-tasks", instance_id)]
        assigned = self._checked("assign_instance", keys, instance_id, user, self._audit(audit))
        return [task_id for task_id, _ in sorted(assigned, key=lambda pair: (int(pair[1]), pair[0]))]

    @unavailable_as_domain_error
    def history(self, instance_id: str) -> list[dict[str, Any]]:
        with self._client.pipeline(transaction=True) as pipe:
            pipe.exists(self.key("inst", instance_id))
            pipe.lrange(self.key("history", instance_id), 0, -1)
            exists, entries = pipe.execute()
        if not exists:
            raise InstanceNotFound(f"process instance '{instance_id}' does not exist")
        return [json.loads(entry) for entry in entries]

    @unavailable_as_domain_error
    def query_tasks(self, query: TaskQuery) -> tuple[list[Task], int]:
        keys = [self.key("assignee", user) for user in sorted(query.assignees)]
        for kind, names in (
            ("user", query.candidates.users),
            ("group", query.candidates.groups),
            ("role", query.candidates.roles),
        ):
            keys += [self.key("cand", kind, name) for name in sorted(names)]
        if not keys:
            return [], 0
        include = "1" if query.include_assigned else "0"
        found = self._run("query_tasks", keys, include, self._json(sorted(query.assignees)))
        return query.page(t for t in map(self._task, found) if query.matches(t))

    # -- timers, messages and signals -------------------------------------------------

    @unavailable_as_domain_error
    def due_timers(self, now: int, limit: int = 100) -> list[tuple[str, int]]:
        if limit <= 0:
            return []
        found = self._client.zrangebyscore(self.key("timers"), "-inf", now, start=0, num=limit, withscores=True)
        return [(member, int(due)) for member, due in cast("list[tuple[str, float]]", found)]

    @unavailable_as_domain_error
    def schedule_timer(self, member: str, due: int) -> None:
        self._client.zadd(self.key("timers"), {member: due})

    @unavailable_as_domain_error
    def take_timer(self, member: str, due: int, next_due: int | None) -> bool:
        next_arg = "" if next_due is None else str(next_due)
        return bool(self._run("take_timer", [self.key("timers")], member, str(due), next_arg))

    @unavailable_as_domain_error
    def remove_timer(self, member: str) -> None:
        self._client.zrem(self.key("timers"), member)

    @unavailable_as_domain_error
    def subscriptions(self, kind: str, name: str) -> list[tuple[str, str]]:
        if kind not in ("message", "signal"):
            raise ValueError(f"subscriptions are kept for messages and signals, not {kind!r}")
        members = cast("set[str]", self._client.smembers(self.key("msg" if kind == "message" else "sig", name)))
        return [parse_member(m) for m in sorted(members)]

    # -- external tasks ---------------------------------------------------------------

    @unavailable_as_domain_error
    def external_task(self, external_id: str) -> ExternalTaskRecord | None:
        data = self._client.hgetall(self.key("ext", external_id))
        return ExternalTaskRecord.from_dict(decode_fields(data)) if data else None

    @unavailable_as_domain_error
    def instance_externals(self, instance_id: str) -> list[ExternalTaskRecord]:
        found = map(self._external, self._run("instance_externals", [self.key("inst-ext", instance_id)]))
        return sorted(found, key=lambda e: (e.create_time, e.id))

    @unavailable_as_domain_error
    def fetch_and_lock(
        self, worker: str, topics: Mapping[str, int], max_tasks: int, now: int
    ) -> list[ExternalTaskRecord]:
        if max_tasks <= 0 or not topics:
            return []
        args = [worker, str(max_tasks), str(now), str(fetch_window(max_tasks))]
        for topic, lock in topics.items():
            args += [topic, str(lock)]
        return [self._external(flat) for flat in self._run("fetch_and_lock", [], *args)]

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
        with self._client.pipeline(transaction=False) as pipe:
            for user in wanted:
                pipe.smembers(self.key("user", user, "groups"))
                pipe.smembers(self.key("user", user, "roles"))
            replies = pipe.execute()
        return [
            Identity(user, frozenset(replies[2 * i]), frozenset(replies[2 * i + 1])) for i, user in enumerate(wanted)
        ]

    @unavailable_as_domain_error
    def set_identity(self, identity: Identity) -> None:
        groups, roles = self.key("user", identity.user, "groups"), self.key("user", identity.user, "roles")
        with self._client.pipeline(transaction=True) as pipe:
            pipe.delete(groups, roles)
            if identity.groups:
                pipe.sadd(groups, *identity.groups)
            if identity.roles:
                pipe.sadd(roles, *identity.roles)
            pipe.execute()

    # -- helpers ----------------------------------------------------------------------

    def _index_keys(self, task: Task) -> list[str]:
        """The index sets an active task belongs to (mirrors ``index_keys`` in _common.lua)."""
        keys = [self.key("inst-tasks", task.instance_id)]
        if task.assignee is not None:
            keys.append(self.key("assignee", task.assignee))
        keys += [self.key("cand", "user", name) for name in task.candidate_users]
        keys += [self.key("cand", "group", name) for name in task.candidate_groups]
        keys += [self.key("cand", "role", name) for name in task.candidate_roles]
        return keys

    @staticmethod
    def _replace_hash(pipe: redis.client.Pipeline, key: str, data: Mapping[str, str]) -> None:
        pipe.delete(key)
        pipe.hset(key, mapping=dict(data))

    def _step_json(self, step: Step) -> dict[str, Any]:
        """One step as apply_steps.lua reads it: hash fields, decimal strings, false for None."""
        for sub in (*step.subscribed, *step.unsubscribed):
            check_subscription(sub)
        if step.new and step.instance.rev != 1:
            raise ValueError(f"a new process instance starts at rev 1, not {step.instance.rev}")
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
            "history": [self._json(entry) for entry in step.history],
        }

    @staticmethod
    def _subscription(sub: SubscriptionIndex) -> list[str]:
        due = "" if sub.due is None else str(sub.due)
        return [sub.kind, sub.name or "", sub.member, due]

    def _external_op(self, op: str, external_id: str, args: Mapping[str, Any]) -> ExternalTaskRecord:
        keys = [self.key("ext", external_id)]
        return self._external(self._checked("external", keys, op, external_id, self._json(args)))

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
    def _json(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def _audit(cls, audit: Mapping[str, Any] | None) -> str:
        """An audit entry as a script argument: a JSON object, or "" for none."""
        return "" if audit is None else cls._json(dict(audit))
