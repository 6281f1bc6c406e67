"""One command's round trip on a pooled connection, as redis-py makes it, without its layers.

``conn.send_packed_command(packed)`` and ``conn.read_response()`` cost about as much
client CPU as the round trip's socket calls and reply parsing themselves (the health
check's clock, the host name formatted for an error message that is almost never raised,
keyword calls through the parser, its timeout juggling). :func:`round_trip` makes the
same calls on the socket and the hiredis reader that those two methods make, with the
same outcome in every case:

* the reply as redis-py decodes it; an error reply raised as its ``ResponseError``;
* a write that fails: the connection disconnected, then ``TimeoutError("Timeout writing
  to socket")`` or ``ConnectionError("Error <errno> while writing to socket. <msg>.")``
  (anything else raised as it is);
* a read that fails: the connection disconnected, then ``TimeoutError("Timeout reading
  from socket")``, ``ConnectionError("Connection closed by server.")``,
  ``ConnectionError("Error while reading from <host>:<port> : <args>")`` ... exactly as
  redis-py's ``read_response`` with hiredis's parser raises them;
* after a reply, the next health check is due ``health_check_interval`` later.

It does so only for a connection exactly like the backend's (a TCP :class:`Connection`,
connected, hiredis's parser) whose health check is not due and whose methods
nobody replaced (the round-trip counters of the tests and ``bench/bench_compare.py``
wrap ``send_packed_command``); every other connection goes through redis-py's methods.
``tests/test_redis_trip.py`` checks each case against them.
"""

from __future__ import annotations

import time
from typing import Any

from redis._parsers.hiredis import NOT_ENOUGH_DATA, _HiredisParser
from redis._parsers.socket import NONBLOCKING_EXCEPTIONS, SERVER_CLOSED_CONNECTION_ERROR
from redis.connection import AbstractConnection, Connection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = ["round_trip"]

#: the methods :func:`round_trip` stands in for (when one is replaced, it steps aside)
_SEND = AbstractConnection.send_packed_command
_READ = AbstractConnection.read_response
_PARSER_READ = _HiredisParser.read_response
_PARSER_RECV = _HiredisParser.read_from_socket
_monotonic = time.monotonic


def round_trip(conn: Any, packed: list[bytes]) -> Any:
    """``conn.send_packed_command(packed)`` and then ``conn.read_response()``: their reply or error."""
    sock = conn._sock
    parser = conn._parser
    if (
        sock is None
        or type(conn) is not Connection
        or type(parser) is not _HiredisParser
        or Connection.send_packed_command is not _SEND
        or Connection.read_response is not _READ
        or _HiredisParser.read_response is not _PARSER_READ
        or _HiredisParser.read_from_socket is not _PARSER_RECV
        or (conn.health_check_interval and _monotonic() > conn.next_health_check)
    ):  # not a connection like the backend's, or its health check is due: redis-py's methods
        conn.send_packed_command(packed)
        return conn.read_response()
    try:
        for item in packed:
            sock.sendall(item)
    except TimeoutError:  # socket.timeout
        conn.disconnect()
        raise RedisTimeoutError("Timeout writing to socket")  # noqa: B904 - chained as in redis-py
    except OSError as e:
        conn.disconnect()
        errno, errmsg = ("UNKNOWN", e.args[0]) if len(e.args) == 1 else (e.args[0], e.args[1])
        raise RedisConnectionError(f"Error {errno} while writing to socket. {errmsg}.")  # noqa: B904 - chained as in redis-py
    except BaseException:
        conn.disconnect()
        raise
    try:
        response = _parse(parser)
    except OSError as e:
        conn.disconnect()
        raise RedisConnectionError(f"Error while reading from {conn._host_error()} : {e.args}")  # noqa: B904 - chained as in redis-py
    except BaseException:
        conn.disconnect()
        raise
    if conn.health_check_interval:
        conn.next_health_check = _monotonic() + conn.health_check_interval  # type: ignore[assignment]  # as redis-py
    if isinstance(response, ResponseError):
        raise response
    return response


def _parse(parser: _HiredisParser) -> Any:
    """``parser.read_response()`` of redis-py's hiredis parser (its default arguments)."""
    reader = parser._reader
    if reader is None:
        raise RedisConnectionError(SERVER_CLOSED_CONNECTION_ERROR)
    response = reader.gets()
    while response is NOT_ENOUGH_DATA:
        sock = parser._sock
        if sock is None or parser._reader is None:
            raise RedisConnectionError(SERVER_CLOSED_CONNECTION_ERROR)
        try:
            read = sock.recv_into(parser._buffer)
            if read == 0:
                raise RedisConnectionError(SERVER_CLOSED_CONNECTION_ERROR)
            parser._reader.feed(parser._buffer, 0, read)
        except TimeoutError:  # socket.timeout
            raise RedisTimeoutError("Timeout reading from socket")  # noqa: B904 - chained as in redis-py
        except NONBLOCKING_EXCEPTIONS as ex:
            raise RedisConnectionError(f"Error while reading from socket: {ex.args}")  # noqa: B904 - chained as in redis-py
        response = reader.gets()
    if isinstance(response, RedisConnectionError):
        raise response
    if parser._hiredis_PushNotificationType is not None and isinstance(
        response, parser._hiredis_PushNotificationType
    ):  # RESP3's out-of-band messages: handled as redis-py handles them, then the reply
        parser.handle_push_response(response)
        return parser.read_response()
    if isinstance(response, list) and response and isinstance(response[0], RedisConnectionError):
        raise response[0]
    return response
