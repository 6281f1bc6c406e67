-- lock_externals: lock chosen external tasks of one partition for a worker, each
-- only while it is still fetchable (a racing worker may have taken it since it
-- was read). ARGV[2] the worker, ARGV[3] now, then id / topic / lock duration (ms)
-- triples. KEYS[1] the partition's anchor key. Answers the hashes of the tasks
-- locked, in the order given.
local worker, now = ARGV[2], tonumber(ARGV[3])
local locked = {}
for i = 4, #ARGV, 3 do
  local ext_id, topic, lock = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  local topic_key = key("ext-topic", topic)
  local score = redis.call("ZSCORE", topic_key, ext_id)
  local ext_key = key("ext", ext_id)
  local status, incident = unpack(redis.call("HMGET", ext_key, "status", "incident"))
  if score and tonumber(score) <= now and status == "active" and incident ~= "1" then
    local expiry = int(now + lock)
    redis.call("HSET", ext_key, "worker", worker, "lock_expiry", expiry, "available_at", expiry)
    redis.call("ZADD", topic_key, expiry, ext_id)
    locked[#locked + 1] = redis.call("HGETALL", ext_key)
  end
end
return locked
