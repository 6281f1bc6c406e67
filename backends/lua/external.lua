-- external: one read-check-write of one external task. ARGV[2] the operation
-- (fail, retries, extend, unlock), ARGV[3] the task id, ARGV[4] a JSON object of
-- its arguments (decimal strings; false for None). Answers {"OK", task hash}.
local op, ext_id, args = ARGV[2], ARGV[3], cjson.decode(ARGV[4])
local _, ext = load_external(ext_id)
local failed
if op == "fail" or op == "extend" then
  failed = require_lock(ext_id, ext, args.worker)
else
  failed = require_external(ext_id, ext)
end
if failed then
  return failed
end

local changes
if op == "fail" or op == "retries" then
  local retries = tonumber(args.retries)
  if retries > 0 then
    local at = op == "fail" and int(tonumber(args.now) + tonumber(args.retry_timeout)) or args.now
    changes = {{"retries", int(retries)}, {"incident", "0"}, {"worker", false}, {"lock_expiry", false}, {"available_at", at}}
  else
    changes = {{"retries", "0"}, {"incident", "1"}}
  end
  if op == "fail" then
    changes[#changes + 1] = {"error_message", args.error_message}
    changes[#changes + 1] = {"error_details", args.error_details}
  end
elseif op == "extend" then
  local expiry = int(tonumber(args.now) + tonumber(args.duration))
  changes = {{"lock_expiry", expiry}, {"available_at", expiry}}
else -- unlock
  changes = {{"worker", false}, {"lock_expiry", false}, {"available_at", "0"}}
end
update_external(ext, changes)
return {"OK", redis.call("HGETALL", key("ext", ext_id))}
