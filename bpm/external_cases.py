"""Use cases of external tasks: fetch and lock, complete, fail, BPMN errors, and in-process handlers."""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Mapping
from typing import Any

from backends.base import id_scope
from bpm.committer import Committer, retrying
from bpm.engine.engine import StepResult
from bpm.errors import Conflict, ExternalTaskNotFound, InstanceNotFound, TaskNotActive, ValidationError
from bpm.model.spec import ProcessSpec
from bpm.planner import Preconditions
from bpm.records import ExternalTaskRecord, Instance

log = logging.getLogger(__name__)
IN_PROCESS_WORKER = "in-process"

#: a Python handler for an external-task topic: variables in, variables out
Handler = Callable[[Mapping[str, Any]], Mapping[str, Any] | None]


class ExternalTaskCases:
    """External tasks against one committer."""

    def __init__(self, committer: Committer) -> None:
        self.committer = committer
        self.handlers: dict[str, Handler] = {}

    # -- in-process handlers ------------------------------------------------------------

    def register_handler(self, topic: str, handler: Handler) -> None:
        """Run ``handler`` in-process for new external tasks of ``topic`` (instead of a worker)."""
        self.handlers = {**self.handlers, topic: handler}

    def run_handlers(self, externals: list[ExternalTaskRecord]) -> None:
        """After a commit: run the handlers of the new external tasks that have one."""
        for external in externals:
            if external.topic in self.handlers:
                self._run_handler(external)

    def _run_handler(self, external: ExternalTaskRecord) -> None:
        c = self.committer
        locked = c.backend.fetch_and_lock(IN_PROCESS_WORKER, {external.topic: 60_000}, 50, c.now_ms())
        for task in (t for t in locked if t.id != external.id):
            c.backend.unlock_external(task.id)
        for task in (t for t in locked if t.id == external.id):
            variables = self.external_variables(task)
            try:
                output = self.handlers[task.topic](variables)
            except Exception as exc:
                log.exception("in-process handler for topic %s failed", task.topic)
                self.fail_external(task.id, IN_PROCESS_WORKER, 0, 0, f"{type(exc).__name__}: {exc}", None)
                continue
            self.complete_external(task.id, IN_PROCESS_WORKER, dict(output or {}))

    # -- workers ------------------------------------------------------------------------

    def external_variables(self, task: ExternalTaskRecord) -> dict[str, Any]:
        instance = self.committer.backend.instance(task.instance_id)
        variables = copy.deepcopy(instance.state.get("vars", {})) if instance else {}
        variables.update(copy.deepcopy(task.variables))
        return variables

    def fetch_and_lock(
        self, worker: str, topics: Mapping[str, int], max_tasks: int = 10
    ) -> list[tuple[ExternalTaskRecord, dict[str, Any]]]:
        """Lock up to ``max_tasks`` tasks of ``topics`` (name -> lock ms) for ``worker``."""
        c = self.committer
        if not worker or not topics:
            raise ValidationError("a worker id and at least one topic are required")
        locked = c.backend.fetch_and_lock(worker, dict(topics), max_tasks, c.now_ms())
        return [(task, self.external_variables(task)) for task in locked]

    def _active(self, external_id: str) -> ExternalTaskRecord:
        task = self.external_task(external_id)
        if not task.active:
            raise TaskNotActive(f"external task '{external_id}' is {task.status}")
        return task

    def _step(
        self,
        external_id: str,
        worker: str,
        run: Callable[[ProcessSpec, Instance], StepResult],
        history: dict[str, Any],
    ) -> None:
        c = self.committer

        def attempt() -> None:
            task = self._active(external_id)
            if task.worker != worker:
                raise Conflict(f"external task '{external_id}' is not locked by worker '{worker}'", code="LOCK_LOST")
            instance = c.backend.instance(task.instance_id)
            if instance is None:
                raise InstanceNotFound(f"process instance '{task.instance_id}' does not exist")
            spec = c.spec_of(instance)
            entry = {**history, "taskId": task.id, "taskName": task.name, "elementId": task.element_id}
            pre = Preconditions(complete_external=external_id, external_worker=worker, history=[entry])
            with id_scope(instance.id):
                result = run(spec, instance)
            c.commit(instance, spec, result, pre)

        retrying(attempt)

    def complete_external(self, external_id: str, worker: str, variables: Mapping[str, Any] | None = None) -> None:
        """The worker that holds the lock completes the task; the instance runs on."""
        c = self.committer
        entry = {"time": c.now_ms(), "type": "external.completed", "user": None, "actor": worker}
        self._step(
            external_id,
            worker,
            lambda spec, inst: c.engine.complete_external(spec, inst.state, external_id, variables),
            entry,
        )

    def bpmn_error_external(
        self,
        external_id: str,
        worker: str,
        code: str,
        message: str = "",
        variables: Mapping[str, Any] | None = None,
    ) -> None:
        """The worker reports a BPMN error, caught by a boundary or an event subprocess."""
        c = self.committer
        entry = {"time": c.now_ms(), "type": "external.bpmnError", "user": None, "actor": worker, "errorCode": code}
        self._step(
            external_id,
            worker,
            lambda spec, inst: c.engine.throw_error(spec, inst.state, external_id, code, message, variables),
            entry,
        )

    def fail_external(
        self,
        external_id: str,
        worker: str,
        retries: int,
        retry_timeout: int,
        error_message: str | None,
        error_details: str | None,
    ) -> ExternalTaskRecord:
        """Report a failure: retried later while ``retries`` > 0, else an incident."""
        c = self.committer
        return c.backend.fail_external(
            external_id, worker, max(0, retries), max(0, retry_timeout), error_message, error_details, c.now_ms()
        )

    def set_external_retries(self, external_id: str, retries: int) -> ExternalTaskRecord:
        """Resolve an incident (or change the retries) of an external task."""
        if retries < 0:
            raise ValidationError("retries must be 0 or more")
        self._active(external_id)
        c = self.committer
        return c.backend.set_external_retries(external_id, retries, c.now_ms())

    def extend_external_lock(self, external_id: str, worker: str, duration: int) -> ExternalTaskRecord:
        c = self.committer
        return c.backend.extend_external_lock(external_id, worker, duration, c.now_ms())

    def unlock_external(self, external_id: str) -> ExternalTaskRecord:
        self._active(external_id)
        return self.committer.backend.unlock_external(external_id)

    def external_task(self, external_id: str) -> ExternalTaskRecord:
        """One external task, active or closed. Raises ExternalTaskNotFound."""
        task = self.committer.backend.external_task(external_id)
        if task is None:
            raise ExternalTaskNotFound(f"external task '{external_id}' does not exist")
        return task
