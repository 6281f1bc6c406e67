-- apply_steps: several engine steps (of several instances), all or nothing.
-- ARGV[2..] are the steps as step_args in redis_steps.py passes them: per step a block
-- of 14 arguments (STEP_FIELDS there: id, flags, expected, rev, pk, bk, ct, now,
-- complete_task, completed_by, body, the counts of history entries and of created
-- tasks, and a JSON object of the members below that are not at their default, or ""),
-- with flag "x" then the 5 stored values of the completed task's fields its completion
-- was decided on (DECIDED_FIELDS in redis_recent.py: assignee, candidate users, groups,
-- roles, create time; "" for an absent one), then its history entries, then per created
-- task a count and that many arguments (its id and its hash field/value pairs). Records are already their hash fields (strings),
-- numbers decimal strings; ``body`` is the body of the instance's stored value (see
-- load_inst in _common.lua). A step read here has ``history`` and each of ``created``
-- as an ARGV range {first, last}. Subscriptions are {kind, name, member, due}. Every
-- check of every step runs before the first write.
local NONE = {} -- an empty list, never written to
local STEP_DEFAULTS = {
  complete_external = "",
  external_worker = false,
  cancelled = NONE,
  externals = NONE,
  externals_cancelled = NONE,
  subscribed = NONE,
  unsubscribed = NONE,
}
local STEP = {__index = STEP_DEFAULTS} -- the defaults' tables are never written to
local steps = {}
local at, last = 2, #ARGV
while at <= last do
  local flags = ARGV[at + 1]
  local s = {
    id = ARGV[at],
    new = string.find(flags, "n", 1, true) ~= nil,
    ended = string.find(flags, "e", 1, true) ~= nil,
    truncated = string.find(flags, "t", 1, true) ~= nil,
    expected = ARGV[at + 2],
    rev = ARGV[at + 3],
    pk = ARGV[at + 4],
    bk = ARGV[at + 5],
    ct = ARGV[at + 6],
    now = ARGV[at + 7],
    complete_task = ARGV[at + 8],
    completed_by = string.find(flags, "c", 1, true) ~= nil and ARGV[at + 9],
    body = ARGV[at + 10],
  }
  local entries, made, rest = tonumber(ARGV[at + 11]), tonumber(ARGV[at + 12]), ARGV[at + 13]
  at = at + 14
  if string.find(flags, "x", 1, true) then -- what the completion was decided on (DECIDED_FIELDS)
    s.decided = {ARGV[at], ARGV[at + 1], ARGV[at + 2], ARGV[at + 3], ARGV[at + 4]}
    at = at + 5
  end
  s.history = {at, at + entries - 1}
  at = at + entries
  local created = {}
  for i = 1, made do
    local count = tonumber(ARGV[at])
    created[i] = {at + 1, at + count}
    at = at + count + 1
  end
  s.created = created
  if rest ~= "" then
    for name, value in pairs(cjson.decode(rest)) do
      s[name] = value
    end
  end
  steps[#steps + 1] = setmetatable(s, STEP)
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
    local decided = s.decided -- the task as the completer read it: still so, or decide again
    if decided and ((task.assignee or "") ~= decided[1] or (task.cu or "") ~= decided[2]
        or (task.cg or "") ~= decided[3] or (task.cr or "") ~= decided[4] or (task.ct or "") ~= decided[5]) then
      return {"CONCURRENT_MODIFICATION", id, rev}
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

-- then every write, step by step; each step's instance value is written with the
-- step (records of other instances it closed or created: at the end, see closed())
for n = 1, #steps do
  local s = steps[n]
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
    local by = s.completed_by
    if not by then
      redis.call("HDEL", key("task", done.id), "completed_by")
      close_task(done, "completed", now)
    elseif done.assignee then
      close_task(done, "completed", now, "completed_by", by)
    else
      close_task(done, "completed", now, "completed_by", by, "assignee", by)
    end
  end
  for i = 1, #s.cancelled do
    local task_id = s.cancelled[i]
    local _, task = load_task(task_id)
    if task and not task.status then -- active
      checked[task_id] = nil
      close_task(task, "cancelled", now)
    end
  end
  for i = 1, #s.created do
    local range = s.created[i]
    local task = {} -- its hash fields, straight from ARGV (then its id, which the hash has not)
    for f = range[1] + 1, range[2], 2 do
      task[ARGV[f]] = ARGV[f + 1]
    end
    task.id = ARGV[range[1]]
    checked[task.id] = nil
    redis.call("HSET", key("task", task.id), unpack(ARGV, range[1] + 1, range[2])) -- a new id: no hash yet
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
  for i = 1, #s.externals do
    local ext = s.externals[i]
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
  for i = 1, #s.externals_cancelled do
    local ext_id = s.externals_cancelled[i]
    local _, ext = load_external(ext_id)
    if ext and ext.status == "active" then
      update_external(ext, {{"status", "cancelled"}, {"end_time", now}})
      closed(s.id, "x" .. ext_id)
    end
  end
  -- subscribed before unsubscribed: an entry in both ends removed
  for i = 1, #s.subscribed do
    local sub = s.subscribed[i]
    index_subscription(sub, true)
  end
  for i = 1, #s.unsubscribed do
    local sub = s.unsubscribed[i]
    index_subscription(sub, false)
  end
  -- truncated: also when marked by a write this step's reader did not see
  inst.truncated = s.truncated or inst.truncated
  inst.externals = inst.externals or #s.externals > 0
  inst.rev, inst.ended, inst.body = s.rev, s.ended, s.body
  -- an ended instance is written with its retention (expire_instance does the rest)
  save_inst(s.id, inst, false, s.ended and RETENTION_MS and RETENTION)
  if s.history[2] >= s.history[1] then
    append_entries(s.id, s.history[2] - s.history[1] + 1, unpack(ARGV, s.history[1], s.history[2]))
  end
  ending[s.id] = s.ended and not was_ended[s.id]
  latest[s.id] = s
  created[s.id] = created[s.id] or s.new
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
    on_lists("active", s.pk, s.bk, "ZADD", s.ct, id)
  end
end
if any_ended then
  -- expiry by the server's clock, as PEXPIRE; the due ended instances leave the lists
  -- with each end (the writes that add to them: each end adds one and drops up to 20, and
  -- the lists expire with their newest member, so neither grows without ends pruning it)
  local clock = redis.call("TIME")
  local server_now = clock[1] .. string.sub("00000" .. clock[2], -6, -4) -- ms, as text
  for id, s in pairs(latest) do
    if ending[id] then
      on_lists("active", s.pk, s.bk, "ZREM", id)
      local all, by_pk, by_bk = list_keys("ended", s.pk, s.bk)
      list_ended(all, s.ct, id)
      list_ended(by_pk, s.ct, id)
      if by_bk then
        list_ended(by_bk, s.ct, id)
      end
      if RETENTION_MS then
        local expiry = string.format("%d", tonumber(server_now) + RETENTION_MS)
        redis.call("ZADD", key("inst-expiry"), expiry, cjson.encode({id, s.pk, s.bk}))
        redis.call("PEXPIRE", key("inst-expiry"), RETENTION)
      end
    end
  end
  prune_instance_lists(server_now, "20")
end
return {"OK"}
