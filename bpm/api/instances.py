"""Process instances: their tasks, assigning all of them, reading and cancelling one."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from bpm.api.auth import acting_user
from bpm.api.common import BASE_PATH, Blueprint, get_runtime, valid_instance_id
from bpm.api.envelope import ErrorEnvelopeSchema, envelope
from bpm.api.schemas import EmptyEnvelope, IdListEnvelope, InstanceEnvelope, RequiredUserQuerySchema, TaskListEnvelope

blp = Blueprint("instance", __name__, url_prefix=f"{BASE_PATH}/instance", description="Process instances")

NOT_FOUND = "INSTANCE_NOT_FOUND: no such process instance"


@blp.route("/<instance_id>")
class ProcessInstance(MethodView):
    @blp.response(200, InstanceEnvelope)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description=NOT_FOUND)
    def get(self, instance_id: str) -> dict[str, Any]:
        """One instance: definition, starter, state, variables and active task ids."""
        runtime = get_runtime()
        instance = runtime.instance(valid_instance_id(instance_id))
        return envelope(
            {
                "id": instance.id,
                "definitionId": instance.definition_id,
                "processName": instance.process_name,
                "createBy": instance.create_by,
                "createTime": instance.create_time,
                "ended": instance.ended,
                "endTime": instance.end_time,
                "variables": instance.state.get("vars", {}),
                "activeTasks": [t.id for t in runtime.instance_tasks(instance.id)],
            }
        )

    @blp.response(200, EmptyEnvelope)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description=NOT_FOUND)
    def delete(self, instance_id: str) -> dict[str, Any]:
        """Cancel an instance and its open tasks (no-op when it has ended)."""
        get_runtime().cancel_instance(valid_instance_id(instance_id))
        return envelope("")


@blp.route("/<instance_id>/tasks")
class InstanceTasks(MethodView):
    @blp.response(200, TaskListEnvelope)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description=NOT_FOUND)
    def get(self, instance_id: str) -> dict[str, Any]:
        """The instance's active tasks (empty once it has ended)."""
        return envelope(get_runtime().instance_tasks(valid_instance_id(instance_id)))


@blp.route("/<instance_id>/tasks/assign")
class AssignInstanceTasks(MethodView):
    @blp.arguments(RequiredUserQuerySchema, location="query")
    @blp.response(200, IdListEnvelope)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description=NOT_FOUND)
    def post(self, query: dict[str, Any], instance_id: str) -> dict[str, Any]:
        """Assign every active task of the instance to the user; data lists their ids."""
        user = acting_user(query.get("user"))
        return envelope(get_runtime().assign_instance(valid_instance_id(instance_id), user))
