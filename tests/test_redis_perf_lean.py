"""The lean script call of the single-server Redis backend (backends/redis_call.py) and
the scripts as a Functions library (backends/redis_functions.py)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from backends.redis import RedisBackend
from backends.redis_call import ScriptCaller
from backends.redis_functions import library
from backends.redis_scripts import SCRIPTS
from tests.conftest import make_redis_backend, own_redis_server

pytestmark = pytest.mark.redis

TAG = uuid.uuid4().hex  # a source no server has cached yet, a library no server has loaded
ECHO = "return {KEYS[1], ARGV[1], '" + TAG + "'}"
FAILING = "return redis.error_reply('NOPE " + TAG + "')"
SCRIPTS_ = {
    "echo": (hashlib.sha1(ECHO.encode()).hexdigest(), ECHO),
    "failing": (hashlib.sha1(FAILING.encode()).hexdigest(), FAILING),
}
LIBRARY = f"t{TAG}"
LIBRARY_CODE = f"""#!lua name={LIBRARY}
redis.register_function("{LIBRARY}_echo", function(KEYS, ARGV) return {{KEYS[1], ARGV[1], "function"}} end)
"""


def _fields(flat: list[Any]) -> dict[str, Any]:
    """A FUNCTION LIST entry (a flat list of names and values) as a dict."""
    return dict(zip(flat[::2], flat[1::2], strict=True))


@pytest.fixture
def backend() -> Iterator[RedisBackend]:
    made = make_redis_backend()
    assert isinstance(made, RedisBackend)
    yield made
    made.clear()
    made.close()


def test_an_unknown_script_is_sent_with_eval_and_cached_again(backend: RedisBackend) -> None:
    call = ScriptCaller(backend.client, SCRIPTS_)
    sha = SCRIPTS_["echo"][0]
    assert backend.client.script_exists(sha) == [False]
    assert call("echo", ["k"], ["v"]) == ["k", "v", TAG]
    assert backend.client.script_exists(sha) == [True]  # the next call is an EVALSHA again


def test_a_missing_library_is_loaded_and_its_function_called(backend: RedisBackend) -> None:
    call = ScriptCaller(backend.client, SCRIPTS_, (LIBRARY, LIBRARY_CODE))
    try:
        assert call("echo", ["k"], ["v"]) == ["k", "v", "function"]
        assert call.functions
        assert [_fields(lib)["library_name"] for lib in backend.client.function_list(LIBRARY)] == [LIBRARY]
    finally:
        backend.client.function_delete(LIBRARY)


def test_a_library_the_server_refuses_falls_back_to_the_scripts(backend: RedisBackend) -> None:
    call = ScriptCaller(backend.client, SCRIPTS_, (LIBRARY, f"#!lua name={LIBRARY}\nthis is not lua"))
    assert call("echo", ["k"], ["v"]) == ["k", "v", TAG]
    assert not call.functions


def test_an_acl_without_fcall_falls_back_to_the_scripts(tmp_path: Path) -> None:
    with own_redis_server(tmp_path) as port:
        admin = redis.Redis(port=port)
        admin.acl_setuser("scripts", enabled=True, passwords=["+pw"], keys=["*"], commands=["+@all", "-fcall"])
        client = redis.Redis(port=port, username="scripts", password="pw", decode_responses=True)
        call = ScriptCaller(client, SCRIPTS_, (LIBRARY, LIBRARY_CODE))
        assert call("echo", ["k"], ["v"]) == ["k", "v", TAG]
        assert not call.functions
        client.close()


def test_a_lone_surrogate_passes_both_ways(backend: RedisBackend) -> None:
    call = ScriptCaller(backend.client, SCRIPTS_)
    assert call("echo", ["k\udc80"], ["\ud800x"])[:2] == ["k\udc80", "\ud800x"]


def test_an_error_reply_raises_and_leaves_the_connection_usable(backend: RedisBackend) -> None:
    call = ScriptCaller(backend.client, SCRIPTS_)
    with pytest.raises(redis.exceptions.ResponseError, match="NOPE"):
        call("failing", ["k"], [])
    assert call("echo", ["k"], ["again"])[1] == "again"


def test_a_dropped_connection_is_retried_once_on_a_new_one(backend: RedisBackend) -> None:
    call = ScriptCaller(backend.client, SCRIPTS_)
    call("echo", ["k"], ["first"])
    [conn] = call._idle
    conn._sock.close()  # as a server restart or an idle timeout leaves a pooled socket
    assert call("echo", ["k"], ["second"])[1] == "second"
    assert call._idle == [conn] and conn._sock is not None  # reconnected


def test_connections_stay_the_pools_so_closing_the_client_closes_them(backend: RedisBackend) -> None:
    call = ScriptCaller(backend.client, SCRIPTS_)
    call("echo", ["k"], ["v"])
    [conn] = call._idle
    backend.client.connection_pool.disconnect()
    assert conn._sock is None
    assert call("echo", ["k"], ["back"])[1] == "back"  # it reconnects by itself


def test_the_backend_runs_its_scripts_as_functions_of_one_library(backend: RedisBackend) -> None:
    name, code = library()
    instance_id = backend.new_id()
    with pytest.raises(Exception, match="does not exist"):
        backend.instance_tasks(instance_id)
    assert backend._lean is not None and backend._lean.functions
    [loaded] = backend.client.function_list(name)
    functions = [_fields(f)["name"] for f in _fields(loaded)["functions"]]
    assert sorted(functions) == sorted(f"{name}_{script}" for script in SCRIPTS)
    assert code.startswith(f"#!lua name={name}\n")
