"""External tasks (extension): service work that workers fetch, lock and complete over REST.

The routes and field names follow Camunda 7's external-task REST API, inside the
envelope of API.md; times are epoch ms and variables plain JSON values (not
Camunda's typed ``{"value", "type"}`` objects).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from bpm.api.common import BASE_PATH, EXTERNAL_TASK_ID, Blueprint, get_runtime, valid_external_task_id
from bpm.api.envelope import ErrorEnvelopeSchema, envelope
from bpm.api.flaskapp import MethodView
from bpm.api.policy import authorize
from bpm.api.schemas import (
    BpmnErrorBodySchema,
    CompleteExternalBodySchema,
    EmptyEnvelope,
    ExtendLockBodySchema,
    ExternalTaskEnvelope,
    ExternalTaskListEnvelope,
    FailureBodySchema,
    FetchAndLockBodySchema,
    RetriesBodySchema,
)
from bpm.records import ExternalTaskRecord

blp = Blueprint(
    "external-task", __name__, url_prefix=f"{BASE_PATH}/external-task", description="External tasks (service work)"
)

NOT_FOUND = "EXTERNAL_TASK_NOT_FOUND: no such external task"
NOT_ACTIVE = "TASK_NOT_ACTIVE: completed or cancelled"
NOT_LOCKED = "TASK_NOT_ACTIVE (completed or cancelled) or LOCK_LOST (not locked by this worker)"


def with_variables(task: ExternalTaskRecord) -> ExternalTaskRecord:
    """The record with the variables a worker sees: the instance's, overlaid by the task's own."""
    return dataclasses.replace(task, variables=get_runtime().external_variables(task))


@blp.route("/fetchAndLock")
class FetchAndLock(MethodView):
    @blp.arguments(FetchAndLockBodySchema)
    @blp.response(200, ExternalTaskListEnvelope)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Lock up to maxTasks fetchable tasks of the topics for the worker; data lists them with variables."""
        authorize("external.work")
        topics = {topic["topicName"]: topic["lockDuration"] for topic in body["topics"]}
        locked = get_runtime().fetch_and_lock(body["workerId"], topics, body["maxTasks"])
        return envelope([dataclasses.replace(task, variables=variables) for task, variables in locked])


@blp.route("/<external_task_id>", parameters=[EXTERNAL_TASK_ID])
class ExternalTask(MethodView):
    @blp.response(200, ExternalTaskEnvelope)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description=NOT_FOUND)
    def get(self, external_task_id: str) -> dict[str, Any]:
        """One external task (active or closed): lock, retries, incident and error, variables."""
        authorize("instance.read")
        return envelope(with_variables(get_runtime().external_task(valid_external_task_id(external_task_id))))


@blp.route("/<external_task_id>/complete", parameters=[EXTERNAL_TASK_ID])
class CompleteExternalTask(MethodView):
    @blp.arguments(CompleteExternalBodySchema)
    @blp.response(200, EmptyEnvelope)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description=NOT_FOUND)
    @blp.alt_response(409, schema=ErrorEnvelopeSchema, description=NOT_LOCKED)
    @blp.alt_response(422, schema=ErrorEnvelopeSchema, description="EXPRESSION_ERROR running on: nothing changed")
    def post(self, body: dict[str, Any], external_task_id: str) -> dict[str, Any]:
        """The worker holding the lock completes the task; the instance runs on to its next waits."""
        authorize("external.work")
        runtime = get_runtime()
        runtime.complete_external(valid_external_task_id(external_task_id), body["workerId"], body["variables"])
        return envelope("")


@blp.route("/<external_task_id>/failure", parameters=[EXTERNAL_TASK_ID])
class ReportFailure(MethodView):
    @blp.arguments(FailureBodySchema)
    @blp.response(200, ExternalTaskEnvelope)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description=NOT_FOUND)
    @blp.alt_response(409, schema=ErrorEnvelopeSchema, description=NOT_LOCKED)
    def post(self, body: dict[str, Any], external_task_id: str) -> dict[str, Any]:
        """Report a failure: fetchable again after retryTimeout while retries > 0, else an incident."""
        authorize("external.work")
        task = get_runtime().fail_external(
            valid_external_task_id(external_task_id),
            body["workerId"],
            body["retries"],
            body["retryTimeout"],
            body.get("errorMessage"),
            body.get("errorDetails"),
        )
        return envelope(with_variables(task))


@blp.route("/<external_task_id>/bpmnError", parameters=[EXTERNAL_TASK_ID])
class ReportBpmnError(MethodView):
    @blp.arguments(BpmnErrorBodySchema)
    @blp.response(200, EmptyEnvelope)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description=NOT_FOUND)
    @blp.alt_response(409, schema=ErrorEnvelopeSchema, description=NOT_LOCKED)
    @blp.alt_response(422, schema=ErrorEnvelopeSchema, description="UNHANDLED_BPMN_ERROR: uncaught, in the strict mode")
    def post(self, body: dict[str, Any], external_task_id: str) -> dict[str, Any]:
        """Throw a BPMN error from the task, caught by an error boundary event or event subprocess."""
        authorize("external.work")
        get_runtime().bpmn_error_external(
            valid_external_task_id(external_task_id),
            body["workerId"],
            body["errorCode"],
            body.get("errorMessage") or "",
            body["variables"],
        )
        return envelope("")


@blp.route("/<external_task_id>/extendLock", parameters=[EXTERNAL_TASK_ID])
class ExtendLock(MethodView):
    @blp.arguments(ExtendLockBodySchema)
    @blp.response(200, ExternalTaskEnvelope)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description=NOT_FOUND)
    @blp.alt_response(409, schema=ErrorEnvelopeSchema, description=NOT_LOCKED)
    def post(self, body: dict[str, Any], external_task_id: str) -> dict[str, Any]:
        """The worker holding the lock makes it end newDuration ms from now."""
        authorize("external.work")
        task_id = valid_external_task_id(external_task_id)
        task = get_runtime().extend_external_lock(task_id, body["workerId"], body["newDuration"])
        return envelope(with_variables(task))


@blp.route("/<external_task_id>/unlock", parameters=[EXTERNAL_TASK_ID])
class Unlock(MethodView):
    @blp.response(200, ExternalTaskEnvelope)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description=NOT_FOUND)
    @blp.alt_response(409, schema=ErrorEnvelopeSchema, description=NOT_ACTIVE)
    def post(self, external_task_id: str) -> dict[str, Any]:
        """Release the lock: the task is fetchable again at once (unless it is an incident)."""
        authorize("external.work")
        return envelope(with_variables(get_runtime().unlock_external(valid_external_task_id(external_task_id))))


@blp.route("/<external_task_id>/retries", parameters=[EXTERNAL_TASK_ID])
class Retries(MethodView):
    @blp.arguments(RetriesBodySchema)
    @blp.response(200, ExternalTaskEnvelope)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description=NOT_FOUND)
    @blp.alt_response(409, schema=ErrorEnvelopeSchema, description=NOT_ACTIVE)
    def put(self, body: dict[str, Any], external_task_id: str) -> dict[str, Any]:
        """Set the retries: above 0 resolves an incident and makes the task fetchable now; 0 makes one."""
        authorize("external.retries")
        task = get_runtime().set_external_retries(valid_external_task_id(external_task_id), body["retries"])
        return envelope(with_variables(task))
