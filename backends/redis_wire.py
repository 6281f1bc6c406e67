"""How commands and replies cross the wire.

With hiredis installed (a dependency), redis-py reads replies with hiredis's C parser,
several times cheaper than its own Python parser (that parsing was the largest client
cost of a lifecycle on Redis), and packs commands with hiredis too. hiredis encodes
text as strict UTF-8 and so refuses lone surrogates, which this backend stores
(``encoding_errors="surrogatepass"``, as the memory backend keeps any Python string).
So a command that hiredis refuses is packed again by redis-py's Python serializer with
that encoder: the same bytes hiredis would make for valid UTF-8, and lone surrogates
pass as in replies.
"""

from __future__ import annotations

from typing import Any

from redis.connection import Encoder, HiredisRespSerializer, PythonRespSerializer
from redis.utils import HIREDIS_AVAILABLE

#: redis-py's own cut-off above which a large argument is sent as a separate chunk
BUFFER_CUTOFF = 6000


class _Packer:
    """hiredis's packer, and redis-py's Python one for what hiredis refuses."""

    def __init__(self) -> None:
        self._python = PythonRespSerializer(BUFFER_CUTOFF, Encoder("utf-8", "surrogatepass", True).encode)
        self._fast = HiredisRespSerializer() if HIREDIS_AVAILABLE else None

    def pack(self, *args: Any) -> list[bytes]:
        if self._fast is not None:
            try:
                return self._fast.pack(*args)  # type: ignore[no-any-return]
            except UnicodeEncodeError:  # a lone surrogate
                pass
        return self._python.pack(*args)  # type: ignore[no-any-return]


def command_packer() -> Any:
    """A packer for a connection: lone surrogates pass, as in replies."""
    return _Packer()


def packing_on_connect(connection: Any) -> None:
    """RedisCluster's hook for each new node connection (its node clients take no
    packer option): the connection packs with :func:`command_packer`. Runs before the
    connection's first command of ours; a lone surrogate in an id on a cluster
    (tests/test_backend_contract.py) shows if redis-py ever renames the attribute."""
    connection._command_packer = command_packer()
