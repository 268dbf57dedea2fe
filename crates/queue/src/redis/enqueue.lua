-- Enqueues jobs into one queue. ARGV: now, queue number, n, then 8 per job: task, payload,
-- max_retries ('' = task default), not_before ('' = now), idempotency key, workflow id,
-- workflow index, '1' when the job waits for an earlier workflow step.
-- Ids are `seq * 65536 + queue number`, so an id names its queue (and so its slot).
local qnum = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local last = redis.call('INCRBY', P .. 'seq', n)
local ids = {}
for i = 0, n - 1 do
  local b = 4 + i * 8
  local id = string.format('%d', (last - n + 1 + i) * 65536 + qnum)
  local nb = ARGV[b + 3]
  local fields = {'task', ARGV[b], 'payload', ARGV[b + 1], 'mr', ARGV[b + 2], 'nb', nb,
    'ik', ARGV[b + 4], 'wf', ARGV[b + 5], 'wi', ARGV[b + 6], 'enq', NOW, 'att', 0, 'lost', 0}
  -- One HSET per job: the state (and for a ready job its stream entry) goes in with the rest.
  local k = #fields
  if ARGV[b + 7] == '1' then
    fields[k + 1], fields[k + 2] = 'st', 'waiting'
    redis.call('ZADD', WAITING, NOW, id)
  elseif nb ~= '' and tonumber(nb) > NOWN then
    fields[k + 1], fields[k + 2] = 'st', 'scheduled'
    redis.call('ZADD', SCHED, nb, id)
  else
    local e = redis.call('XADD', STREAM, '*', 'id', id, 't', NOW)
    fields[k + 1], fields[k + 2], fields[k + 3], fields[k + 4] = 'st', 'ready', 'e', e
    fields[k + 5], fields[k + 6] = 'ra', NOW
  end
  redis.call('HSET', jk(id), unpack(fields))
  ids[#ids + 1] = id
end
count('enqueued', n)
-- Wake idle workers (BLPOP on `wake`): one token per ready job, at most 16 kept.
local ready = 0
for i = 0, n - 1 do
  if ARGV[4 + i * 8 + 7] ~= '1' and (ARGV[4 + i * 8 + 3] == '' or tonumber(ARGV[4 + i * 8 + 3]) <= NOWN) then
    ready = ready + 1
  end
end
if ready > 0 then
  local wake = P .. 'wake'
  for _ = 1, math.min(ready, 16) do redis.call('LPUSH', wake, '1') end
  redis.call('LTRIM', wake, 0, 15)
end
return ids
