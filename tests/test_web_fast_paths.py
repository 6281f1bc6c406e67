"""The web layer's shortcuts give what the generic paths they replace give."""

from __future__ import annotations

import functools
import logging
import re
import uuid
from typing import Any

import pytest
from flask import Flask, Response, redirect
from werkzeug.exceptions import HTTPException

from backends.memory import MemoryBackend
from bpm import logs
from bpm.api import metrics as api_metrics
from bpm.api.common import Blueprint, json_response
from bpm.api.envelope import plain_envelope
from bpm.api.errors import new_request_id
from bpm.api.flaskapp import BpmFlask, BpmResponse, app_context, current_request
from bpm.api.schemas import ObjectBodySchema
from tests.api_support import make_app


@pytest.fixture
def app() -> Flask:
    return make_app(MemoryBackend())


def test_the_service_runs_on_its_own_flask_and_response_classes(app: Flask) -> None:
    assert isinstance(app, BpmFlask) and app.response_class is BpmResponse
    dunders = {"__doc__", "__module__", "__annotations__"}
    shadowed = {name for name in vars(BpmResponse) if hasattr(Response, name)} - dunders
    # nothing else of werkzeug's (such as the ``json`` property) is hidden
    assert shadowed == {"get_wsgi_headers", "get_app_iter"}
    answer: Any = app.test_client().get("/health").json  # werkzeug's property, not a method
    assert answer["code"] == 0


@pytest.mark.parametrize("status", [200, 201, 409])
def test_a_json_response_is_the_one_werkzeugs_constructor_makes(status: int) -> None:
    body = b'{"data":"x"}\n'
    made = BpmResponse(body, status=status, mimetype="application/json")
    cloned = BpmResponse.json_body(body, status)
    assert list(cloned.headers.items()) == list(made.headers.items())
    assert (cloned.status, cloned.status_code, cloned.get_data()) == (made.status, made.status_code, body)
    assert list(cloned.__dict__) == list(made.__dict__)
    other = BpmResponse.json_body(b"{}\n", status)
    other.call_on_close(lambda: None)
    assert cloned._on_close == [] and other.headers is not cloned.headers  # nothing shared between responses


def test_json_response_writes_the_bytes_of_flasks_provider(app: Flask) -> None:
    body = plain_envelope([{"name": "é", "none": None, "numbers": [1, 2.5], "nested": {"b": 1, "a": 2}}])
    with app.test_request_context("/"):
        expected: Any = app.json.response(body)
        written = json_response(body, 200)
        assert written.get_data() == expected.get_data() and list(written.headers) == list(expected.headers)
        app.debug = True  # Flask indents in debug mode: so does json_response (through the provider)
        indented: Any = app.json.response(body)
        assert json_response(body, 200).get_data() == indented.get_data()
        assert b"\n  " in json_response(body, 200).get_data()


def test_wsgi_headers_are_werkzeugs() -> None:
    environ = {"wsgi.url_scheme": "http", "HTTP_HOST": "example.org", "SERVER_NAME": "x", "SERVER_PORT": "80"}
    plain = BpmResponse.json_body(b"{}\n", 200)
    plain.headers["X-Extra"] = "1"
    assert list(plain.get_wsgi_headers(environ)) == list(super(BpmResponse, plain).get_wsgi_headers(environ))
    moved = BpmResponse("", status=302, headers={"Location": "/élsewhere"})
    assert moved.get_wsgi_headers(environ)["Location"] == "/%C3%A9lsewhere"  # werkzeug's IRI handling
    unsized = BpmResponse(iter([b"a"]), status=200)  # a stream: no length is made up
    assert "Content-Length" not in unsized.get_wsgi_headers(environ)
    empty = BpmResponse(b"", status=204)
    assert list(empty.get_wsgi_headers(environ)) == list(super(BpmResponse, empty).get_wsgi_headers(environ))


def test_a_redirect_still_gets_an_absolute_location_and_the_security_headers(app: Flask) -> None:
    @app.get("/moved-for-test")
    def moved() -> Any:
        return redirect("/health")

    response = app.test_client().get("/moved-for-test")
    assert response.status_code == 302 and response.headers["Location"] == "/health"
    assert response.headers["X-Frame-Options"] == "DENY" and response.headers["X-Request-Id"]


