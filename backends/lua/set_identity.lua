-- set_identity: replace a user's groups and roles. KEYS[1] the groups set,
-- KEYS[2] the roles set (both in the global slot); ARGV[2] and ARGV[3] JSON lists.
redis.call("DEL", KEYS[1], KEYS[2])
for i, names in ipairs({cjson.decode(ARGV[2]), cjson.decode(ARGV[3])}) do
  if #names > 0 then
    redis.call("SADD", KEYS[i], unpack(names))
  end
end
return {"OK"}
