-- Cancels the jobs ARGV[2..] of this queue that have not finished. Returns {flags, events}:
-- flags[i] is 1 when job i was cancelled, 0 when it had already ended (or does not exist).
local flags = {}
local events = {}
for i = 2, #ARGV do
  local id = ARGV[i]
  local j = redis.call('HMGET', jk(id), 'st', 'wf')
  local st = j[1]
  local ok = 1
  if st == 'scheduled' then
    redis.call('ZREM', SCHED, id)
  elseif st == 'ready' then
    drop_entry(id)
  elseif st == 'waiting' then
    redis.call('ZREM', WAITING, id)
  elseif st == 'running' then
    -- The worker's next renew reports the lease lost, and its finish is ignored.
    redis.call('ZREM', LEASES, id)
    drop_entry(id)
  else
    ok = 0
  end
  if ok == 1 then
    redis.call('HSET', jk(id), 'st', 'cancelled', 'e', '', 'w', '', 'lu', '', 'fin', NOW)
    redis.call('ZADD', CANC, NOW, id)
    outbox(id, j[2], events)
  end
  flags[#flags + 1] = ok
end
return {flags, events}