def test_a_view_that_sets_its_own_request_id_or_csp_header_keeps_one_of_each(app: Flask) -> None:
    @app.get("/own-headers-for-test")
    def own() -> Any:
        return "x", 200, {"X-Request-Id": "set-by-the-view", "Content-Security-Policy": "default-src 'self'"}

    response = app.test_client().get("/own-headers-for-test", headers={"X-Request-Id": "from-the-client-1"})
    assert response.headers.getlist("X-Request-Id") == ["from-the-client-1"]
    assert response.headers.getlist("Content-Security-Policy") == ["default-src 'self'"]


def test_ensure_sync_remembers_per_function_and_still_refuses_nothing_it_should_run(app: Flask) -> None:
    class View:
        def get(self) -> str:
            return "ok"

    first, second = View().get, View().get
    assert app.ensure_sync(first) is first and app.ensure_sync(second) is second
    assert app._coroutine_functions == {**app._coroutine_functions, View.get: False}  # type: ignore[attr-defined]

    async def coroutine() -> str:
        return "ok"

    with pytest.raises(RuntimeError, match="async"):  # Flask's answer without asgiref: not run as a plain function
        app.ensure_sync(coroutine)


def test_a_new_request_id_is_a_uuid4_hex() -> None:
    ids = {new_request_id() for _ in range(200)}
    assert len(ids) == 200
    for rid in ids:
        parsed = uuid.UUID(rid)
        assert parsed.hex == rid and parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_the_request_log_record_is_the_one_make_record_makes() -> None:
    fields = {"request_id": "r-1", "user": "u", "method": "GET", "route": "/x", "status": 200, "duration": 0.001}
    args = ("GET", "/x", 200, 1.0)
    made = api_metrics.request_log.makeRecord(
        "bpm.requests", logging.INFO, api_metrics.__file__, api_metrics._LOG_LINE, "%s %s %d %.1f ms", args, None,
        "_finished", fields,
    )  # fmt: skip
    copied = api_metrics._request_record(args, fields)
    assert type(copied) is logging.LogRecord and list(copied.__dict__) == list(made.__dict__)
    timed = {"created", "msecs", "relativeCreated"}
    assert {k: v for k, v in copied.__dict__.items() if k not in timed} == {
        k: v for k, v in made.__dict__.items() if k not in timed
    }
    assert abs(copied.created - made.created) < 5 and copied.getMessage() == "GET /x 200 1.0 ms"


def test_the_text_format_is_loggings_plus_the_request_fields() -> None:
    formatter = logs.formatter("text")
    plain = logging.Formatter(logs.TEXT_FORMAT)
    record = logging.LogRecord("bpm.requests", logging.INFO, __file__, 1, "%s done", ("it",), None)
    record.__dict__.update(request_id="r-2", user="u")
    assert formatter.format(record) == plain.format(record) + " request_id=r-2 user=u"
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        failed = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    assert formatter.format(failed) == plain.format(failed) and "ValueError: boom" in formatter.format(failed)


def test_an_object_body_is_taken_as_it_is_and_anything_else_is_refused_as_before(app: Flask) -> None:
    parser = Blueprint.ARGUMENTS_PARSER
    schema = ObjectBodySchema()
    body = {"b": 1, "a": {"x": [1, None]}, "c": "é"}
    with app.test_request_context("/", method="POST", json=body):
        loaded = parser.parse(schema, location="json")
        assert loaded == schema.load(body) == body and loaded is not body
    with app.test_request_context("/", method="POST"):
        assert parser.parse(schema, location="json") == {}
    with app.test_request_context("/", method="POST", json=[1, 2]), pytest.raises(HTTPException) as refused:
        parser.parse(schema, location="json")
    messages = getattr(refused.value, "data", {}).get("messages")
    assert refused.value.code == 400 and messages == {"json": {"_schema": ["Invalid input type."]}}


SERVER_ENVIRONS: list[dict[str, Any]] = [
    {"HTTP_HOST": "Example.ORG:8080"},
    {"HTTP_HOST": "example.org:80"},
    {"HTTP_HOST": "bücher.example"},  # IDNA-encoded by werkzeug
    {"HTTP_HOST": "bad host"},  # invalid characters: werkzeug's empty host
    {"SERVER_NAME": "10.0.0.1", "SERVER_PORT": "8000"},  # no Host header
    {"HTTP_HOST": "example.org", "wsgi.url_scheme": "https"},
    {"HTTP_HOST": "example.org", "HTTP_CONNECTION": "keep-alive, Upgrade", "HTTP_UPGRADE": "websocket"},
    {"HTTP_HOST": "example.org", "SCRIPT_NAME": "/prefix"},
]
ADAPTER_FIELDS = ("server_name", "script_name", "subdomain", "url_scheme", "path_info", "default_method", "query_args")


