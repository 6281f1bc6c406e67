"""The HTTP API: flask-smorest blueprints under ``/BPMREST/service/runtime``, schemas, error mapping."""

from __future__ import annotations

from flask import Flask
from flask_smorest import Api

from bpm.api import definitions, health, identity, instances, process, tasks
from bpm.api.common import limit_request_body
from bpm.api.envelope import ErrorEnvelopeSchema
from bpm.api.errors import register_error_handlers

BLUEPRINTS = (process.blp, tasks.blp, instances.blp, definitions.blp, identity.blp, health.blp)


class BpmApi(Api):
    """flask-smorest's Api answering every error with the envelope of API.md."""

    ERROR_SCHEMA = ErrorEnvelopeSchema

    def _register_error_handlers(self) -> None:
        register_error_handlers(self._app)


def init_api(app: Flask) -> BpmApi:
    """Create the Api, register every blueprint and the error handlers."""
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep API.md's field order
    api = BpmApi(app)
    app.before_request(limit_request_body)
    for blueprint in BLUEPRINTS:
        api.register_blueprint(blueprint)
    return api


__all__ = ["BpmApi", "init_api"]
