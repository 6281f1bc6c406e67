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


_hiredis_pack: Any
try:
    from hiredis import pack_command as _hiredis_pack
except ImportError:  # pragma: no cover - hiredis is a dependency
    _hiredis_pack = None


def _python_packer() -> PythonRespSerializer:
    return PythonRespSerializer(BUFFER_CUTOFF, Encoder("utf-8", "surrogatepass", True).encode)


class _Packer:
    """hiredis's packer, and redis-py's Python one for what hiredis refuses."""

    def __init__(self) -> None:
        self._python = _python_packer()
        self._fast = HiredisRespSerializer() if HIREDIS_AVAILABLE else None

    def pack(self, *args: Any) -> list[bytes]:
        if self._fast is not None:
            try:
                return self._fast.pack(*args)  # type: ignore[no-any-return]
            except UnicodeEncodeError:  # a lone surrogate
                pass
        return self._python.pack(*args)  # type: ignore[no-any-return]


_PYTHON = _python_packer()


def pack_plain(args: tuple[str, ...]) -> list[bytes]:
    """A command of one-word name and str arguments, packed as :func:`command_packer`'s
    packer packs it, without the argument conversions redis-py's serializer makes first."""
    if _hiredis_pack is not None:
        try:
            return [_hiredis_pack(args)]
        except UnicodeEncodeError:  # a lone surrogate
            pass
    return _PYTHON.pack(*args)  # type: ignore[no-any-return]


def command_packer() -> Any:
    """A packer for a connection: lone surrogates pass, as in replies."""
    return _Packer()


def packing_on_connect(connection: Any) -> None:
    """RedisCluster's hook for each new node connection (its node clients take no
    packer option): the connection packs with :func:`command_packer`. Runs before the
    connection's first command of ours; a lone surrogate in an id on a cluster
    (tests/test_backend_contract.py) shows if redis-py ever renames the attribute."""
    connection._command_packer = command_packer()
