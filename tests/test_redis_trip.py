"""backends/redis_trip.py's round trip against redis-py's ``send_packed_command`` and
``read_response``: the same replies, the same errors (type, text), the same connection state
after them, and redis-py's own methods wherever the lean path must step aside."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from redis.connection import AbstractConnection

from backends.redis_store import RedisStore
from backends.redis_trip import round_trip
from backends.redis_wire import pack_plain
from tests.conftest import REDIS_URL

pytestmark = pytest.mark.redis

Trip = Callable[[Any, list[bytes]], Any]


def redis_py(conn: Any, packed: list[bytes]) -> Any:
    conn.send_packed_command(packed)
    return conn.read_response()


TRIPS = pytest.mark.parametrize("trip", [round_trip, redis_py], ids=["lean", "redis-py"])


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    """A client made as the backend makes its own (RedisStore._connect)."""
    made = RedisStore._connect(None, REDIS_URL, 0.3, 15)  # type: ignore[arg-type]
    yield made
    made.close()


@pytest.fixture
def key(client: redis.Redis) -> Iterator[str]:
    name = f"test-trip:{uuid.uuid4().hex}"
    yield name
    client.delete(name)


def connected(client: redis.Redis) -> Any:
    conn = client.connection_pool.get_connection()
    conn.connect()
    return conn


def outcome(trip: Trip, conn: Any, *command: str) -> tuple[str, Any]:
    try:
        return "reply", repr(trip(conn, pack_plain(command)))  # (error objects in a reply compare by identity)
    except Exception as exc:
        return type(exc).__name__, str(exc)


def both(client: redis.Redis, *command: str, before: Callable[[Any], None] = lambda conn: None) -> list[Any]:
    """The outcome of ``command`` on a fresh connection (after ``before``), lean and by redis-py,
    with whether the connection is still open."""
    found = []
    for trip in (round_trip, redis_py):
        conn = connected(client)
        before(conn)
        found.append((outcome(trip, conn, *command), conn._sock is not None))
        client.connection_pool.release(conn)
    return found


def test_replies_are_redis_pys(client: redis.Redis, key: str) -> None:
    client.rpush(key, "a", "\udc80", "c")
    for command in (
        ("LRANGE", key, "0", "-1"),
        ("ECHO", "x" * 70000),  # longer than the read buffer
        ("EVAL", "return {1, 'two', {3}, redis.error_reply('NESTED')}", "0"),
        ("HGETALL", key + ":none"),
    ):
        lean, slow = both(client, *command)
        assert lean == slow and lean[0][0] == "reply"


def test_an_error_reply_raises_and_leaves_the_connection_open(client: redis.Redis, key: str) -> None:
    lean, slow = both(client, "EVAL", "return redis.error_reply('NOPE here')", "0")
    assert lean == slow == (("ResponseError", "NOPE here"), True)
    conn = connected(client)
    with pytest.raises(redis.exceptions.ResponseError):
        round_trip(conn, pack_plain(("INCR", key, "extra")))
    assert round_trip(conn, pack_plain(("ECHO", "next"))) == "next"


def test_a_closed_socket_fails_to_write_and_disconnects(client: redis.Redis) -> None:
    lean, slow = both(client, "ECHO", "x", before=lambda conn: conn._sock.close())
    assert lean == slow
    assert lean[0][0] == "ConnectionError" and "while writing to socket" in lean[0][1] and not lean[1]


def test_a_connection_the_server_closed_fails_to_read_and_disconnects(client: redis.Redis) -> None:
    def killed(conn: Any) -> None:
        conn.send_command("CLIENT", "ID")
        own = conn.read_response()
        client.client_kill_filter(_id=own)

    lean, slow = both(client, "ECHO", "x", before=killed)
    assert lean == slow and lean[0][0] == "ConnectionError" and not lean[1]


def test_a_read_timeout_is_redis_pys_and_disconnects(client: redis.Redis, key: str) -> None:
    lean, slow = both(client, "BLPOP", key, "1")  # longer than the client's 0.3 s socket timeout
    assert lean == slow == (("TimeoutError", "Timeout reading from socket"), False)


def test_a_health_check_due_goes_through_redis_py(client: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    pings: list[Any] = []
    ping = AbstractConnection._send_ping  # type: ignore[attr-defined]

    def counted(conn: Any) -> None:
        pings.append(conn)
        ping(conn)

    monkeypatch.setattr(AbstractConnection, "_send_ping", counted)
    conn = connected(client)
    pings.clear()  # connecting may check too
    conn.next_health_check = 0
    assert round_trip(conn, pack_plain(("ECHO", "x"))) == "x"
    assert pings == [conn] and conn.next_health_check > time.monotonic() + 10  # checked, and due again later
    assert round_trip(conn, pack_plain(("ECHO", "y"))) == "y"
    assert pings == [conn]


def test_replaced_methods_are_used(client: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    """A counter wrapping ``send_packed_command`` (as the round-trip counts do) sees every send."""
    sent: list[Any] = []
    send = AbstractConnection.send_packed_command

    def counting(conn: Any, command: Any, check_health: bool = True) -> None:
        sent.extend(command)
        send(conn, command, check_health)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counting)
    conn = connected(client)
    sent.clear()  # the handshake's
    assert round_trip(conn, pack_plain(("ECHO", "x"))) == "x"
    assert sent == pack_plain(("ECHO", "x"))


def test_a_push_message_before_the_reply_is_handled_as_redis_py_handles_it(client: redis.Redis, key: str) -> None:
    """RESP3 (redis-py's default): an invalidation pushed before a reply is handled, then the reply read."""

    def tracking(conn: Any) -> None:
        for command in (("CLIENT", "TRACKING", "ON"), ("GET", key)):
            conn.send_packed_command(pack_plain(command))
            conn.read_response()
        client.set(key, uuid.uuid4().hex)  # invalidates the tracked key: a push to conn
        time.sleep(0.05)

    assert client.connection_pool.connection_kwargs.get("protocol", 3) in (3, "3")
    lean, slow = both(client, "ECHO", "after", before=tracking)
    assert lean == slow == (("reply", "'after'"), True)
