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
``{p}:meta``                    hash    ``partitions``: the count, fixed at first use;
                                        ``layout``: this key layout's version (LAYOUT)
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
``P:inst:<id>``                 string  the instance and its engine state in one value:
                                        ``<rev>|<flags>|<active task ids>|<closed records>|<body>``;
                                        flags ``e`` ended, ``t`` history truncated, ``x`` has had
                                        external tasks; ids and records space-separated, a
                                        closed record ``t<task id>``/``x<external id>`` (expired
                                        with it: retention); the body a JSON array (see
                                        instance_body); parsed by load_inst in _common.lua
``P:task:<id>``                 hash    :class:`Task` fields but its id, the scripts' fields
                                        short too (TASK_NAMES), none at its default (status
                                        active, priority 50...); kept after closing
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
                                        each write that ends an instance drops
                                        up to 20 due ones from the ended lists
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

Hash fields are strings: ints in decimal, ``incident`` as ``1``, lists and dicts
(candidates, variables) as JSON; None and empty defaults ("", false, [], {}) are absent
fields, and a task's other defaults too. Per-instance sets are small sorted sets, since Redis keeps small
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
script. On a single server the scripts run as the functions of one library loaded once
(:mod:`backends.redis_functions`, FCALL), elsewhere as scripts (EVALSHA). Every write
script runs once per request id (``backends/lua/_once.lua``): redis-py's retry after a
dropped connection gets the first run's reply. A
step list (a parent and the child it calls) always shares one
partition. Reads across partitions (task queries, due timers, subscriptions,
external-task fetching) read every partition and merge in Python.

A completion may be decided on the raw values this backend was lately answered for the
task and its instance (:mod:`backends.redis_recent`): then it is one round trip, and its
write checks that the instance's rev and the task's assignee and candidates are still
those read (else a concurrent modification: the runtime reads the store and retries).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from backends import redis_query
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
)
from backends.partitions import (
    check_one_partition,
)
from backends.redis_codec import (
    as_json,
    build,
    decode_fields,
    decode_flat,
    decode_instance,
    encode,
    history_entry,
    history_json,
    pairs,
    script_error,
    split_prefix,
)
from backends.redis_recent import RecentCopies
from backends.redis_scripts import (
    unavailable_as_domain_error,
)
from backends.redis_steps import step_args
from backends.redis_store import RedisStore
from bpm.errors import InstanceNotFound

__all__ = ["RedisBackend", "split_prefix"]


