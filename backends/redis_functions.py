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
_HEAD = "local FIRST, REQUEST_ID, HISTORY_LIMIT, RETENTION, ROOT, RETENTION_MS -- set per call: begin()\n"
#: after the helpers: each call's start (parses ARGV[1] as the head of _common.lua does). A
#: string.match of the whole head and two tonumber cost about as much as a nested command
#: (~9k server instructions), on every call; so the parsed settings are kept in the library,
#: by the head's settings part ("<history limit>|<retention ms>|<key root>": one per backend
#: and slot) and, for heads without a request id (reads), by the whole head (a table lookup).
#: They are a pure function of that text; at most 4096 are kept (any more: parsed per call).
_BEGIN = """
local SETTINGS, HEADS, kept = {}, {}, 0 -- {HISTORY_LIMIT, RETENTION, ROOT, RETENTION_MS}
local function settings_of(rest)
  local parsed = SETTINGS[rest]
  if parsed == nil then
    local limit, retention, root = string.match(rest, "^(%d*)|(%d*)|(.*)$")
    parsed = {tonumber(limit), retention, root, tonumber(retention)}
    if kept < @KEPT_MAX@ then
      SETTINGS[rest], kept = parsed, kept + 1
    end
  end
  return parsed
end
local function begin(ARGV)
  local head = ARGV[1]
  local parsed = HEADS[head] -- a head without a request id, seen before
  if parsed ~= nil then
    FIRST, REQUEST_ID = parsed[5], ""
  else
    local from = string.byte(head) == 33 and 2 or 1 -- after a "!"
    local bar = string.find(head, "|", from, true) or 0
    FIRST, REQUEST_ID = from == 2 and "!" or "", string.sub(head, from, bar - 1)
    parsed = settings_of(string.sub(head, bar + 1))
    if bar == from and kept < @KEPT_MAX@ then -- no request id: this head again is a lookup
      HEADS[head], kept = {parsed[1], parsed[2], parsed[3], parsed[4], FIRST}, kept + 1
    end
  end
  HISTORY_LIMIT, RETENTION, ROOT, RETENTION_MS = parsed[1], parsed[2], parsed[3], parsed[4]
  -- the per-call state starts empty; a table only when the last call left something in it
  if next(instances) ~= nil then
    instances = {}
  end
  if next(dirty) ~= nil then
    dirty = {}
  end
end
""".replace("@KEPT_MAX@", "4096")
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
