-- assign: ARGV[2] task id, ARGV[3] "one" with ARGV[4] the user, or "many" with
-- ARGV[4] the JSON list of the new candidate users (the assignee is cleared),
-- ARGV[5] the audit entry (JSON) or "". KEYS[1] the task hash.
local task_id, mode, value, audit = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local _, task = load_task(task_id)
local failed = require_active(task_id, task)
if failed then
  return failed
end
if mode == "one" then
  assign_one(task, value, audit)
else
  local previous = task.assignee
  unindex(task)
  task.assignee = nil
  task.cu = value
  redis.call("HDEL", KEYS[1], "assignee")
  redis.call("HSET", KEYS[1], "cu", value)
  index(task)
  append_history(task.ii, audit, task_audit(task, true, previous, task.owner))
end
return {"OK", redis.call("HGETALL", KEYS[1])}
