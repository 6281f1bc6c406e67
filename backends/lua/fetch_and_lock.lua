-- fetch_and_lock: ARGV[2] the worker, ARGV[3] at most how many tasks, ARGV[4] now,
-- ARGV[5] the window (how many of each topic's earliest available tasks are
-- candidates), then topic / lock duration (ms) pairs. Locks the best candidates
-- (priority desc, then create time, then id) for the worker until now + duration,
-- which is also when they become fetchable again; answers their hashes in order.
local worker, max_tasks, now, window = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local candidates = {}
for i = 6, #ARGV, 2 do
  local topic, lock = ARGV[i], tonumber(ARGV[i + 1])
  local ready = redis.call("ZRANGEBYSCORE", key("ext-topic", topic), "-inf", ARGV[4], "LIMIT", 0, window)
  for _, ext_id in ipairs(ready) do
    local status, incident, priority, created =
      unpack(redis.call("HMGET", key("ext", ext_id), "status", "incident", "priority", "create_time"))
    if status == "active" and incident ~= "1" then
      candidates[#candidates + 1] = {
        id = ext_id, topic = topic, lock = lock,
        priority = tonumber(priority or "0"), created = tonumber(created or "0"),
      }
    end
  end
end
table.sort(candidates, function(a, b)
  if a.priority ~= b.priority then
    return a.priority > b.priority
  end
  if a.created ~= b.created then
    return a.created < b.created
  end
  return a.id < b.id
end)
local locked = {}
for i = 1, math.min(max_tasks, #candidates) do
  local c = candidates[i]
  local expiry = int(now + c.lock)
  local ext_key = key("ext", c.id)
  redis.call("HSET", ext_key, "worker", worker, "lock_expiry", expiry, "available_at", expiry)
  redis.call("ZADD", key("ext-topic", c.topic), expiry, c.id)
  locked[#locked + 1] = redis.call("HGETALL", ext_key)
end
return locked
