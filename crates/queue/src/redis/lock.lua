-- Named locks, all in one hash (KEYS[1], the `{locks}` slot): name -> "until|owner".
-- ARGV: op ('lock', 'extend', 'unlock'), now, name, owner, until. Returns 1 or 0.
local op, now, name, owner, untl = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5]
local v = redis.call('HGET', KEYS[1], name)
local held_until, holder = -1, nil
if v then
  local u, o = string.match(v, '^(%d+)|(.*)$')
  held_until, holder = tonumber(u) or -1, o
end
local live = held_until > now
if op == 'lock' then
  if live and holder ~= owner then return 0 end
elseif op == 'extend' then
  if not live or holder ~= owner then return 0 end
else
  if holder ~= owner then return 0 end
  redis.call('HDEL', KEYS[1], name)
  return 1
end
redis.call('HSET', KEYS[1], name, untl .. '|' .. owner)
return 1
