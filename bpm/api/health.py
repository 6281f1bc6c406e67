"""``GET /health``: is the service and its backend working?"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask.views import MethodView

from backends.base import Backend
from bpm.api.common import Blueprint, get_runtime
from bpm.api.envelope import ErrorEnvelopeSchema, envelope
from bpm.api.schemas import HealthEnvelope
from bpm.errors import BackendUnavailable

blp = Blueprint("health", __name__, description="Liveness and backend reachability")


def backend_scheme(backend: Backend) -> str:
    """The backend's URL scheme (never the URL: it may hold a password)."""
    url = getattr(backend, "url", None)
    scheme = urlsplit(url).scheme if isinstance(url, str) else ""
    return scheme or (backend.schemes[0] if backend.schemes else type(backend).__name__)


@blp.route("/health")
class Health(MethodView):
    @blp.response(200, HealthEnvelope)
    @blp.alt_response(503, schema=ErrorEnvelopeSchema, description="BACKEND_UNAVAILABLE")
    @blp.doc(security=[])
    def get(self) -> dict[str, Any]:
        """200 while the service and its backend work, 503 while the backend is unreachable."""
        backend = get_runtime().backend
        try:
            backend.ping()
        except BackendUnavailable:
            raise
        except Exception as exc:  # any failure to answer means unavailable
            raise BackendUnavailable(f"the {backend_scheme(backend)} backend does not answer") from exc
        return envelope({"status": "UP", "backend": backend_scheme(backend)})
