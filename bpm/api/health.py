"""``GET /health`` (liveness: is the service and its backend working?) and ``GET /ready`` (readiness).

``/ready`` is 200 only when the backend answers and the process folder has been
deployed; a start-up whose deployment failed (backend down) deploys again on the
next ``/ready`` call that finds the backend answering, so the service recovers.
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, current_app

from backends.base import Backend
from bpm.api.common import Blueprint, get_runtime
from bpm.api.envelope import ErrorEnvelopeSchema, envelope
from bpm.api.flaskapp import MethodView
from bpm.api.schemas import HealthEnvelope
from bpm.errors import BackendUnavailable
from bpm.settings import deploy_process_folder

blp = Blueprint("health", __name__, description="Liveness and backend reachability")


def backend_scheme(backend: Backend) -> str:
    """The backend's URL scheme (never the URL: it may hold a password)."""
    url = getattr(backend, "url", None)
    scheme = urlsplit(url).scheme if isinstance(url, str) else ""
    return scheme or (backend.schemes[0] if backend.schemes else type(backend).__name__)


def check_backend(backend: Backend) -> None:
    """A real round trip to the backend (``health_check`` where it has one, else ``ping``).

    Raises BackendUnavailable (naming the scheme, never the URL) when it does not answer.
    """
    check = getattr(backend, "health_check", None)
    try:
        check() if callable(check) else backend.ping()
    except BackendUnavailable:
        raise
    except Exception as exc:  # any failure to answer means unavailable
        raise BackendUnavailable(f"the {backend_scheme(backend)} backend does not answer") from exc


@blp.route("/health")
class Health(MethodView):
    @blp.response(200, HealthEnvelope)
    @blp.alt_response(503, schema=ErrorEnvelopeSchema, description="BACKEND_UNAVAILABLE")
    @blp.doc(security=[])
    def get(self) -> dict[str, Any]:
        """200 while the service and its backend work, 503 while the backend is unreachable."""
        backend = get_runtime().backend
        check_backend(backend)
        return envelope({"status": "UP", "backend": backend_scheme(backend)})


class Readiness:
    """Whether the process folder has been deployed; deploys it again while it has not."""

    def __init__(self, deployed: bool) -> None:
        self.deployed = deployed
        self._lock = threading.Lock()

    def ensure_deployed(self) -> bool:
        if self.deployed:
            return True
        with self._lock:
            if not self.deployed:
                self.deployed = deploy_process_folder(get_runtime(), current_app.logger) is not None
        return self.deployed


def init_readiness(app: Flask, *, deployed: bool) -> None:
    """``deployed``: whether start-up deployed the process folder (or was told not to)."""
    app.extensions["bpm_readiness"] = Readiness(deployed)


@blp.route("/ready")
class Ready(MethodView):
    @blp.response(200, HealthEnvelope)
    @blp.alt_response(503, schema=ErrorEnvelopeSchema, description="BACKEND_UNAVAILABLE or NOT_READY")
    @blp.doc(security=[])
    def get(self) -> dict[str, Any]:
        """200 when the backend answers and the process folder is deployed, 503 otherwise."""
        backend = get_runtime().backend
        check_backend(backend)
        readiness: Readiness = current_app.extensions["bpm_readiness"]
        if not readiness.ensure_deployed():
            raise BackendUnavailable("the process folder has not been deployed yet", code="NOT_READY")
        return envelope({"status": "READY", "backend": backend_scheme(backend)})
