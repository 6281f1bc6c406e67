"""The memory backend's timers, message and signal subscriptions and external tasks.

A part of :class:`backends.memory.MemoryBackend` (its indexes are made in its ``clear``,
and every method here holds its lock, ``self._guard``), kept apart to keep each module
readable. Mirrors the Redis scripts that keep the same indexes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from backends.base import ExternalTaskRecord, SubscriptionIndex, fetch_window, parse_member
from bpm.copying import clone as _clone
from bpm.errors import Conflict, ExternalTaskNotFound, TaskNotActive


class MemoryEvents:
    """Timers, subscriptions and external tasks of the memory backend (a mixin)."""

    # made by MemoryBackend.clear (the lock by its __init__)
    _guard: Any
    _timers: dict[str, int]
    _named: dict[tuple[str, str], set[str]]
    _externals: dict[str, ExternalTaskRecord]
    _instance_externals: dict[str, set[str]]
    _topics: dict[str, dict[str, int]]

    def _record(self, instance_id: str, record_id: str) -> None:
        raise NotImplementedError  # MemoryBackend's

    # -- timers, messages and signals -------------------------------------------------

    def due_timers(self, now: int, limit: int = 100) -> list[tuple[str, int]]:
        with self._guard:
            due = sorted((d, m) for m, d in self._timers.items() if d <= now)
            return [(m, d) for d, m in due[: max(limit, 0)]]

    def schedule_timer(self, member: str, due: int) -> None:
        with self._guard:
            self._timers[member] = due

    def take_timer(self, member: str, due: int, next_due: int | None) -> bool:
        with self._guard:
            if self._timers.get(member) != due:
                return False
            if next_due is None:
                del self._timers[member]
            else:
                self._timers[member] = next_due
            return True

    def remove_timer(self, member: str) -> None:
        with self._guard:
            self._timers.pop(member, None)

    def subscriptions(self, kind: str, name: str) -> list[tuple[str, str]]:
        if kind not in ("message", "signal"):
            raise ValueError(f"subscriptions are kept for messages and signals, not {kind!r}")
        with self._guard:
            members = sorted(self._named.get((kind, name), ()))
        return [parse_member(m) for m in members]

    # -- external tasks ---------------------------------------------------------------

    def external_task(self, external_id: str) -> ExternalTaskRecord | None:
        with self._guard:
            return _clone(self._externals.get(external_id))

    def instance_externals(self, instance_id: str) -> list[ExternalTaskRecord]:
        with self._guard:
            found = [self._externals[e] for e in self._instance_externals.get(instance_id, ())]
            return [_clone(e) for e in sorted(found, key=lambda e: (e.create_time, e.id))]

    def fetch_and_lock(
        self, worker: str, topics: Mapping[str, int], max_tasks: int, now: int
    ) -> list[ExternalTaskRecord]:
        with self._guard:
            candidates: list[tuple[ExternalTaskRecord, int]] = []
            for topic, lock in topics.items():
                # as Redis: the window of earliest available, ties by id
                ready = sorted((at, i) for i, at in self._topics.get(topic, {}).items() if at <= now)
                candidates += [(self._externals[i], lock) for _, i in ready[: fetch_window(max_tasks)]]
            candidates.sort(key=lambda c: (-c[0].priority, c[0].create_time, c[0].id))
            for ext, lock in candidates[: max(max_tasks, 0)]:
                ext.worker, ext.lock_expiry, ext.available_at = worker, now + lock, now + lock
                self._sync_external(ext)
            return [_clone(ext) for ext, _ in candidates[: max(max_tasks, 0)]]

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
        with self._guard:
            ext = self._require_lock(external_id, worker)
            ext.error_message, ext.error_details = error_message, error_details
            if retries > 0:
                ext.retries, ext.incident, ext.worker, ext.lock_expiry = retries, False, None, None
                ext.available_at = now + retry_timeout
            else:
                ext.retries, ext.incident = 0, True
            self._sync_external(ext)
            return _clone(ext)

    def set_external_retries(self, external_id: str, retries: int, now: int) -> ExternalTaskRecord:
        with self._guard:
            ext = self._require_external(external_id)
            if retries > 0:
                ext.retries, ext.incident, ext.worker, ext.lock_expiry = retries, False, None, None
                ext.available_at = now
            else:
                ext.retries, ext.incident = 0, True
            self._sync_external(ext)
            return _clone(ext)

    def extend_external_lock(self, external_id: str, worker: str, duration: int, now: int) -> ExternalTaskRecord:
        with self._guard:
            ext = self._require_lock(external_id, worker)
            ext.lock_expiry = ext.available_at = now + duration
            self._sync_external(ext)
            return _clone(ext)

    def unlock_external(self, external_id: str) -> ExternalTaskRecord:
        with self._guard:
            ext = self._require_external(external_id)
            ext.worker, ext.lock_expiry, ext.available_at = None, None, 0
            self._sync_external(ext)
            return _clone(ext)

    # -- helpers (lock held) ----------------------------------------------------------

    def _index_subscription(self, sub: SubscriptionIndex, *, add: bool) -> None:
        if sub.kind == "timer":
            if add:
                self._timers[sub.member] = sub.due  # type: ignore[assignment]  # checked
            else:
                self._timers.pop(sub.member, None)
        elif add:
            self._named[(sub.kind, sub.name or "")].add(sub.member)
        else:
            self._named.get((sub.kind, sub.name or ""), set()).discard(sub.member)

    def _require_external(self, external_id: str) -> ExternalTaskRecord:
        ext = self._externals.get(external_id)
        if ext is None:
            raise ExternalTaskNotFound(f"external task '{external_id}' does not exist")
        if not ext.active:
            raise TaskNotActive(f"external task '{external_id}' is {ext.status}")
        return ext

    def _require_lock(self, external_id: str, worker: str | None) -> ExternalTaskRecord:
        ext = self._require_external(external_id)
        if worker is None or ext.worker != worker:
            raise Conflict(f"external task '{external_id}' is not locked by worker '{worker}'", code="LOCK_LOST")
        return ext

    def _put_external(self, ext: ExternalTaskRecord) -> None:
        old = self._externals.get(ext.id)
        if old is not None:
            self._topics.get(old.topic, {}).pop(ext.id, None)
        self._externals[ext.id] = ext
        self._record(ext.instance_id, ext.id)
        self._sync_external(ext)

    def _close_external(self, external_id: str, status: str, now: int) -> None:
        ext = self._externals[external_id]
        ext.status, ext.end_time = status, now
        self._sync_external(ext)

    def _sync_external(self, ext: ExternalTaskRecord) -> None:
        """Put ``ext`` in exactly the indexes its fields call for (mirrors sync_external in Lua)."""
        if ext.active:
            self._instance_externals[ext.instance_id].add(ext.id)
        else:
            self._instance_externals.get(ext.instance_id, set()).discard(ext.id)
        if ext.active and not ext.incident:
            self._topics[ext.topic][ext.id] = ext.available_at
        else:
            self._topics.get(ext.topic, {}).pop(ext.id, None)
