-- Helpers prepended to every script of backends/redis.py (not a script itself).
-- ARGV[1] is always "<request id>|<history limit>|<retention ms>|<key root>": the
-- call's request id ("" for reads; see _once.lua), the backend's settings (each "" for
-- none) and the key root of the one slot the script works in, a partition's
-- "<prefix>:{<tag>}:" or the global "{<prefix>}:"; key() mirrors RedisBackend's
-- key makers. Scripts derive only keys of that root, and KEYS names at least one
-- key of it, so on a Redis Cluster every script runs on the node of its slot.
-- Scripts answer {"OK", ...} or {<ERROR_CODE>, <id>, <detail>}; they check
-- everything before their first write, so an error leaves nothing changed.
-- A "!" before ARGV[1] (FIRST: "!", else "") marks the first send of a call (see
-- backends/redis_call.py): no earlier run of its request id can have committed.
-- (The library of backends/redis_functions.py parses it in begin(), the same.)

local FIRST, REQUEST_ID, HISTORY_LIMIT, RETENTION, ROOT = string.match(ARGV[1], "^(!?)(%w*)|(%d*)|(%d*)|(.*)$")
HISTORY_LIMIT = tonumber(HISTORY_LIMIT)
local RETENTION_MS = tonumber(RETENTION) -- RETENTION: the same as text, for PEXPIRE

local function key(a, b, c, d, e)
  if e then
    return ROOT .. a .. ":" .. b .. ":" .. c .. ":" .. d .. ":" .. e
  elseif d then
    return ROOT .. a .. ":" .. b .. ":" .. c .. ":" .. d
  elseif c then
    return ROOT .. a .. ":" .. b .. ":" .. c
  elseif b then
    return ROOT .. a .. ":" .. b
  end
  return ROOT .. a
end

-- Task hash fields have the short names of TASK_NAMES and SHORT_NAMES in redis_codec.py
-- (ii instance id, n name, ct create time, tk task definition key; priority absent when 50,
-- status absent while active).
-- Per candidate kind: the task's field, the queue kind, the principals' member.
local CANDIDATE_INDEXES = {
  {"cu", "user", "candidate_users"},
  {"cg", "group", "candidate_groups"},
  {"cr", "role", "candidate_roles"},
}

-- A hash reply {f1, v1, f2, v2, ...} as a Lua table {f1 = v1, ...}.
local function to_map(flat)
  local map = {}
  for i = 1, #flat, 2 do
    map[flat[i]] = flat[i + 1]
  end
  return map
end

-- The task's hash as a flat reply and as a map (with its id, which the hash has
-- not: see encode in redis_codec.py), or nil when it does not exist.
local function load_task(task_id)
  local flat = redis.call("HGETALL", key("task", task_id))
  if #flat == 0 then
    return nil, nil
  end
  -- made with room for the fields most tasks have (their keys set, values nil: the same
  -- table as {}), so filling it does not grow it field by field (rehashing each time)
  local task = {id = nil, n = nil, ii = nil, di = nil, pn = nil, ct = nil, tk = nil, cb = nil, assignee = nil}
  for i = 1, #flat, 2 do
    task[flat[i]] = flat[i + 1]
  end
  task.id = task_id
  return flat, task
end

local NO_NAMES = {} -- never written to
local function names(task, field)
  local raw = task[field]
  if raw == nil or raw == "[]" then
    return NO_NAMES
  end
  return cjson.decode(raw)
end

local function has_candidates(task)
  for i = 1, #CANDIDATE_INDEXES do
    if #names(task, CANDIDATE_INDEXES[i][1]) > 0 then
      return true
    end
  end
  return false
end

-- The queue score: priority descending, then create time ascending (then the id,
-- which Redis orders ties by), as the API sorts; mirrors queue_score in redis_query.py.
local TIME_SPAN = 4398046511104 -- 2^42 ms (year 2109): 1000 * 2^42 < 2^53, exact in a double
local function queue_score(task)
  local priority = math.min(math.max(tonumber(task.priority or "50") or 50, 0), 999)
  local created = math.min(math.max(tonumber(task.ct or "0") or 0, 0), TIME_SPAN - 1)
  return string.format("%d", (999 - priority) * TIME_SPAN + created) -- an exact integer: %d (cheaper than %.0f)
end

