-- Idempotency keys, all in one hash (KEYS[1], the `{idem}` slot). A key maps to a job id, or
-- to "p|token|until" while an enqueue that claimed it is in flight.
-- ARGV[1] = 'claim', now, token, until, keys...: per key, 'c' (claimed: enqueue it), 'w'
--   (another enqueue is in flight: ask again) or the existing job's id.
-- ARGV[1] = 'set', token, then key/id pairs: stores ids for keys this token still holds.
-- ARGV[1] = 'clear', then key/id pairs: forgets keys that still map to that id.
local op = ARGV[1]
if op == 'claim' then
  local now, token, untl = tonumber(ARGV[2]), ARGV[3], ARGV[4]
  local out = {}
  for i = 5, #ARGV do
    local v = redis.call('HGET', KEYS[1], ARGV[i])
    local claim = not v
    if v and string.sub(v, 1, 2) == 'p|' then
      local t, u = string.match(v, '^p|([^|]*)|(%d+)$')
      claim = (t == token) or (not u) or tonumber(u) <= now
      if not claim then out[#out + 1] = 'w' end
    elseif v then
      out[#out + 1] = v
    end
    if claim then
      redis.call('HSET', KEYS[1], ARGV[i], 'p|' .. token .. '|' .. untl)
      out[#out + 1] = 'c'
    end
  end
  return out
elseif op == 'set' then
  local prefix = 'p|' .. ARGV[2] .. '|'
  for i = 3, #ARGV, 2 do
    local v = redis.call('HGET', KEYS[1], ARGV[i])
    if v and string.sub(v, 1, #prefix) == prefix then
      redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
    end
  end
  return 1
else
  for i = 2, #ARGV, 2 do
    if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
      redis.call('HDEL', KEYS[1], ARGV[i])
    end
  end
  return 1
end
