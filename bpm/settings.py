"""Configuration from the environment, and the composition of a runtime from it, without Flask.

``app.py`` (the web service) and ``bpm.cli`` (the timer worker, ``bpm test``) both
build their runtime here, so the worker never imports the app factory and imports
keep pointing one way: ``bpm`` may import ``backends``, never ``app`` or Flask.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import backends
from backends.base import Backend
from backends.memory import MemoryBackend
from bpm.definitions import DeployReport
from bpm.errors import BackendUnavailable
from bpm.expressions.beans import load_beans
from bpm.runtime import Runtime, epoch_ms

MIB = 1024 * 1024
#: the folder of app.py, where a relative process folder is looked up when missing in the cwd
ROOT = Path(__file__).resolve().parent.parent

DEFAULTS: dict[str, Any] = {
    "BPM_BACKEND": "memory://",
    "BPM_PROCESS_DIR": "processes",
    "BPM_DEPLOY_ON_START": True,
    "BPM_MAX_BODY_BYTES": 1 * MIB,
    "BPM_MAX_BPMN_BYTES": 5 * MIB,
    "BPM_CORS_ORIGINS": "",
    "BPM_LOG_LEVEL": "INFO",
    "BPM_LOG_FORMAT": "text",
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
}


def _flag(value: str) -> bool:
    return value.strip().lower() not in ("0", "false", "no", "off", "")


#: the documented environment variables and how to read each
ENVIRONMENT: dict[str, Any] = {
    "BPM_BACKEND": str,
    "BPM_PROCESS_DIR": str,
    "BPM_DEPLOY_ON_START": _flag,
    "BPM_MAX_BODY_BYTES": int,
    "BPM_MAX_BPMN_BYTES": int,
    "BPM_CORS_ORIGINS": str,
    "BPM_LOG_LEVEL": lambda v: v.strip().upper(),
    "BPM_LOG_FORMAT": lambda v: v.strip().lower(),
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
    "BPM_BEANS": str,
}
SCRIPT_CHECKS = ("runtime", "deploy")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


def from_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    """The documented variables present in ``environ``, converted. Raises ValueError naming a bad one."""
    values: dict[str, Any] = {}
    for name, convert in ENVIRONMENT.items():
        if name in environ:
            try:
                values[name] = convert(environ[name])
            except ValueError as exc:
                raise ValueError(f"environment variable {name}={environ[name]!r} is not valid: {exc}") from exc
    return values


def load(overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Defaults, then the environment, then ``overrides``: the configuration outside Flask."""
    config = dict(DEFAULTS)
    config.update(from_environment(os.environ if environ is None else environ))
    config.update(overrides or {})
    return config


def process_dir(value: str | os.PathLike[str]) -> Path:
    """The process folder; a relative one missing here falls back to the one next to app.py."""
    path = Path(value)
    if not path.is_absolute() and not path.is_dir() and (ROOT / path).is_dir():
        return ROOT / path
    return path


def reject_scripts(value: Any) -> bool:
    """``BPM_SCRIPT_CHECK``: ``runtime`` (422 when reached) or ``deploy`` (refused at deployment)."""
    check = str(value or "runtime").strip().lower()
    if check not in SCRIPT_CHECKS:
        raise ValueError(f"BPM_SCRIPT_CHECK={value!r} is not one of {', '.join(SCRIPT_CHECKS)}")
    return check == "deploy"


def timer_interval(value: Any) -> float:
    """``BPM_TIMER_INTERVAL`` in seconds: more than 0, at most an hour. Raises ValueError."""
    interval = float(value)
    if not 0 < interval <= 3600:
        raise ValueError(f"BPM_TIMER_INTERVAL={value!r} must be more than 0 and at most 3600 seconds")
    return interval


def timers_in_web(config: Mapping[str, Any], backend: Backend) -> bool:
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


def build_backend(config: Mapping[str, Any]) -> Backend:
    """The backend object given as ``BPM_BACKEND_INSTANCE`` (tests), else the one ``BPM_BACKEND`` names."""
    instance = config.get("BPM_BACKEND_INSTANCE")
    return instance if isinstance(instance, Backend) else backends.backend_from_url(config["BPM_BACKEND"])


def build_runtime(config: Mapping[str, Any], backend: Backend) -> Runtime:
    """The use cases on ``backend``, configured as ``config`` says. Raises ValueError on a bad value."""
    return Runtime(
        backend,
        process_dir(config["BPM_PROCESS_DIR"]),
        now_ms=config.get("BPM_CLOCK") or epoch_ms,
        max_bpmn_bytes=int(config["BPM_MAX_BPMN_BYTES"]),
        reject_scripts=reject_scripts(config["BPM_SCRIPT_CHECK"]),
        unhandled_bpmn_error=config.get("BPM_UNHANDLED_BPMN_ERROR", "end"),
        beans=load_beans(config.get("BPM_BEANS")),
    )


def deploy_process_folder(runtime: Runtime, log: logging.Logger) -> DeployReport | None:
    """Deploy every file of the process folder and log each outcome; a bad file is never fatal.

    Returns the report, or None when the deployment itself failed (backend unreachable ...).
    """
    try:
        report = runtime.deploy_directory()
    except BackendUnavailable as exc:  # /ready deploys again once the backend answers
        log.error("deploying the process folder %s failed: %s", runtime.process_dir, exc.message)
        return None
    except Exception:  # start-up survives a parser bug too
        log.exception("deploying the process folder %s failed", runtime.process_dir)
        return None
    for error in report.errors:
        log.error("cannot deploy %s: %s", error["file"], error["message"])
    for definition in report.deployed:
        log.info("deployed %s (%s) from %s", definition.definition_id, definition.name, definition.file)
    if not report.deployed and not report.errors:
        log.warning("the process folder %s has no BPMN files", runtime.process_dir)
    return report


def backend_label(backend: Backend) -> str:
    """The backend's URL without credentials or query (``redis+cluster://h1:7000,h2:7001`` too), for logs."""
    url = getattr(backend, "url", None)
    if not isinstance(url, str):
        return type(backend).__name__
    without_query = url.split("?", 1)[0].split("#", 1)[0]
    return re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/]*@", r"\1", without_query)