-- The process key of a definition id "<process key>:<version>" (false: none). The
-- library keeps them across calls (a pure function of the text; at most 4096), as a
-- string.match costs about as much as a small command; a script (EVALSHA) per call.
local PROCESS_KEYS, process_keys_kept = {}, 0
local function process_key_of(definition_id)
  local found = PROCESS_KEYS[definition_id]
  if found == nil then
    found = string.match(definition_id, "^(.*):[^:]*$") or false
    if process_keys_kept < 4096 then
      PROCESS_KEYS[definition_id], process_keys_kept = found, process_keys_kept + 1
    end
  end
  return found
end

-- redis.call(command, queue, [score,] task id) on each queue (sorted set) an active task
-- is in: its assignee's, per candidate user/group/role "q" while unassigned or "qa" while
-- assigned, and its process key's "pq" while unassigned or "pqa" while assigned (see the
-- key schema). No list of them is made: each table a call makes costs (made, grown, collected).
local function queue_call(command, queue, score, id)
  if score then
    redis.call(command, queue, score, id)
  else
    redis.call(command, queue, id)
  end
end

local function on_queues(task, command, score)
  local id, assignee = task.id, task.assignee
  local process_key = process_key_of(task.di or "")
  if process_key then
    queue_call(command, key(assignee and "pqa" or "pq", process_key), score, id)
  end
  if assignee then
    queue_call(command, key("assignee", assignee), score, id)
  end
  local word = assignee and "qa" or "q"
  for i = 1, #CANDIDATE_INDEXES do
    local index = CANDIDATE_INDEXES[i]
    local found = names(task, index[1])
    for j = 1, #found do
      queue_call(command, key(word, index[2], found[j]), score, id)
    end
  end
end

