"""The lean script call of the single-server Redis backend (backends/redis_call.py)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator

import pytest
import redis

from backends.redis import RedisBackend
from backends.redis_call import ScriptCaller
from tests.conftest import make_redis_backend

pytestmark = pytest.mark.redis

ECHO = "return {KEYS[1], ARGV[1], '" + uuid.uuid4().hex + "'}"  # a source no server has cached yet


@pytest.fixture
def backend() -> Iterator[RedisBackend]:
    made = make_redis_backend()
    assert isinstance(made, RedisBackend)
    yield made
    made.clear()
    made.close()


def test_an_unknown_script_is_sent_with_eval_and_cached_again(backend: RedisBackend) -> None:
    call = ScriptCaller(backend.client)
    sha = hashlib.sha1(ECHO.encode()).hexdigest()
    assert backend.client.script_exists(sha) == [False]
    assert call(sha, ECHO, ["k"], ["v"])[:2] == ["k", "v"]
    assert backend.client.script_exists(sha) == [True]  # the next call is an EVALSHA again


def test_a_lone_surrogate_passes_both_ways(backend: RedisBackend) -> None:
    call = ScriptCaller(backend.client)
    sha = hashlib.sha1(ECHO.encode()).hexdigest()
    assert call(sha, ECHO, ["k\udc80"], ["\ud800x"])[:2] == ["k\udc80", "\ud800x"]


def test_an_error_reply_raises_and_leaves_the_connection_usable(backend: RedisBackend) -> None:
    call = ScriptCaller(backend.client)
    failing = "return redis.error_reply('NOPE " + uuid.uuid4().hex + "')"
    with pytest.raises(redis.exceptions.ResponseError, match="NOPE"):
        call(hashlib.sha1(failing.encode()).hexdigest(), failing, ["k"], [])
    assert call(hashlib.sha1(ECHO.encode()).hexdigest(), ECHO, ["k"], ["again"])[1] == "again"


def test_a_dropped_connection_is_retried_once_on_a_new_one(backend: RedisBackend) -> None:
    call = ScriptCaller(backend.client)
    sha = hashlib.sha1(ECHO.encode()).hexdigest()
    call(sha, ECHO, ["k"], ["first"])
    [conn] = call._idle
    conn._sock.close()  # as a server restart or an idle timeout leaves a pooled socket
    assert call(sha, ECHO, ["k"], ["second"])[1] == "second"
    assert call._idle == [conn] and conn._sock is not None  # reconnected


def test_connections_stay_the_pools_so_closing_the_client_closes_them(backend: RedisBackend) -> None:
    call = ScriptCaller(backend.client)
    sha = hashlib.sha1(ECHO.encode()).hexdigest()
    call(sha, ECHO, ["k"], ["v"])
    [conn] = call._idle
    backend.client.connection_pool.disconnect()
    assert conn._sock is None
    assert call(sha, ECHO, ["k"], ["back"])[1] == "back"  # it reconnects by itself


def test_a_lifecycle_makes_every_script_call_through_the_lean_caller(backend: RedisBackend) -> None:
    assert backend._lean is not None
    before = len(backend._lean._idle)
    backend.apply_steps([])
    instance_id = backend.new_id()
    assert backend.instance(instance_id) is None
    with pytest.raises(Exception, match="does not exist"):
        backend.instance_tasks(instance_id)
    assert len(backend._lean._idle) == max(before, 1)  # the one connection went back
