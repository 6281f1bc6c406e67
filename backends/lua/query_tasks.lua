-- query_tasks: KEYS the index sets the query names; ARGV[2] "1" to keep tasks
-- assigned to someone outside ARGV[3] (the JSON list of queried assignees).
-- Answers the hashes of the union's tasks that can match (the caller filters
-- exactly); the cost follows the size of the union, never the number of tasks.
local include_assigned = ARGV[2] == "1"
local assignees = {}
for _, user in ipairs(cjson.decode(ARGV[3])) do
  assignees[user] = true
end
local seen, found = {}, {}
for first = 1, #KEYS, 1000 do
  local ids = redis.call("SUNION", unpack(KEYS, first, math.min(first + 999, #KEYS)))
  for _, task_id in ipairs(ids) do
    if not seen[task_id] then
      seen[task_id] = true
      local head = redis.call("HMGET", key("task", task_id), "status", "assignee")
      local status, assignee = head[1], head[2]
      if status == "active" and (not assignee or include_assigned or assignees[assignee]) then
        found[#found + 1] = redis.call("HGETALL", key("task", task_id))
      end
    end
  end
end
return found
