-- Appended to every script that writes (not a script itself): the script's own body
-- runs as body(), once per request id. A call whose reply was lost is retried by
-- the client with the same ARGV; the retry finds the first run's reply under
-- "done:<request id>" and answers it again instead of running twice (a start
-- would else be INSTANCE_EXISTS, a complete TASK_NOT_ACTIVE). Kept DONE_TTL_MS,
-- longer than any client retry (redis-py retries at once, within a socket timeout).
-- A call's first send (FIRST, see _common.lua) has a new request id: nothing to find.
--
-- The keyed write of a request with an Idempotency-Key (backends/once.py) has the
-- request id "<mode><ttl ms>K<id>N<note>": <id> is derived from the key's record, so
-- every run of that request has it; the marker is kept <ttl ms> (the key's TTL),
-- only for a reply that is not an error (an error changed nothing), with <note> (hex:
-- the run that wrote it and the id of the instance it started). A run that finds the marker answers
-- {"REPLAYED", note, first reply} and writes nothing. Mode "R" (a retry of a request
-- whose write is known to have committed somewhere) never writes: without the marker
-- here it answers {"IDEMPOTENT_REPLAY_MISMATCH", "", ""}.
local DONE_TTL_MS = "30000" -- text: a number argument of redis.call costs a float formatting
local mode, keep, keyed_id, note
local lead = string.byte(REQUEST_ID) -- "K" 75, "R" 82: else no match to try
if lead == 75 or lead == 82 then
  mode, keep, keyed_id, note = string.match(REQUEST_ID, "^([KR])(%d+)K(%x+)N(%x*)$")
end
if keyed_id then
  local done = redis.call("GET", key("done", keyed_id))
  if done then
    local stored = cjson.decode(done)
    return {"REPLAYED", stored[2], stored[1]}
  end
  if mode == "R" then
    return {"IDEMPOTENT_REPLAY_MISMATCH", "", ""}
  end
  local reply = body()
  local failed = type(reply) == "table" and type(reply[1]) == "string" and reply[1] ~= "OK"
    and string.match(reply[1], "^[A-Z][A-Z_]+$")
  if not failed then
    redis.call("SET", key("done", keyed_id), cjson.encode({reply, note}), "PX", keep)
  end
  return reply
end
if REQUEST_ID ~= "" and FIRST == "" then -- a first send: its request id is new
  local done = redis.call("GET", key("done", REQUEST_ID))
  if done then
    return cjson.decode(done)
  end
end
local reply = body()
if REQUEST_ID ~= "" then
  local plain = type(reply) == "table" and reply[1] == "OK" and #reply == 1 -- most writes: '["OK"]'
  redis.call("SET", key("done", REQUEST_ID), plain and '["OK"]' or cjson.encode(reply), "PX", DONE_TTL_MS)
end
return reply
