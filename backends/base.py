"""The abstract storage contract every backend honours, and the records it stores.

Each method documents what it returns, which domain error it raises and what
is atomic. The memory and Redis backends implement exactly this; the use cases
in :mod:`bpm.runtime` rely on nothing else.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

ACTIVE = "active"
COMPLETED = "completed"
CANCELLED = "cancelled"


@dataclass(slots=True)
class Task:
    """A user task as stored: the 15 fields of the original API, ours, and bookkeeping."""

    id: str
    name: str
    instance_id: str
    definition_id: str
    process_name: str
    create_time: int
    task_definition_key: str
    description: str = ""
    create_by: str = ""
    due_date: int | None = None
    priority: int = 50
    assignee: str | None = None
    owner: str | None = None
    parent_task_id: str | None = None
    loadlink_entity_id: str = ""
    loadlink_param: str = "="
    candidate_users: list[str] = field(default_factory=list)
    candidate_groups: list[str] = field(default_factory=list)
    candidate_roles: list[str] = field(default_factory=list)
    form_key: str | None = None
    status: str = ACTIVE
    end_time: int | None = None
    completed_by: str | None = None
    variables: dict[str, Any] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.status == ACTIVE

    @property
    def has_candidates(self) -> bool:
        return bool(self.candidate_users or self.candidate_groups or self.candidate_roles)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Task:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(slots=True)
class Instance:
    """A process instance: which definition, who started it, and the engine state."""

    id: str
    definition_id: str
    process_key: str
    process_name: str
    state: dict[str, Any]
    create_time: int
    create_by: str = ""
    app_name: str = ""
    ended: bool = False
    end_time: int | None = None
    rev: int = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Instance:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(slots=True)
class Definition:
    """One deployed version of one process (BPMN key) with the XML it came from."""

    key: str
    version: int
    name: str
    xml: str
    content_hash: str
    deploy_time: int
    file: str = ""
    app_name: str = ""
    version_tag: str | None = None

    @property
    def definition_id(self) -> str:
        return f"{self.key}:{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Definition:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True, slots=True)
class Identity:
    """The groups and roles the identity store knows for one user."""

    user: str
    groups: frozenset[str] = frozenset()
    roles: frozenset[str] = frozenset()

    def principals(self) -> Principals:
        return Principals(frozenset({self.user}), self.groups, self.roles)


@dataclass(frozen=True, slots=True)
class Principals:
    """Who someone is for candidate checks: user names, groups and roles."""

    users: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    roles: frozenset[str] = frozenset()

    def is_candidate_for(self, task: Task) -> bool:
        return bool(
            self.users.intersection(task.candidate_users)
            or self.groups.intersection(task.candidate_groups)
            or self.roles.intersection(task.candidate_roles)
        )


SORT_FIELDS = ("priority", "createTime", "dueDate")


@dataclass(frozen=True, slots=True)
class TaskQuery:
    """Open tasks assigned to any of ``assignees``, or naming any of the candidates.

    Candidate matches are limited to unassigned tasks unless ``include_assigned``.
    Sorted by ``sort`` (``priority`` desc by default, else asc) then createTime asc
    then id, so paging is stable.
    """

    assignees: frozenset[str] = frozenset()
    candidates: Principals = Principals()
    include_assigned: bool = False
    sort: str = "priority"
    order: str | None = None
    start: int = 0
    size: int = 100

    def matches(self, task: Task) -> bool:
        if not task.active:
            return False
        if task.assignee is not None and task.assignee in self.assignees:
            return True
        if task.assignee is not None and not self.include_assigned:
            return False
        return self.candidates.is_candidate_for(task)

    def sort_key(self, task: Task) -> tuple[Any, ...]:
        descending = (self.order or ("desc" if self.sort == "priority" else "asc")) == "desc"
        if self.sort == "dueDate":
            primary: Any = task.due_date if task.due_date is not None else 2**62
        elif self.sort == "createTime":
            primary = task.create_time
        else:
            primary = task.priority
        return (-primary if descending else primary, task.create_time, task.id)

    def page(self, tasks: Iterable[Task]) -> tuple[list[Task], int]:
        """Sort and cut ``tasks`` (already matched) into this query's page; also the total."""
        ordered = sorted(tasks, key=self.sort_key)
        return ordered[self.start : self.start + self.size], len(ordered)


@dataclass(slots=True)
class Step:
    """All writes of one engine step, applied at once by :meth:`Backend.apply_step`.

    ``instance`` carries the new state with ``rev`` already incremented; the write
    succeeds only while the stored revision is ``instance.rev - 1``. If
    ``complete_task`` is set, that task must still be active and unassigned or held
    by ``completed_by``; it is closed as completed.
    """

    instance: Instance
    created: list[Task] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    complete_task: str | None = None
    completed_by: str | None = None
    now: int = 0


