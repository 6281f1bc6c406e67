"""The application factory: configuration layers, backend, runtime, API (with authentication), CORS,
and the in-web timer loop of a single-process setup.

``app:create_app()`` is the WSGI entry point (gunicorn, ``flask --app app run``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from flask import Flask
from flask_cors import CORS

import backends
from bpm import logs, settings, worker
from bpm.api import init_api
from bpm.api.flaskapp import BpmFlask
from bpm.api.health import init_readiness
from bpm.api.metrics import init_metrics

#: Flask- and API-level defaults; the service's own (BPM_*) are in bpm.settings
FLASK_DEFAULTS: dict[str, Any] = {
    "API_TITLE": "BPM Process Runtime",
    "API_VERSION": "1.0.0",
    "OPENAPI_VERSION": "3.0.3",
    "OPENAPI_URL_PREFIX": "/",
    "OPENAPI_JSON_PATH": "openapi.json",
    "OPENAPI_SWAGGER_UI_PATH": "docs",
    "OPENAPI_SWAGGER_UI_URL": "https://cdn.jsdelivr.net/npm/swagger-ui-dist/",
}
DEFAULTS: dict[str, Any] = {**settings.DEFAULTS, **FLASK_DEFAULTS}
ENVIRONMENT = settings.ENVIRONMENT
DEFAULT_HOST = "127.0.0.1"


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the service: defaults, then environment, then FLASK_* variables, then ``config``."""
    app = BpmFlask(__name__, static_folder=None)
    app.config.from_mapping(DEFAULTS)
    app.config.from_mapping(settings.from_environment(os.environ))
    app.config.from_prefixed_env()
    app.config.from_mapping(config or {})
    if "MAX_CONTENT_LENGTH" not in (config or {}):
        app.config["MAX_CONTENT_LENGTH"] = int(app.config["BPM_MAX_BODY_BYTES"])
    logs.configure(app.config["BPM_LOG_LEVEL"], app.config["BPM_LOG_FORMAT"])

    interval = settings.timer_interval(app.config["BPM_TIMER_INTERVAL"])
    backend = backends.init_app(app)
    runtime = settings.build_runtime(app.config, backend)
    app.extensions["bpm_runtime"] = runtime
    app.logger.info("backend %s, process folder %s", settings.backend_label(backend), runtime.process_dir)
    deployed = True
    if app.config["BPM_DEPLOY_ON_START"]:
        deployed = settings.deploy_process_folder(runtime, app.logger) is not None
    if settings.timers_in_web(app.config, backend):
        app.extensions["bpm_timers_stop"] = worker.start_in_thread(runtime, interval)
        app.logger.info("firing timers in this process every %.1f s", interval)

    init_metrics(app, runtime)
    init_api(app)
    init_readiness(app, deployed=deployed)
    origins = [o.strip() for o in str(app.config["BPM_CORS_ORIGINS"]).split(",") if o.strip()]
    if origins:
        CORS(app, origins=origins, expose_headers=["X-Request-Id", "WWW-Authenticate"])
    return app


if __name__ == "__main__":
    # loopback unless HOST says otherwise (the Procfile's gunicorn binds 0.0.0.0)
    create_app().run(host=os.environ.get("HOST", DEFAULT_HOST), port=int(os.environ.get("PORT", "5000")))
