"""The abstract storage contract every backend honours (the records it stores are in :mod:`bpm.records`).

Each method documents what it returns, which domain error it raises and what
is atomic. The memory and Redis backends implement exactly this; the use cases
in :mod:`bpm.runtime` rely on nothing else.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping
from typing import Any

from backends.partitions import id_scope as id_scope  # the use cases wrap each engine run in it
from backends.retention import DEFAULT_HISTORY_LIMIT, parse_history_limit, parse_retention
from bpm.records import (  # the records live in the domain; re-exported for the backends
    ACTIVE as ACTIVE,
)
from bpm.records import (
    CANCELLED as CANCELLED,
)
from bpm.records import (
    COMPLETED as COMPLETED,
)
from bpm.records import (
    SORT_FIELDS as SORT_FIELDS,
)
from bpm.records import (
    SUBSCRIPTION_KINDS as SUBSCRIPTION_KINDS,
)
from bpm.records import (
    Definition as Definition,
)
from bpm.records import (
    ExternalTaskRecord as ExternalTaskRecord,
)
from bpm.records import (
    Identity as Identity,
)
from bpm.records import (
    Instance as Instance,
)
from bpm.records import (
    InstanceQuery as InstanceQuery,
)
from bpm.records import (
    Principals as Principals,
)
from bpm.records import (
    Step as Step,
)
from bpm.records import (
    SubscriptionIndex as SubscriptionIndex,
)
from bpm.records import (
    Task as Task,
)
from bpm.records import (
    TaskQuery as TaskQuery,
)
from bpm.records import (
    check_subscription as check_subscription,
)
from bpm.records import (
    fetch_window as fetch_window,
)
from bpm.records import (
    parse_member as parse_member,
)
from bpm.records import (
    start_timer_member as start_timer_member,
)

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

    def task_and_instance_to_complete(self, task_id: str, *, recent: bool = True) -> tuple[Task, Instance, bool] | None:
        """:meth:`task_and_instance` for a completion, and whether the pair came from copies the
        backend keeps (which may be out of date, so the completion's write must check them; only
        ``recent`` allows them). Here: always read, never a copy."""
        pair = self.task_and_instance(task_id)
        return None if pair is None else (*pair, False)

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

    def claim_as_stored(self, task_id: str, user: str, *, audit: dict[str, Any] | None = None) -> Task:
        """:meth:`claim` checking candidates against ``user`` and the user's groups and roles
        in the identity store. A backend may read the identity in the claim's own operation
        (one round trip, and atomic with it); by default it is read first."""
        return self.claim(task_id, user, self.identity(user).principals(), audit=audit)

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
    def list_instances(self, query: InstanceQuery) -> tuple[list[Instance], int]:
        """One page of the instances matching ``query`` (newest first), and the number of all
        matches. Ended instances past retention are not listed."""

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
    def idempotency_begin(
        self, key: str, fingerprint: str, lock_ms: int, ttl_ms: int | None = None
    ) -> tuple[str, dict[str, Any] | None]:
        """Reserve the record ``key`` for a request with ``fingerprint``, atomically:
        ``("new", None)`` when reserved (running, locked for ``lock_ms``; the record is
        kept ``ttl_ms``, at least the lock), ``("retry", None)`` when reserved again for
        the same fingerprint after an earlier run's lock ran out or it was released (that
        run's write may have committed: see :meth:`idempotency_committed`),
        ``("running", None)`` while another request holds the lock, ``("reused", None)``
        when it was made for another fingerprint, ``("done", {"status": int, "body": str})``
        with the stored answer."""

    @abc.abstractmethod
    def idempotency_finish(self, key: str, fingerprint: str, status: int, body: str, ttl_ms: int) -> None:
        """Store the answer of the request holding ``key`` for ``ttl_ms`` (no-op when not held)."""

    @abc.abstractmethod
    def idempotency_release(self, key: str, fingerprint: str) -> None:
        """Give the running record up (the outcome is unknown: a retry with the same
        fingerprint runs again, as ``"retry"``; another fingerprint may take the key)."""

    def idempotency_committed(self, request_id: str) -> bool:
        """Whether the keyed write of ``request_id`` (:mod:`backends.once`) committed.

        A backend whose writes keep no such marker answers False (the memory backend:
        its records die with the process, and a request cannot vanish without it)."""
        return False

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections (optional)."""
