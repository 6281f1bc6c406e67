"""A real HTTP server for the app in a thread of the test process (browser and curl tests)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from werkzeug.serving import WSGIRequestHandler, make_server


class QuietHandler(WSGIRequestHandler):
    """No access log line per request (the app logs what matters)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


class LiveServer:
    """A WSGI app served on a free loopback port until :meth:`stop`."""

    def __init__(self, app: Any, host: str = "127.0.0.1") -> None:
        self.server = make_server(host, 0, app, threaded=True, request_handler=QuietHandler)
        self.host = host
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, name=f"live-{self.port}", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> LiveServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@contextmanager
def serving(app: Any, host: str = "127.0.0.1") -> Iterator[LiveServer]:
    server = LiveServer(app, host).start()
    try:
        yield server
    finally:
        server.stop()
