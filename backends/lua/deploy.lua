-- deploy: ARGV[2] process key, ARGV[3] content hash, ARGV[4..] the definition's
-- field/value pairs (no version). KEYS[1] the key's version list, KEYS[2] the set
-- of process keys. Answers {created 1/0, the stored definition hash}.
local process_key, content_hash = ARGV[2], ARGV[3]
local latest = redis.call("LINDEX", KEYS[1], -1)
if latest then
  local stored = key("def", process_key, latest)
  if redis.call("HGET", stored, "content_hash") == content_hash then
    return {0, redis.call("HGETALL", stored)}
  end
end
local version = tostring((tonumber(latest) or 0) + 1)
local stored = key("def", process_key, version)
local fields = {"version", version}
for i = 4, #ARGV do
  fields[#fields + 1] = ARGV[i]
end
redis.call("DEL", stored)
redis.call("HSET", stored, unpack(fields))
redis.call("RPUSH", KEYS[1], version)
redis.call("SADD", KEYS[2], process_key)
return {1, redis.call("HGETALL", stored)}
