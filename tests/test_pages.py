"""Pages for people: /docs works offline (packaged Swagger UI), /tasklist and its assets, their CSP."""

from __future__ import annotations

import re

import pytest
from flask import Flask

from backends.memory import MemoryBackend
from bpm.api.pages import PAGE_CSP, STATIC
from tests.api_support import make_app
from tests.auth_support import AUTH_CONFIG


@pytest.fixture
def app() -> Flask:
    return make_app(MemoryBackend())


def _csp(header: str) -> dict[str, str]:
    return dict(part.strip().split(" ", 1) for part in header.split(";"))


def test_docs_load_every_asset_from_the_service(app: Flask) -> None:
    client = app.test_client()
    page = client.get("/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets and all(a.startswith("/ui/swagger-ui/") for a in assets), assets
    assert "cdn" not in html.lower() and "https://" not in html
    for asset in assets:
        response = client.get(asset)
        assert response.status_code == 200, asset
        assert len(response.get_data()) > 10_000, asset
    csp = _csp(page.headers["Content-Security-Policy"])
    assert csp["script-src"].startswith("'self' 'sha256-") and "unsafe" not in csp["script-src"]
    assert "http" not in page.headers["Content-Security-Policy"]


def test_the_vendored_copy_carries_its_licence() -> None:
    folder = STATIC / "swagger-ui"
    assert "Apache License" in (folder / "LICENSE").read_text()
    assert "swagger-ui-dist" in (folder / "README.md").read_text()


def test_a_configured_swagger_ui_url_is_kept() -> None:
    app = make_app(MemoryBackend(), OPENAPI_SWAGGER_UI_URL="https://assets.example/swagger/")
    html = app.test_client().get("/docs").get_data(as_text=True)
    assert 'src="https://assets.example/swagger/swagger-ui-bundle.js"' in html


def test_pages_and_docs_need_no_credentials_when_authentication_is_on() -> None:
    client = make_app(MemoryBackend(), **AUTH_CONFIG).test_client()
    for path in ("/docs", "/tasklist", "/ui/swagger-ui/swagger-ui.css"):
        assert client.get(path).status_code == 200, path


def test_static_files_stay_inside_their_folder(app: Flask) -> None:
    client = app.test_client()
    for path in ("/ui/../app.py", "/ui/%2e%2e/pages.py", "/ui/swagger-ui/../../pages.py", "/ui/nope.js"):
        assert client.get(path).status_code == 404, path


def test_tasklist_page_has_a_strict_csp(app: Flask) -> None:
    response = app.test_client().get("/tasklist", query_string={"user": "alice"})
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert response.headers["Content-Security-Policy"] == PAGE_CSP
    csp = _csp(PAGE_CSP)
    assert csp["script-src"] == "'self'" and csp["style-src"] == "'self'" and csp["default-src"] == "'none'"
    assert csp["frame-ancestors"] == "'none'" and response.headers["X-Frame-Options"] == "DENY"
