"""The application factory: configuration layers, backend, runtime, API (with authentication), CORS,
and the in-web timer loop of a single-process setup.

``app:create_app()`` is the WSGI entry point (gunicorn, ``flask --app app run``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask
from flask_cors import CORS

import backends
from backends.base import Backend
from backends.memory import MemoryBackend
from bpm import worker
from bpm.api import init_api
from bpm.runtime import Runtime, epoch_ms

MIB = 1024 * 1024
HERE = Path(__file__).resolve().parent

DEFAULTS: dict[str, Any] = {
    "BPM_BACKEND": "memory://",
    "BPM_PROCESS_DIR": "processes",
    "BPM_DEPLOY_ON_START": True,
    "BPM_MAX_BODY_BYTES": 1 * MIB,
    "BPM_MAX_BPMN_BYTES": 5 * MIB,
    "BPM_CORS_ORIGINS": "",
    "BPM_LOG_LEVEL": None,
    "BPM_AUTH": "off",
    "BPM_JWT_SECRET": "",
    "BPM_JWT_PUBLIC_KEY_FILE": "",
    "BPM_JWT_ALGORITHMS": "",
    "BPM_JWT_ISSUER": "",
    "BPM_JWT_AUDIENCE": "",
    "BPM_JWT_LEEWAY": 30,
    "BPM_JWT_USER_CLAIM": "sub",
    "BPM_JWT_GROUPS_CLAIM": "groups",
    "BPM_JWT_ROLES_CLAIM": "roles",
    "BPM_API_KEYS": "",
    "BPM_API_KEY_ADMINS": "",
    "BPM_ADMIN_ROLE": "admin",
    "BPM_WORKER_ROLE": "worker",
    "BPM_TIMERS_IN_WEB": "auto",
    "BPM_TIMER_INTERVAL": 1.0,
    "BPM_SCRIPT_CHECK": "runtime",
    "BPM_UNHANDLED_BPMN_ERROR": "end",
    #: tests only: a callable giving the time in epoch ms (the runtime's clock)
    "BPM_CLOCK": None,
    "API_TITLE": "BPM Process Runtime",
    "API_VERSION": "1.0.0",
    "OPENAPI_VERSION": "3.0.3",
    "OPENAPI_URL_PREFIX": "/",
    "OPENAPI_JSON_PATH": "openapi.json",
    "OPENAPI_SWAGGER_UI_PATH": "docs",
    "OPENAPI_SWAGGER_UI_URL": "https://cdn.jsdelivr.net/npm/swagger-ui-dist/",
}

#: the documented environment variables and how to read each
ENVIRONMENT: dict[str, Any] = {
    "BPM_BACKEND": str,
    "BPM_PROCESS_DIR": str,
    "BPM_DEPLOY_ON_START": lambda v: v.strip().lower() not in ("0", "false", "no", "off", ""),
    "BPM_MAX_BODY_BYTES": int,
    "BPM_MAX_BPMN_BYTES": int,
    "BPM_CORS_ORIGINS": str,
    "BPM_LOG_LEVEL": lambda v: v.strip().upper(),
    "BPM_AUTH": str,
    "BPM_JWT_SECRET": str,
    "BPM_JWT_PUBLIC_KEY_FILE": str,
    "BPM_JWT_ALGORITHMS": str,
    "BPM_JWT_ISSUER": str,
    "BPM_JWT_AUDIENCE": str,
    "BPM_JWT_LEEWAY": int,
    "BPM_JWT_USER_CLAIM": str,
    "BPM_JWT_GROUPS_CLAIM": str,
    "BPM_JWT_ROLES_CLAIM": str,
    "BPM_API_KEYS": str,
    "BPM_API_KEY_ADMINS": str,
    "BPM_ADMIN_ROLE": str,
    "BPM_WORKER_ROLE": str,
    "BPM_TIMERS_IN_WEB": str,
    "BPM_TIMER_INTERVAL": float,
    "BPM_SCRIPT_CHECK": str,
    "BPM_UNHANDLED_BPMN_ERROR": lambda v: v.strip().lower(),
}
SCRIPT_CHECKS = ("runtime", "deploy")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


def _from_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, convert in ENVIRONMENT.items():
        if name in environ:
            try:
                values[name] = convert(environ[name])
            except ValueError as exc:
                raise ValueError(f"environment variable {name}={environ[name]!r} is not valid: {exc}") from exc
    return values


def _process_dir(value: str | os.PathLike[str]) -> Path:
    """The process folder; a relative one missing here falls back to the one next to app.py."""
    path = Path(value)
    if not path.is_absolute() and not path.is_dir() and (HERE / path).is_dir():
        return HERE / path
    return path


def _deploy_process_folder(app: Flask, runtime: Runtime) -> None:
    """Deploy every file of the process folder; a bad file is logged, never fatal."""
    try:
        report = runtime.deploy_directory()
    except Exception:  # start-up survives an unreachable backend or a parser bug
        app.logger.exception("deploying the process folder %s failed", runtime.process_dir)
        return
    for error in report.errors:
        app.logger.error("cannot deploy %s: %s", error["file"], error["message"])
    for definition in report.deployed:
        app.logger.info("deployed %s from %s", definition.definition_id, definition.file)


def _reject_scripts(value: Any) -> bool:
    """``BPM_SCRIPT_CHECK``: ``runtime`` (422 when reached) or ``deploy`` (refused at deployment)."""
    check = str(value or "runtime").strip().lower()
    if check not in SCRIPT_CHECKS:
        raise ValueError(f"BPM_SCRIPT_CHECK={value!r} is not one of {', '.join(SCRIPT_CHECKS)}")
    return check == "deploy"


def _timers_in_web(config: Mapping[str, Any], backend: Backend) -> bool:
    """``BPM_TIMERS_IN_WEB``: on, off, or ``auto`` (on for the memory backend); never under TESTING."""
    value = config["BPM_TIMERS_IN_WEB"]
    text = str(value).strip().lower() if not isinstance(value, bool) else ("true" if value else "false")
    if text == "auto":
        wanted = isinstance(backend, MemoryBackend)
    elif text in _TRUE or text in _FALSE:
        wanted = text in _TRUE
    else:
        raise ValueError(f"BPM_TIMERS_IN_WEB={value!r} is not auto, true or false")
    return wanted and not config.get("TESTING")


def _timer_interval(value: Any) -> float:
    interval = float(value)
    if not 0 < interval <= 3600:
        raise ValueError(f"BPM_TIMER_INTERVAL={value!r} must be more than 0 and at most 3600 seconds")
    return interval


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the service: defaults, then environment, then FLASK_* variables, then ``config``."""
    app = Flask(__name__, static_folder=None)
    app.config.from_mapping(DEFAULTS)
    app.config.from_mapping(_from_environment(os.environ))
    app.config.from_prefixed_env()
    app.config.from_mapping(config or {})
    if "MAX_CONTENT_LENGTH" not in (config or {}):
        app.config["MAX_CONTENT_LENGTH"] = int(app.config["BPM_MAX_BODY_BYTES"])
    if app.config["BPM_LOG_LEVEL"]:
        app.logger.setLevel(app.config["BPM_LOG_LEVEL"])

    interval = _timer_interval(app.config["BPM_TIMER_INTERVAL"])
    backend = backends.init_app(app)
    runtime = Runtime(
        backend,
        _process_dir(app.config["BPM_PROCESS_DIR"]),
        now_ms=app.config["BPM_CLOCK"] or epoch_ms,
        max_bpmn_bytes=int(app.config["BPM_MAX_BPMN_BYTES"]),
        reject_scripts=_reject_scripts(app.config["BPM_SCRIPT_CHECK"]),
        unhandled_bpmn_error=app.config["BPM_UNHANDLED_BPMN_ERROR"],
    )
    app.extensions["bpm_runtime"] = runtime
    if app.config["BPM_DEPLOY_ON_START"]:
        _deploy_process_folder(app, runtime)
    if _timers_in_web(app.config, backend):
        app.extensions["bpm_timers_stop"] = worker.start_in_thread(runtime, interval)
        app.logger.info("firing timers in this process every %.1f s", interval)

    init_api(app)
    origins = [o.strip() for o in str(app.config["BPM_CORS_ORIGINS"]).split(",") if o.strip()]
    if origins:
        CORS(app, origins=origins, expose_headers=["X-Request-Id", "WWW-Authenticate"])
    return app


if __name__ == "__main__":
    create_app().run(host="0.0.0.0", port=int(os.environ.get("PORT", "5000")))
