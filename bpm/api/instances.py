"""Process instances: their tasks, assigning all of them, reading and cancelling one, history, incidents."""

from __future__ import annotations

from typing import Any

from bpm.api.common import (
    BASE_PATH,
    INCIDENT_ID,
    INSTANCE_ID,
    Blueprint,
    get_runtime,
    valid_incident_id,
    valid_instance_id,
)
from bpm.api.envelope import ErrorEnvelopeSchema, envelope, plain_envelope
from bpm.api.flaskapp import MethodView
from bpm.api.policy import authorize
from bpm.api.schemas import (
    EmptyEnvelope,
    HistoryEnvelope,
    IdListEnvelope,
    IncidentListEnvelope,
    InstanceEnvelope,
    InstanceListEnvelope,
    InstanceListQuerySchema,
    InstanceTasksQuerySchema,
    RequiredUserQuerySchema,
    TaskListEnvelope,
    instance_summary,
    task_to_api,
)
from bpm.errors import ValidationError

blp = Blueprint("instance", __name__, url_prefix=f"{BASE_PATH}/instance", description="Process instances")
list_blp = Blueprint("instances", __name__, url_prefix=f"{BASE_PATH}/instances", description="Lists of instances")

NOT_FOUND = "INSTANCE_NOT_FOUND: no such process instance"
MISSING_USER = {"user": ["Missing data for required field."]}


@list_blp.route("")
class InstanceList(MethodView):
    @list_blp.arguments(InstanceListQuerySchema, location="query")
    @list_blp.response(200, InstanceListEnvelope)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """Instances, newest first, by processKey, businessKey and state (active/ended); paged,
        totalRecordCount = all matches. Each is a summary: GET …/instance/<id> has the rest."""
        authorize("instance.read")
        found, total = get_runtime().list_instances(
            process_key=query.get("processKey"),
            business_key=query.get("businessKey"),
            state=query["state"],
            start=query["start"],
            size=query["size"],
        )
        return plain_envelope([instance_summary(i) for i in found], total)


@blp.route("/<instance_id>", parameters=[INSTANCE_ID])
class ProcessInstance(MethodView):
    @blp.response(200, InstanceEnvelope)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description=NOT_FOUND)
    def get(self, instance_id: str) -> dict[str, Any]:
        """One instance: definition, starter, state, variables, where it waits, its tasks and incidents."""
        authorize("instance.read")
        view = get_runtime().instance_view(valid_instance_id(instance_id))
        return envelope(
            {
                "id": view.id,
                "definitionId": view.definition_id,
                "processName": view.process_name,
                "createBy": view.create_by,
                "createTime": view.create_time,
                "ended": view.ended,
                "endTime": view.end_time,
                "variables": view.variables,
                "activeTasks": view.active_tasks,
                "businessKey": view.business_key,
                "parentId": view.parent_id,
                "activeElements": view.active_elements,
                "incidents": view.incidents,
                "externalTasks": view.external_tasks,
                "historyTruncated": view.history_truncated,
            }
        )

    @blp.response(200, EmptyEnvelope)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description=NOT_FOUND)
    def delete(self, instance_id: str) -> dict[str, Any]:
        """Cancel an instance, its open tasks, external tasks and called child instances (no-op once ended)."""
        grant = authorize("instance.cancel")
        get_runtime().cancel_instance(valid_instance_id(instance_id), actor=grant.actor)
        return envelope("")


@blp.route("/<instance_id>/tasks", parameters=[INSTANCE_ID])
class InstanceTasks(MethodView):
    @blp.response(200, TaskListEnvelope)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description=NOT_FOUND)
    @blp.arguments(InstanceTasksQuerySchema, location="query")
    def get(self, query: dict[str, Any], instance_id: str) -> dict[str, Any]:
        """The instance's active tasks (empty once it has ended); includeChildren=true adds its called instances'."""
        authorize("instance.read")
        tasks = get_runtime().instance_tasks(valid_instance_id(instance_id), include_children=query["includeChildren"])
        return plain_envelope([task_to_api(t) for t in tasks])


@blp.route("/<instance_id>/tasks/assign", parameters=[INSTANCE_ID])
class AssignInstanceTasks(MethodView):
    @blp.arguments(RequiredUserQuerySchema, location="query")
    @blp.response(200, IdListEnvelope)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description=NOT_FOUND)
    def post(self, query: dict[str, Any], instance_id: str) -> dict[str, Any]:
        """Assign every active task of the instance to the user; data lists their ids."""
        grant = authorize("instance.assign")
        user = (query.get("user") or "").strip()
        if not user:
            raise ValidationError("the query parameter 'user' is required", data=MISSING_USER)
        return envelope(get_runtime().assign_instance(valid_instance_id(instance_id), user, actor=grant.actor))


@blp.route("/<instance_id>/history", parameters=[INSTANCE_ID])
class InstanceHistory(MethodView):
    @blp.response(200, HistoryEnvelope)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description=NOT_FOUND)
    def get(self, instance_id: str) -> dict[str, Any]:
        """The instance's audit trail, oldest first: who started, claimed, completed, assigned ... and when."""
        authorize("instance.read")
        return envelope(get_runtime().history(valid_instance_id(instance_id)))


@blp.route("/<instance_id>/incidents", parameters=[INSTANCE_ID])
class InstanceIncidents(MethodView):
    @blp.response(200, IncidentListEnvelope)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description=NOT_FOUND)
    def get(self, instance_id: str) -> dict[str, Any]:
        """The instance's incidents: external tasks out of retries, timers that kept failing."""
        authorize("instance.read")
        return envelope(get_runtime().incidents(valid_instance_id(instance_id)))


@blp.route("/<instance_id>/incidents/<incident_id>/retry", parameters=[INSTANCE_ID, INCIDENT_ID])
class RetryTimerIncident(MethodView):
    @blp.response(200, EmptyEnvelope)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="INCIDENT_NOT_FOUND: no such timer incident")
    def post(self, instance_id: str, incident_id: str) -> dict[str, Any]:
        """Resolve a timer incident: the timer is due again now (external tasks: PUT …/retries)."""
        grant = authorize("external.retries")
        get_runtime().retry_timer(valid_instance_id(instance_id), valid_incident_id(incident_id), actor=grant.actor)
        return envelope("")
