"""Forms (extension): the generated form of a task and the start form of a process."""

from __future__ import annotations

from typing import Any

from bpm.api.common import BASE_PATH, TASK_ID, Blueprint, get_runtime, path_parameter, valid_task_id
from bpm.api.envelope import ErrorEnvelopeSchema, envelope
from bpm.api.flaskapp import MethodView
from bpm.api.policy import authorize
from bpm.api.schemas import FormEnvelope, FormQuerySchema
from bpm.forms import process_form, task_form

blp = Blueprint("forms", __name__, url_prefix=BASE_PATH, description="Task and start forms")

PROCESS_KEY = path_parameter("key", "a deployed process's key (BPMN id) or name (else 404)", type="string")


@blp.route("/tasks/<task_id>/form", parameters=[TASK_ID])
class TaskForm(MethodView):
    @blp.response(200, FormEnvelope)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="TASK_NOT_FOUND: no such task")
    def get(self, task_id: str) -> dict[str, Any]:
        """The task's form: its formKey and the fields of its generated form (camunda:formData ...)."""
        authorize("task.variables")
        return envelope(task_form(get_runtime(), valid_task_id(task_id)))


@blp.route("/processes/<key>/form", parameters=[PROCESS_KEY])
class ProcessForm(MethodView):
    @blp.arguments(FormQuerySchema, location="query")
    @blp.response(200, FormEnvelope)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="PROCESS_NOT_FOUND: no such process or version")
    def get(self, query: dict[str, Any], key: str) -> dict[str, Any]:
        """The start form of a process: the formKey and fields of the start event a start by key uses."""
        authorize("process.list")
        return envelope(process_form(get_runtime(), key, query.get("version")))
