"""What every resource module shares: the Blueprint with our body parser, the runtime, id checks."""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable
from typing import Any, NoReturn, cast

import flask_smorest
import marshmallow as ma
from flask import Request, Response
from flask.json.provider import DefaultJSONProvider
from flask_smorest.utils import resolve_schema_instance
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.exceptions import RequestEntityTooLarge, UnsupportedMediaType
from werkzeug.sansio.utils import get_content_length

from bpm.api.envelope import PlainEnvelope
from bpm.api.flaskapp import BpmResponse, app_context, current_request
from bpm.errors import ExternalTaskNotFound, InstanceNotFound, NotFound, TaskNotFound, ValidationError
from bpm.jsontext import one_shot
from bpm.runtime import Runtime

BASE_PATH = "/BPMREST/service/runtime"
MAX_JSON_DEPTH = 64
BODY_LIMIT_SLACK = 64 * 1024
ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,200}")


def path_parameter(name: str, description: str, **schema: object) -> dict[str, object]:
    """The OpenAPI doc of a path parameter (flask-smorest lets it replace the generated one)."""
    return {"in": "path", "name": name, "required": True, "description": description, "schema": schema}


#: ids are checked by :func:`valid_task_id`/:func:`valid_instance_id`; any other shape is a 404
ID_SCHEMA: dict[str, object] = {"type": "string", "pattern": f"^{ID_PATTERN.pattern}$", "maxLength": 200}
TASK_ID = path_parameter("task_id", "a task id (an unknown one, or one of another shape, is 404)", **ID_SCHEMA)
INSTANCE_ID = path_parameter("instance_id", "a process instance id (else 404)", **ID_SCHEMA)
EXTERNAL_TASK_ID = path_parameter("external_task_id", "an external task id (else 404)", **ID_SCHEMA)
INCIDENT_ID = path_parameter("incident_id", "a timer incident id, as …/incidents lists it (else 404)", **ID_SCHEMA)


def get_runtime() -> Runtime:
    """The use cases of the current app (built by ``create_app``)."""
    runtime: Runtime = app_context().app.extensions["bpm_runtime"]
    return runtime


def limit_request_body() -> None:
    """Refuse an oversized body up front (413), on every route, whether or not it reads it.

    A view class may name a bigger limit in ``max_body_config`` (a config key), plus
    :data:`BODY_LIMIT_SLACK` for multipart framing.
    """
    req = current_request()
    app = app_context().app
    view = app.view_functions.get(req.endpoint or "")
    key = getattr(getattr(view, "view_class", None), "max_body_config", None)
    # the limit is set on the request either way: reading the body asks for it again
    limit = int(app.config[key]) + BODY_LIMIT_SLACK if key else app.config["MAX_CONTENT_LENGTH"]
    req.max_content_length = limit
    if limit is not None:
        environ = req.environ  # req.content_length, without the header look-ups that raise for a missing one
        length = get_content_length(environ.get("CONTENT_LENGTH"), environ.get("HTTP_TRANSFER_ENCODING"))
        if length is not None and length > limit:
            raise RequestEntityTooLarge()


def shown(value: str, limit: int = 80) -> str:
    """A client-supplied value made safe to quote in a message (printable, bounded)."""
    text = "".join(c if c.isprintable() else "?" for c in value[:limit])
    return text + "..." if len(value) > limit else text


def valid_task_id(value: str) -> str:
    """A task id from the path; any other shape is an unknown task (never a 500)."""
    if not ID_PATTERN.fullmatch(value):
        raise TaskNotFound(f"task '{shown(value)}' does not exist")
    return value


def valid_instance_id(value: str) -> str:
    """An instance id from the path; any other shape is an unknown instance."""
    if not ID_PATTERN.fullmatch(value):
        raise InstanceNotFound(f"process instance '{shown(value)}' does not exist")
    return value


def valid_external_task_id(value: str) -> str:
    """An external task id from the path; any other shape is an unknown external task."""
    if not ID_PATTERN.fullmatch(value):
        raise ExternalTaskNotFound(f"external task '{shown(value)}' does not exist")
    return value


def valid_incident_id(value: str) -> str:
    """An incident id from the path; any other shape is an unknown incident."""
    if not ID_PATTERN.fullmatch(value):
        raise NotFound(f"incident '{shown(value)}' does not exist", code="INCIDENT_NOT_FOUND")
    return value


def _invalid_json(reason: str) -> NoReturn:
    raise ValidationError(
        f"the request body is not valid JSON ({reason})", data={"body": [f"Invalid JSON body: {reason}."]}
    )


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number out of range: {text[:20]}")
    return value


