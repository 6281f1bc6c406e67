"""Tasks: to-do lists and queues, claim/unclaim, complete, variables, assign."""

from __future__ import annotations

from typing import Any

from bpm.api.common import BASE_PATH, TASK_ID, Blueprint, get_runtime, valid_task_id
from bpm.api.envelope import ErrorEnvelopeSchema, envelope, plain_envelope
from bpm.api.flaskapp import MethodView
from bpm.api.policy import authorize
from bpm.api.schemas import (
    ActingUserQuerySchema,
    EmptyEnvelope,
    ObjectBodySchema,
    TaskListEnvelope,
    TaskListQuerySchema,
    UsersQuerySchema,
    VariablesBodySchema,
    VariablesEnvelope,
    task_to_api,
)
from bpm.errors import ValidationError

blp = Blueprint("tasks", __name__, url_prefix=f"{BASE_PATH}/tasks", description="User tasks")

NOT_FOUND = "TASK_NOT_FOUND: no such task"
NOT_ACTIVE = "TASK_ALREADY_CLAIMED (someone else holds it) or TASK_NOT_ACTIVE (completed or cancelled)"


def _names(values: list[str] | None) -> list[str]:
    return [v.strip() for v in values or () if v and v.strip()]


@blp.route("")
class TaskList(MethodView):
    @blp.arguments(TaskListQuerySchema, location="query")
    @blp.response(200, TaskListEnvelope)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """To-do lists of users and queues of groups/roles (union), narrowed by the filters;
        instanceId or processKey alone lists that instance's or process's tasks.
        Paged; totalRecordCount = all matches."""
        groups, roles = _names(query.get("group")), _names(query.get("role"))
        grant = authorize("task.list", users=_names(query.get("user")), groups=groups, roles=roles)
        users = list(grant.users)
        instance_id, process_key = query.get("instanceId"), query.get("processKey")
        if not (users or groups or roles or instance_id or process_key):
            raise ValidationError(
                "one of the query parameters 'user', 'group', 'role', 'instanceId' or 'processKey' is required",
                data={"user": ["One of user, group, role, instanceId or processKey is required."]},
            )
        if not (users or groups or roles):
            authorize("instance.read")  # an instance's or a process's tasks, as GET …/instance/<id>/tasks
        tasks, total = get_runtime().query_tasks(
            users=users,
            groups=groups,
            roles=roles,
            include_assigned=query["includeAssigned"],
            sort=query["sort"],
            order=query["order"],
            start=query["start"],
            size=query["size"],
            identities=grant.identities,
            unassigned=query["unassigned"],
            process_key=process_key,
            business_key=query.get("businessKey"),
            task_definition_key=query.get("taskDefinitionKey"),
            instance_id=instance_id,
        )
        return plain_envelope([task_to_api(t) for t in tasks], total)


@blp.route("/<task_id>/claim", parameters=[TASK_ID])
class ClaimTask(MethodView):
    @blp.arguments(ActingUserQuerySchema, location="query")
    @blp.response(200, EmptyEnvelope)
    @blp.alt_response(403, schema=ErrorEnvelopeSchema, description="NOT_CANDIDATE: the user is not a candidate")
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description=NOT_FOUND)
    @blp.alt_response(409, schema=ErrorEnvelopeSchema, description=NOT_ACTIVE)
    def post(self, query: dict[str, Any], task_id: str) -> dict[str, Any]:
        """Make the user the assignee of an open task (idempotent for the same user)."""
        grant = authorize("task.claim", query.get("user"))
        get_runtime().claim(valid_task_id(task_id), grant.acting_user, grant.identity, actor=grant.actor)
        return plain_envelope("")


@blp.route("/<task_id>/unclaim", parameters=[TASK_ID])
class UnclaimTask(MethodView):
    @blp.arguments(ActingUserQuerySchema, location="query")
    @blp.response(200, EmptyEnvelope)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description=NOT_FOUND)
    @blp.alt_response(409, schema=ErrorEnvelopeSchema, description=f"{NOT_ACTIVE}, or TASK_NOT_CLAIMED")
    def post(self, query: dict[str, Any], task_id: str) -> dict[str, Any]:
        """The assignee gives the task back to its candidates."""
        grant = authorize("task.unclaim", query.get("user"))
        get_runtime().unclaim(valid_task_id(task_id), grant.acting_user, actor=grant.actor)
        return plain_envelope("")


@blp.route("/<task_id>/complete", parameters=[TASK_ID])
class CompleteTask(MethodView):
    @blp.arguments(ObjectBodySchema, required=False, description="entries merged into the process variables")
    @blp.arguments(ActingUserQuerySchema, location="query")
    @blp.response(200, EmptyEnvelope)
    @blp.alt_response(403, schema=ErrorEnvelopeSchema, description="NOT_CANDIDATE: the user is not a candidate")
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description=NOT_FOUND)
    @blp.alt_response(409, schema=ErrorEnvelopeSchema, description=NOT_ACTIVE)
    @blp.alt_response(422, schema=ErrorEnvelopeSchema, description="EXPRESSION_ERROR: nothing was changed")
    def post(self, variables: dict[str, Any], query: dict[str, Any], task_id: str) -> dict[str, Any]:
        """Complete a task and run the instance on to its next wait states."""
        grant = authorize("task.complete", query.get("user"))
        runtime = get_runtime()
        runtime.complete(valid_task_id(task_id), grant.acting_user, variables, grant.identity, actor=grant.actor)
        return plain_envelope("")


@blp.route("/<task_id>/variables", parameters=[TASK_ID])
class TaskVariables(MethodView):
    @blp.arguments(VariablesBodySchema, required=False)
    @blp.response(200, VariablesEnvelope)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description=NOT_FOUND)
    def post(self, body: dict[str, Any], task_id: str) -> dict[str, Any]:
        """The variables visible to the task (instance variables overlaid by the task's own)."""
        authorize("task.variables")
        return envelope(get_runtime().task_variables(valid_task_id(task_id), body.get("names")))


@blp.route("/<task_id>/assign", parameters=[TASK_ID])
class AssignTask(MethodView):
    @blp.arguments(UsersQuerySchema, location="query")
    @blp.response(200, EmptyEnvelope)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description=NOT_FOUND)
    @blp.alt_response(409, schema=ErrorEnvelopeSchema, description="TASK_NOT_ACTIVE: completed or cancelled")
    def post(self, query: dict[str, Any], task_id: str) -> dict[str, Any]:
        """One user: the assignee (the previous one becomes owner); several: the candidates."""
        grant = authorize("task.assign")
        get_runtime().assign(valid_task_id(task_id), _names(query.get("user")), actor=grant.actor)
        return plain_envelope("")
