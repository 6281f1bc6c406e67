-- task_and_instance: KEYS[1] the task hash. Answers {task hash, instance hash, state},
-- or {} when the task does not exist.
local flat = redis.call("HGETALL", KEYS[1])
if #flat == 0 then
  return {}
end
local instance_id = to_map(flat).instance_id
return {flat, redis.call("HGETALL", key("inst", instance_id)), redis.call("GET", key("state", instance_id))}
