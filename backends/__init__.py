"""Storage backends chosen by one URL (``memory://``, ``redis://...``, ``redis+cluster://...``)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from backends.base import Backend

if TYPE_CHECKING:
    from flask import Flask


def _memory(url: str) -> Backend:
    from backends.memory import MemoryBackend

    return MemoryBackend(url)


def _redis(url: str) -> Backend:
    from backends.redis import RedisBackend

    return RedisBackend(url)


def _redis_cluster(url: str) -> Backend:
    from backends.redis_cluster import RedisClusterBackend

    return RedisClusterBackend(url)


SCHEMES = {
    "memory": _memory,
    "redis": _redis,
    "rediss": _redis,
    "unix": _redis,
    "redis+cluster": _redis_cluster,
    "rediss+cluster": _redis_cluster,
}


def backend_from_url(url: str) -> Backend:
    """Build the backend a URL names; an unknown scheme lists the known ones."""
    scheme = urlsplit(url).scheme.lower()
    factory = SCHEMES.get(scheme)
    if factory is None:
        known = ", ".join(f"{s}://" for s in SCHEMES)
        if not scheme:
            raise ValueError(
                f"BPM_BACKEND={url!r} is not a backend URL (one of: {known}; e.g. memory:// or redis://host:6379/0)"
            )
        raise ValueError(f"unknown backend URL scheme '{scheme}://' in BPM_BACKEND (known: {known})")
    return factory(url)


__all__ = ["Backend", "backend_from_url"]


def init_app(app: Flask) -> Backend:
    """Create the configured backend and keep it in ``app.extensions``.

    ``BPM_RETENTION`` and ``BPM_HISTORY_LIMIT`` (app config, else the environment)
    configure a backend built from ``BPM_BACKEND``; a given instance keeps its own."""
    backend = app.config.get("BPM_BACKEND_INSTANCE")
    if backend is None:
        backend = backend_from_url(app.config["BPM_BACKEND"])
        backend.configure(retention=setting(app, "BPM_RETENTION"), history_limit=setting(app, "BPM_HISTORY_LIMIT"))
    app.extensions["bpm_backend"] = backend
    return backend


def setting(app: Flask, name: str) -> str | None:
    value = app.config.get(name, os.environ.get(name))
    return None if value is None or value == "" else str(value)