def _adapter_view(app: Flask, environ: dict[str, Any], flasks: bool = False) -> tuple[Any, ...]:
    """What a request with ``environ`` gets from ``app.create_url_adapter`` (``flasks``:
    from :meth:`flask.Flask.create_url_adapter`): the request's host, the adapter's
    fields and what it matches."""
    request = app.request_class(environ)
    adapter = Flask.create_url_adapter(app, request) if flasks else app.create_url_adapter(request)
    assert adapter is not None
    try:
        matched: Any = adapter.match(return_rule=True)
        matched = (matched[0].rule, matched[1])
    except HTTPException as error:
        matched = (type(error).__name__, getattr(error, "new_url", None))
    return (request.host, *(getattr(adapter, name) for name in ADAPTER_FIELDS), adapter.websocket, matched)


@pytest.mark.parametrize("server", SERVER_ENVIRONS)
def test_the_url_adapter_made_from_a_remembered_server_is_flasks(app: Flask, server: dict[str, Any]) -> None:
    """The first request of a server is Flask's own adapter; the next ones, made from the
    remembered host part, are the adapter Flask would make for them (paths, methods, queries)."""
    requests = [
        ("GET", "/health", None),
        ("POST", "/BPMREST/service/runtime/tasks/t-1/claim", "user=clerk"),
        ("GET", "/BPMREST/service/runtime/instance/é/tasks".encode().decode("latin-1"), None),  # WSGI's latin-1
        ("GET", "/BPMREST/service/runtime/tasks/t-1/claim", ""),  # 405
        ("GET", "/BPMREST/service/runtime/process/start/", ""),  # no such route
        ("GET", "/health/", "x=1"),  # a redirect to the path without the slash, or a 404
        ("GET", None, None),
    ]
    for method, path, query in requests:
        environ = {"wsgi.url_scheme": "http", "REQUEST_METHOD": method, **server}
        if path is not None:
            environ["PATH_INFO"] = path
        if query is not None:
            environ["QUERY_STRING"] = query
        assert _adapter_view(app, environ) == _adapter_view(app, environ, flasks=True)
    assert len(app._servers) == 1  # type: ignore[attr-defined]  # one host part, remembered


def test_a_configured_server_name_or_trusted_hosts_take_flasks_own_path(app: Flask) -> None:
    environ = {"wsgi.url_scheme": "http", "REQUEST_METHOD": "GET", "HTTP_HOST": "evil.example", "PATH_INFO": "/health"}
    app.config["TRUSTED_HOSTS"] = ["good.example"]
    with pytest.raises(HTTPException):  # werkzeug's SecurityError (400), as Flask raises it
        app.create_url_adapter(app.request_class(environ))
    assert app._servers == {}  # type: ignore[attr-defined]
    app.config["TRUSTED_HOSTS"] = None
    app.config["SERVER_NAME"] = "good.example"
    assert _adapter_view(app, environ) == _adapter_view(app, environ, flasks=True)
    assert app._servers == {}  # type: ignore[attr-defined]
    assert app.create_url_adapter(None) is not None  # built from SERVER_NAME outside a request, as Flask does


def test_a_one_bytes_body_is_iterated_as_werkzeug_iterates_it() -> None:
    closed: list[int] = []
    for status, method in [(200, "GET"), (404, "POST"), (204, "GET"), (304, "GET"), (200, "HEAD"), (101, "GET")]:
        ours, theirs = BpmResponse.json_body(b'{"a":1}\n', status), BpmResponse.json_body(b'{"a":1}\n', status)
        ours.call_on_close(functools.partial(closed.append, status))
        environ = {"REQUEST_METHOD": method}
        got, expected = ours.get_app_iter(environ), super(BpmResponse, theirs).get_app_iter(environ)
        assert list(got) == list(expected)
        got.close()  # type: ignore[attr-defined]  # the server closes it: the response's callbacks run
        assert closed.pop() == status
    get = {"REQUEST_METHOD": "GET"}
    bodies: list[tuple[Any, list[bytes]]] = [
        (["text", b"bytes"], [b"text", b"bytes"]),
        ([b"a", b"b"], [b"a", b"b"]),
        (iter([b"x"]), [b"x"]),
    ]
    for body, chunks in bodies:
        assert list(BpmResponse(body, status=200).get_app_iter(get)) == chunks  # werkzeug's own path
    passed = BpmResponse([b"raw"], status=200, direct_passthrough=True)
    assert passed.get_app_iter(get) is passed.response


