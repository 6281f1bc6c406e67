-- Appended to every script that writes (not a script itself): the script's own body
-- runs as body(), once per request id. A call whose reply was lost is retried by
-- the client with the same ARGV; the retry finds the first run's reply under
-- "done:<request id>" and answers it again instead of running twice (a start
-- would else be INSTANCE_EXISTS, a complete TASK_NOT_ACTIVE). Kept DONE_TTL_MS,
-- longer than any client retry (redis-py retries at once, within a socket timeout).
local DONE_TTL_MS = 30000
if REQUEST_ID ~= "" then
  local done = redis.call("GET", key("done", REQUEST_ID))
  if done then
    return cjson.decode(done)
  end
end
local reply = body()
if REQUEST_ID ~= "" then
  redis.call("SET", key("done", REQUEST_ID), cjson.encode(reply), "PX", DONE_TTL_MS)
end
return reply
