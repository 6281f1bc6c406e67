"""The service's Flask class: Flask's request cycle with fewer lookups per request.

Same hooks in the same order with the same effect as :class:`flask.Flask`; what differs is
cost: ``ensure_sync`` remembers, per function, that it is not a coroutine function (Flask asks
``inspect`` again for every view and hook of every request), and the request hooks are found
with one context lookup instead of a proxy lookup per attribute.
"""

from __future__ import annotations

import contextlib
import inspect
import sys
from collections.abc import Callable
from itertools import chain
from typing import Any

from flask import Flask, Request, Response, current_app, request, views
from flask.ctx import AppContext
from flask.globals import _cv_app, _cv_request
from flask.signals import request_tearing_down
from werkzeug._internal import _wsgi_decoding_dance
from werkzeug.datastructures import Headers
from werkzeug.routing import MapAdapter
from werkzeug.wsgi import ClosingIterator


def app_context() -> AppContext:
    """The current app context (its ``app`` and ``g``), without the proxies' look-ups.

    Outside one, the error Flask's ``current_app`` raises.
    """
    found = _cv_app.get(None)
    if found is None:
        current_app._get_current_object()  # type: ignore[attr-defined]  # raises "Working outside of application context"
    return found  # type: ignore[return-value]


def current_request() -> Request:
    """Flask's ``request`` itself, without the proxy's look-ups; outside a request, its error."""
    found = _cv_request.get(None)
    if found is None:
        return request._get_current_object()  # type: ignore[attr-defined,no-any-return]  # raises
    return found.request


def header_list_of(headers: Headers) -> list[tuple[str, str]]:
    """The ``(name, value)`` list inside werkzeug ``Headers``.

    For appending headers whose names and values are constants of ours, checked once (no
    newline) instead of on every ``add``; werkzeug keeps its headers in this list.
    """
    listed: list[tuple[str, str]] = headers._list
    return listed


def header_list(response: Response) -> list[tuple[str, str]]:
    """:func:`header_list_of` a response's headers."""
    return header_list_of(response.headers)


_JSON_CONTENT_TYPE = ("Content-Type", "application/json")
#: the environ entries :meth:`flask.Flask.create_url_adapter` reads besides the path and query
_SERVER_KEYS = (
    "HTTP_HOST",
    "SERVER_NAME",
    "SERVER_PORT",
    "wsgi.url_scheme",
    "HTTP_CONNECTION",
    "HTTP_UPGRADE",
    "SCRIPT_NAME",
)
#: how many distinct servers (hosts, schemes ...) :meth:`BpmFlask.create_url_adapter` remembers
_SERVERS_SIZE = 256
#: Flask's "no exception passed" marker of ``do_teardown_request``
_SENTINEL: Any = object()


