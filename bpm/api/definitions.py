"""Process definitions: deployed processes, uploads, and the definition caches of all workers."""

from __future__ import annotations

from typing import Any

from flask import current_app, request
from werkzeug.exceptions import RequestEntityTooLarge, UnsupportedMediaType
from werkzeug.utils import secure_filename

from bpm.api.common import BASE_PATH, Blueprint, get_runtime
from bpm.api.envelope import ErrorEnvelopeSchema, envelope
from bpm.api.flaskapp import MethodView
from bpm.api.policy import authorize
from bpm.api.schemas import (
    ClassActionBodySchema,
    ClassActionEnvelope,
    DefinitionListEnvelope,
    DeploymentQuerySchema,
    RefreshEnvelope,
)
from bpm.errors import ValidationError

blp = Blueprint("definitions", __name__, url_prefix=BASE_PATH, description="Process definitions and caches")

RAW_BPMN_TYPES = ("application/xml", "text/xml", "application/octet-stream")
DEFAULT_UPLOAD_NAME = "upload.bpmn"
UPLOAD_BODY = {
    "required": True,
    "description": "one BPMN 2.0 file: the raw XML, or a multipart form field 'file'",
    "content": {
        **{t: {"schema": {"type": "string", "format": "binary"}} for t in RAW_BPMN_TYPES},
        "multipart/form-data": {
            "schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}
        },
    },
}


@blp.route("/refreshCache")
class RefreshCache(MethodView):
    @blp.response(200, RefreshEnvelope)
    def post(self) -> dict[str, Any]:
        """Redeploy the process folder and rebuild the definition cache of every worker."""
        authorize("cache.refresh")
        return envelope(get_runtime().refresh_cache())


@blp.route("/classAction")
class ClassAction(MethodView):
    @blp.arguments(ClassActionBodySchema)
    @blp.response(200, ClassActionEnvelope)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="PROCESS_NOT_FOUND: none of them exists")
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Refresh, first-deploy ('generate') or fetch the XML of ('file') specific processes."""
        authorize("class.action")
        result = get_runtime().class_action(
            body.get("fileNames") or [], event=body["event"], process_name=body.get("processName")
        )
        return envelope(result)


@blp.route("/processes")
class Processes(MethodView):
    @blp.response(200, DefinitionListEnvelope)
    def get(self) -> dict[str, Any]:
        """The deployed processes, latest version of each."""
        authorize("process.list")
        return envelope(get_runtime().process_definitions())


@blp.route("/deployments")
class Deployments(MethodView):
    max_body_config = "BPM_MAX_BPMN_BYTES"

    @blp.arguments(DeploymentQuerySchema, location="query")
    @blp.response(200, DefinitionListEnvelope)
    @blp.alt_response(400, schema=ErrorEnvelopeSchema, description="INVALID_BPMN / UNSUPPORTED_ELEMENT, data = where")
    @blp.alt_response(413, schema=ErrorEnvelopeSchema, description="PAYLOAD_TOO_LARGE: over BPM_MAX_BPMN_BYTES")
    @blp.alt_response(415, schema=ErrorEnvelopeSchema, description="UNSUPPORTED_MEDIA_TYPE: not XML or multipart")
    @blp.doc(requestBody=UPLOAD_BODY)
    def post(self, query: dict[str, Any]) -> dict[str, Any]:
        """Deploy an uploaded BPMN file (a new version only for processes whose content changed)."""
        authorize("deployment.create")
        data, uploaded_name = _uploaded_bpmn(current_app.config["BPM_MAX_BPMN_BYTES"])
        file = query.get("fileName") or secure_filename(uploaded_name or "") or DEFAULT_UPLOAD_NAME
        report = get_runtime().deploy_file(data, file=file, app_name=query["appName"])
        warnings = report.warnings_of(file)
        deployed = [
            {**definition.to_dict(), "definition_id": definition.definition_id, "warnings": warnings}
            for definition in report.deployed
        ]
        return envelope(deployed)


def _uploaded_bpmn(limit: int) -> tuple[bytes, str | None]:
    """The uploaded file's bytes and name (raw body or multipart field ``file``)."""
    if request.mimetype == "multipart/form-data":
        upload = request.files.get("file")
        if upload is None:
            raise ValidationError("the multipart field 'file' is missing", data={"file": ["Missing file."]})
        data, name = upload.read(limit + 1), upload.filename
    elif request.mimetype in RAW_BPMN_TYPES:
        data, name = request.get_data(cache=False), None
    else:
        raise UnsupportedMediaType(
            f"a deployment is a BPMN file sent as {', '.join(RAW_BPMN_TYPES)} or multipart/form-data"
        )
    if len(data) > limit:
        raise RequestEntityTooLarge()
    if not data.strip():
        raise ValidationError("the uploaded BPMN file is empty", data={"file": ["Empty file."]})
    return data, name
