-- unclaim: ARGV[2] task id, ARGV[3] "1" when ARGV[4] (a user) must be the
-- assignee, else "0", ARGV[5] the audit entry (JSON) or "". KEYS[1] the task hash.
local task_id, check, user, audit = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local _, task = load_task(task_id)
local failed = require_active(task_id, task)
if failed then
  return failed
end
if not task.assignee then
  return {"TASK_NOT_CLAIMED", task_id, ""}
end
if check == "1" and task.assignee ~= user then
  return {"TASK_ALREADY_CLAIMED", task_id, task.assignee}
end
set_assignee(task, false)
append_history(task.ii, audit, task_audit(task, false))
return {"OK", redis.call("HGETALL", KEYS[1])}
