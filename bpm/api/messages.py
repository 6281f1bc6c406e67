"""Messages, signals and conditions (extension): correlate a message, broadcast a signal, evaluate
the conditional start events."""

from __future__ import annotations

from typing import Any

from bpm.api.common import BASE_PATH, Blueprint, get_runtime
from bpm.api.envelope import ErrorEnvelopeSchema, envelope
from bpm.api.flaskapp import MethodView
from bpm.api.policy import authorize
from bpm.api.schemas import (
    ConditionBodySchema,
    IdListEnvelope,
    MessageBodySchema,
    MessageResultEnvelope,
    SignalBodySchema,
    SignalResultEnvelope,
    UserQuerySchema,
)

blp = Blueprint("messages", __name__, url_prefix=BASE_PATH, description="Messages and signals")


@blp.route("/message")
class CorrelateMessage(MethodView):
    @blp.arguments(MessageBodySchema)
    @blp.arguments(UserQuerySchema, location="query")
    @blp.response(200, MessageResultEnvelope)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="MESSAGE_NOT_CORRELATED: nothing waits (any more)")
    @blp.alt_response(409, schema=ErrorEnvelopeSchema, description="MESSAGE_AMBIGUOUS: several match and not 'all'")
    @blp.alt_response(422, schema=ErrorEnvelopeSchema, description="EXPRESSION_ERROR (or another 422) running on")
    def post(self, body: dict[str, Any], query: dict[str, Any]) -> dict[str, Any]:
        """Deliver a message to the instance waiting for it, else start a process on its message start event."""
        grant = authorize("message.correlate", query.get("user"))
        result = get_runtime().correlate_message(
            body["messageName"],
            business_key=body.get("businessKey") or None,
            instance_id=body.get("processInstanceId"),
            correlation=body["correlationKeys"],
            variables=body["processVariables"],
            all_matches=body["all"],
            user=grant.user,
        )
        return envelope(result)


@blp.route("/signal")
class BroadcastSignal(MethodView):
    @blp.arguments(SignalBodySchema)
    @blp.arguments(UserQuerySchema, location="query")
    @blp.response(200, SignalResultEnvelope)
    @blp.alt_response(422, schema=ErrorEnvelopeSchema, description="EXPRESSION_ERROR running on")
    def post(self, body: dict[str, Any], query: dict[str, Any]) -> dict[str, Any]:
        """Deliver a signal to every instance waiting for it and start every process with that signal start."""
        grant = authorize("signal.broadcast", query.get("user"))
        return envelope(get_runtime().broadcast_signal(body["name"], body["variables"], user=grant.user))


@blp.route("/condition")
class EvaluateConditions(MethodView):
    @blp.arguments(ConditionBodySchema)
    @blp.arguments(UserQuerySchema, location="query")
    @blp.response(200, IdListEnvelope)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="PROCESS_NOT_FOUND: no process has processKey")
    @blp.alt_response(422, schema=ErrorEnvelopeSchema, description="EXPRESSION_ERROR evaluating or running on")
    def post(self, body: dict[str, Any], query: dict[str, Any]) -> dict[str, Any]:
        """Start every process whose conditional start event holds for the variables; the new instance ids."""
        grant = authorize("condition.evaluate", query.get("user"))
        started = get_runtime().evaluate_conditions(
            body["variables"],
            process_key=body.get("processKey") or None,
            business_key=body.get("businessKey") or None,
            user=grant.user,
        )
        return envelope(started)
