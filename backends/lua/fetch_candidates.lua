-- fetch_candidates (read only): the fetchable external tasks of one partition.
-- ARGV[2] now, ARGV[3] the window (how many of each topic's earliest available
-- tasks count), then topic names. KEYS[1] the partition's anchor key. Answers
-- {id, topic, priority, create_time} per candidate; the caller merges the
-- partitions, picks the best and locks them with lock_externals.
local now, window = ARGV[2], ARGV[3]
local found = {}
for i = 4, #ARGV do
  local topic = ARGV[i]
  for _, ext_id in ipairs(redis.call("ZRANGEBYSCORE", key("ext-topic", topic), "-inf", now, "LIMIT", 0, window)) do
    local status, incident, priority, created =
      unpack(redis.call("HMGET", key("ext", ext_id), "status", "incident", "priority", "create_time"))
    if status == "active" and incident ~= "1" then
      found[#found + 1] = {ext_id, topic, priority or "0", created or "0"}
    end
  end
end
return found
