"""In-memory backend for tests and a zero-setup local run.

One lock around each operation gives it the same atomicity as the Redis
backend; records are copied in and out so callers never share mutable state
with the store. Indexes mirror the Redis sets, so queries cost the size of
their result, not the number of tasks stored.
"""

from __future__ import annotations

import copy
import itertools
import threading
import uuid
from collections import defaultdict
from collections.abc import Iterable

from backends.base import (
    ACTIVE,
    CANCELLED,
    COMPLETED,
    Backend,
    Definition,
    Identity,
    Instance,
    Principals,
    Step,
    Task,
    TaskQuery,
)
from bpm.errors import (
    ConcurrentModification,
    Conflict,
    InstanceNotFound,
    NotCandidate,
    TaskAlreadyClaimed,
    TaskNotActive,
    TaskNotFound,
)


class MemoryBackend(Backend):
    schemes = ("memory",)

    def __init__(self, url: str = "memory://") -> None:
        self.url = url
        self._lock = threading.RLock()
        self._counter = itertools.count(1)
        self.clear()

    # -- ids and health ---------------------------------------------------------------

    def new_id(self) -> str:
        with self._lock:
            return f"{next(self._counter)}-{uuid.uuid4()}"

    def ping(self) -> None:
        return None

    def clear(self) -> None:
        with self._lock:
            self._definitions: dict[str, list[Definition]] = {}
            self._generation = 0
            self._instances: dict[str, Instance] = {}
            self._tasks: dict[str, Task] = {}
            self._instance_tasks: dict[str, set[str]] = defaultdict(set)
            self._by_assignee: dict[str, set[str]] = defaultdict(set)
            self._by_user: dict[str, set[str]] = defaultdict(set)
            self._by_group: dict[str, set[str]] = defaultdict(set)
            self._by_role: dict[str, set[str]] = defaultdict(set)
            self._identities: dict[str, Identity] = {}

    # -- definitions ------------------------------------------------------------------

    def deploy(self, definition: Definition) -> tuple[Definition, bool]:
        with self._lock:
            versions = self._definitions.setdefault(definition.key, [])
            if versions and versions[-1].content_hash == definition.content_hash:
                return copy.deepcopy(versions[-1]), False
            stored = copy.deepcopy(definition)
            stored.version = len(versions) + 1
            versions.append(stored)
            return copy.deepcopy(stored), True

    def definitions(self) -> list[Definition]:
        with self._lock:
            return [copy.deepcopy(d) for versions in self._definitions.values() for d in versions]

    def definition(self, key: str, version: int) -> Definition | None:
        with self._lock:
            versions = self._definitions.get(key, [])
            return copy.deepcopy(versions[version - 1]) if 0 < version <= len(versions) else None

    def cache_generation(self) -> int:
        return self._generation

    def bump_cache_generation(self) -> int:
        with self._lock:
            self._generation += 1
            return self._generation

    # -- instances and tasks ----------------------------------------------------------

    def create_instance(self, instance: Instance, tasks: list[Task]) -> None:
        with self._lock:
            self._instances[instance.id] = copy.deepcopy(instance)
            for task in tasks:
                self._put_task(copy.deepcopy(task))

    def instance(self, instance_id: str) -> Instance | None:
        with self._lock:
            found = self._instances.get(instance_id)
            return copy.deepcopy(found) if found else None

    def task(self, task_id: str) -> Task | None:
        with self._lock:
            found = self._tasks.get(task_id)
            return copy.deepcopy(found) if found else None

    def task_and_instance(self, task_id: str) -> tuple[Task, Instance] | None:
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None:
                return None
            return copy.deepcopy(task), copy.deepcopy(self._instances[task.instance_id])

    def instance_tasks(self, instance_id: str) -> list[Task]:
        with self._lock:
            if instance_id not in self._instances:
                raise InstanceNotFound(f"process instance '{instance_id}' does not exist")
            tasks = [self._tasks[t] for t in self._instance_tasks.get(instance_id, ())]
            return [copy.deepcopy(t) for t in sorted(tasks, key=lambda t: (t.create_time, t.id))]

    def apply_step(self, step: Step) -> None:
        with self._lock:
            current = self._instances.get(step.instance.id)
            if current is None:
                raise InstanceNotFound(f"process instance '{step.instance.id}' does not exist")
            if current.rev != step.instance.rev - 1:
                raise ConcurrentModification(f"process instance '{step.instance.id}' changed meanwhile")
            if step.complete_task:
                task = self._require_active(step.complete_task)
                if task.assignee is not None and task.assignee != step.completed_by:
                    raise TaskAlreadyClaimed(f"task '{task.id}' is claimed by another user")
                self._close(task.id, COMPLETED, step.now, step.completed_by)
            for task_id in step.cancelled:
                if task_id in self._tasks and self._tasks[task_id].active:
                    self._close(task_id, CANCELLED, step.now, None)
            for task in step.created:
                self._put_task(copy.deepcopy(task))
            self._instances[step.instance.id] = copy.deepcopy(step.instance)

    def claim(self, task_id: str, user: str, candidates: Principals | None) -> Task:
        with self._lock:
            task = self._require_active(task_id)
            if task.assignee == user:
                return copy.deepcopy(task)
            if task.assignee is not None:
                raise TaskAlreadyClaimed(f"task '{task_id}' is already claimed by another user")
            if candidates is not None and task.has_candidates and not candidates.is_candidate_for(task):
                raise NotCandidate(f"user '{user}' is not a candidate for task '{task_id}'")
            self._set_assignee(task, user)
            return copy.deepcopy(task)

    def unclaim(self, task_id: str, user: str | None) -> Task:
        with self._lock:
            task = self._require_active(task_id)
            if task.assignee is None:
                raise Conflict(f"task '{task_id}' is not claimed", code="TASK_NOT_CLAIMED")
            if user is not None and task.assignee != user:
                raise TaskAlreadyClaimed(f"task '{task_id}' is claimed by another user")
            self._set_assignee(task, None)
            return copy.deepcopy(task)

    def assign(self, task_id: str, users: list[str]) -> Task:
        with self._lock:
            task = self._require_active(task_id)
            self._assign(task, users)
            return copy.deepcopy(task)

    def assign_instance(self, instance_id: str, user: str) -> list[str]:
        with self._lock:
            if instance_id not in self._instances:
                raise InstanceNotFound(f"process instance '{instance_id}' does not exist")
            tasks = sorted(
                (self._tasks[t] for t in self._instance_tasks.get(instance_id, ())),
                key=lambda t: (t.create_time, t.id),
            )
            for task in tasks:
                self._assign(task, [user])
            return [t.id for t in tasks]

    def query_tasks(self, query: TaskQuery) -> tuple[list[Task], int]:
        with self._lock:
            ids: set[str] = set()
            for user in query.assignees:
                ids |= self._by_assignee.get(user, set())
            for index, names in (
                (self._by_user, query.candidates.users),
                (self._by_group, query.candidates.groups),
                (self._by_role, query.candidates.roles),
            ):
                for name in names:
                    ids |= index.get(name, set())
            matched = [t for t in (self._tasks[i] for i in ids) if query.matches(t)]
            page, total = query.page(matched)
            return [copy.deepcopy(t) for t in page], total

    # -- identity store ---------------------------------------------------------------

    def identity(self, user: str) -> Identity:
        with self._lock:
            return self._identities.get(user, Identity(user))

    def identities(self, users: Iterable[str]) -> list[Identity]:
        with self._lock:
            return [self.identity(u) for u in users]

    def set_identity(self, identity: Identity) -> None:
        with self._lock:
            self._identities[identity.user] = identity

    # -- helpers (lock held) ----------------------------------------------------------

    def _require_active(self, task_id: str) -> Task:
        task = self._tasks.get(task_id)
        if task is None:
            raise TaskNotFound(f"task '{task_id}' does not exist")
        if task.status != ACTIVE:
            raise TaskNotActive(f"task '{task_id}' is {task.status}")
        return task

    def _candidate_indexes(self, task: Task) -> list[tuple[dict[str, set[str]], list[str]]]:
        return [
            (self._by_user, task.candidate_users),
            (self._by_group, task.candidate_groups),
            (self._by_role, task.candidate_roles),
        ]

    def _put_task(self, task: Task) -> None:
        self._tasks[task.id] = task
        if task.active:
            self._index(task, add=True)

    def _index(self, task: Task, *, add: bool) -> None:
        entries = [(self._instance_tasks, [task.instance_id])]
        entries += self._candidate_indexes(task)
        if task.assignee is not None:
            entries.append((self._by_assignee, [task.assignee]))
        for index, names in entries:
            for name in names:
                if add:
                    index[name].add(task.id)
                else:
                    index.get(name, set()).discard(task.id)

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
        self._index(task, add=False)
        task.assignee = user
        self._index(task, add=True)

    def _assign(self, task: Task, users: list[str]) -> None:
        self._index(task, add=False)
        if len(users) == 1:
            if task.assignee is not None and task.assignee != users[0]:
                task.owner = task.assignee
            task.assignee = users[0]
        else:
            task.candidate_users = list(dict.fromkeys(users))
            task.assignee = None
        self._index(task, add=True)