def _too_deep(value: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def parse_json_body(raw: bytes) -> Any:
    """Decode a JSON body strictly: no NaN/Infinity, no overflowing numbers, bounded nesting."""
    try:
        value = json.loads(raw, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError:
        _invalid_json(f"nested deeper than {MAX_JSON_DEPTH} levels")
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, too many digits, NaN
        _invalid_json(str(exc).split("\n")[0][:120])
    if _too_deep(value, MAX_JSON_DEPTH):
        _invalid_json(f"nested deeper than {MAX_JSON_DEPTH} levels")
    return value


#: webargs locations of the query string, and how many loaded query strings are remembered
QUERY_LOCATIONS = frozenset({"query", "querystring"})
QUERY_CACHE_SIZE = 1024


def _copy_arguments(loaded: dict[str, Any]) -> dict[str, Any]:
    """Loaded query arguments, as a new dict with new lists (the only mutable values)."""
    return {name: list(value) if type(value) is list else value for name, value in loaded.items()}


#: schema -> whether loading it gives any JSON object back as it is (see :func:`_takes_any_object`)
_ANY_OBJECT: dict[ma.Schema, bool] = {}


def _takes_any_object(schema: ma.Schema) -> bool:
    """A schema without fields, processors or validators that includes unknown fields:
    its ``load`` of a dict is a copy of it."""
    known = _ANY_OBJECT.get(schema)
    if known is None:
        known = (
            not schema.fields
            and not schema.many
            and not schema.partial
            and schema.unknown == ma.INCLUDE
            and not any(schema._hooks.values())
            and schema.dict_class is dict
        )
        _ANY_OBJECT[schema] = known
    return known


class JsonBodyParser(FlaskParser):
    """webargs' Flask parser, stricter about bodies and answering 400 instead of 422.

    An empty body is no body (every optional body may be left out, with or without a
    Content-Type); a non-empty body must say it is JSON (else 415).
    """

    DEFAULT_VALIDATION_STATUS = 400

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: (query schema, raw query string) -> what loading it gave (see :meth:`parse`)
        self._queries: dict[tuple[Any, bytes], dict[str, Any]] = {}

    def parse(self, argmap: Any, req: Request | None = None, **kwargs: Any) -> Any:
        """webargs' parse; a query string a query schema loaded before is answered from memory.

        Loading a query string depends on nothing but the schema and the string (the values
        are strings, numbers, booleans, None and lists of strings), so the same string gives
        the same arguments: each caller gets its own copy. Only successful loads are kept
        (an invalid query string fails as before), at most :data:`QUERY_CACHE_SIZE` of them.
        """
        if (
            kwargs.get("location") not in QUERY_LOCATIONS
            or not isinstance(argmap, ma.Schema)
            or kwargs.get("validate") is not None
            or kwargs.get("unknown", core._UNKNOWN_DEFAULT_PARAM) != core._UNKNOWN_DEFAULT_PARAM
        ):
            return super().parse(argmap, req, **kwargs)
        request_obj = req if req is not None else self.get_default_request()
        key = (argmap, request_obj.query_string)
        loaded = self._queries.get(key)
        if loaded is None:
            loaded = super().parse(argmap, request_obj, **kwargs)
            if len(self._queries) >= QUERY_CACHE_SIZE:
                self._queries.clear()
            self._queries[key] = _copy_arguments(loaded)
            return loaded
        return _copy_arguments(loaded)

    def _process_location_data(
        self,
        location_data: Any,
        schema: ma.Schema,
        req: Request,
        location: str,
        unknown: str | None,
        validators: Any,
    ) -> Any:
        """webargs' loading; a JSON object for a schema that takes any object as it is
        (:class:`~bpm.api.schemas.ObjectBodySchema`) is that object, without a schema load.

        Loading such a schema (no fields, no hooks, unknown fields included) copies the object's
        entries; anything but an object (or no body) goes through the schema as before, so its
        errors are the same.
        """
        if (
            (type(location_data) is dict or location_data is core.missing)
            and not validators
            and location == "json"
            and unknown == core._UNKNOWN_DEFAULT_PARAM
            and self.unknown == core._UNKNOWN_DEFAULT_PARAM
            and self.DEFAULT_UNKNOWN_BY_LOCATION.get(location) is None
            and _takes_any_object(schema)
        ):
            return {} if location_data is core.missing else dict(cast("dict[str, Any]", location_data))
        return super()._process_location_data(location_data, schema, req, location, unknown, validators)

    def get_default_request(self) -> Request:
        """The request itself, not Flask's proxy of it (webargs reads it many times per parse)."""
        return current_request()

    def _raw_load_json(self, req: Request) -> Any:
        raw = req.get_data(cache=True)
        if not raw.strip():
            return core.missing
        if not is_json_request(req):
            raise UnsupportedMediaType(
                f"the request body must be JSON (Content-Type application/json), not '{shown(req.mimetype or 'none')}'"
            )
        return parse_json_body(raw)


def json_response(body: Any, status: int) -> Response:
    """``body`` as the JSON response Flask's ``jsonify`` would make (the app's JSON provider).

    With Flask's default provider outside debug mode (compact JSON) the same bytes are written
    by an encoder made once for the provider's settings, into a response whose Content-Type
    is set as it is (Flask's provider builds an encoder and parses the mimetype per call).
    """
    app = app_context().app
    provider = app.json
    if (
        type(provider) is not DefaultJSONProvider
        or provider.compact is False
        or (provider.compact is None and app.debug)
    ):
        response = cast(Response, provider.response(body))
        response.status_code = status
        return response
    settings = (provider.ensure_ascii, provider.sort_keys, provider.default)
    encode = _ENCODERS.get(settings)
    if encode is None:
        ensure_ascii, sort_keys, default = settings
        encode = one_shot(
            json.JSONEncoder(ensure_ascii=ensure_ascii, sort_keys=sort_keys, default=default, separators=(",", ":"))
        )
        _ENCODERS[settings] = encode
    text = f"{encode(body)}\n".encode()
    response_class = app.response_class
    if issubclass(response_class, BpmResponse):
        return response_class.json_body(text, status)
    return cast(Response, response_class(text, status=status, mimetype="application/json"))


#: (ensure_ascii, sort_keys, default) -> the compact encoder Flask's provider would use (its encode)
_ENCODERS: dict[tuple[Any, ...], Callable[[Any], str]] = {}


#: ``arguments`` keywords that only document (the rest go to webargs' ``use_args``)
_DOC_ONLY_ARGUMENTS = frozenset({"content_type", "required", "description", "example", "examples"})


def _result_of(result: Any) -> Any:
    """A "view" handing back a result already made (see :meth:`Blueprint.response`)."""
    return result


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest's Blueprint with :class:`JsonBodyParser`, and three shortcuts that leave
    the OpenAPI document as it was (each decorator documents through flask-smorest's own):

    - ``arguments``: the schema is made once, not once per request (webargs builds a new
      ``Schema()`` per request when it is given a class), and the view gets what the parser
      parses in one wrapper (flask-smorest's and webargs' are two, with more look-ups);
    - ``response``: a view returning a :class:`~bpm.api.envelope.PlainEnvelope` is written as
      it is, without dumping it through the schema (which still documents it); any other
      result goes through flask-smorest's response wrapper;
    - ``alt_response`` only documents: it adds no wrapper (no call layer per request).
    """

    ARGUMENTS_PARSER = JsonBodyParser()

    def arguments(self, schema: Any, *args: Any, **kwargs: Any) -> Callable[[Any], Any]:
        schema = resolve_schema_instance(schema)
        document = super().arguments(schema, *args, **kwargs)
        if args or set(kwargs) - _DOC_ONLY_ARGUMENTS - {"location"}:
            return document  # type: ignore[no-any-return]  # webargs options: its own wrapper
        location = kwargs.get("location", "json")
        parse = self.ARGUMENTS_PARSER.parse

        def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
            @functools.wraps(func)
            def with_arguments(*f_args: Any, **f_kwargs: Any) -> Any:
                # as webargs' use_args: the parsed arguments after the positional ones
                return func(*f_args, parse(schema, location=location), **f_kwargs)

            with_arguments._apidoc = document(func)._apidoc  # type: ignore[attr-defined]
            return with_arguments

        return decorator

    def response(self, status_code: Any, *args: Any, **kwargs: Any) -> Callable[[Any], Any]:
        document = super().response(status_code, *args, **kwargs)
        status = int(status_code)

        def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
            dumped = document(_result_of)  # flask-smorest's wrapper, around a result already made

            @functools.wraps(func)
            def plain_or_dumped(*f_args: Any, **f_kwargs: Any) -> Any:
                result = func(*f_args, **f_kwargs)
                if type(result) is PlainEnvelope:
                    return json_response(result, status)
                return dumped(result)

            plain_or_dumped._apidoc = document(func)._apidoc  # type: ignore[attr-defined]
            return plain_or_dumped

        return decorator

    def alt_response(self, status_code: Any, *args: Any, **kwargs: Any) -> Callable[[Any], Any]:
        document = super().alt_response(status_code, *args, **kwargs)

        def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
            func._apidoc = document(func)._apidoc  # type: ignore[attr-defined]  # the doc, without the wrapper
            return func

        return decorator
