-- apply_steps: several engine steps (of several instances), all or nothing.
-- ARGV[2] is the JSON list built by step_args in redis_codec.py: records are already
-- their hash fields (strings), numbers are decimal strings and None is false; the
-- instance is its new rev, ended, truncated, the instance lists' pk, bk and ct, and
-- ``body`` the ARGV index of the body of its stored value (see load_inst in
-- _common.lua); ``history`` and each of ``created`` an ARGV range {first, last} of
-- history entries and of a new task's id and hash field/value pairs.
-- Subscriptions are {kind, name, member, due}. Every check of every step runs
-- before the first write.
-- Members at these defaults are left out of the JSON.
local NONE = {} -- an empty list, never written to
local STEP_DEFAULTS = {
  new = false,
  ended = false,
  truncated = false,
  bk = "",
  complete_task = "",
  completed_by = false,
  cancelled = NONE,
  complete_external = "",
  external_worker = false,
  externals = NONE,
  externals_cancelled = NONE,
  subscribed = NONE,
  unsubscribed = NONE,
  history = {1, 0},
  created = NONE,
}
local STEP = {__index = STEP_DEFAULTS} -- the defaults' tables are never written to
local steps = cjson.decode(ARGV[2])
for _, s in ipairs(steps) do
  setmetatable(s, STEP)
end
local checked = {} -- tasks read by the checks, by id (until written)

-- every check first; ``revs`` holds the revisions earlier steps of this call will
-- have written, so two steps on one instance are checked in order
local revs, was_ended, ending = {}, {}, {}
local latest, created = {}, {}
for _, s in ipairs(steps) do
  local id = s.id
  local rev = revs[id]
  if rev == nil then
    local stored = load_inst(id)
    rev, was_ended[id] = stored and stored.rev, stored and stored.ended
  end
  if s.new then
    if rev then
      return {"INSTANCE_EXISTS", id, ""}
    end
  elseif not rev then
    return {"INSTANCE_NOT_FOUND", id, ""}
  elseif rev ~= s.expected then
    return {"CONCURRENT_MODIFICATION", id, rev}
  end
  revs[id] = s.rev
  if s.complete_task ~= "" then
    local _, task = load_task(s.complete_task)
    checked[s.complete_task] = task
    local failed = require_active(s.complete_task, task)
    if failed then
      return failed
    end
    if task.assignee and task.assignee ~= s.completed_by then
      return {"TASK_ALREADY_CLAIMED", s.complete_task, task.assignee}
    end
  end
  if s.complete_external ~= "" then
    local _, ext = load_external(s.complete_external)
    local failed = require_lock(s.complete_external, ext, s.external_worker)
    if failed then
      return failed
    end
  end
end

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

