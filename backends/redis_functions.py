"""The scripts of backends/lua/ as one Redis Functions library (Redis 7+), for FCALL.

An EVALSHA runs its script's whole chunk on every call: the helpers it needs from
``_common.lua`` are defined anew each time (a closure each, tens of thousands of server
instructions per call: about a tenth of a lifecycle's server CPU). A library is loaded
once (``FUNCTION LOAD``); its top level defines every helper once, and each script is a
registered function whose body is the script's own, run after ``begin`` has parsed
ARGV[1] and reset the per-call state (the instances read by the call and the dirty
ones) that the helpers share. Same scripts, same keys and arguments, same replies.

The library's name carries a hash of its code, so two versions of the service on one
server never replace each other's functions. The single-server backend calls the
functions (:class:`backends.redis_call.ScriptCaller`: ``Function not found`` loads the
library, a server without Functions gets EVALSHA); Redis Cluster and ``?wait=N`` keep
EVALSHA of :func:`backends.redis_scripts.script_source`.
"""

from __future__ import annotations

import functools
import hashlib

from backends.redis_scripts import LUA_DIR, SCRIPTS, WRITE_SCRIPTS, common_blocks

__all__ = ["function_name", "library"]

#: the helpers' per-call settings, declared at the library's top level (the helpers
#: read them as upvalues) instead of _common.lua's head that parses ARGV[1] at load
_HEAD = "local FIRST, HISTORY_LIMIT, RETENTION, REQUEST_ID, ROOT, RETENTION_MS -- set per call: begin()\n"
#: after the helpers: each call's start (mirrors the head of _common.lua)
_BEGIN = """
local function begin(ARGV)
  FIRST, HISTORY_LIMIT, RETENTION, REQUEST_ID, ROOT = string.match(ARGV[1], "^(!?)(%d*)|(%d*)|(%w*)|(.*)$")
  HISTORY_LIMIT = tonumber(HISTORY_LIMIT)
  RETENTION_MS = tonumber(RETENTION)
  instances, dirty = {}, {}
end
"""
#: the blocks of _common.lua that the head above replaces (by a name each defines)
_REPLACED = {"HISTORY_LIMIT", "RETENTION_MS"}
_NAME = "bpm_{hash}"
_PLACE = "@LIBRARY@"  # the name in the code until it is known


@functools.cache
def library() -> tuple[str, str]:
    """(library name, code) of the library of every script."""
    once = (LUA_DIR / "_once.lua").read_text()
    kept = [_HEAD if names & _REPLACED else chunk for names, chunk in common_blocks()]
    parts = ["\n".join(dict.fromkeys(kept)), _BEGIN]
    for script in SCRIPTS:
        body = (LUA_DIR / f"{script}.lua").read_text()
        if script in WRITE_SCRIPTS:
            body = "local function body()\n" + body + "\nend\n" + once
        parts.append(f'redis.register_function("{_PLACE}_{script}", function(KEYS, ARGV)\nbegin(ARGV)\n{body}\nend)\n')
    code = "\n".join(parts)
    name = _NAME.format(hash=hashlib.sha1(code.encode()).hexdigest()[:16])
    return name, f"#!lua name={name}\n" + code.replace(_PLACE, name)


def function_name(script: str) -> str:
    """The registered name of a script's function."""
    return f"{library()[0]}_{script}"
