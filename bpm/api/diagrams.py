"""Process diagrams as SVG (extension, API.md "Pages for people").

``GET …/processes/<key>/diagram.svg[?version=N]`` draws a deployed process;
``GET …/instance/<id>/diagram.svg`` draws an instance's process with the
classes ``bpm-active`` (a token waits there), ``bpm-done`` (entered and left;
sequence flows between such elements too) and ``bpm-incident``, from the
instance view, its history and its incidents. Drawing is :mod:`bpm.diagram`.
"""

from __future__ import annotations

from typing import Any

from flask import Response
from marshmallow import fields, validate

from bpm.api.common import BASE_PATH, INSTANCE_ID, Blueprint, get_runtime, path_parameter, shown, valid_instance_id
from bpm.api.envelope import ErrorEnvelopeSchema
from bpm.api.flaskapp import MethodView
from bpm.api.policy import authorize
from bpm.api.schemas import QuerySchema
from bpm.diagram import Highlights, draw
from bpm.engine.engine import waiting_elements
from bpm.errors import ProcessNotFound

blp = Blueprint("diagrams", __name__, url_prefix=BASE_PATH, description="Process diagrams (SVG)")

SVG = "image/svg+xml"
KEY_LIMIT = 200
PROCESS_KEY = path_parameter(
    "key", "a deployed process's key (its BPMN id; else 404)", type="string", minLength=1, maxLength=200
)
SVG_RESPONSE = {"description": "the diagram", "content": {SVG: {"schema": {"type": "string"}}}}


class DiagramQuerySchema(QuerySchema):
    version = fields.Integer(
        strict=False,
        validate=validate.Range(min=1, max=2**31),
        metadata={"description": "the version to draw (default: the latest)"},
    )


def _svg(text: str) -> Response:
    return Response(text, mimetype=SVG)


@blp.route("/processes/<key>/diagram.svg", parameters=[PROCESS_KEY])
class ProcessDiagram(MethodView):
    @blp.arguments(DiagramQuerySchema, location="query")
    @blp.doc(responses={"200": SVG_RESPONSE})
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="PROCESS_NOT_FOUND: no such process or version")
    def get(self, query: dict[str, Any], key: str) -> Response:
        """The process drawn from its BPMN DI (or laid out automatically), each shape a g[data-element-id]."""
        authorize("process.list")
        if not key or len(key) > KEY_LIMIT or not key.isprintable():
            raise ProcessNotFound(f"no deployed process has the key '{shown(key)}'")
        runtime = get_runtime()
        runtime.cache.refresh_if_stale()
        version = query.get("version")
        definition = runtime.cache.find(key=key, version=None if version is None else str(version))
        return _svg(draw(definition.xml, definition.key, title=definition.name or definition.key).svg)


@blp.route("/instance/<instance_id>/diagram.svg", parameters=[INSTANCE_ID])
class InstanceDiagram(MethodView):
    @blp.doc(responses={"200": SVG_RESPONSE})
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="INSTANCE_NOT_FOUND: no such process instance")
    def get(self, instance_id: str) -> Response:
        """The instance's process with where it waits (bpm-active), what ran (bpm-done), its incidents."""
        authorize("instance.read")
        runtime = get_runtime()
        instance = runtime.instance(valid_instance_id(instance_id))
        definition = runtime.cache.get(instance.definition_id)
        incidents = [i.get("element_id") or i.get("elementId") for i in runtime.incidents(instance.id)]
        highlights = Highlights.of(
            active=waiting_elements(instance.state),
            history=runtime.history(instance.id),
            incidents=[i for i in incidents if isinstance(i, str)],
        )
        title = f"{instance.process_name or definition.key} ({instance.id})"
        return _svg(draw(definition.xml, definition.key, title=title, highlights=highlights).svg)
