"""In-memory backend for tests and a zero-setup local run.

One lock around each operation gives it the same atomicity as the Redis
backend; records are copied in and out so callers never share mutable state
with the store. Indexes mirror the Redis sets, so queries cost the size of
their result, not the number of tasks stored.
"""

from __future__ import annotations

import _thread
import heapq
import itertools
import time
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from backends.base import (
    ACTIVE,
    CANCELLED,
    COMPLETED,
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
    check_subscription,
    task_audit_entry,
)
from backends.memory_events import MemoryEvents
from backends.memory_stored import (
    BUSINESS_KEY,
    ENDED,
    REV,
    TRUNCATED,
    StoredInstance,
    freeze_instance,
    matching,
    thaw_instance,
    truncated,
)
from backends.partitions import (
    DEFAULT_PARTITIONS,
    PartitionPicker,
    base36,
    check_count,
    check_one_partition,
    make_id,
    partition_of,
)
from backends.redis_codec import split_options
from backends.retention import append_capped
from bpm.copying import SCALARS, clone, cloner, freeze, thaw
from bpm.errors import (
    ConcurrentModification,
    Conflict,
    InstanceNotFound,
    NotCandidate,
    TaskAlreadyClaimed,
    TaskNotActive,
    TaskNotFound,
)


def _now() -> float:
    """Wall-clock milliseconds (expiry of records, as Redis does it)."""
    return time.time() * 1000


#: a deep copy of plain data and records (type-dispatched; see bpm.copying)
_clone = clone
#: the copier of the records read and written on every use case (the type known: no dispatch)
_clone_task = cloner(Task)


#: the one empty name list the closed tasks of ended instances share (never changed: a closed
#: task's candidates are never written, and readers get copies)
_NO_NAMES: list[str] = []


def _unindex(index: dict[str, set[str]], name: str, task_id: str) -> None:
    members = index.get(name)
    if members is not None:
        members.discard(task_id)
        if not members:  # no empty sets left behind (an ended instance's, a gone user's)
            del index[name]


def _share_empty_lists(task: Task) -> None:
    if not task.candidate_users:
        task.candidate_users = _NO_NAMES
    if not task.candidate_groups:
        task.candidate_groups = _NO_NAMES
    if not task.candidate_roles:
        task.candidate_roles = _NO_NAMES


class _Locked(_thread.RLock):  # type: ignore[misc]  # (typeshed calls it final; CPython lets it be subclassed)
    """``with backend._guard:`` the one lock (this reentrant lock itself), after removing the
    instances whose retention ran out. Leaving is the lock's own ``__exit__`` (C code: no
    Python frame per operation)."""

    __slots__ = ("backend",)
    backend: MemoryBackend

    def __enter__(self) -> None:  # type: ignore[override]
        self.acquire()
        backend = self.backend
        expiring = backend._expiring
        if not expiring or expiring[0][0] > time.time() * 1000:
            return  # nothing expired (the common case: one look at the soonest)
        try:
            now = time.time() * 1000
            while expiring and expiring[0][0] <= now:
                backend._forget(heapq.heappop(expiring)[1])
        except BaseException:
            self.release()
            raise