class RedisBackend(RedisStore, Backend):
    """The contract of :class:`backends.base.Backend` on Redis (see the module docstring);
    the connection, URL options, scripts and ids are :class:`backends.redis_store.RedisStore`'s."""

    schemes: tuple[str, ...] = ("redis", "rediss", "unix")
    #: every slot is on one server, so a script may also declare keys of the global slot
    #: (the claim script reads the identity sets); False on a Redis Cluster
    scripts_span_slots = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: the raw values lately answered for tasks and instances (backends/redis_recent.py)
        self.recent = RecentCopies()

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
        return build(Definition, decode_fields(data)) if data else None

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
        return self.decode_task(data, task_id) if data else None

    @unavailable_as_domain_error
    def task_and_instance(self, task_id: str) -> tuple[Task, Instance] | None:
        found = self._read_task_and_instance(task_id)
        return None if found is None else self._decode_pair(task_id, *found)

    @unavailable_as_domain_error
    def task_and_instance_to_complete(self, task_id: str, *, recent: bool = True) -> tuple[Task, Instance, bool] | None:
        """:meth:`task_and_instance` for a completion, and whether it answers from the copies this
        backend keeps (``recent``, when it has both; they may be out of date: see
        backends/redis_recent.py). The next :meth:`apply_steps` of this thread that completes
        the task writes only while the task is still as read here."""
        kept = self.recent.pair(task_id) if recent else None
        found = kept or self._read_task_and_instance(task_id)
        if found is None:
            return None
        self.recent.decided(task_id, found[0])
        return *self._decode_pair(task_id, *found), kept is not None

    def _read_task_and_instance(self, task_id: str) -> tuple[list[str], str | None] | None:
        """The task's flat hash and its instance's stored value, read now (and kept)."""
        reply = self._prun("task_and_instance", self.partition(task_id), [self.ikey(task_id, "task")])
        if not reply:
            return None
        flat, stored = reply[0], reply[1] if len(reply) > 1 else None
        self.recent.keep_task(task_id, flat)
        if stored:
            self.recent.keep_instance(pairs(flat)["ii"], stored)
        return flat, stored

    @staticmethod
    def _decode_pair(task_id: str, flat: list[str], stored: str | None) -> tuple[Task, Instance]:
        task = RedisBackend._task(flat, task_id)
        instance = decode_instance(task.instance_id, stored)
        if instance is None:
            raise InstanceNotFound(f"process instance '{task.instance_id}' does not exist")
        return task, instance

    @unavailable_as_domain_error
    def instance_tasks(self, instance_id: str) -> list[Task]:
        keys = [self.ikey(instance_id, "inst")]
        reply = self._prun("instance_tasks", self.partition(instance_id), keys, instance_id)
        if reply[0] != "OK":
            raise script_error(reply)
        found, stored = reply[1], reply[2]
        self.recent.keep_instance(instance_id, stored)
        tasks = []
        for flat in found:
            task = build(Task, decode_flat(flat))
            self.recent.keep_task(task.id, flat)
            tasks.append(task)
        return sorted(tasks, key=lambda t: (t.create_time, t.id))

    @unavailable_as_domain_error
    def apply_steps(self, steps: list[Step]) -> None:
        if not steps:
            return
        partition = check_one_partition(steps, self.partition)
        keys = list(dict.fromkeys(self.ikey(step.instance.id, "inst") for step in steps))
        completed = [step.complete_task for step in steps if step.complete_task]
        decided = self.recent.expectations(completed) if completed else None
        try:
            self._checked("apply_steps", partition, keys, *step_args(steps, decided))
        finally:  # written or refused: what is kept of them is out of date, or may be
            self.recent.forget(
                [*completed, *(task_id for step in steps for task_id in step.cancelled)],
                [step.instance.id for step in steps],
            )

    @unavailable_as_domain_error
    def instances(self, instance_ids: Iterable[str]) -> list[Instance | None]:
        return self._read_instances(list(instance_ids))

    def _read_instances(self, wanted: list[str]) -> list[Instance | None]:
        """Instances and their states in one pipeline (one round trip per node)."""
        if not wanted:
            return []
        with self._pipeline() as pipe:
            for instance_id in wanted:
                pipe.get(self.ikey(instance_id, "inst"))
            replies = pipe.execute()
        return [decode_instance(instance_id, stored) for instance_id, stored in zip(wanted, replies, strict=True)]

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
        self.recent.keep_task(task_id, reply)
        return self._task(reply, task_id)

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
        self.recent.forget((task_id for task_id, _ in assigned), ())
        return [task_id for task_id, _ in sorted(assigned, key=lambda pair: (int(pair[1]), pair[0]))]

    @unavailable_as_domain_error
    def history(self, instance_id: str) -> list[dict[str, Any]]:
        with self._pipeline() as pipe:
            pipe.get(self.ikey(instance_id, "inst"))
            pipe.lrange(self.ikey(instance_id, "history"), 0, -1)
            stored, entries = pipe.execute()
        instance = decode_instance(instance_id, stored)
        if instance is None:
            raise InstanceNotFound(f"process instance '{instance_id}' does not exist")
        return [history_entry(entry, instance.create_time, instance.definition_id) for entry in entries]

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
        return build(ExternalTaskRecord, decode_fields(data)) if data else None

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

    def clear(self) -> None:
        super().clear()
        self.recent.clear()  # ids are used again after a clear

    def _task_op(self, script: str, task_id: str, *args: str) -> Task:
        partition = self.partition(task_id)
        flat = self._checked(script, partition, [self.ikey(task_id, "task")], task_id, *args)
        self.recent.keep_task(task_id, flat)  # the task's hash now
        return self._task(flat, task_id)

    def _external_op(self, op: str, external_id: str, args: Mapping[str, Any]) -> ExternalTaskRecord:
        keys = [self.ikey(external_id, "ext")]
        reply = self._checked("external", self.partition(external_id), keys, op, external_id, as_json(args))
        return self._external(reply)

    @staticmethod
    def _external(flat: list[str]) -> ExternalTaskRecord:
        return build(ExternalTaskRecord, decode_flat(flat))

    @staticmethod
    def _task(flat: list[str], task_id: str) -> Task:
        """A task from a script's flat reply of its hash (which has no id)."""
        fields = decode_flat(flat)
        fields["id"] = task_id
        return build(Task, fields)

    @staticmethod
    def decode_task(data: Mapping[str, str], task_id: str | None = None) -> Task:
        """A task from its hash fields (as HGETALL answers them) and its id (the hash has
        none; None: an ``id`` among the fields)."""
        fields = decode_fields(data)
        if task_id is not None:
            fields["id"] = task_id
        return build(Task, fields)

    @staticmethod
    def _definition(flat: list[str]) -> Definition:
        return build(Definition, decode_flat(flat))

    @staticmethod
    def _audit(audit: Mapping[str, Any] | None) -> str:
        """An audit entry as a script argument: a JSON object, or "" for none."""
        return "" if audit is None else history_json(audit)
