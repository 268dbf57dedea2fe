-- Up to ARGV[3] jobs of each index matching state ARGV[2] ('' = every state), oldest first,
-- each as its HGETALL field list preceded by its id. The client filters and sorts.
local state, limit = ARGV[2], tonumber(ARGV[3])
local ids = {}
local function from_index(key)
  for _, id in ipairs(redis.call('ZRANGE', key, 0, limit - 1)) do ids[#ids + 1] = id end
end
if state == '' or state == 'scheduled' then from_index(SCHED) end
if state == '' or state == 'running' then from_index(LEASES) end
if state == '' or state == 'dead' then from_index(DEAD) end
if state == '' or state == 'succeeded' then from_index(DONE) end
if state == '' or state == 'cancelled' then from_index(CANC) end
if state == '' or state == 'waiting' then from_index(WAITING) end
if state == '' or state == 'ready' then
  local from = undelivered()
  if from then
    for _, e in ipairs(redis.call('XRANGE', STREAM, from, '+', 'COUNT', limit)) do
      ids[#ids + 1] = e[2][2]
    end
  end
end
local out = {}
for _, id in ipairs(ids) do
  local h = redis.call('HGETALL', jk(id))
  if #h > 0 then
    out[#out + 1] = id
    out[#out + 1] = h
  end
end
return out