class MemoryBackend(MemoryEvents, Backend):
    schemes = ("memory",)

    def __init__(self, url: str = "memory://", *, partitions: int | None = None) -> None:
        """``memory://?partitions=N``: ids carry a partition as on Redis, and a write whose
        records are in several partitions is refused the same way."""
        self.url = url
        options = split_options(url, ("partitions",))[1]
        self.partitions = check_count(partitions or int(options.get("partitions") or DEFAULT_PARTITIONS))
        self._picker = PartitionPicker(self.partitions)
        #: ``with self._guard:`` the one lock, after removing the instances whose retention ran out
        self._guard = _Locked()
        self._guard.backend = self
        #: (expiry time in wall-clock ms, instance id) of ended instances, soonest first (a heap)
        self._expiring: list[tuple[float, str]] = []
        self.clear()

    # -- ids and health ---------------------------------------------------------------

    def new_id(self, near: str | None = None) -> str:
        partition = self._picker.pick(near)
        # next() of an itertools.count is atomic (no lock); the id is make_id's
        return self._id_prefixes[partition] + base36(next(self._counters[partition]))

    def partition(self, record_id: str) -> int:
        return partition_of(record_id, self.partitions)

    def ping(self) -> None:
        return None

    def clear(self) -> None:
        with self._guard:
            #: per partition, the counter of its ids (the next one it gives) and their prefix (see make_id)
            self._counters = [itertools.count(1) for _ in range(self.partitions)]
            self._id_prefixes = [make_id(partition, 0)[:-1] for partition in range(self.partitions)]
            self._expiring = []
            self._idempotency: dict[str, dict[str, Any]] = {}
            # instance -> its task and external ids (a tuple once it has ended: see _settle)
            self._records: dict[str, set[str] | tuple[str, ...]] = {}
            self._definitions: dict[str, list[Definition]] = {}
            self._generation = 0
            self._instances: dict[str, StoredInstance] = {}  # (see backends.memory_stored)
            self._tasks: dict[str, Task] = {}
            self._instance_tasks: dict[str, set[str]] = defaultdict(set)
            self._by_assignee: dict[str, set[str]] = defaultdict(set)
            self._by_user: dict[str, set[str]] = defaultdict(set)
            self._by_group: dict[str, set[str]] = defaultdict(set)
            self._by_role: dict[str, set[str]] = defaultdict(set)
            self._identities: dict[str, Identity] = {}
            # instance -> its history (marshalled once it has ended: see _settle)
            self._history: dict[str, list[dict[str, Any]] | bytes] = {}
            self._externals: dict[str, ExternalTaskRecord] = {}
            self._instance_externals: dict[str, set[str]] = defaultdict(set)
            self._topics: dict[str, dict[str, int]] = defaultdict(dict)  # topic -> {id: available_at}
            self._timers: dict[str, int] = {}  # member -> due
            self._named: dict[tuple[str, str], set[str]] = defaultdict(set)  # (kind, name) -> members

    # -- definitions ------------------------------------------------------------------

    def deploy(self, definition: Definition) -> tuple[Definition, bool]:
        with self._guard:
            versions = self._definitions.setdefault(definition.key, [])
            if versions and versions[-1].content_hash == definition.content_hash:
                return _clone(versions[-1]), False
            stored = _clone(definition)
            stored.version = len(versions) + 1
            versions.append(stored)
            return _clone(stored), True

    def definitions(self) -> list[Definition]:
        with self._guard:
            return [_clone(d) for versions in self._definitions.values() for d in versions]

    def definition(self, key: str, version: int) -> Definition | None:
        with self._guard:
            versions = self._definitions.get(key, [])
            return _clone(versions[version - 1]) if 0 < version <= len(versions) else None

    def cache_generation(self) -> int:
        return self._generation

    def bump_cache_generation(self) -> int:
        with self._guard:
            self._generation += 1
            return self._generation

    # -- instances and tasks ----------------------------------------------------------

    def instance(self, instance_id: str) -> Instance | None:
        with self._guard:
            found = self._instances.get(instance_id)
            return thaw_instance(found) if found else None

    def task(self, task_id: str) -> Task | None:
        with self._guard:
            found = self._tasks.get(task_id)
            return _clone(found) if found else None

    def task_and_instance(self, task_id: str) -> tuple[Task, Instance] | None:
        found = self.task_and_instance_to_complete(task_id)
        return None if found is None else (found[0], found[1])

    def task_and_instance_to_complete(self, task_id: str, *, recent: bool = True) -> tuple[Task, Instance, bool] | None:
        """As :meth:`Backend.task_and_instance_to_complete` (always read, never a copy), in one call."""
        with self._guard:
            task = self._tasks.get(task_id)
            if task is None:
                return None
            return _clone_task(task), thaw_instance(self._instances[task.instance_id]), False

    def instance_tasks(self, instance_id: str) -> list[Task]:
        with self._guard:
            if instance_id not in self._instances:
                raise InstanceNotFound(f"process instance '{instance_id}' does not exist")
            tasks = list(map(self._tasks.__getitem__, self._instance_tasks.get(instance_id, ())))
            if len(tasks) > 1:
                tasks.sort(key=lambda t: (t.create_time, t.id))
            return list(map(_clone_task, tasks))

    def apply_steps(self, steps: list[Step]) -> None:
        """As :meth:`Backend.apply_steps`. The steps' new tasks and history entries become the
        store's: they were built for this write, so they are not copied, and the caller must not
        change them afterwards (what is read back is always a copy). The instance is stored
        with its state marshalled."""
        with self._guard:
            revs: dict[str, int] = {}  # what earlier steps of this call will have written
            if steps:
                check_one_partition(steps, self.partition)
            for step in steps:
                self._check_step(step, revs)
            for step in steps:
                self._write_step(step)

    def instances(self, instance_ids: Iterable[str]) -> list[Instance | None]:
        with self._guard:
            return [thaw_instance(found) if (found := self._instances.get(i)) else None for i in instance_ids]

    def claim(
        self, task_id: str, user: str, candidates: Principals | None, *, audit: dict[str, Any] | None = None
    ) -> Task:
        with self._guard:
            return self._claim(task_id, user, candidates, audit)

    def _claim(self, task_id: str, user: str, candidates: Principals | None, audit: dict[str, Any] | None) -> Task:
        """:meth:`claim`, the lock held."""
        task = self._require_active(task_id)
        if task.assignee == user:
            return _clone_task(task)
        if task.assignee is not None:
            raise TaskAlreadyClaimed(f"task '{task_id}' is already claimed by another user")
        if candidates is not None and task.has_candidates and not candidates.is_candidate_for(task):
            raise NotCandidate(f"user '{user}' is not a candidate for task '{task_id}'")
        self._set_assignee(task, user)
        self._audit(audit, task)
        return _clone_task(task)

    def claim_as_stored(self, task_id: str, user: str, *, audit: dict[str, Any] | None = None) -> Task:
        """:meth:`claim`, the user's identity read under the same lock."""
        with self._guard:
            task = self._tasks.get(task_id)
            if task is not None and not (task.candidate_users or task.candidate_groups or task.candidate_roles):
                # (not task.has_candidates): nobody's groups or roles to check
                return self._claim(task_id, user, None, audit)
            identity = self._identities.get(user) or Identity(user)
            return self._claim(task_id, user, identity.principals(), audit)

    def unclaim(self, task_id: str, user: str | None, *, audit: dict[str, Any] | None = None) -> Task:
        with self._guard:
            task = self._require_active(task_id)
            if task.assignee is None:
                raise Conflict(f"task '{task_id}' is not claimed", code="TASK_NOT_CLAIMED")
            if user is not None and task.assignee != user:
                raise TaskAlreadyClaimed(f"task '{task_id}' is claimed by another user")
            self._set_assignee(task, None)
            self._audit(audit, task)
            return _clone(task)

    def assign(self, task_id: str, users: list[str], *, audit: dict[str, Any] | None = None) -> Task:
        with self._guard:
            task = self._require_active(task_id)
            self._assign(task, users, audit)
            return _clone(task)

    def assign_instance(self, instance_id: str, user: str, *, audit: dict[str, Any] | None = None) -> list[str]:
        with self._guard:
            if instance_id not in self._instances:
                raise InstanceNotFound(f"process instance '{instance_id}' does not exist")
            tasks = sorted(
                (self._tasks[t] for t in self._instance_tasks.get(instance_id, ())),
                key=lambda t: (t.create_time, t.id),
            )
            for task in tasks:
                self._assign(task, [user], audit)
            return [t.id for t in tasks]

    def history(self, instance_id: str) -> list[dict[str, Any]]:
        with self._guard:
            if instance_id not in self._instances:
                raise InstanceNotFound(f"process instance '{instance_id}' does not exist")
            history = self._history.get(instance_id, [])
            return thaw(history) if type(history) is bytes else _clone(history)

    def query_tasks(self, query: TaskQuery) -> tuple[list[Task], int]:
        with self._guard:
            ids: set[str] = set()
            if query.instance_id is not None:  # the instance's own list: a few tasks
                ids |= self._instance_tasks.get(query.instance_id, set())
            elif not query.names_principals:  # a process key alone: this store keeps no index of it
                ids |= {t.id for t in self._tasks.values() if t.active}
            else:
                for user in () if query.unassigned else query.assignees:
                    ids |= self._by_assignee.get(user, set())
                for index, names in (
                    (self._by_user, query.candidates.users),
                    (self._by_group, query.candidates.groups),
                    (self._by_role, query.candidates.roles),
                ):
                    for name in names:
                        ids |= index.get(name, set())
            matched = [
                t
                for t in (self._tasks[i] for i in ids)
                if query.matches(t)
                and (query.business_key is None or self._instances[t.instance_id][BUSINESS_KEY] == query.business_key)
            ]
            page, total = query.page(matched)
            return [_clone(t) for t in page], total

    def list_instances(self, query: InstanceQuery) -> tuple[list[Instance], int]:
        """Filters every stored instance: the memory backend is for one process and tests."""
        with self._guard:
            matched = matching(query, self._instances.values())
            return [thaw_instance(s) for s in matched[query.start : query.start + query.size]], len(matched)

    # -- Idempotency-Key records ------------------------------------------------------
    # A request can only vanish without finishing or releasing its record together with
    # the process, which takes every record with it: the lock never runs out here, and a
    # "retry" only follows a release (a 5xx). Writes keep no commit markers.

    def idempotency_begin(
        self, key: str, fingerprint: str, lock_ms: int, ttl_ms: int | None = None
    ) -> tuple[str, dict[str, Any] | None]:
        with self._guard:
            record = self._idempotency_record(key)
            keep = _now() + max(lock_ms, ttl_ms or 0, 1)
            answer = "new"
            if record is not None and not (record["state"] == "released" and record["fingerprint"] != fingerprint):
                if record["fingerprint"] != fingerprint:
                    return "reused", None
                if record["state"] == "running":
                    return "running", None
                if record["state"] == "done":
                    return "done", {"status": record["status"], "body": record["body"]}
                answer = "retry"
            self._idempotency[key] = {"state": "running", "fingerprint": fingerprint, "until": keep}
            return answer, None

    def idempotency_finish(self, key: str, fingerprint: str, status: int, body: str, ttl_ms: int) -> None:
        with self._guard:
            record = self._idempotency_record(key)
            if record and record["fingerprint"] == fingerprint and record["state"] == "running":
                record.update(state="done", status=status, body=body, until=_now() + ttl_ms)

    def idempotency_release(self, key: str, fingerprint: str) -> None:
        with self._guard:
            record = self._idempotency_record(key)
            if record and record["fingerprint"] == fingerprint and record["state"] == "running":
                record["state"] = "released"

    def _idempotency_record(self, key: str) -> dict[str, Any] | None:
        record = self._idempotency.get(key)
        if record is not None and record["until"] <= _now():
            del self._idempotency[key]
            return None
        return record

    # -- identity store ---------------------------------------------------------------

    def identity(self, user: str) -> Identity:
        with self._guard:
            return self._identities.get(user, Identity(user))

    def identities(self, users: Iterable[str]) -> list[Identity]:
        with self._guard:
            return [self.identity(u) for u in users]

    def set_identity(self, identity: Identity) -> None:
        with self._guard:
            self._identities[identity.user] = identity

    # -- helpers (lock held) ----------------------------------------------------------

    def _check_step(self, step: Step, revs: dict[str, int]) -> None:
        """Raise the error :meth:`apply_steps` names for ``step``; write nothing."""
        instance_id = step.instance.id
        current = self._instances.get(instance_id)
        rev = revs.get(instance_id, current[REV] if current else None)
        if step.new:
            if step.instance.rev != 1:
                raise ValueError(f"a new process instance starts at rev 1, not {step.instance.rev}")
            if rev is not None:
                raise Conflict(f"process instance '{instance_id}' already exists", code="INSTANCE_EXISTS")
        elif rev is None:
            raise InstanceNotFound(f"process instance '{instance_id}' does not exist")
        elif rev != step.instance.rev - 1:
            raise ConcurrentModification(f"process instance '{instance_id}' changed meanwhile")
        revs[instance_id] = step.instance.rev
        if step.subscribed or step.unsubscribed:
            for sub in (*step.subscribed, *step.unsubscribed):
                check_subscription(sub)
        if step.complete_task:
            task = self._require_active(step.complete_task)
            if task.assignee is not None and task.assignee != step.completed_by:
                raise TaskAlreadyClaimed(f"task '{task.id}' is claimed by another user")
        if step.complete_external:
            self._require_lock(step.complete_external, step.external_worker)

    def _write_step(self, step: Step) -> None:
        """The writes of one checked step (see the Redis script apply_steps.lua)."""
        if step.complete_task:
            self._close(step.complete_task, COMPLETED, step.now, step.completed_by)
        for task_id in step.cancelled:
            if task_id in self._tasks and self._tasks[task_id].active:
                self._close(task_id, CANCELLED, step.now, None)
        for task in step.created:
            self._put_task(task)
        if step.complete_external:
            self._close_external(step.complete_external, COMPLETED, step.now)
        for ext in step.externals:
            self._put_external(_clone(ext))
        for ext_id in step.externals_cancelled:  # after the new ones: a task made and cancelled in one step ends closed
            if ext_id in self._externals and self._externals[ext_id].active:
                self._close_external(ext_id, CANCELLED, step.now)
        for sub in step.subscribed:  # before unsubscribed, which wins for an entry in both
            self._index_subscription(sub, add=True)
        for sub in step.unsubscribed:
            self._index_subscription(sub, add=False)
        instance = step.instance
        previous = self._instances.get(instance.id)
        was_truncated = bool(previous and previous[TRUNCATED])
        self._instances[instance.id] = freeze_instance(instance, instance.history_truncated or was_truncated)
        self._append_history(instance.id, step.history)
        if instance.ended:
            self._settle(instance.id)
            if not (previous and previous[ENDED]) and self.retention_ms is not None:
                heapq.heappush(self._expiring, (time.time() * 1000 + self.retention_ms, instance.id))

    def _append_history(self, instance_id: str, entries: list[dict[str, Any]]) -> None:
        history = self._history.get(instance_id)
        if type(history) is not list:  # none yet, or settled (see _settle)
            history = self._history[instance_id] = thaw(history) if type(history) is bytes else []
        if self.history_limit is None or len(history) + len(entries) <= self.history_limit:
            history.extend(entries)  # within the limit: nothing to drop
            return
        if append_capped(history, entries, self.history_limit) and instance_id in self._instances:
            self._instances[instance_id] = truncated(self._instances[instance_id])

    def _settle(self, instance_id: str) -> None:
        """An ended instance keeps its records in forms the garbage collector does not walk: its
        history marshalled, its record ids as a tuple (of strings: untracked), its closed tasks'
        empty name lists as one shared list. Ended instances stay for their retention; fewer kept
        containers make the full collections, which walk every kept object, come less often."""
        if type(history := self._history.get(instance_id)) is list:
            self._history[instance_id] = freeze(history)  # as the state is stored (bpm.copying.freeze)
        records = self._records.get(instance_id)
        if type(records) is set:
            self._records[instance_id] = tuple(records)
            for record_id in records:
                task = self._tasks.get(record_id)
                if task is not None and task.status != ACTIVE:  # (not task.active)
                    _share_empty_lists(task)

    def _forget(self, instance_id: str) -> None:
        """Remove an expired instance and everything of it."""
        for record_id in self._records.pop(instance_id, set()):
            task = self._tasks.pop(record_id, None)
            if task is not None and task.active:
                self._index(task, add=False)
            ext = self._externals.pop(record_id, None)
            if ext is not None:
                ext.status = CANCELLED
                self._sync_external(ext)
        for store in (self._instances, self._history, self._instance_tasks, self._instance_externals):
            store.pop(instance_id, None)

    def _require_active(self, task_id: str) -> Task:
        task = self._tasks.get(task_id)
        if task is None:
            raise TaskNotFound(f"task '{task_id}' does not exist")
        if task.status != ACTIVE:
            raise TaskNotActive(f"task '{task_id}' is {task.status}")
        return task

    def _candidate_indexes(self, task: Task) -> tuple[tuple[dict[str, set[str]], list[str]], ...]:
        if not (task.candidate_users or task.candidate_groups or task.candidate_roles):
            return ()
        return (
            (self._by_user, task.candidate_users),
            (self._by_group, task.candidate_groups),
            (self._by_role, task.candidate_roles),
        )

    def _record(self, instance_id: str, record_id: str) -> None:
        records = self._records.get(instance_id)
        if type(records) is not set:  # none yet, or settled
            records = self._records[instance_id] = set(records or ())
        records.add(record_id)

    def _put_task(self, task: Task) -> None:
        self._tasks[task.id] = task
        self._record(task.instance_id, task.id)
        if task.status == ACTIVE:  # (task.active)
            self._index(task, add=True)

    def _index(self, task: Task, *, add: bool) -> None:
        task_id = task.id
        candidates = task.candidate_users or task.candidate_groups or task.candidate_roles
        if add:
            self._instance_tasks[task.instance_id].add(task_id)
            if candidates:
                for index, names in self._candidate_indexes(task):
                    for name in names:
                        index[name].add(task_id)
            if task.assignee is not None:
                self._by_assignee[task.assignee].add(task_id)
            return
        _unindex(self._instance_tasks, task.instance_id, task_id)
        if candidates:
            for index, names in self._candidate_indexes(task):
                for name in names:
                    _unindex(index, name, task_id)
        if task.assignee is not None:
            _unindex(self._by_assignee, task.assignee, task_id)

    def _close(self, task_id: str, status: str, now: int, user: str | None) -> None:
        task = self._tasks[task_id]
        self._index(task, add=False)
        task.status = status
        task.end_time = now
        if status == COMPLETED:
            task.completed_by = user
            if task.assignee is None:
                task.assignee = user

    def _set_assignee(self, task: Task, user: str | None) -> None:
        """Only the assignee index changes (the instance's and the candidates' stay as they are)."""
        if task.assignee is not None:
            _unindex(self._by_assignee, task.assignee, task.id)
        task.assignee = user
        if user is not None:
            self._by_assignee[user].add(task.id)

    def _assign(self, task: Task, users: list[str], audit: dict[str, Any] | None) -> None:
        previous = task.assignee
        if len(users) == 1 and previous == users[0]:
            return
        self._index(task, add=False)
        if len(users) == 1:
            if previous is not None:
                task.owner = previous
            task.assignee = users[0]
        else:
            task.candidate_users = list(dict.fromkeys(users))
            task.assignee = None
        self._index(task, add=True)
        self._audit(audit, task, previous, assigned=True)

    def _audit(
        self, audit: dict[str, Any] | None, task: Task, previous: str | None = None, *, assigned: bool = False
    ) -> None:
        if audit is not None:
            # task_audit_entry makes a new entry; only values that are containers need copies
            plain = SCALARS.issuperset(map(type, audit.values()))
            entry = task_audit_entry(audit if plain else _clone(audit), task, previous, assigned=assigned)
            self._append_history(task.instance_id, [entry])
