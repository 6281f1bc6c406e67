"""Pages for people (API.md, extension): the tasklist, and the packaged assets of it and of ``/docs``.

``GET /tasklist`` is a static HTML page; its script and styles are served from
``/ui/tasklist/``; the Swagger UI of ``/docs`` is served from ``/ui/swagger-ui/``
(a vendored copy, so the docs work offline). Loading these needs no credentials:
the page holds none and can do nothing by itself; every action it offers is a
call to the public REST API, with that API's authentication and authorisation.
The page's Content-Security-Policy allows scripts, styles and connections to this
origin only (no inline script, no ``eval``).
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Flask, Response, send_from_directory

STATIC = Path(__file__).resolve().parent / "static"
blp = Blueprint("pages", __name__, static_folder=STATIC, static_url_path="/ui")

#: the CDN default of app.py, replaced by the packaged copy
CDN_SWAGGER_UI = "https://cdn.jsdelivr.net/npm/swagger-ui-dist/"
LOCAL_SWAGGER_UI = "/ui/swagger-ui/"
#: scripts, styles, images and calls from this origin only; nothing inline, no framing
PAGE_CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'none'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ]
)


@blp.get("/tasklist")
def tasklist() -> Response:
    """The tasklist page (``?user=<name>`` picks the user while authentication is off)."""
    response = send_from_directory(STATIC, "tasklist/index.html", mimetype="text/html", max_age=0)
    response.headers["Content-Security-Policy"] = PAGE_CSP
    return response


def use_packaged_docs(app: Flask) -> None:
    """Serve the Swagger UI of ``/docs`` from the packaged copy unless another URL was configured."""
    if app.config.get("OPENAPI_SWAGGER_UI_URL") in (None, "", CDN_SWAGGER_UI):
        app.config["OPENAPI_SWAGGER_UI_URL"] = LOCAL_SWAGGER_UI


def init_pages(app: Flask) -> None:
    app.register_blueprint(blp)
