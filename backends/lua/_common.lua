-- Helpers prepended to every script of backends/redis.py (not a script itself).
-- ARGV[1] is always the key root "{<prefix>}:"; key() mirrors RedisBackend.key().
-- Scripts answer {"OK", ...} or {<ERROR_CODE>, <id>, <detail>}; they check
-- everything before their first write, so an error leaves nothing changed.

local ROOT = ARGV[1]

local function key(...)
  return ROOT .. table.concat({...}, ":")
end

local CANDIDATE_INDEXES = {
  {"candidate_users", "user"},
  {"candidate_groups", "group"},
  {"candidate_roles", "role"},
}

-- A hash reply {f1, v1, f2, v2, ...} as a Lua table {f1 = v1, ...}.
local function to_map(flat)
  local map = {}
  for i = 1, #flat, 2 do
    map[flat[i]] = flat[i + 1]
  end
  return map
end

-- The task's hash as a flat reply and as a map, or nil when it does not exist.
local function load_task(task_id)
  local flat = redis.call("HGETALL", key("task", task_id))
  if #flat == 0 then
    return nil, nil
  end
  return flat, to_map(flat)
end

local function names(task, field)
  local raw = task[field]
  if raw == nil or raw == "[]" then
    return {}
  end
  return cjson.decode(raw)
end

local function has_candidates(task)
  for _, index in ipairs(CANDIDATE_INDEXES) do
    if #names(task, index[1]) > 0 then
      return true
    end
  end
  return false
end

-- The index sets an active task is a member of (see the key schema).
local function index_keys(task)
  local keys = {key("inst-tasks", task.instance_id)}
  if task.assignee then
    keys[#keys + 1] = key("assignee", task.assignee)
  end
  for _, index in ipairs(CANDIDATE_INDEXES) do
    for _, name in ipairs(names(task, index[1])) do
      keys[#keys + 1] = key("cand", index[2], name)
    end
  end
  return keys
end

local function index(task)
  for _, set in ipairs(index_keys(task)) do
    redis.call("SADD", set, task.id)
  end
end

local function unindex(task)
  for _, set in ipairs(index_keys(task)) do
    redis.call("SREM", set, task.id)
  end
end

-- Assign one user: the previous (different) assignee becomes the owner.
local function assign_one(task, user)
  if task.assignee == user then
    return
  end
  local task_key = key("task", task.id)
  if task.assignee then
    redis.call("SREM", key("assignee", task.assignee), task.id)
    redis.call("HSET", task_key, "owner", task.assignee)
  end
  redis.call("HSET", task_key, "assignee", user)
  redis.call("SADD", key("assignee", user), task.id)
end

-- Close an active task: out of every index set, status and end time set.
local function close_task(task, status, now)
  unindex(task)
  redis.call("HSET", key("task", task.id), "status", status, "end_time", now)
end

-- Check a task exists and is active; nil when fine, else the error reply.
local function require_active(task_id, task)
  if not task then
    return {"TASK_NOT_FOUND", task_id, ""}
  end
  if task.status ~= "active" then
    return {"TASK_NOT_ACTIVE", task_id, task.status}
  end
  return nil
end
