"""Starting process instances: ``…/process/start`` and the old ``…/process/<name>/start``."""

from __future__ import annotations

from typing import Any

from bpm.api.common import BASE_PATH, Blueprint, get_runtime
from bpm.api.envelope import ErrorEnvelopeSchema, plain_envelope
from bpm.api.flaskapp import MethodView
from bpm.api.policy import authorize
from bpm.api.schemas import IdEnvelope, ObjectBodySchema, StartBodySchema, StartQuerySchema, UserQuerySchema

blp = Blueprint("process", __name__, url_prefix=f"{BASE_PATH}/process", description="Start process instances")


@blp.route("/start")
class StartProcess(MethodView):
    @blp.arguments(StartBodySchema)
    @blp.arguments(UserQuerySchema, location="query")
    @blp.response(200, IdEnvelope)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="PROCESS_NOT_FOUND: nothing matches")
    @blp.alt_response(422, schema=ErrorEnvelopeSchema, description="EXPRESSION_ERROR while running to the first wait")
    def post(self, body: dict[str, Any], query: dict[str, Any]) -> dict[str, Any]:
        """Start an instance of a process named in the body; data is the instance id."""
        grant = authorize("process.start", query.get("user"))
        instance = get_runtime().start(
            process_name=body.get("processName"),
            unique_id=body.get("uniqueId"),
            app_name=body.get("appName"),
            snap_version=body.get("snapVersion"),
            variables=body.get("object") or {},
            user=grant.user,
            actor=grant.actor,
            business_key=body.get("businessKey") or None,
        )
        return plain_envelope(instance)


@blp.route("/<path:process_name>/start")
class StartNamedProcess(MethodView):
    @blp.arguments(ObjectBodySchema, required=False, description="the business object")
    @blp.arguments(StartQuerySchema, location="query")
    @blp.response(200, IdEnvelope)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="PROCESS_NOT_FOUND: nothing matches")
    @blp.alt_response(422, schema=ErrorEnvelopeSchema, description="EXPRESSION_ERROR while running to the first wait")
    def post(self, variables: dict[str, Any], query: dict[str, Any], process_name: str) -> dict[str, Any]:
        """Start an instance of the process named in the path (old form); the body is the business object."""
        grant = authorize("process.start", query.get("user"))
        instance = get_runtime().start(
            process_name=process_name,
            app_name=query.get("appName"),
            snap_version=query.get("snapVersion"),
            variables=variables,
            user=grant.user,
            actor=grant.actor,
            business_key=query.get("businessKey") or None,
        )
        return plain_envelope(instance)
