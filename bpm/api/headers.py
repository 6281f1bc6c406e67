"""Security headers on every response, and the refusal of cross-site writes.

Headers: no sniffing, no framing, no referrer, no caching, a strict CSP. JSON
responses get a Content-Security-Policy that allows nothing at all; a view that
serves a page sets its own (the tasklist, :mod:`bpm.api.pages`); any other HTML
page, the Swagger UI at ``/docs``, may load its scripts and styles from this
service (the packaged copy) or the origin named by ``OPENAPI_SWAGGER_UI_URL``,
and run its inline bootstrap script by that script's SHA-256 hash (no
``unsafe-inline`` for scripts).

Cross-site writes: a state-changing request (POST, PUT, PATCH, DELETE) whose
``Origin`` is neither this service's own origin (the scheme and host of the
request) nor one of ``BPM_CORS_ORIGINS``, or that a browser marks
``Sec-Fetch-Site: cross-site`` without such an ``Origin``, is refused with 403
``CROSS_ORIGIN`` before authentication, whether or not authentication is on.
Bodiless ``fetch`` POSTs in ``no-cors`` mode need no CORS preflight, so without
this a page on another site could claim or complete tasks in a user's name.
Requests without these headers (curl, servers) are not browsers' and pass.
"""

from __future__ import annotations

import base64
import hashlib
import re
from urllib.parse import urlsplit

from flask import Flask, Response, current_app

from bpm.api.common import shown
from bpm.api.flaskapp import current_request, header_list
from bpm.errors import Forbidden

#: for every response
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
}
#: what every response gets unless it set its own
_DEFAULT_HEADERS = (*SECURITY_HEADERS.items(), ("Cache-Control", "no-store"))
#: the lower-case names of :data:`_DEFAULT_HEADERS`
_DEFAULT_NAMES = frozenset(name.lower() for name, _ in _DEFAULT_HEADERS)
#: for everything but pages: nothing may be loaded, run or framed
STRICT_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
_STRICT_CSP_HEADER = ("Content-Security-Policy", STRICT_CSP)
#: an SVG diagram opened on its own may apply its own <style> (it runs nothing)
SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"
#: the methods that change state
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)


class CrossOrigin(Forbidden):
    code = "CROSS_ORIGIN"


def docs_csp(html: bytes, assets_url: str | None) -> str:
    """The CSP of the Swagger UI page: its assets (here or on a CDN), its inline script by hash."""
    parts = urlsplit(assets_url or "")
    cdn = f"{parts.scheme}://{parts.netloc}" if parts.scheme in ("http", "https") and parts.netloc else ""
    hashes = [
        "'sha256-" + base64.b64encode(hashlib.sha256(script).digest()).decode() + "'"
        for script in _INLINE_SCRIPT.findall(html)
    ]
    sources = " ".join(filter(None, ["'self'", cdn]))
    scripts = " ".join([cdn or "'self'", *hashes])  # the packaged copy is served here
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src {scripts}",
            f"style-src {sources} 'unsafe-inline'",
            f"img-src {sources} data:",
            f"font-src {sources}",
            "connect-src 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "form-action 'none'",
        ]
    )


def add_security_headers(response: Response) -> Response:
    """After every request (errors included). Headers a view set itself are kept.

    (One pass over the response's headers, whose list is then extended with the constant
    headers checked once at import; werkzeug's ``setdefault`` and ``in`` scan the headers
    and raise and catch an exception for each header that is missing, and ``add`` checks
    each name and value again.)
    """
    listed = header_list(response)
    present = set()
    content_type = None
    for name, value in listed:
        lower = name.lower()
        if lower == "content-type" and content_type is None:
            content_type = value
        present.add(lower)
    if present.isdisjoint(_DEFAULT_NAMES):
        listed.extend(_DEFAULT_HEADERS)
    else:
        listed.extend((name, value) for name, value in _DEFAULT_HEADERS if name.lower() not in present)
    if "content-security-policy" in present:
        return response  # a page that set its own
    mimetype = content_type.split(";")[0].strip() if content_type else None
    if mimetype == "text/html" and not response.is_streamed:
        csp = docs_csp(response.get_data(), current_app.config.get("OPENAPI_SWAGGER_UI_URL"))
    elif mimetype == "image/svg+xml":
        csp = SVG_CSP
    else:
        listed.append(_STRICT_CSP_HEADER)
        return response
    response.headers.add("Content-Security-Policy", csp)
    return response


def _origin(value: str) -> str:
    """``scheme://host[:port]`` in lower case, without a trailing slash."""
    return value.strip().rstrip("/").lower()


def allowed_origins(config_value: object) -> frozenset[str]:
    """The origins of ``BPM_CORS_ORIGINS`` (comma-separated; ``*`` allows every origin)."""
    return frozenset(_origin(o) for o in str(config_value or "").split(",") if o.strip())


def refuse_cross_origin() -> None:
    """Before every request: a browser's write from another origin is 403 ``CROSS_ORIGIN``."""
    req = current_request()
    if req.method not in WRITE_METHODS:
        return
    environ = req.environ  # the headers' own store (``req.headers.get`` raises and catches for a missing one)
    origin = environ.get("HTTP_ORIGIN")
    if origin is None:
        if environ.get("HTTP_SEC_FETCH_SITE", "").strip().lower() == "cross-site":
            raise CrossOrigin("a write from another site is refused (Sec-Fetch-Site: cross-site without an Origin)")
        return
    allowed = allowed_origins(current_app.config.get("BPM_CORS_ORIGINS"))
    own = _origin(f"{req.scheme}://{req.host}")
    if _origin(origin) == own or _origin(origin) in allowed or "*" in allowed:
        return
    raise CrossOrigin(
        f"a write from the origin '{shown(origin)}' is refused: only this service's own origin "
        "and those of BPM_CORS_ORIGINS may change state"
    )


def init_cross_origin_check(app: Flask) -> None:
    """Hook :func:`refuse_cross_origin` in (before authentication: a cross-site write is refused either way)."""
    app.before_request(refuse_cross_origin)


def init_security_headers(app: Flask) -> None:
    app.after_request(add_security_headers)
