-- instance_tasks: ARGV[2] instance id. KEYS[1] the instance hash (its "tasks"
-- field lists the active tasks). Answers {"OK", {task hash, ...}}.
if redis.call("EXISTS", KEYS[1]) == 0 then
  return {"INSTANCE_NOT_FOUND", ARGV[2], ""}
end
local found = {}
for _, task_id in ipairs(active_tasks(ARGV[2])) do
  local flat = load_task(task_id)
  if flat then
    found[#found + 1] = flat
  end
end
return {"OK", found}
