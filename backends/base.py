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

from backends.partitions import id_scope as id_scope  # the use cases wrap each engine run in it
from backends.retention import DEFAULT_HISTORY_LIMIT, parse_history_limit, parse_retention

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
    business_key: str = ""
    parent_id: str | None = None
    #: element entries were dropped from the history (past the backend's history limit)
    history_truncated: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Instance:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(slots=True)
class ExternalTaskRecord:
    """Service work waiting for an external worker (Camunda's "external task").

    Fetchable when active, not an incident and not locked (or its lock expired):
    ``available_at`` is the time it may next be fetched (0 = now; a lock's expiry;
    a retry's back-off). ``incident`` is set when a failure left no retries.
    """

    id: str
    topic: str
    instance_id: str
    definition_id: str
    process_key: str
    element_id: str
    name: str
    kind: str
    create_time: int
    retries: int = 3
    priority: int = 0
    status: str = ACTIVE
    worker: str | None = None
    lock_expiry: int | None = None
    available_at: int = 0
    error_message: str | None = None
    error_details: str | None = None
    incident: bool = False
    business_key: str = ""
    variables: dict[str, Any] = field(default_factory=dict)
    end_time: int | None = None

    @property
    def active(self) -> bool:
        return self.status == ACTIVE

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExternalTaskRecord:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True, slots=True)
class SubscriptionIndex:
    """An index entry for an instance's wait: a timer (``due``), message or signal (``name``)."""

    instance_id: str
    sub_id: str
    kind: str
    name: str | None = None
    due: int | None = None

    @property
    def member(self) -> str:
        """The member string in the timer/message/signal indexes: ``inst|<instance>|<sub>``."""
        return f"inst|{self.instance_id}|{self.sub_id}"


def parse_member(member: str) -> tuple[str, str]:
    """(instance id, subscription id) of a :attr:`SubscriptionIndex.member`."""
    instance_id, _, sub_id = member.removeprefix("inst|").rpartition("|")
    return instance_id, sub_id


def start_timer_member(definition_id: str, element_id: str) -> str:
    """The timer-index member of a timer start event: ``start|<definitionId>|<element>``."""
    return f"start|{definition_id}|{element_id}"


#: the kinds of :class:`SubscriptionIndex`: timers are scored by ``due``, the others named
SUBSCRIPTION_KINDS = ("timer", "message", "signal")


def check_subscription(sub: SubscriptionIndex) -> None:
    """Raise ValueError unless ``sub`` can be indexed: a known kind with its due or name."""
    if sub.kind not in SUBSCRIPTION_KINDS:
        raise ValueError(f"unknown subscription kind {sub.kind!r}")
    if (sub.due if sub.kind == "timer" else sub.name) is None:
        raise ValueError(f"a {sub.kind} subscription needs {'due' if sub.kind == 'timer' else 'a name'}")


def fetch_window(max_tasks: int) -> int:
    """How many of each topic's earliest-available tasks :meth:`Backend.fetch_and_lock` weighs."""
    return max(4 * max_tasks, 64)


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
    """All writes of one engine step, applied at once by :meth:`Backend.apply_steps`.

    ``instance`` carries the new state with ``rev`` already incremented; the write
    succeeds only while the stored revision is ``instance.rev - 1``. If
    ``complete_task`` is set, that task must still be active and unassigned or held
    by ``completed_by``; it is closed as completed. ``history`` holds the audit
    entries (JSON objects) appended to the instance's history with the step.
    """

    instance: Instance
    created: list[Task] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    complete_task: str | None = None
    completed_by: str | None = None
    now: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    # -- events and service work (see Backend.apply_steps) --
    new: bool = False
    externals: list[ExternalTaskRecord] = field(default_factory=list)
    externals_cancelled: list[str] = field(default_factory=list)
    complete_external: str | None = None
    external_worker: str | None = None
    subscribed: list[SubscriptionIndex] = field(default_factory=list)
    unsubscribed: list[SubscriptionIndex] = field(default_factory=list)


#: the keys a backend adds to an ``audit`` entry of claim/unclaim/assign/assign_instance
TASK_AUDIT_KEYS = ("taskId", "taskName", "elementId")
#: ... and, for assign and assign_instance, these as well
ASSIGN_AUDIT_KEYS = ("previousAssignee", "owner")


def task_audit_entry(
    audit: Mapping[str, Any], task: Task, previous_assignee: str | None = None, *, assigned: bool = False
) -> dict[str, Any]:
    """``audit`` completed with what only the backend knows at the moment of the write."""
    entry = {**audit, "taskId": task.id, "taskName": task.name, "elementId": task.task_definition_key}
    if assigned:
        entry.update(previousAssignee=previous_assignee, owner=task.owner)
    return entry


