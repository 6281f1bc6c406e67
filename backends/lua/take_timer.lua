-- take_timer: KEYS[1] the timer index. ARGV[2] the member, ARGV[3] the due time the
-- caller saw, ARGV[4] the next due time or "" to remove it. Answers 1 when this
-- call moved or removed the entry, 0 when it was no longer at that due time.
local score = redis.call("ZSCORE", KEYS[1], ARGV[2])
if not score or tonumber(score) ~= tonumber(ARGV[3]) then
  return 0
end
if ARGV[4] == "" then
  redis.call("ZREM", KEYS[1], ARGV[2])
else
  redis.call("ZADD", KEYS[1], ARGV[4], ARGV[2])
end
return 1