class BpmResponse(Response):
    """Flask's response; the WSGI headers of a plain response are copied without checking them again.

    werkzeug's ``get_wsgi_headers`` copies the headers through ``Headers.add`` (each name and
    value checked again) and looks for Location, Content-Location and Content-Length. When
    neither Location header is there, the length is set and the status has a body (every answer
    of this service but a redirect), the copy is the list as it is.
    """

    #: status -> a response made by werkzeug's constructor, whose attributes :meth:`json_body` copies
    _prototypes: dict[int, BpmResponse] = {}

    @classmethod
    def json_body(cls, body: bytes, status: int) -> BpmResponse:
        """``cls(body, status=status, mimetype="application/json")``, at a fraction of the cost.

        The attributes are those of a response werkzeug's constructor made for this status once
        (its lists copied), with this body, its Content-Length and the JSON Content-Type: the
        constructor's per-call work (status text, header checks and look-ups, the mimetype's
        charset rule) is the same for every such response.
        """
        prototype = cls._prototypes.get(status)
        if prototype is None or type(prototype) is not cls:
            prototype = cls(b"", status=status, mimetype="application/json")
            cls._prototypes[status] = prototype
        response = object.__new__(cls)
        attributes = {k: v.copy() if type(v) is list else v for k, v in prototype.__dict__.items()}
        headers = Headers()
        headers._list = [_JSON_CONTENT_TYPE, ("Content-Length", str(len(body)))]
        attributes["headers"] = headers
        attributes["response"] = [body]
        response.__dict__.update(attributes)
        return response

    def get_app_iter(self, environ: Any) -> Any:
        """werkzeug's: a body that is one ``bytes`` is handed on as the list it is in.

        werkzeug wraps it in a generator that yields the same bytes (encoding any ``str``
        items); the :class:`~werkzeug.wsgi.ClosingIterator` around it, which closes the
        response, is the same.
        """
        body = self.response
        status = self._status_code
        if (
            type(body) is list
            and len(body) == 1
            and type(body[0]) is bytes
            and not self.direct_passthrough
            and status >= 200
            and status not in (204, 304)
            and environ["REQUEST_METHOD"] != "HEAD"
        ):
            return ClosingIterator(body, self.close)
        return super().get_app_iter(environ)

    def get_wsgi_headers(self, environ: Any) -> Headers:
        status = self.status_code
        if status >= 200 and status not in (204, 304):
            listed = self.headers._list
            has_length = False
            for name, _ in listed:
                lower = name.lower()
                if lower == "content-length":
                    has_length = True
                elif lower == "location" or lower == "content-location":
                    return super().get_wsgi_headers(environ)
            if has_length:
                headers = Headers()
                headers._list = list(listed)
                return headers
        return super().get_wsgi_headers(environ)


