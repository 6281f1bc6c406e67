-- task_and_instance: KEYS[1] the task hash. Answers {task hash, instance value},
-- or {} when the task does not exist.
local flat = redis.call("HGETALL", KEYS[1])
if #flat == 0 then
  return {}
end
for i = 1, #flat, 2 do
  if flat[i] == "ii" then
    return {flat, redis.call("GET", key("inst", flat[i + 1]))}
  end
end
return {flat}
