-- idempotency: the record of one Idempotency-Key (KEYS[1], a hash). ARGV[2] the
-- operation, ARGV[3] the request's fingerprint, ARGV[4] milliseconds to keep it,
-- ARGV[5] the status and ARGV[6] the body (finish). Answers:
-- begin: {"new"} (reserved, "running" for ARGV[4] ms), {"running"}, {"reused"}
-- (another fingerprint), or {"done", status, body}; finish/release: {"OK"}.
local op, fingerprint, ttl = ARGV[2], ARGV[3], ARGV[4]
local state, stored = unpack(redis.call("HMGET", KEYS[1], "state", "fingerprint"))
if op == "begin" then
  if not state then
    redis.call("HSET", KEYS[1], "state", "running", "fingerprint", fingerprint)
    redis.call("PEXPIRE", KEYS[1], ttl)
    return {"new"}
  end
  if stored ~= fingerprint then
    return {"reused"}
  end
  if state == "running" then
    return {"running"}
  end
  local status, body = unpack(redis.call("HMGET", KEYS[1], "status", "body"))
  return {"done", status, body}
end
if stored ~= fingerprint or state ~= "running" then
  return {"OK"} -- not ours (expired and taken by another request meanwhile)
end
if op == "finish" then
  redis.call("HSET", KEYS[1], "state", "done", "status", ARGV[5], "body", ARGV[6])
  redis.call("PEXPIRE", KEYS[1], ttl)
else -- release: the outcome is unknown, a retry runs again
  redis.call("DEL", KEYS[1])
end
return {"OK"}