class BpmFlask(Flask):
    """:class:`flask.Flask` with a cached ``ensure_sync`` and leaner request hooks."""

    response_class = BpmResponse

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: plain function (the ``__func__`` of a bound method) -> whether it is a coroutine function
        self._coroutine_functions: dict[Any, bool] = {}
        #: the environ's server entries -> (request.host, server name, script name, subdomain, scheme)
        self._servers: dict[tuple[Any, ...], tuple[str, str, str, str | None, str]] = {}

    def create_url_adapter(self, request: Request | None) -> MapAdapter | None:
        """Flask's adapter for a request, without working out the host part again for each.

        ``request.host`` and the adapter's server name, script name, subdomain and scheme
        depend on nothing but the environ's :data:`_SERVER_KEYS` (with no ``TRUSTED_HOSTS``,
        ``SERVER_NAME``, host or subdomain matching): Flask's adapter is made once per such
        entries, and later ones are the same adapter for this request's method, path and query.
        """
        config = self.config
        if (
            request is None
            or config["TRUSTED_HOSTS"] is not None
            or config["SERVER_NAME"] is not None
            or self.url_map.host_matching
            or self.subdomain_matching
        ):
            return super().create_url_adapter(request)
        environ = request.environ
        key = tuple(environ.get(name) for name in _SERVER_KEYS)
        known = self._servers.get(key)
        if known is None:
            adapter = super().create_url_adapter(request)
            if adapter is not None:
                if len(self._servers) >= _SERVERS_SIZE:
                    self._servers.clear()
                self._servers[key] = (
                    request.host,
                    adapter.server_name,
                    adapter.script_name,
                    adapter.subdomain,
                    adapter.url_scheme,
                )
            return adapter
        host, server_name, script_name, subdomain, scheme = known
        request.host = host  # type: ignore[misc]  # as Flask sets it
        path_info = environ.get("PATH_INFO")
        query = environ.get("QUERY_STRING")
        return MapAdapter(
            self.url_map,
            server_name,
            script_name,
            subdomain,
            scheme,
            _wsgi_decoding_dance(path_info) if path_info is not None else "/",
            environ["REQUEST_METHOD"],
            _wsgi_decoding_dance(query) if query is not None else None,
        )

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """Flask's: a plain function as it is, a coroutine function wrapped to run to its end.

        Keyed by the plain function, so the bound methods of a view made per request share one
        entry (the table grows with the functions of the app, not with the requests).
        """
        key = getattr(func, "__func__", func)
        try:
            is_coroutine = self._coroutine_functions[key]
        except (KeyError, TypeError):  # TypeError: an unhashable callable, asked every time
            is_coroutine = inspect.iscoroutinefunction(func)
            with contextlib.suppress(TypeError):
                self._coroutine_functions[key] = is_coroutine
        return self.async_to_sync(func) if is_coroutine else func

    def dispatch_request(self) -> Any:
        """Flask's: the view of the matched rule (or the routing error, or the automatic
        OPTIONS answer), the request looked up once without its proxy."""
        req = current_request()
        if req.routing_exception is not None:
            self.raise_routing_exception(req)
        rule: Any = req.url_rule
        if getattr(rule, "provide_automatic_options", False) and req.method == "OPTIONS":
            return self.make_default_options_response()
        return self.ensure_sync(self.view_functions[rule.endpoint])(**req.view_args)  # type: ignore[arg-type]

    def preprocess_request(self) -> Any:
        """Flask's: URL value preprocessors, then the before-request hooks until one answers."""
        req = current_request()
        preprocessors = self.url_value_preprocessors
        hooks = self.before_request_funcs
        blueprints = _blueprints_of(req, preprocessors, hooks)
        names = (None, *reversed(blueprints)) if blueprints else (None,)
        for name in names:
            if name in preprocessors:
                for url_func in preprocessors[name]:
                    url_func(req.endpoint, req.view_args)
        for name in names:
            if name in hooks:
                for before_func in hooks[name]:
                    answer = self.ensure_sync(before_func)()
                    if answer is not None:
                        return answer
        return None

    def process_response(self, response: Response) -> Response:
        """Flask's: the request's own after-request functions, then the blueprints' and the app's."""
        ctx = _cv_request.get()
        for func in ctx._after_request_functions:
            response = self.ensure_sync(func)(response)
        hooks = self.after_request_funcs
        for name in chain(_blueprints_of(ctx.request, hooks), (None,)):
            if name in hooks:
                for func in reversed(hooks[name]):
                    response = self.ensure_sync(func)(response)
        if not self.session_interface.is_null_session(ctx._session):
            self.session_interface.save_session(self, ctx._session, response)  # type: ignore[arg-type]  # as Flask
        return response

    def do_teardown_request(self, exc: BaseException | None = _SENTINEL) -> None:  # type: ignore[assignment]
        """Flask's: the blueprints' and the app's teardown functions, then ``request_tearing_down``."""
        if exc is _SENTINEL:
            exc = sys.exc_info()[1]
        hooks = self.teardown_request_funcs
        for name in chain(_blueprints_of(current_request(), hooks), (None,)):
            if name in hooks:
                for func in reversed(hooks[name]):
                    self.ensure_sync(func)(exc)
        request_tearing_down.send(self, _async_wrapper=self.ensure_sync, exc=exc)


def _blueprints_of(req: Request, *tables: dict[str | None, Any]) -> list[str]:
    """``req.blueprints``, the names a hook table is looked up by; none where every table
    has the app's hooks only (no blueprint name would find anything in them)."""
    for table in tables:
        if len(table) > 1 or (table and None not in table):
            return req.blueprints
    return []


class MethodView(views.MethodView):
    """Flask's ``MethodView``: the method named like the request's (HEAD falls back to GET),
    with the request and the app looked up without their proxies."""

    def dispatch_request(self, **kwargs: Any) -> Any:
        method = current_request().method
        meth = getattr(self, method.lower(), None)
        if meth is None and method == "HEAD":
            meth = getattr(self, "get", None)
        assert meth is not None, f"Unimplemented method {method!r}"
        return app_context().app.ensure_sync(meth)(**kwargs)
