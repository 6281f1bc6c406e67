-- assign_instance: ARGV[2] instance id, ARGV[3] user, ARGV[4] the audit entry
-- (JSON, appended once per task that changed) or "". KEYS[1] the instance's value
-- (it lists the active tasks). Answers {"OK", {{id, create_time}, ...}}.
local instance_id, user, audit = ARGV[2], ARGV[3], ARGV[4]
if not load_inst(instance_id) then
  return {"INSTANCE_NOT_FOUND", instance_id, ""}
end
local assigned = {}
for _, task_id in ipairs(active_tasks(instance_id)) do
  local _, task = load_task(task_id)
  if task and not task.status then -- active
    assign_one(task, user, audit)
    assigned[#assigned + 1] = {task_id, task.ct}
  end
end
return {"OK", assigned}
