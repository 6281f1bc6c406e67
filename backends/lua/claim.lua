-- claim: ARGV[2] task id, ARGV[3] user, ARGV[4] the claimer's principals as JSON
-- {"candidate_users": [..], "candidate_groups": [..], "candidate_roles": [..]},
-- or "" for no candidate check, or "@store" for the user and the identity store's
-- groups and roles: KEYS[2] and KEYS[3], the user's sets, read here only when the task
-- names candidates (they are in the global slot: only on a single Redis, where every
-- slot is on this server; see RedisBackend.claim_as_stored). ARGV[5] the audit entry
-- (JSON) or "". KEYS[1] the task hash.
local task_id, user, principals, audit = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local flat, task = load_task(task_id)
local failed = require_active(task_id, task)
if failed then
  return failed
end
if task.assignee == user then
  return {"OK", redis.call("HGETALL", KEYS[1])}
end
if task.assignee then
  return {"TASK_ALREADY_CLAIMED", task_id, task.assignee}
end
if principals ~= "" and has_candidates(task) then
  local wanted
  if principals == "@store" then
    wanted = {
      candidate_users = {user},
      candidate_groups = redis.call("SMEMBERS", KEYS[2]),
      candidate_roles = redis.call("SMEMBERS", KEYS[3]),
    }
  else
    wanted = cjson.decode(principals)
  end
  local match = false
  for _, index in ipairs(CANDIDATE_INDEXES) do
    local mine = {}
    for _, name in ipairs(wanted[index[3]] or {}) do
      mine[name] = true
    end
    for _, name in ipairs(names(task, index[1])) do
      if mine[name] then
        match = true
      end
    end
  end
  if not match then
    return {"NOT_CANDIDATE", task_id, user}
  end
end
set_assignee(task, user)
append_history(task.ii, audit, task_audit(task, false))
flat[#flat + 1] = "assignee" -- it had none: the hash as HGETALL would answer it now
flat[#flat + 1] = user
return {"OK", flat}
