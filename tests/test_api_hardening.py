"""Hostile input through the API and browser-facing safety, on every backend.

Hostile BPMN uploads (entity expansion, external entities and DTDs, huge bodies),
hostile gateway conditions in deployed processes, security headers, CORS preflights,
and one log line with the request id per error.
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import re
import time
from collections.abc import Iterator
from typing import Any
from xml.sax.saxutils import escape

import pytest
from flask import Flask
from werkzeug.test import TestResponse

from backends.base import Backend
from backends.memory import MemoryBackend
from bpm.expressions import MAX_WORK, record_work
from tests.api_support import BASE, Api, check_envelope, fails, make_app, ok
from tests.auth_support import AUTH_CONFIG, as_user

MIB = 1024 * 1024
#: "no hang": hostile XML is refused within this (hostile conditions: see the evaluator's work budget)
XML_SECONDS = 1.0
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
STRICT_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
DEFINITIONS = (
    '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" id="D" targetNamespace="http://hostile.test">'
)


@pytest.fixture
def app(backend: Backend) -> Flask:
    return make_app(backend)


@pytest.fixture
def api(app: Flask) -> Api:
    return Api(app.test_client())


def timed(call: Any, *args: Any, **kwargs: Any) -> tuple[TestResponse, float]:
    began = time.perf_counter()
    response = call(*args, **kwargs)
    return response, time.perf_counter() - began


# -- hostile BPMN uploads ------------------------------------------------------------------


def _process(body: str = "", name: str = "hostile") -> str:
    return (
        f'{DEFINITIONS}<bpmn:process id="hostile" name="{name}" isExecutable="true">'
        f'<bpmn:startEvent id="s"/><bpmn:sequenceFlow id="f" sourceRef="s" targetRef="e"/>'
        f'<bpmn:endEvent id="e"/>{body}</bpmn:process></bpmn:definitions>'
    )


def _billion_laughs() -> bytes:
    entities = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10)
    ]
    return f'<?xml version="1.0"?><!DOCTYPE lolz [{"".join(entities)}]>{_process(name="&lol9;")}'.encode()


def _quadratic_blowup() -> bytes:
    return (
        f'<?xml version="1.0"?><!DOCTYPE q [<!ENTITY a "{"a" * 50_000}">]>'
        f"{_process('<bpmn:documentation>' + '&a;' * 50_000 + '</bpmn:documentation>')}"
    ).encode()


HOSTILE_XML: dict[str, bytes] = {
    "billion laughs": _billion_laughs(),
    "quadratic blowup": _quadratic_blowup(),
    "external entity reading /etc/passwd": (
        '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>' + _process(name="&xxe;")
    ).encode(),
    "external DTD": ('<?xml version="1.0"?><!DOCTYPE d SYSTEM "http://127.0.0.1:9/evil.dtd">' + _process()).encode(),
    "parameter entity": (
        '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>' + _process()
    ).encode(),
    "external entity in UTF-16": (
        '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        + _process(name="&x;")
    ).encode("utf-16"),
    "entity declared without DOCTYPE keyword case": (
        '<?xml version="1.0"?><!doctype d [<!entity x SYSTEM "file:///etc/passwd">]>' + _process(name="&x;")
    ).encode(),
    "undeclared entity": _process(name="&xxe;").encode(),
    "nesting 100000 deep": (DEFINITIONS + "<a>" * 100_000 + "</a>" * 100_000 + "</bpmn:definitions>").encode(),
    "not XML at all": b"\x00\xff" * 1000,
}


@pytest.mark.parametrize("case", list(HOSTILE_XML))
def test_hostile_xml_upload_is_a_quick_4xx_and_stores_nothing(api: Api, backend: Backend, case: str) -> None:
    before = ok(api.get("/processes"))
    stored = len(backend.definitions())
    response, seconds = timed(api.post, "/deployments", data=HOSTILE_XML[case], content_type="application/xml")
    body = check_envelope(response)
    assert 400 <= response.status_code < 500, body
    assert body["error"] in ("INVALID_BPMN", "UNSUPPORTED_ELEMENT", "VALIDATION_ERROR"), body
    assert seconds < XML_SECONDS, f"{case} took {seconds:.2f}s"
    assert "root:" not in response.get_data(as_text=True)
    assert ok(api.get("/processes")) == before
    assert len(backend.definitions()) == stored


@pytest.mark.parametrize("as_multipart", [False, True])
def test_a_50_mib_upload_is_413_at_once(api: Api, backend: Backend, as_multipart: bool) -> None:
    before = ok(api.get("/processes"))
    huge = b"<bpmn:definitions>" + b" " * (50 * MIB) + b"</bpmn:definitions>"
    if as_multipart:
        kwargs: dict[str, Any] = {"data": {"file": (io.BytesIO(huge), "big.bpmn")}}
    else:
        kwargs = {"data": huge, "content_type": "application/xml"}
    response, seconds = timed(api.post, "/deployments", **kwargs)
    fails(response, 413, "PAYLOAD_TOO_LARGE")
    assert seconds < XML_SECONDS
    assert ok(api.get("/processes")) == before and len(backend.definitions()) == len(before)


def test_xinclude_is_not_processed(api: Api) -> None:
    xinclude = (
        '<bpmn:documentation><xi:include xmlns:xi="http://www.w3.org/2001/XInclude" '
        'href="file:///etc/passwd" parse="text"/></bpmn:documentation>'
    )
    response = api.post("/deployments", data=_process(xinclude).encode(), content_type="application/xml")
    assert response.status_code in (200, 400)
    assert "root:" not in response.get_data(as_text=True)
    listed = api.post("/classAction", json={"processName": "hostile", "event": "file"})
    assert "root:" not in listed.get_data(as_text=True)


def test_deployments_need_the_admin_role_before_the_body_is_read(backend: Backend) -> None:
    client = make_app(backend, **AUTH_CONFIG).test_client()
    response = client.post(f"{BASE}/deployments", data=HOSTILE_XML["billion laughs"], content_type="application/xml")
    fails(response, 401, "UNAUTHORIZED")
    response = client.post(
        f"{BASE}/deployments",
        data=HOSTILE_XML["billion laughs"],
        content_type="application/xml",
        headers=as_user("alice"),
    )
    fails(response, 403, "FORBIDDEN")


# -- hostile expressions in deployed processes ------------------------------------------------


def gateway_process(key: str, condition: str) -> bytes:
    """start -> userTask Work -> exclusive gateway whose one conditional flow carries ``condition``."""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>{DEFINITIONS}'
        f'<bpmn:process id="{key}" name="{key}" isExecutable="true">'
        '<bpmn:startEvent id="Start"/><bpmn:sequenceFlow id="f1" sourceRef="Start" targetRef="Work"/>'
        '<bpmn:userTask id="Work" name="Work"/><bpmn:sequenceFlow id="f2" sourceRef="Work" targetRef="Gate"/>'
        '<bpmn:exclusiveGateway id="Gate" default="f4"/>'
        '<bpmn:sequenceFlow id="f3" sourceRef="Gate" targetRef="End">'
        f'<bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">{escape(condition)}</bpmn:conditionExpression>'
        '</bpmn:sequenceFlow><bpmn:sequenceFlow id="f4" sourceRef="Gate" targetRef="End"/>'
        '<bpmn:endEvent id="End"/></bpmn:process></bpmn:definitions>'
    ).encode()


HOSTILE_CONDITIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "dunder mro": ("${().__class__.__mro__}", {}),
    "dunder subclasses": ("${''.__class__.__mro__[1].__subclasses__()}", {}),
    "dunder on a variable": ("${x.__class__.__init__.__globals__}", {"x": "a"}),
    "dunder by index": ("${x['__class__']}", {"x": {"__class__": 1}}),
    "dunder key from a variable": ("${x[k]}", {"x": {"__proto__": 1}, "k": "__proto__"}),
    "__import__": ("${__import__('os').system('id')}", {}),
    "import statement": ("import os", {}),
    "python exec": ("exec('import os')", {}),
    "python eval": ("eval('1+1') == 2", {}),
    "open a file": ("${open('/etc/passwd').read()}", {}),
    "globals": ("${globals()}", {}),
    "lambda": ("(lambda: 1)()", {}),
    "java reflection": ("${''.getClass().forName('java.lang.Runtime').getRuntime().exec('id')}", {}),
    "spring T()": ("#{T(java.lang.Runtime).getRuntime().exec('id')}", {}),
    "template injection": ("{{7*7}}", {}),
    "huge power": ("${10**10**10}", {}),
    "huge power of a variable": ("${n ** n}", {"n": 10**50}),
    "huge repeat": ("${'a'*10**9}", {}),
    "huge list repeat": ("${[1]*10**9}", {}),
    "huge repeat from variables": ("${s * n}", {"s": "a" * 1000, "n": 10**6}),
    "huge repeat count": ("${s * n}", {"s": "a", "n": 10**18}),
    "doubling chain": ("${" + "(" * 30 + "s" + " + s)" * 30 + " == ''}", {"s": "a" * 10_000}),
    "deep parentheses": ("${" + "(" * 500 + "1" + ")" * 500 + "}", {}),
    "deep lists": ("${" + "[" * 300 + "]" * 300 + "}", {}),
    "many nots": ("${" + "!" * 5000 + "x}", {"x": True}),
    "long source": ("${" + " + ".join(["x"] * 3000) + "}", {"x": 1}),
    "repeated scans of a huge list": (
        "${" + " || ".join(f"x.contains({-i})" for i in range(1, 16)) + "}",
        {"x": list(range(100_000))},
    ),
    "missing variable": ("${noSuchVariable > 1}", {}),
}


@pytest.mark.parametrize("case", list(HOSTILE_CONDITIONS))
def test_hostile_condition_is_refused_at_deployment_or_422_at_run_time(api: Api, case: str) -> None:
    condition, variables = HOSTILE_CONDITIONS[case]
    key = "hostile" + hashlib.sha1(case.encode()).hexdigest()[:8]
    with record_work() as deploying:
        deployed = api.post("/deployments", data=gateway_process(key, condition), content_type="text/xml")
    assert deploying.largest <= MAX_WORK, case  # deployment compiles (bounded by source size) and evaluates little
    body = check_envelope(deployed)
    if deployed.status_code == 400:
        assert body["error"] in ("INVALID_BPMN", "EXPRESSION_ERROR"), body
        return
    assert deployed.status_code == 200, body
    instance_id = ok(api.post("/process/start", json={"processName": key, "object": variables}))
    [task] = api.tasks(instance_id)
    before = api.instance(instance_id)
    with record_work() as completing:
        response = api.complete(task["id"], "anyone", {})
    assert completing.evaluations >= 1 and completing.largest <= MAX_WORK, case  # work units, not seconds
    fails(response, 422, "EXPRESSION_ERROR")
    assert api.tasks(instance_id) == [task] and api.instance(instance_id) == before  # nothing changed


# -- security headers, CSP, no stack traces -----------------------------------------------


def _assert_security_headers(response: TestResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (name, response.status_code)


def test_security_headers_on_every_kind_of_response(backend: Backend) -> None:
    app = make_app(backend, **AUTH_CONFIG)

    def explode() -> str:
        raise RuntimeError("secret internal detail")

    app.add_url_rule("/explode", view_func=explode)
    client = app.test_client()
    responses = [
        client.get("/health"),
        client.get("/openapi.json"),
        client.get(f"{BASE}/processes", headers=as_user()),
        client.get(f"{BASE}/processes"),  # 401
        client.post(f"{BASE}/refreshCache", headers=as_user()),  # 403
        client.get(f"{BASE}/tasks", query_string={"size": "x"}, headers=as_user()),  # 400
        client.get(f"{BASE}/instance/nope", headers=as_user()),  # 404
        client.get("/explode", headers=as_user()),  # 500
        client.post(f"{BASE}/process/start", data="x" * (2 * MIB), headers=as_user()),  # 413
    ]
    assert [r.status_code for r in responses] == [200, 200, 200, 401, 403, 400, 404, 500, 413]
    for response in responses:
        _assert_security_headers(response)
        assert response.headers["Content-Security-Policy"] == STRICT_CSP
        assert "secret" not in response.get_data(as_text=True)
        assert "Traceback" not in response.get_data(as_text=True)


def test_docs_page_csp_allows_only_its_assets_and_its_own_inline_script(app: Flask) -> None:
    response = app.test_client().get("/docs")
    assert response.status_code == 200
    _assert_security_headers(response)
    csp = dict(part.strip().split(" ", 1) for part in response.headers["Content-Security-Policy"].split(";"))
    [script] = re.findall(rb"<script>(.*?)</script>", response.get_data(), re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(script).digest()).decode()
    assert csp["script-src"] == f"'self' 'sha256-{digest}'"  # the packaged Swagger UI (tests/test_pages.py)
    assert "'unsafe-inline'" not in csp["script-src"] and "'unsafe-eval'" not in csp["script-src"]
    assert csp["default-src"] == "'none'" and csp["frame-ancestors"] == "'none'"
    assert csp["connect-src"] == "'self'"
    for src in re.findall(rb'(?:src|href)="([^"]+)"', response.get_data()):
        assert src.decode().startswith("/ui/swagger-ui/")


# -- CORS ------------------------------------------------------------------------------------


@pytest.fixture
def cors_client(backend: Backend) -> Iterator[Any]:
    yield make_app(backend, **AUTH_CONFIG, BPM_CORS_ORIGINS="https://app.example").test_client()


def _preflight(client: Any, origin: str) -> TestResponse:
    headers = {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "Authorization, Content-Type",
    }
    return client.options(f"{BASE}/tasks/x/claim", headers=headers)


def test_cors_preflight_from_an_allowed_origin(cors_client: Any) -> None:
    response = _preflight(cors_client, "https://app.example")
    assert response.status_code == 200  # no credentials needed for a preflight
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert "authorization" in response.headers["Access-Control-Allow-Headers"].lower()
    actual = cors_client.get(f"{BASE}/processes", headers={"Origin": "https://app.example", **as_user()})
    assert actual.headers["Access-Control-Allow-Origin"] == "https://app.example"
    exposed = actual.headers["Access-Control-Expose-Headers"]
    assert "X-Request-Id" in exposed and "WWW-Authenticate" in exposed


def test_cors_preflight_from_another_origin_gets_no_grant(cors_client: Any) -> None:
    for origin in ("https://evil.example", "https://app.example.evil.example", "null"):
        response = _preflight(cors_client, origin)
        assert "Access-Control-Allow-Origin" not in response.headers, origin
        assert "Access-Control-Allow-Methods" not in response.headers, origin


def test_no_cors_grant_without_configured_origins(backend: Backend) -> None:
    response = _preflight(make_app(backend).test_client(), "https://app.example")
    assert "Access-Control-Allow-Origin" not in response.headers


# -- one log line per error, with the request id ---------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("GET", "/tasks", {}, 401),
        ("GET", "/tasks", {"as_user": "alice", "query_string": {"size": "0"}}, 400),
        ("POST", "/refreshCache", {"as_user": "alice"}, 403),
        ("GET", "/instance/nope%0Aforged-line", {"as_user": "alice"}, 404),
    ],
)
def test_each_client_error_is_logged_once_with_the_request_id(
    caplog: pytest.LogCaptureFixture, method: str, path: str, kwargs: dict[str, Any], status: int
) -> None:
    app = make_app(MemoryBackend(), **AUTH_CONFIG)
    caplog.set_level(logging.INFO, logger=app.logger.name)
    kwargs = dict(kwargs)
    user = kwargs.pop("as_user", None)  # the token is minted when the test runs, not at collection
    headers = {"X-Request-Id": "edge-test-request-0001", **(as_user(user) if user else {})}
    response = app.test_client().open(BASE + path, method=method, headers=headers, **kwargs)
    assert response.status_code == status and response.headers["X-Request-Id"] == "edge-test-request-0001"
    logged = [r for r in caplog.records if "edge-test-request-0001" in r.getMessage()]
    assert len(logged) == 1, [r.getMessage() for r in logged]
    assert f"-> {status} " in logged[0].getMessage() and "\n" not in logged[0].getMessage()


def test_a_server_error_is_logged_once_with_traceback_and_shown_nowhere(caplog: pytest.LogCaptureFixture) -> None:
    app = make_app(MemoryBackend())

    def explode() -> str:
        raise KeyError("/etc/secret path")

    app.add_url_rule(f"{BASE}/explode", view_func=explode)
    with caplog.at_level(logging.INFO, logger=app.logger.name):
        response = app.test_client().get(f"{BASE}/explode")
    body = fails(response, 500, "INTERNAL_ERROR")
    assert "secret" not in response.get_data(as_text=True) and body["data"] is None
    logged = [r for r in caplog.records if response.headers["X-Request-Id"] in r.getMessage()]
    assert len(logged) == 1 and logged[0].levelno == logging.ERROR and logged[0].exc_info is not None
