-- idempotency: the record of one Idempotency-Key (KEYS[1], a hash: state, fingerprint,
-- lock_until (ms, while running), status and body (done)). ARGV[2] the operation,
-- ARGV[3] the request's fingerprint; begin: ARGV[4] the lock (ms) and ARGV[5] how long
-- to keep the record (ms); finish: ARGV[4] ms to keep the answer, ARGV[5] the status
-- and ARGV[6] the body. Answers:
-- begin: {"new"} (reserved: "running" until the lock runs out), {"retry"} (reserved
-- again: an earlier run of this request was cut off, its lock ran out, or it was
-- released after a 5xx, so its write may have committed), {"running"}, {"reused"}
-- (another fingerprint), or {"done", status, body}; finish/release: {"OK"}.
local op, fingerprint = ARGV[2], ARGV[3]
local state, stored, lock_until = unpack(redis.call("HMGET", KEYS[1], "state", "fingerprint", "lock_until"))
if op == "begin" then
  local clock = redis.call("TIME")
  local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
  local answer
  if not state or (state == "released" and stored ~= fingerprint) then
    answer = "new"
  elseif stored ~= fingerprint then
    return {"reused"}
  elseif state == "done" then
    local status, body = unpack(redis.call("HMGET", KEYS[1], "status", "body"))
    return {"done", status, body}
  elseif state == "released" or (lock_until and tonumber(lock_until) <= now) then
    answer = "retry"
  else
    return {"running"}
  end
  local until_ms = string.format("%.0f", now + tonumber(ARGV[4]))
  redis.call("HSET", KEYS[1], "state", "running", "fingerprint", fingerprint, "lock_until", until_ms)
  redis.call("PEXPIRE", KEYS[1], ARGV[5])
  return {answer}
end
if stored ~= fingerprint or state ~= "running" then
  return {"OK"} -- not ours (expired and taken by another request meanwhile)
end
if op == "finish" then
  redis.call("HSET", KEYS[1], "state", "done", "status", ARGV[5], "body", ARGV[6])
  redis.call("HDEL", KEYS[1], "lock_until")
  redis.call("PEXPIRE", KEYS[1], ARGV[4])
else -- release: the outcome is unknown; a retry runs again, knowing its write may be in
  redis.call("HSET", KEYS[1], "state", "released")
  redis.call("HDEL", KEYS[1], "lock_until")
end
return {"OK"}
