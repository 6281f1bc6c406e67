"""The HTTP API: flask-smorest blueprints under ``/BPMREST/service/runtime``, schemas, error mapping."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_smorest import Api

from bpm.api import (
    definitions,
    diagrams,
    external_tasks,
    forms,
    health,
    identity,
    instances,
    messages,
    pages,
    process,
    tasks,
)
from bpm.api.auth import auth_modes, init_auth
from bpm.api.common import limit_request_body
from bpm.api.envelope import ErrorEnvelopeSchema
from bpm.api.errors import register_error_handlers
from bpm.api.headers import init_cross_origin_check, init_security_headers
from bpm.api.idempotency import init_idempotency

BLUEPRINTS = (
    process.blp,
    tasks.blp,
    instances.blp,
    instances.list_blp,
    messages.blp,
    external_tasks.blp,
    definitions.blp,
    diagrams.blp,
    identity.blp,
    health.blp,
    forms.blp,
)


class BpmApi(Api):
    """flask-smorest's Api answering every error with the envelope of API.md."""

    ERROR_SCHEMA = ErrorEnvelopeSchema

    def _register_error_handlers(self) -> None:
        register_error_handlers(self._app)


SECURITY_SCHEMES = {
    "bearerAuth": {
        "type": "http",
        "scheme": "bearer",
        "description": "a signed JWT (BPM_AUTH=jwt) or a static API key (BPM_AUTH=apikey)",
    },
    "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "a static API key"},
}


def init_api(app: Flask) -> BpmApi:
    """Create the Api, register every blueprint, the error handlers and the request hooks.

    Before each request, in this order: request id, authentication, body size limit.
    """
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep API.md's field order
    modes = auth_modes(app.config.get("BPM_AUTH"))
    if modes:
        security: list[dict[str, list[str]]] = [{"bearerAuth": []}]
        if "apikey" in modes:
            security.append({"apiKeyHeader": []})
        app.config["API_SPEC_OPTIONS"] = {**app.config.get("API_SPEC_OPTIONS", {}), "security": security}
    pages.use_packaged_docs(app)
    api = BpmApi(app)
    for name, scheme in SECURITY_SCHEMES.items():
        api.spec.components.security_scheme(name, scheme)
    init_cross_origin_check(app)
    init_auth(app)
    app.before_request(limit_request_body)
    init_idempotency(app)  # after authentication and the body limit
    init_security_headers(app)
    for blueprint in BLUEPRINTS:
        api.register_blueprint(blueprint)
    pages.init_pages(app)
    merge_request_hooks(app)
    return api


def merge_request_hooks(app: Flask) -> None:
    """Run the app-wide before- and after-request hooks registered so far as one hook each.

    Same order and effect (the before hooks in order until one answers, the after hooks in
    reverse order of registration), without Flask's per-hook ``ensure_sync`` lookups. Hooks
    registered later run after the merged before hook and before the merged after hook, as
    they would have.
    """
    befores = list(app.before_request_funcs.get(None, ()))
    afters = list(reversed(app.after_request_funcs.get(None, ())))

    def before_request() -> Any:
        for hook in befores:
            answer = hook()
            if answer is not None:
                return answer
        return None

    def after_request(response: Any) -> Any:
        for hook in afters:
            response = hook(response)
        return response

    if len(befores) > 1:
        app.before_request_funcs[None] = [before_request]
    if len(afters) > 1:
        app.after_request_funcs[None] = [after_request]


__all__ = ["BpmApi", "init_api"]
