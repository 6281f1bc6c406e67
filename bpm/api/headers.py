"""Security headers on every response: no sniffing, no framing, no referrer, no caching, a strict CSP.

JSON responses get a Content-Security-Policy that allows nothing at all. The one
HTML page, the Swagger UI at ``/docs``, loads its scripts and styles from the CDN
named by ``OPENAPI_SWAGGER_UI_URL``; its CSP allows exactly that origin and, for
its inline bootstrap script, that script's own SHA-256 hash (no ``unsafe-inline``
for scripts).
"""

from __future__ import annotations

import base64
import hashlib
import re
from urllib.parse import urlsplit

from flask import Flask, Response, current_app

#: for every response
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
}
#: for everything but the docs page: nothing may be loaded, run or framed
STRICT_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)


def docs_csp(html: bytes, cdn_url: str | None) -> str:
    """The CSP of the Swagger UI page: its CDN for code and styles, its inline script by hash."""
    parts = urlsplit(cdn_url or "")
    cdn = f"{parts.scheme}://{parts.netloc}" if parts.scheme in ("http", "https") and parts.netloc else ""
    hashes = [
        "'sha256-" + base64.b64encode(hashlib.sha256(script).digest()).decode() + "'"
        for script in _INLINE_SCRIPT.findall(html)
    ]
    sources = " ".join(filter(None, ["'self'", cdn]))
    scripts = " ".join(filter(None, [cdn, *hashes])) or "'none'"
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
    """After every request (errors included)."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    response.headers.setdefault("Cache-Control", "no-store")
    if response.mimetype == "text/html" and not response.is_streamed:
        csp = docs_csp(response.get_data(), current_app.config.get("OPENAPI_SWAGGER_UI_URL"))
    else:
        csp = STRICT_CSP
    response.headers["Content-Security-Policy"] = csp
    return response


def init_security_headers(app: Flask) -> None:
    app.after_request(add_security_headers)