-- An instance's stored value (a string, see instance_body in redis_codec.py):
-- "<rev>|<flags>|<active task ids>|<closed records>|<body>", ids and records space-
-- separated, flags "e" ended, "t" history truncated, "x" has had external tasks
-- (its "inst-ext" set may exist); a closed record is "t<task id>" or "x<external
-- task id>" (removed with the instance: retention); the body is the runtime's JSON,
-- never read here. Parsed once per call: {rev =, ended =, truncated =, externals =,
-- tasks = {ids}, closed = {records}, body = false (not parsed: only written), body_at =,
-- raw = the value as read}, or nil.
local instances = {}
local dirty = {} -- instances changed but not yet written (see closed())
local function words(text)
  if text == "" then
    return {} -- (no gmatch iterator made: most lists are empty)
  end
  local found = {}
  for word in string.gmatch(text, "%S+") do
    found[#found + 1] = word
  end
  return found
end

local function load_inst(instance_id)
  local inst = instances[instance_id]
  if inst == nil then
    inst = false
    local raw = redis.call("GET", key("inst", instance_id))
    if raw then
      local rev, flags, ids, records, at = string.match(raw, "^(%d+)|(%a*)|([^|]*)|([^|]*)|()")
      local any = flags ~= "" -- (most instances: none)
      inst = {
        rev = rev,
        ended = any and string.find(flags, "e", 1, true) ~= nil,
        truncated = any and string.find(flags, "t", 1, true) ~= nil,
        externals = any and string.find(flags, "x", 1, true) ~= nil,
        tasks = words(ids),
        closed = words(records),
        body = false, -- the body as written by this call; until then raw's from body_at
        body_at = at,
        raw = raw, -- the value as read (a write does not update it)
      }
    end
    instances[instance_id] = inst
  end
  return inst or nil
end

-- Write an instance's value: ``px`` (ms, as text) its expiry from now, else ``keep``
-- its expiry, else none. ``inst.expiring``: written with an expiry by this call.
local function save_inst(instance_id, inst, keep, px)
  local flags = (inst.ended and "e" or "") .. (inst.truncated and "t" or "") .. (inst.externals and "x" or "")
  local tasks, closed_records = inst.tasks, inst.closed
  local value = inst.rev .. "|" .. flags .. "|" .. (#tasks > 0 and table.concat(tasks, " ") or "") .. "|"
    .. (#closed_records > 0 and table.concat(closed_records, " ") or "") .. "|"
    .. (inst.body or string.sub(inst.raw, inst.body_at))
  if px then
    redis.call("SET", key("inst", instance_id), value, "PX", px)
    inst.expiring = true
  elseif keep then
    redis.call("SET", key("inst", instance_id), value, "KEEPTTL")
  else
    redis.call("SET", key("inst", instance_id), value)
    inst.expiring = false
  end
  instances[instance_id] = inst
  dirty[instance_id] = nil
end

-- The instance's active task ids (none when it does not exist).
local function active_tasks(instance_id)
  local inst = load_inst(instance_id)
  return inst and inst.tasks or {}
end

local function index(task)
  on_queues(task, "ZADD", queue_score(task))
end

local function unindex(task)
  on_queues(task, "ZREM", nil)
end

-- Set (a name) or clear (false) the assignee of an active task, moving it between queues.
local function set_assignee(task, user)
  unindex(task)
  if user then
    redis.call("HSET", key("task", task.id), "assignee", user)
  else
    redis.call("HDEL", key("task", task.id), "assignee")
  end
  task.assignee = user or nil
  index(task)
end

-- Past the history limit: remove the oldest element entry (one the engine wrote,
-- with "elementType": stored as a JSON array, or as an object with "~E" or, older,
-- "elementType"; see history_json in redis_codec.py; audit entries are kept) and
-- mark the instance truncated.
local function drop_oldest_element_entry(instance_id, history, length)
  for first = 0, length - 1, 100 do
    local chunk = redis.call("LRANGE", history, first, first + 99)
    for offset, entry in ipairs(chunk) do
      if
        string.sub(entry, 1, 1) == "["
        or string.find(entry, '"~E":', 1, true)
        or string.find(entry, '"elementType":', 1, true)
      then
        redis.call("LSET", history, first + offset - 1, "\0dropped")
        redis.call("LREM", history, 1, "\0dropped")
        local inst = load_inst(instance_id)
        if inst and not inst.truncated then
          inst.truncated = true
          save_inst(instance_id, inst, true)
        end
        return true
      end
    end
  end
  return false
end

-- Append ``count`` stored entries (the arguments after it) to the instance's history
-- list (one RPUSH), then keep its cap.
local function append_entries(instance_id, count, ...)
  local history = key("history", instance_id)
  local length = redis.call("RPUSH", history, ...)
  -- at most one drop per entry, as if appended one by one (see append_capped in retention.py)
  for _ = 1, count do
    if not HISTORY_LIMIT or length <= HISTORY_LIMIT or not drop_oldest_element_entry(instance_id, history, length) then
      return
    end
    length = length - 1
  end
end

-- Append an audit entry to the instance's history list. ``entry`` is the JSON
-- object the runtime built ("" for none); ``members`` the JSON members (text,
-- task_audit) that only the script knows at the moment of the write. They are
-- spliced in as text, so nothing the runtime encoded is re-encoded.
local function append_history(instance_id, entry, members)
  if entry == nil or entry == "" then
    return
  end
  local head = string.sub(entry, 1, -2)
  append_entries(instance_id, 1, head .. (head ~= "{" and "," or "") .. members .. "}")
end

local function json_or_null(value)
  return value and cjson.encode(value) or "null"
end

-- The task fields of an audit entry as JSON members (mirrors task_audit_entry in
-- backends/base.py); ``assigned``: also the previous assignee and the owner after the
-- write. One concatenation: each string a script makes costs (created, hashed, collected).
local function task_audit(task, assigned, previous, owner)
  local members = '"taskId":' .. json_or_null(task.id) .. ',"taskName":' .. json_or_null(task.n)
    .. ',"elementId":' .. json_or_null(task.tk)
  if assigned then
    return members .. ',"previousAssignee":' .. json_or_null(previous) .. ',"owner":' .. json_or_null(owner)
  end
  return members
end

-- Assign one user: the previous (different) assignee becomes the owner. Appends
-- ``audit`` (JSON or "") to the history when the task changed.
local function assign_one(task, user, audit)
  if task.assignee == user then
    return
  end
  local previous, owner = task.assignee, task.owner
  if previous then
    redis.call("HSET", key("task", task.id), "owner", previous)
    owner = previous
  end
  set_assignee(task, user)
  append_history(task.ii, audit, task_audit(task, true, previous, owner))
end

-- A closed record ("t<task id>" or "x<external task id>") of an instance (see
-- load_inst); the instance's value is written later (apply_steps: with its step).
local function closed(instance_id, record)
  local inst = load_inst(instance_id)
  if inst then
    inst.closed[#inst.closed + 1] = record
    dirty[instance_id] = true
  end
end

-- Close an active task: out of every index and of its instance's active tasks,
-- status and end time set (and the field/value pairs after ``now``).
local function close_task(task, status, now, ...)
  unindex(task)
  redis.call("HSET", key("task", task.id), "status", status, "end_time", now, ...)
  local inst = load_inst(task.ii)
  if inst then
    local ids = {}
    for i = 1, #inst.tasks do
      local task_id = inst.tasks[i]
      if task_id ~= task.id then
        ids[#ids + 1] = task_id
      end
    end
    inst.tasks = ids
  end
  closed(task.ii, "t" .. task.id)
end

-- An ended instance and everything of it expire RETENTION_MS from now (none: kept).
local function expire_instance(instance_id)
  local inst = load_inst(instance_id)
  if not RETENTION_MS or not inst then
    return
  end
  if not inst.expiring then
    redis.call("PEXPIRE", key("inst", instance_id), RETENTION)
  end
  redis.call("PEXPIRE", key("history", instance_id), RETENTION)
  if inst.externals then
    redis.call("PEXPIRE", key("inst-ext", instance_id), RETENTION)
  end
  for i = 1, #inst.closed do
    local record = inst.closed[i]
    local kind = string.byte(record) == 116 and "task" or "ext" -- "t"
    redis.call("PEXPIRE", key(kind, string.sub(record, 2)), RETENTION)
  end
end

-- The instance lists (GET …/instances): zsets by create time of the partition's
-- instances in ``state`` ("active" or "ended"): all, of the process key ``pk``, of the
-- business key ``bk`` (when it has one; else nil).
local function list_keys(state, pk, bk)
  local by_bk = nil
  if bk and bk ~= "" then
    by_bk = key("inst-list", state, "bk", bk)
  end
  return key("inst-list", state), key("inst-list", state, "pk", pk or ""), by_bk
end

-- redis.call(command, list, ...) on each of those lists.
local function on_lists(state, pk, bk, command, ...)
  local all, by_pk, by_bk = list_keys(state, pk, bk)
  redis.call(command, all, ...)
  redis.call(command, by_pk, ...)
  if by_bk then
    redis.call(command, by_bk, ...)
  end
end

-- An ended instance into an ended list; with retention, its newest member expires last:
-- then the list goes as a whole.
local function list_ended(list, ct, id)
  redis.call("ZADD", list, ct, id)
  if RETENTION_MS then
    redis.call("PEXPIRE", list, RETENTION)
  end
end

-- Ended instances whose retention ran out (and whose hash is gone), at most ``limit``:
-- out of the ended lists. "inst-expiry" holds {id, pk, bk} JSON by expiry time. ``now``
-- and ``limit`` are decimal text (a number argument of redis.call costs a float formatting).
local function prune_instance_lists(now, limit)
  local due = redis.call("ZRANGEBYSCORE", key("inst-expiry"), "-inf", now, "LIMIT", "0", limit)
  for i = 1, #due do
    local member = due[i]
    local entry = cjson.decode(member)
    if redis.call("EXISTS", key("inst", entry[1])) == 1 then
      return -- not expired yet (clocks differ): later
    end
    on_lists("ended", entry[2], entry[3], "ZREM", entry[1])
    redis.call("ZREM", key("inst-expiry"), member)
  end
end

-- A subscription {kind, name, member, due} into (``add``) or out of its index.
local function index_subscription(sub, add)
  local kind, name, member, due = sub[1], sub[2], sub[3], sub[4]
  if kind == "timer" then
    if add then
      redis.call("ZADD", key("timers"), due, member)
    else
      redis.call("ZREM", key("timers"), member)
    end
  else
    redis.call(add and "SADD" or "SREM", key(kind == "message" and "msg" or "sig", name), member)
  end
end

-- Check a task exists and is active; nil when fine, else the error reply.
local function require_active(task_id, task)
  if not task then
    return {"TASK_NOT_FOUND", task_id, ""}
  end
  if task.status then -- absent while active
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
  if active then
    redis.call("ZADD", key("inst-ext", ext.instance_id), 0, ext.id)
  else
    redis.call("ZREM", key("inst-ext", ext.instance_id), ext.id)
  end
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
  for i = 1, #changes do
    local change = changes[i]
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