class Backend(abc.ABC):
    """Storage for definitions, instances, tasks, identities and cache generations."""

    #: the URL scheme(s) that select this backend
    schemes: tuple[str, ...] = ()

    # -- ids and health ---------------------------------------------------------------

    @abc.abstractmethod
    def new_id(self) -> str:
        """A new id, unique across every worker and host sharing this store."""

    @abc.abstractmethod
    def ping(self) -> None:
        """Return when the store answers; raise BackendUnavailable otherwise."""

    @abc.abstractmethod
    def clear(self) -> None:
        """Delete everything this backend stores (tests and tools only)."""

    # -- definitions ------------------------------------------------------------------

    @abc.abstractmethod
    def deploy(self, definition: Definition) -> tuple[Definition, bool]:
        """Store a new version of ``definition.key`` unless the latest has the same hash.

        Atomic: concurrent deployments of one key never get the same version.
        ``definition.version`` is ignored. Returns (the stored definition, created?).
        """

    @abc.abstractmethod
    def definitions(self) -> list[Definition]:
        """Every deployed version of every process (for the parsed-definition cache)."""

    @abc.abstractmethod
    def definition(self, key: str, version: int) -> Definition | None:
        """One deployed version, or None."""

    @abc.abstractmethod
    def cache_generation(self) -> int:
        """The current generation of the parsed-definition cache (0 at first)."""

    @abc.abstractmethod
    def bump_cache_generation(self) -> int:
        """Invalidate every worker's parsed-definition cache; return the new generation."""

    # -- instances and tasks ----------------------------------------------------------

    @abc.abstractmethod
    def create_instance(self, instance: Instance, tasks: list[Task]) -> None:
        """Store a new instance and its first tasks, all or nothing."""

    @abc.abstractmethod
    def instance(self, instance_id: str) -> Instance | None:
        """The instance, or None."""

    @abc.abstractmethod
    def task(self, task_id: str) -> Task | None:
        """The task (active or closed), or None."""

    @abc.abstractmethod
    def task_and_instance(self, task_id: str) -> tuple[Task, Instance] | None:
        """The task and its instance in one read, or None when the task is unknown."""

    @abc.abstractmethod
    def instance_tasks(self, instance_id: str) -> list[Task]:
        """The instance's active tasks, oldest first. Raises InstanceNotFound."""

    @abc.abstractmethod
    def apply_step(self, step: Step) -> None:
        """Write one engine step atomically: instance, new tasks, closed tasks, indexes.

        Raises ConcurrentModification when the instance revision moved (the caller
        re-reads and retries), InstanceNotFound, and for ``step.complete_task``:
        TaskNotFound, TaskNotActive, or TaskAlreadyClaimed when someone else holds it.
        On any error nothing is written.
        """

    @abc.abstractmethod
    def claim(self, task_id: str, user: str, candidates: Principals | None) -> Task:
        """Make ``user`` the assignee of an active, unassigned task, atomically.

        Idempotent for the current assignee. When ``candidates`` is given and the task
        names candidates, ``candidates`` must match one (else NotCandidate). Raises
        TaskNotFound, TaskNotActive, TaskAlreadyClaimed. Returns the updated task.
        """

    @abc.abstractmethod
    def unclaim(self, task_id: str, user: str | None) -> Task:
        """Clear the assignee, atomically. When ``user`` is given it must be the assignee
        (else TaskAlreadyClaimed, or Conflict TASK_NOT_CLAIMED when nobody holds it).
        Raises TaskNotFound, TaskNotActive."""

    @abc.abstractmethod
    def assign(self, task_id: str, users: list[str]) -> Task:
        """One user: becomes assignee, the previous assignee becomes owner. Several:
        they replace the candidate users and the assignee is cleared. Atomic.
        Raises TaskNotFound, TaskNotActive."""

    @abc.abstractmethod
    def assign_instance(self, instance_id: str, user: str) -> list[str]:
        """Assign every active task of the instance to ``user`` (as :meth:`assign` with
        one user), atomically; return their ids. Raises InstanceNotFound."""

    @abc.abstractmethod
    def query_tasks(self, query: TaskQuery) -> tuple[list[Task], int]:
        """One page of the open tasks matching ``query``, and the number of all matches.

        Reads only the index sets the query names, never every task."""

    # -- identity store ---------------------------------------------------------------

    @abc.abstractmethod
    def identity(self, user: str) -> Identity:
        """The user's groups and roles (empty when unknown)."""

    @abc.abstractmethod
    def identities(self, users: Iterable[str]) -> list[Identity]:
        """Several users' identities in one read."""

    @abc.abstractmethod
    def set_identity(self, identity: Identity) -> None:
        """Replace the user's groups and roles."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections (optional)."""