-- then every write, step by step; each step's instance value is written with the
-- step (records of other instances it closed or created: at the end, see closed())
local any_created = false
for _, s in ipairs(steps) do
  local now = s.now
  local inst = load_inst(s.id)
  if not inst then
    inst = {tasks = {}, closed = {}}
    instances[s.id] = inst
  end
  if s.complete_task ~= "" then
    local done = checked[s.complete_task]
    if not done then
      _, done = load_task(s.complete_task)
    end
    checked[s.complete_task] = nil
    local more = nil
    if s.completed_by then
      more = {"completed_by", s.completed_by}
      if not done.assignee then
        more[3], more[4] = "assignee", s.completed_by
      end
    else
      redis.call("HDEL", key("task", done.id), "completed_by")
    end
    close_task(done, "completed", now, more)
  end
  for _, task_id in ipairs(s.cancelled) do
    local _, task = load_task(task_id)
    if task and not task.status then -- active
      checked[task_id] = nil
      close_task(task, "cancelled", now)
    end
  end
  for _, range in ipairs(s.created) do
    local flat = {unpack(ARGV, range[1] + 1, range[2])}
    local task = to_map(flat)
    task.id = ARGV[range[1]]
    checked[task.id] = nil
    redis.call("HSET", key("task", task.id), unpack(flat)) -- a new id: no hash yet
    if not task.status then -- active
      index(task)
      local owner = load_inst(task.ii)
      if owner then
        owner.tasks[#owner.tasks + 1] = task.id
        dirty[task.ii] = true
      end
    else
      closed(s.id, "t" .. task.id)
    end
  end
  if s.complete_external ~= "" then
    local _, ext = load_external(s.complete_external)
    update_external(ext, {{"status", "completed"}, {"end_time", now}})
    closed(s.id, "x" .. ext.id)
  end
  for _, ext in ipairs(s.externals) do
    local _, old = load_external(ext.id)
    if old then
      redis.call("ZREM", key("ext-topic", old.topic), ext.id)
    end
    replace_hash(key("ext", ext.id), ext)
    sync_external(ext)
    if ext.status ~= "active" then
      closed(s.id, "x" .. ext.id)
    end
  end
  -- after the new ones: a task made and cancelled in one step ends closed
  for _, ext_id in ipairs(s.externals_cancelled) do
    local _, ext = load_external(ext_id)
    if ext and ext.status == "active" then
      update_external(ext, {{"status", "cancelled"}, {"end_time", now}})
      closed(s.id, "x" .. ext_id)
    end
  end
  -- subscribed before unsubscribed: an entry in both ends removed
  for _, sub in ipairs(s.subscribed) do
    index_subscription(sub, true)
  end
  for _, sub in ipairs(s.unsubscribed) do
    index_subscription(sub, false)
  end
  -- truncated: also when marked by a write this step's reader did not see
  inst.truncated = s.truncated or inst.truncated
  inst.externals = inst.externals or #s.externals > 0
  inst.rev, inst.ended, inst.body = s.rev, s.ended, ARGV[s.body]
  -- an ended instance is written with its retention (expire_instance does the rest)
  save_inst(s.id, inst, false, s.ended and RETENTION_MS and RETENTION)
  if s.history[2] >= s.history[1] then
    append_entries(s.id, {unpack(ARGV, s.history[1], s.history[2])})
  end
  ending[s.id] = s.ended and not was_ended[s.id]
  latest[s.id] = s
  created[s.id] = created[s.id] or s.new
  any_created = any_created or s.new
end
for id in pairs(dirty) do
  save_inst(id, instances[id], true)
end
-- last: a later step of this call rewriting the instance would drop its expiry
local any_ended = false
for id, ended in pairs(ending) do
  if ended then
    expire_instance(id)
    any_ended = true
  end
end
-- the instance lists: new ones listed as active, ended ones moved to the ended lists
for id, s in pairs(latest) do
  if created[id] then
    for _, list in ipairs(list_keys("active", s)) do
      redis.call("ZADD", list, s.ct, id)
    end
  end
end
if any_ended or any_created then
  -- expiry by the server's clock, as PEXPIRE; the due ended instances leave the lists
  -- with each start and end (the writes that change the lists)
  local clock = redis.call("TIME")
  local server_now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
  for id, s in pairs(latest) do
    if ending[id] then
      for _, list in ipairs(list_keys("active", s)) do
        redis.call("ZREM", list, id)
      end
      for _, list in ipairs(list_keys("ended", s)) do
        redis.call("ZADD", list, s.ct, id)
        if RETENTION_MS then -- its newest member expires last: then the list goes as a whole
          redis.call("PEXPIRE", list, RETENTION)
        end
      end
      if RETENTION_MS then
        redis.call("ZADD", key("inst-expiry"), server_now + RETENTION_MS, cjson.encode({id, s.pk, s.bk}))
        redis.call("PEXPIRE", key("inst-expiry"), RETENTION)
      end
    end
  end
  prune_instance_lists(server_now, 20)
end
return {"OK"}
