-- Deletes up to ARGV[3] jobs in state ARGV[2] ('succeeded' and 'cancelled' only when they
-- finished before ARGV[4], when given). Returns {count, seen, keys, workflows}: keys are
-- "idempotency-key\nid" pairs the client clears in the idempotency hash; workflows are the ids
-- of the workflows deleted jobs belonged to (the client forgets those with no job left).
local state, limit, before = ARGV[2], tonumber(ARGV[3]), ARGV[4]
local ids
local entries = {}
local index
if state == 'scheduled' then index = SCHED
elseif state == 'dead' then index = DEAD
elseif state == 'succeeded' then index = DONE
elseif state == 'cancelled' then index = CANC
elseif state == 'waiting' then index = WAITING
end
if index then
  if before and before ~= '' then
    ids = redis.call('ZRANGEBYSCORE', index, '-inf', '(' .. before, 'LIMIT', 0, limit)
  else
    ids = redis.call('ZRANGE', index, 0, limit - 1)
  end
elseif state == 'ready' then
  -- Ready jobs are the stream's undelivered entries.
  ids = {}
  local from = undelivered()
  if from then
    for _, e in ipairs(redis.call('XRANGE', STREAM, from, '+', 'COUNT', limit)) do
      ids[#ids + 1] = e[2][2]
      entries[#ids] = e[1]
    end
  end
else
  return {0, 0, {}, {}}
end
local n = 0
local keys = {}
local wfs = {}
for i, id in ipairs(ids) do
  local j = redis.call('HMGET', jk(id), 'st', 'ik', 'wf')
  if j[1] == state then
    if index then redis.call('ZREM', index, id) else drop_entry(id) end
    redis.call('DEL', jk(id))
    if j[2] and j[2] ~= '' then keys[#keys + 1] = j[2] .. '\n' .. id end
    if j[3] and j[3] ~= '' then wfs[#wfs + 1] = j[3] end
    n = n + 1
  elseif index then
    redis.call('ZREM', index, id)
  else
    redis.call('XDEL', STREAM, entries[i]) -- left behind by a job no longer ready
  end
end
return {n, #ids, keys, wfs}
