"""The records the runtime reads and writes: tasks, instances, external tasks, definitions,
identities, queries and steps. Plain data with no storage in them: the storage contract
(:mod:`backends.base`) stores exactly these, and the API serialises them.
"""

from __future__ import annotations

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
    #: only unassigned tasks (the assignees' own lists are not read)
    unassigned: bool = False
    #: filters narrowing the union above (None: no filter); ``business_key`` is the
    #: instance's, so backends check it against the task's instance
    process_key: str | None = None
    business_key: str | None = None
    task_definition_key: str | None = None
    instance_id: str | None = None

    @property
    def names_principals(self) -> bool:
        """Whether the query names a to-do list or a queue (else: only ``instance_id``)."""
        c = self.candidates
        return bool(self.assignees or c.users or c.groups or c.roles)

    @property
    def only_process_key(self) -> bool:
        """A process key and nothing to narrow it by: its own queues answer the query."""
        return (
            not self.names_principals
            and self.process_key is not None
            and self.business_key is None
            and self.task_definition_key is None
            and self.instance_id is None
        )

    @property
    def filtered(self) -> bool:
        """Whether a filter narrows the queues' union (then Redis cannot page by ZRANGE alone)."""
        return any(
            f is not None for f in (self.process_key, self.business_key, self.task_definition_key, self.instance_id)
        )

    def matches(self, task: Task) -> bool:
        """Whether ``task`` is in the union and passes every filter except ``business_key``."""
        if not task.active or not self._passes_filters(task):
            return False
        if self.unassigned and task.assignee is not None:
            return False
        if not self.names_principals:
            return self.instance_id is not None or self.process_key is not None
        if task.assignee is not None and task.assignee in self.assignees:
            return True
        if task.assignee is not None and not self.include_assigned:
            return False
        return self.candidates.is_candidate_for(task)

    def _passes_filters(self, task: Task) -> bool:
        if self.instance_id is not None and task.instance_id != self.instance_id:
            return False
        if self.task_definition_key is not None and task.task_definition_key != self.task_definition_key:
            return False
        return self.process_key is None or task.definition_id.rsplit(":", 1)[0] == self.process_key

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


@dataclass(frozen=True, slots=True)
class InstanceQuery:
    """Instances, newest first (create time descending, then id), optionally narrowed to a
    process key, a business key and a state (``active`` or ``ended``; None: both)."""

    process_key: str | None = None
    business_key: str | None = None
    state: str | None = None
    start: int = 0
    size: int = 100

    def matches(self, instance: Instance) -> bool:
        return self.matches_fields(instance.process_key, instance.business_key, instance.ended)

    def matches_fields(self, process_key: str, business_key: str | None, ended: bool) -> bool:
        """:meth:`matches` on an instance's fields (for a store that keeps them without a record)."""
        if self.process_key is not None and process_key != self.process_key:
            return False
        if self.business_key is not None and business_key != self.business_key:
            return False
        return self.state is None or ended == (self.state == "ended")

    @staticmethod
    def sort_key(instance: Instance) -> tuple[int, str]:
        return (-instance.create_time, instance.id)


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
