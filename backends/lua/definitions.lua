-- definitions: KEYS[1] the set of process keys. Answers every stored version's hash.
local found = {}
for _, process_key in ipairs(redis.call("SMEMBERS", KEYS[1])) do
  for _, version in ipairs(redis.call("LRANGE", key("def-versions", process_key), 0, -1)) do
    found[#found + 1] = redis.call("HGETALL", key("def", process_key, version))
  end
end
return found
