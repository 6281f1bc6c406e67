"""How commands and replies cross the wire.

With hiredis installed (a dependency), redis-py reads replies with hiredis's C parser,
several times cheaper than its own Python parser (that parsing was the largest client
cost of a lifecycle on Redis). redis-py then also packs commands with hiredis, which
encodes text as strict UTF-8 and so refuses lone surrogates; this backend stores them
(``encoding_errors="surrogatepass"``, as the memory backend keeps any Python string).
So commands keep being packed by redis-py's Python serializer with that encoder, and
only replies go through hiredis.
"""

from __future__ import annotations

from typing import Any

from redis.connection import Encoder, PythonRespSerializer

#: redis-py's own cut-off above which a large argument is sent as a separate chunk
BUFFER_CUTOFF = 6000


def command_packer() -> Any:
    """A packer for a connection: lone surrogates pass, as in replies."""
    return PythonRespSerializer(BUFFER_CUTOFF, Encoder("utf-8", "surrogatepass", True).encode)


def packing_on_connect(connection: Any) -> None:
    """RedisCluster's hook for each new node connection (its node clients take no
    packer option): the connection packs with :func:`command_packer`. Runs before the
    connection's first command of ours; a lone surrogate in an id on a cluster
    (tests/test_backend_contract.py) shows if redis-py ever renames the attribute."""
    connection._command_packer = command_packer()
