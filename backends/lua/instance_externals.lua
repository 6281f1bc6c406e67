-- instance_externals: KEYS[1] the instance's set of active external tasks.
-- Answers their hashes (the caller sorts them).
local found = {}
for _, ext_id in ipairs(redis.call("ZRANGE", KEYS[1], 0, -1)) do
  local flat = load_external(ext_id)
  if flat then
    found[#found + 1] = flat
  end
end
return found
