-- apply_steps: several engine steps (of several instances), all or nothing.
-- ARGV[2] is the JSON list built by step_json in redis_codec.py: records are already
-- their hash fields (strings), numbers are decimal strings and None is false; the
-- instance is its new rev, ended, truncated, the instance lists' pk, bk and ct, and
-- the body of its stored value (see load_inst in _common.lua).
-- Subscriptions are {kind, name, member, due}. Every check of every step runs
-- before the first write.
local steps = cjson.decode(ARGV[2])

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

-- A task of another instance than the step's (in or out of its active tasks): that
-- instance's value is rewritten at once (keeping its expiry).
local function track_other(task, active)
  local other = load_inst(task.instance_id)
  if not other then
    return
  end
  local ids = {}
  for _, task_id in ipairs(other.tasks) do
    if task_id ~= task.id then
      ids[#ids + 1] = task_id
    end
  end
  if active then
    ids[#ids + 1] = task.id
  end
  other.tasks = ids
  save_inst(task.instance_id, other, true)
end

-- then every write, step by step
local any_created = false
for _, s in ipairs(steps) do
  local now = s.now
  local stored = load_inst(s.id)
  local tasks, closing = {}, {}
  local function untrack(task)
    if task.instance_id == s.id then
      closing[task.id] = true
    else
      track_other(task, false)
    end
  end
  if s.complete_task ~= "" then
    local _, done = load_task(s.complete_task)
    close_task(done, "completed", now)
    untrack(done)
    local done_key = key("task", done.id)
    if s.completed_by then
      if done.assignee then
        redis.call("HSET", done_key, "completed_by", s.completed_by)
      else
        redis.call("HSET", done_key, "completed_by", s.completed_by, "assignee", s.completed_by)
      end
    else
      redis.call("HDEL", done_key, "completed_by")
    end
  end
  for _, task_id in ipairs(s.cancelled) do
    local _, task = load_task(task_id)
    if task and task.status == "active" then
      close_task(task, "cancelled", now)
      untrack(task)
    end
  end
  for _, task_id in ipairs(stored and stored.tasks or {}) do
    if not closing[task_id] then
      tasks[#tasks + 1] = task_id
    end
  end
  for _, task in ipairs(s.created) do
    replace_hash(key("task", task.id), task)
    if task.status == "active" then
      index(task)
      if task.instance_id == s.id then
        tasks[#tasks + 1] = task.id
      else
        track_other(task, true)
      end
    else
      closed(s.id, "task:" .. task.id)
    end
  end
  if s.complete_external ~= "" then
    local _, ext = load_external(s.complete_external)
    update_external(ext, {{"status", "completed"}, {"end_time", now}})
    closed(s.id, "ext:" .. ext.id)
  end
  for _, ext in ipairs(s.externals) do
    local _, old = load_external(ext.id)
    if old then
      redis.call("ZREM", key("ext-topic", old.topic), ext.id)
    end
    replace_hash(key("ext", ext.id), ext)
    sync_external(ext)
    if ext.status ~= "active" then
      closed(s.id, "ext:" .. ext.id)
    end
  end
  -- after the new ones: a task made and cancelled in one step ends closed
  for _, ext_id in ipairs(s.externals_cancelled) do
    local _, ext = load_external(ext_id)
    if ext and ext.status == "active" then
      update_external(ext, {{"status", "cancelled"}, {"end_time", now}})
      closed(s.id, "ext:" .. ext_id)
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
  local truncated = s.truncated or (stored ~= nil and stored.truncated)
  save_inst(s.id, {rev = s.rev, ended = s.ended, truncated = truncated, tasks = tasks, body = s.body})
  if #s.history > 0 then
    append_entries(s.id, s.history)
  end
  ending[s.id] = s.ended and not was_ended[s.id]
  latest[s.id] = s
  created[s.id] = created[s.id] or s.new
  any_created = any_created or s.new
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
          redis.call("PEXPIRE", list, RETENTION_MS)
        end
      end
      if RETENTION_MS then
        redis.call("ZADD", key("inst-expiry"), server_now + RETENTION_MS, cjson.encode({id, s.pk or "", s.bk or ""}))
        redis.call("PEXPIRE", key("inst-expiry"), RETENTION_MS)
      end
    end
  end
  prune_instance_lists(server_now, 20)
end
return {"OK"}
