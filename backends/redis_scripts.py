"""The Lua scripts of the Redis backend, and which Redis errors mean "unavailable".

Each script is ``backends/lua/<name>.lua`` after the helpers of ``_common.lua``;
a script that writes also runs inside ``_once.lua`` (once per request id).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

import redis

from bpm.errors import BackendUnavailable

LUA_DIR = Path(__file__).resolve().parent / "lua"
SCRIPTS = (
    "apply_steps",
    "assign",
    "assign_instance",
    "claim",
    "definitions",
    "deploy",
    "external",
    "fetch_candidates",
    "idempotency",
    "instance_externals",
    "instance_tasks",
    "lock_externals",
    "set_identity",
    "take_timer",
    "task_and_instance",
    "unclaim",
)
#: the scripts that write (run with WAIT under ``?wait=N``)
WRITE_SCRIPTS = frozenset(
    {"apply_steps", "assign", "assign_instance", "claim", "deploy", "external", "idempotency", "lock_externals",
     "set_identity",
     "take_timer", "unclaim"}
)  # fmt: skip

#: errors meaning "Redis cannot serve us right now" rather than a bug of ours
UNAVAILABLE: tuple[type[Exception], ...] = (
    redis.exceptions.ConnectionError,  # includes refused, auth, loading, max connections
    redis.exceptions.TimeoutError,
    redis.exceptions.ReadOnlyError,  # a replica after failover
    redis.exceptions.ClusterDownError,
    redis.exceptions.TryAgainError,
    redis.exceptions.ClusterError,  # redirections or retries exhausted during a failover
    redis.exceptions.SlotNotCoveredError,
    redis.exceptions.MasterDownError,
)

P = ParamSpec("P")
R = TypeVar("R")


def script_source(name: str) -> str:
    """A script as sent to Redis: the helpers it uses, its body, and for a write the once-only wrapper."""
    body = (LUA_DIR / f"{name}.lua").read_text()
    if name not in WRITE_SCRIPTS:
        return helpers_for(body) + "\n" + body
    once = (LUA_DIR / "_once.lua").read_text()
    return helpers_for(body + once) + "\nlocal function body()\n" + body + "\nend\n" + once


#: a top-level definition of _common.lua: ``local function f(`` or ``local a, b =``
_DEFINITION = re.compile(r"^local (?:function )?([\w, ]+?)\s*(?:\(|=)", re.MULTILINE)


def common_blocks() -> list[tuple[set[str], str]]:
    """The blocks of ``_common.lua`` in order: (the names a block defines, its text). A block
    is a top-level definition with the comment lines above it."""
    blocks: list[tuple[set[str], str]] = []
    for chunk in re.split(r"\n(?=(?:--[^\n]*\n)*local )", (LUA_DIR / "_common.lua").read_text()):
        match = _DEFINITION.search(chunk)
        names = {n.strip() for n in match.group(1).split(",")} if match else set()
        blocks.append((names, chunk))
    return blocks


def helpers_for(code: str) -> str:
    """The blocks of ``_common.lua`` that ``code`` needs, directly or through other blocks, in
    their order there; the first block (ARGV[1] parsed) always. Every call of a script runs
    its helpers' definitions first (a few µs for all of them), so each script gets only its own.

    A block is a top-level definition with the comment lines above it; a block is needed when
    a name it defines appears as a word outside comments in the code or in another needed block."""
    blocks = common_blocks()
    needed = [True] + [False] * (len(blocks) - 1)
    pending = [code, blocks[0][1]]
    while pending:
        words = set(re.findall(r"[A-Za-z_]\w*", re.sub(r"--[^\n]*", "", pending.pop())))
        for i, (names, chunk) in enumerate(blocks):
            if not needed[i] and names & words:
                needed[i] = True
                pending.append(chunk)
    return "\n".join(chunk for (_, chunk), keep in zip(blocks, needed, strict=True) if keep)


class PartitionCountMismatch(ValueError):
    """The store was set up with another number of partitions than the URL asks for."""


class StoreLayoutMismatch(ValueError):
    """The store holds data in a key layout of another version of the service."""


def unavailable_as_domain_error(method: Callable[P, R]) -> Callable[P, R]:
    """Turn every connection-level Redis failure into BackendUnavailable (HTTP 503)."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except UNAVAILABLE as exc:
            raise BackendUnavailable(f"the Redis backend is unreachable: {exc}") from exc

    return wrapper
