-- Helpers prepended to every script of backends/redis.py (not a script itself).
-- ARGV[1] is always the key root of the one slot the script works in: a partition's
-- "<prefix>:{<tag>}:" or the global "{<prefix>}:"; key() mirrors RedisBackend's
-- key makers. Scripts derive only keys of that root, and KEYS names at least one
-- key of it, so on a Redis Cluster every script runs on the node of its slot.
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

-- Append an audit entry to the instance's history list. ``entry`` is the JSON
-- object the runtime built ("" for none); ``extra`` is a list of {name, value}
-- pairs (nil/false value: null) that only the script knows at the moment of the
-- write. They are spliced in as text, so nothing the runtime encoded is re-encoded.
local function append_history(instance_id, entry, extra)
  if entry == nil or entry == "" then
    return
  end
  local head = string.sub(entry, 1, -2)
  local fields = {}
  for _, pair in ipairs(extra) do
    local value = pair[2]
    fields[#fields + 1] = cjson.encode(pair[1]) .. ":" .. (value and cjson.encode(value) or "null")
  end
  local joined = table.concat(fields, ",")
  if head ~= "{" and joined ~= "" then
    joined = "," .. joined
  end
  redis.call("RPUSH", key("history", instance_id), head .. joined .. "}")
end

-- The task fields of an audit entry (mirrors task_audit_entry in backends/base.py);
-- ``assigned``: also the previous assignee and the owner after the write.
local function task_audit(task, assigned, previous, owner)
  local extra = {
    {"taskId", task.id},
    {"taskName", task.name},
    {"elementId", task.task_definition_key},
  }
  if assigned then
    extra[#extra + 1] = {"previousAssignee", previous}
    extra[#extra + 1] = {"owner", owner}
  end
  return extra
end

-- Assign one user: the previous (different) assignee becomes the owner. Appends
-- ``audit`` (JSON or "") to the history when the task changed.
local function assign_one(task, user, audit)
  if task.assignee == user then
    return
  end
  local task_key = key("task", task.id)
  local owner = task.owner
  if task.assignee then
    redis.call("SREM", key("assignee", task.assignee), task.id)
    redis.call("HSET", task_key, "owner", task.assignee)
    owner = task.assignee
  end
  redis.call("HSET", task_key, "assignee", user)
  redis.call("SADD", key("assignee", user), task.id)
  append_history(task.instance_id, audit, task_audit(task, true, task.assignee, owner))
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

-- An integer as decimal text (tostring would give "1.7e+12").
local function int(n)
  return string.format("%.0f", n)
end

-- Replace a hash with the fields of a JSON-decoded object {field = "value"}.
local function replace_hash(hash_key, fields)
  local flat = {}
  for name, value in pairs(fields) do
    flat[#flat + 1] = name
    flat[#flat + 1] = value
  end
  redis.call("DEL", hash_key)
  if #flat > 0 then
    redis.call("HSET", hash_key, unpack(flat))
  end
end

-- The external task's hash as a flat reply and as a map, or nil when it does not exist.
local function load_external(ext_id)
  local flat = redis.call("HGETALL", key("ext", ext_id))
  if #flat == 0 then
    return nil, nil
  end
  return flat, to_map(flat)
end

-- Put an external task in exactly the indexes its fields call for: its instance's
-- set while active, its topic's sorted set (score available_at) while fetchable
-- (mirrors MemoryBackend._sync_external).
local function sync_external(ext)
  local active = ext.status == "active"
  local incident = active and ext.incident == "1"
  local topic = key("ext-topic", ext.topic)
  redis.call(active and "SADD" or "SREM", key("inst-ext", ext.instance_id), ext.id)
  if active and not incident then
    redis.call("ZADD", topic, ext.available_at or "0", ext.id)
  else
    redis.call("ZREM", topic, ext.id)
  end
end

-- Set ({name, value}) or delete ({name, false}) fields of an external task, then
-- bring its indexes in line.
local function update_external(ext, changes)
  local ext_key = key("ext", ext.id)
  for _, change in ipairs(changes) do
    local name, value = change[1], change[2]
    if value then
      redis.call("HSET", ext_key, name, value)
      ext[name] = value
    else
      redis.call("HDEL", ext_key, name)
      ext[name] = nil
    end
  end
  sync_external(ext)
end

-- Check an external task exists and is active; nil when fine, else the error reply.
local function require_external(ext_id, ext)
  if not ext then
    return {"EXTERNAL_TASK_NOT_FOUND", ext_id, ""}
  end
  if ext.status ~= "active" then
    return {"EXTERNAL_TASK_NOT_ACTIVE", ext_id, ext.status}
  end
  return nil
end

-- ... and that ``worker`` (false: none) holds its lock.
local function require_lock(ext_id, ext, worker)
  local failed = require_external(ext_id, ext)
  if failed then
    return failed
  end
  if not worker or ext.worker ~= worker then
    return {"LOCK_LOST", ext_id, worker or ""}
  end
  return nil
end
