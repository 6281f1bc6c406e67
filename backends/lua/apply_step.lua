-- apply_step: one engine step, all or nothing. KEYS[1] the instance hash.
-- ARGV, after the key root: instance id, expected stored rev, task id to complete
-- (or ""), "1"/"0" whether completed_by is given, completed_by, now, then counted
-- lists: n cancelled ids; n instance field/value pairs; n created tasks, each n pairs.
local pos = 1
local function take()
  pos = pos + 1
  return ARGV[pos]
end
local function take_pairs()
  local pairs_ = {}
  for _ = 1, tonumber(take()) * 2 do
    pairs_[#pairs_ + 1] = take()
  end
  return pairs_
end

local instance_id = take()
local expected, complete_id, has_by, by, now = take(), take(), take() == "1", take(), take()

-- every check first
local rev = redis.call("HGET", KEYS[1], "rev")
if not rev then
  return {"INSTANCE_NOT_FOUND", instance_id, ""}
end
if rev ~= expected then
  return {"CONCURRENT_MODIFICATION", instance_id, rev}
end
local done = nil
if complete_id ~= "" then
  local _, task = load_task(complete_id)
  local failed = require_active(complete_id, task)
  if failed then
    return failed
  end
  if task.assignee and (not has_by or task.assignee ~= by) then
    return {"TASK_ALREADY_CLAIMED", complete_id, task.assignee}
  end
  done = task
end

-- then every write
if done then
  close_task(done, "completed", now)
  local done_key = key("task", done.id)
  if has_by then
    redis.call("HSET", done_key, "completed_by", by)
    if not done.assignee then
      redis.call("HSET", done_key, "assignee", by)
    end
  else
    redis.call("HDEL", done_key, "completed_by")
  end
end
for _ = 1, tonumber(take()) do
  local _, task = load_task(take())
  if task and task.status == "active" then
    close_task(task, "cancelled", now)
  end
end
local instance_fields = take_pairs()
for _ = 1, tonumber(take()) do
  local fields = take_pairs()
  local task = to_map(fields)
  local task_key = key("task", task.id)
  redis.call("DEL", task_key)
  redis.call("HSET", task_key, unpack(fields))
  if task.status == "active" then
    index(task)
  end
end
redis.call("DEL", KEYS[1])
redis.call("HSET", KEYS[1], unpack(instance_fields))
return {"OK"}
