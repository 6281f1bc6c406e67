"""Completing a user task: read the task and its instance, decide, run the engine, write.

The read may answer from copies the backend keeps of what it was lately answered (the
Redis backend's: ``backends/redis_recent.py``), which saves a round trip but may be
out of date; the backend's write then checks that the instance's rev and the task's
assignee and candidates are still those read, and a difference is a concurrent
modification. Either way the loop below reads again and decides again: a concurrent
step (another task of the instance completed at the same moment) makes both count,
and a decision made on copies that failed is made again on the store's values, so a
caller sees the errors a fresh read gives.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from backends.base import id_scope
from bpm.committer import Committer
from bpm.copying import maker
from bpm.errors import (
    BackendUnavailable,
    BpmError,
    ConcurrentModification,
    NotCandidate,
    TaskAlreadyClaimed,
    TaskNotActive,
    TaskNotFound,
)
from bpm.forms import check_task_form
from bpm.planner import Preconditions
from bpm.records import ACTIVE, Identity, Instance, Principals, Task

__all__ = ["MAX_STEP_RETRIES", "Completion"]

#: how often a use case reads and decides again when a concurrent step changed its instance
MAX_STEP_RETRIES = 20
#: Preconditions(complete_task=..., completed_by=..., history=...) (bpm.copying.maker)
_completing = maker(Preconditions, "complete_task", "completed_by", "history")


class Completion:
    """The completion of user tasks, written through the runtime's committer."""

    def __init__(self, committer: Committer, principals: Callable[[str, Identity | None], Principals]) -> None:
        self.committer = committer
        self.principals = principals

    def complete(
        self,
        task_id: str,
        user: str,
        variables: Mapping[str, Any] | None = None,
        identity: Identity | None = None,
        *,
        actor: str | None = None,
    ) -> None:
        """Complete a task and run the instance on to its next wait states, atomically.

        Raises TaskNotFound, TaskNotActive, TaskAlreadyClaimed, NotCandidate, a form's or the
        engine's errors, or ConcurrentModification when the instance kept changing."""
        committer = self.committer
        principals: Principals | None = None
        for attempt in range(MAX_STEP_RETRIES):  # the first read may answer from copies the backend keeps
            task, instance, copied = self._read(task_id, recent=attempt == 0)
            try:
                if principals is None and task.assignee is None and task.has_candidates:
                    principals = self.principals(user, identity)
                check_may_complete(task, user, principals)
                spec = committer.planner.spec_of(instance)
                check_task_form(spec, task, variables, instance.state.get("vars", {}))
                with id_scope(instance.id):
                    result = committer.engine.complete_task(spec, instance.state, task_id, variables, True)  # owned
                # at the engine step's time (one clock read for the use case)
                completed = committer.audit("task.completed", task=task, user=user, actor=actor or user, now=result.now)
                pre = _completing(task_id, user, [completed])
                committer.commit(instance, spec, result, pre)
                return
            except ConcurrentModification:
                continue
            except BpmError as exc:  # decided on kept copies (maybe out of date): decide again on the store's
                if not copied or isinstance(exc, BackendUnavailable):
                    raise
        raise ConcurrentModification(f"task '{task_id}' could not be completed: its instance kept changing")

    def _read(self, task_id: str, *, recent: bool) -> tuple[Task, Instance, bool]:
        """The task and its instance to decide on, and whether they are copies the backend kept
        (``recent``: they may be)."""
        found = self.committer.backend.task_and_instance_to_complete(task_id, recent=recent)
        if found is None:
            raise TaskNotFound(f"task '{task_id}' does not exist")
        return found


def check_may_complete(task: Task, user: str, principals: Principals | None) -> None:
    """Raises TaskNotActive, TaskAlreadyClaimed or NotCandidate (``principals``: the user's,
    when the task is unassigned and has candidates)."""
    if task.status != ACTIVE:  # (not task.active)
        raise TaskNotActive(f"task '{task.id}' is {task.status}")
    if task.assignee is not None and task.assignee != user:
        raise TaskAlreadyClaimed(f"task '{task.id}' is claimed by another user")
    if task.assignee is None and principals is not None and not principals.is_candidate_for(task):
        raise NotCandidate(f"user '{user}' is not a candidate for task '{task.id}'")
