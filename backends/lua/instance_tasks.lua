-- instance_tasks: ARGV[2] instance id. KEYS[1] the instance's value (it lists the
-- active tasks). Answers {"OK", {task hash and its "id", ...}, the instance's value}
-- (the value as stored: the client keeps it, see backends/redis_recent.py).
local inst = load_inst(ARGV[2])
if not inst then
  return {"INSTANCE_NOT_FOUND", ARGV[2], ""}
end
local found = {}
for _, task_id in ipairs(inst.tasks) do
  local flat = redis.call("HGETALL", key("task", task_id))
  if #flat > 0 then
    flat[#flat + 1] = "id"
    flat[#flat + 1] = task_id
    found[#found + 1] = flat
  end
end
return {"OK", found, inst.raw} -- as load_inst read it (KEYS[1]): no second GET