class Backend(abc.ABC):
    """Storage for definitions, instances, tasks, identities and cache generations."""

    #: the URL scheme(s) that select this backend
    schemes: tuple[str, ...] = ()
    #: ms an ended instance and everything of it are kept (None: forever); see configure
    retention_ms: int | None = parse_retention(None)
    #: history entries kept per instance (None: all); see configure
    history_limit: int | None = DEFAULT_HISTORY_LIMIT

    def configure(self, *, retention: str | int | None = None, history_limit: str | int | None = None) -> None:
        """Set retention (``BPM_RETENTION`` syntax, see :mod:`backends.retention`) and the
        history limit (``BPM_HISTORY_LIMIT``); None keeps the defaults. ValueError when bad.

        Retention: an instance ended by :meth:`apply_steps` is removed, with its tasks,
        external tasks and history, ``retention_ms`` after; its ids are then unknown.
        History limit: past it, appending drops the oldest element entry (audit entries
        stay) and sets the instance's ``history_truncated``."""
        self.retention_ms = parse_retention(retention)
        self.history_limit = parse_history_limit(history_limit)

    # -- ids and health ---------------------------------------------------------------

    @abc.abstractmethod
    def new_id(self, near: str | None = None) -> str:
        """A new id, unique across every worker and host sharing this store.

        The id carries its partition (:mod:`backends.partitions`): ``near``'s (an
        instance id: use it for the instance's tasks, external tasks and called
        children), else the innermost :func:`id_scope`'s, else a new instance's,
        spread round-robin. Every record of one :meth:`apply_steps` call must be in
        the partition of its instances (else ValueError, before any write)."""

    @abc.abstractmethod
    def ping(self) -> None:
        """Return when the store answers; raise BackendUnavailable otherwise."""

    def health_check(self) -> dict[str, Any]:
        """A real read of the global data and of every partition (not a PING): return a
        small report when all answer; raise BackendUnavailable otherwise."""
        self.ping()
        return {}

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

    # Audit entries (``audit=``): a JSON object the runtime built (``time``, ``type``,
    # ``user``, ``actor``...). When the call changes a task, the backend appends a copy
    # completed by :func:`task_audit_entry` (``taskId``, ``taskName``, ``elementId``;
    # assign and assign_instance also ``previousAssignee`` and ``owner``) to the
    # instance's history, in the same atomic operation as the change. A call that
    # changes nothing (a repeated claim, an assign to the current assignee) or fails
    # appends nothing.

    @abc.abstractmethod
    def claim(
        self, task_id: str, user: str, candidates: Principals | None, *, audit: dict[str, Any] | None = None
    ) -> Task:
        """Make ``user`` the assignee of an active, unassigned task, atomically.

        Idempotent for the current assignee. When ``candidates`` is given and the task
        names candidates, ``candidates`` must match one (else NotCandidate). Raises
        TaskNotFound, TaskNotActive, TaskAlreadyClaimed. Returns the updated task.
        """

    @abc.abstractmethod
    def unclaim(self, task_id: str, user: str | None, *, audit: dict[str, Any] | None = None) -> Task:
        """Clear the assignee, atomically. When ``user`` is given it must be the assignee
        (else TaskAlreadyClaimed, or Conflict TASK_NOT_CLAIMED when nobody holds it).
        Raises TaskNotFound, TaskNotActive."""

    @abc.abstractmethod
    def assign(self, task_id: str, users: list[str], *, audit: dict[str, Any] | None = None) -> Task:
        """One user: becomes assignee, the previous assignee becomes owner. Several:
        they replace the candidate users and the assignee is cleared. Atomic.
        Raises TaskNotFound, TaskNotActive."""

    @abc.abstractmethod
    def assign_instance(self, instance_id: str, user: str, *, audit: dict[str, Any] | None = None) -> list[str]:
        """Assign every active task of the instance to ``user`` (as :meth:`assign` with
        one user), atomically; return their ids. Raises InstanceNotFound. ``audit`` is
        appended once per task that changed."""

    @abc.abstractmethod
    def history(self, instance_id: str) -> list[dict[str, Any]]:
        """The instance's audit entries, oldest first. Raises InstanceNotFound."""

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

    # -- events, timers and service work (issue 4) -------------------------------------

    @abc.abstractmethod
    def apply_steps(self, steps: list[Step]) -> None:
        """Apply several steps (of several instances) atomically, all or nothing.

        Each step writes its instance, new tasks, closed tasks, indexes and ``history``
        entries (appended to the instance's history). Raises ConcurrentModification when
        an instance revision moved (the caller re-reads and retries), InstanceNotFound,
        and for ``step.complete_task``: TaskNotFound, TaskNotActive, or
        TaskAlreadyClaimed when someone else holds it. On any error nothing is written.
        Also: ``new`` steps create their instance
        (``rev`` 1; Conflict when the id exists); ``externals`` are stored and indexed by
        topic; ``externals_cancelled`` closed as cancelled; ``complete_external`` must be
        active and locked by ``external_worker`` (else ExternalTaskNotFound, TaskNotActive,
        or Conflict ``LOCK_LOST``) and is closed as completed; ``subscribed`` entries are
        added to (or, for timers, rescheduled in) the timer / message / signal indexes and
        ``unsubscribed`` ones removed. Used for call activities (parent and child in one
        write) and for every step once events exist.

        Within a step, new externals are stored before ``externals_cancelled`` is applied
        and ``subscribed`` before ``unsubscribed``, so an id in both ends closed/removed.
        Raises ValueError (before any write) for a ``new`` step whose ``rev`` is not 1 or
        a subscription :func:`check_subscription` rejects.
        """

    @abc.abstractmethod
    def instances(self, instance_ids: Iterable[str]) -> list[Instance | None]:
        """Several instances in one read (None for unknown ids), in the order asked."""

    @abc.abstractmethod
    def due_timers(self, now: int, limit: int = 100) -> list[tuple[str, int]]:
        """Up to ``limit`` (member, due) timer-index entries due at ``now``, earliest first."""

    @abc.abstractmethod
    def schedule_timer(self, member: str, due: int) -> None:
        """Add or move a timer-index entry (timer start events: :func:`start_timer_member`)."""

    @abc.abstractmethod
    def take_timer(self, member: str, due: int, next_due: int | None) -> bool:
        """Atomically claim a due entry: only while it is still at ``due``, move it to
        ``next_due`` (or remove it when None). True for exactly one of racing callers."""

    @abc.abstractmethod
    def remove_timer(self, member: str) -> None:
        """Remove a timer-index entry (stale entries, undeployed start timers)."""

    @abc.abstractmethod
    def subscriptions(self, kind: str, name: str) -> list[tuple[str, str]]:
        """(instance id, subscription id) of every wait for the message or signal ``name``,
        sorted. ``kind`` is ``message`` or ``signal`` (else ValueError)."""

    @abc.abstractmethod
    def external_task(self, external_id: str) -> ExternalTaskRecord | None:
        """One external task (active or closed), or None."""

    @abc.abstractmethod
    def instance_externals(self, instance_id: str) -> list[ExternalTaskRecord]:
        """The instance's active external tasks (incidents included), oldest first."""

    @abc.abstractmethod
    def fetch_and_lock(
        self, worker: str, topics: Mapping[str, int], max_tasks: int, now: int
    ) -> list[ExternalTaskRecord]:
        """Lock up to ``max_tasks`` fetchable external tasks of ``topics`` (topic -> lock
        duration in ms) for ``worker``, atomically: racing workers never get the same task.
        Highest priority first, then oldest, then id, among the first
        :func:`fetch_window` tasks of each topic by ``available_at``. Each gets ``worker``
        and ``lock_expiry = available_at = now + duration``: it is fetchable again when
        the lock expires. Returns them in that order."""

    @abc.abstractmethod
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
        """Record a failure by the lock owner: set ``retries`` and the error fields; above 0
        the lock is released and the task fetchable again at ``now + retry_timeout``; at 0
        or below it becomes an incident with 0 retries (not fetchable; worker and lock
        kept for the record). Raises ExternalTaskNotFound, TaskNotActive, Conflict
        ``LOCK_LOST`` (also when nobody holds the lock)."""

    @abc.abstractmethod
    def set_external_retries(self, external_id: str, retries: int, now: int) -> ExternalTaskRecord:
        """Set the retries (an operator resolving an incident): above 0 the incident and the
        lock are cleared and the task is fetchable at ``now``; at 0 or below it becomes an
        incident. Raises ExternalTaskNotFound, TaskNotActive."""

    @abc.abstractmethod
    def extend_external_lock(self, external_id: str, worker: str, duration: int, now: int) -> ExternalTaskRecord:
        """The lock owner extends its lock (and so ``available_at``) to ``now + duration``.
        Raises ExternalTaskNotFound, TaskNotActive, Conflict ``LOCK_LOST``."""

    @abc.abstractmethod
    def unlock_external(self, external_id: str) -> ExternalTaskRecord:
        """Release the lock: fetchable again at once (``available_at`` 0) unless an incident.
        Raises ExternalTaskNotFound, TaskNotActive."""

    # -- Idempotency-Key records (API.md, "Writes that may be retried") ------------------

    @abc.abstractmethod
    def idempotency_begin(self, key: str, fingerprint: str, lock_ms: int) -> tuple[str, dict[str, Any] | None]:
        """Reserve the record ``key`` for a request with ``fingerprint``, atomically:
        ``("new", None)`` when reserved (running, for ``lock_ms``), ``("running", None)``
        while another request holds it, ``("reused", None)`` when it was made for another
        fingerprint, ``("done", {"status": int, "body": str})`` with the stored answer."""

    @abc.abstractmethod
    def idempotency_finish(self, key: str, fingerprint: str, status: int, body: str, ttl_ms: int) -> None:
        """Store the answer of the request holding ``key`` for ``ttl_ms`` (no-op when not held)."""

    @abc.abstractmethod
    def idempotency_release(self, key: str, fingerprint: str) -> None:
        """Forget the running record (the outcome is unknown: a retry runs again)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections (optional)."""