def test_the_parser_reads_the_request_itself_not_its_proxy(app: Flask) -> None:
    with app.test_request_context("/", method="POST", json={"a": 1}):
        from flask import request

        assert Blueprint.ARGUMENTS_PARSER.get_default_request() is request._get_current_object()  # type: ignore[attr-defined]


def test_the_context_lookups_are_flasks_proxies_and_fail_as_they_do(app: Flask) -> None:
    from flask import current_app, g, request

    with pytest.raises(RuntimeError, match="outside of application context"):
        app_context()
    with pytest.raises(RuntimeError, match="outside of request context"):
        current_request()
    with app.app_context():
        assert app_context().app is current_app._get_current_object()  # type: ignore[attr-defined]
        assert app_context().g is g._get_current_object()  # type: ignore[attr-defined]
        with pytest.raises(RuntimeError, match="outside of request context"):
            current_request()
    with app.test_request_context("/health"):
        assert current_request() is request._get_current_object()  # type: ignore[attr-defined]
        assert app_context().g is g._get_current_object()  # type: ignore[attr-defined]
        with app.test_request_context("/other"):  # a nested request: the innermost, as Flask's proxies
            assert current_request() is request._get_current_object()  # type: ignore[attr-defined]
            assert current_request().path == "/other"


def _view_of(base: type) -> Any:
    """A view class derived from ``base`` with GET and POST."""

    class Thing(base):  # type: ignore[valid-type,misc]
        def get(self, name: str) -> str:
            return f"got {name}"

        def post(self, name: str) -> tuple[str, int]:
            return f"posted {name}", 201

    return Thing.as_view(base.__module__)


def test_the_method_view_and_the_dispatch_answer_as_flasks_do(app: Flask) -> None:
    import flask.views

    from bpm.api.flaskapp import MethodView

    app.add_url_rule("/ours/<name>", view_func=_view_of(MethodView))
    app.add_url_rule("/flasks/<name>", view_func=_view_of(flask.views.MethodView))
    client = app.test_client()
    answers: dict[str, list[tuple[int, str, bytes]]] = {"ours": [], "flasks": []}
    for which, listed in answers.items():
        for method in ("GET", "HEAD", "POST", "OPTIONS", "PUT", "DELETE"):
            response = client.open(f"/{which}/x", method=method)
            body = re.sub(rb'"timestamp":\d+', b'"timestamp":0', response.get_data())
            listed.append((response.status_code, ",".join(sorted(response.allow)), body))
    ours = answers["ours"]
    assert ours == answers["flasks"]
    assert [status for status, _, _ in ours] == [200, 200, 201, 200, 405, 405]  # HEAD: GET's; OPTIONS: automatic
    assert ours[1][2] == b"" and ours[3][1] == "GET,HEAD,OPTIONS,POST"


def _hook_order(app: Flask) -> list[str]:
    """The order in which the hooks of an app with a nested blueprint run for one of its requests."""
    from flask import Blueprint as FlaskBlueprint

    calls: list[str] = []

    def note(text: str) -> Any:
        def hook(*args: Any) -> Any:
            calls.append(text)
            return args[0] if text.startswith("after") else None  # an after hook hands the response on

        return hook

    def view() -> str:
        calls.append("view")
        return "ok"

    outer, inner = FlaskBlueprint("outer", __name__), FlaskBlueprint("inner", __name__)
    for where, scaffold in (("app", app), ("outer", outer), ("inner", inner)):
        scaffold.url_value_preprocessor(note(f"values {where}"))
        scaffold.before_request(note(f"before {where}"))
        scaffold.after_request(note(f"after {where}"))
        scaffold.teardown_request(note(f"teardown {where}"))
    inner.add_url_rule("/hooked", view_func=view)
    outer.register_blueprint(inner, url_prefix="/inner")
    app.register_blueprint(outer, url_prefix="/outer")
    assert app.test_client().get("/outer/inner/hooked").status_code == 200
    return calls


def test_blueprint_hooks_run_as_flasks_do() -> None:
    order = _hook_order(BpmFlask("bare"))
    assert order == _hook_order(Flask("bare"))
    assert order[:3] == ["values app", "values outer", "values inner"] and "view" in order
    assert order[-3:] == ["teardown inner", "teardown outer", "teardown app"]
