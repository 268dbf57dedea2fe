-- Records finished runs of worker ARGV[2]. Then 4 per run: id, kind ('s' succeeded with
-- result, 'r' retry with error and retry_at, 'd' dead with error), a, b. A run whose lease the
-- worker no longer holds (a zombie) is ignored. Returns the workflow events.
local W = ARGV[2]
local events = {}
local ok, failed, retried, dead = 0, 0, 0, 0
for i = 3, #ARGV, 4 do
  local id, kind, a, b = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local j = redis.call('HMGET', jk(id), 'st', 'w', 'wf')
  if j[1] == 'running' and j[2] == W then
    redis.call('ZREM', LEASES, id)
    if kind == 's' then
      redis.call('HSET', jk(id), 'st', 'succeeded', 'res', a, 'w', '', 'lu', '', 'fin', NOW)
      redis.call('ZADD', DONE, NOW, id)
      ok = ok + 1
      outbox(id, j[3], events)
    elseif kind == 'r' then
      failed, retried = failed + 1, retried + 1
      if tonumber(b) > NOWN then
        redis.call('HSET', jk(id), 'st', 'scheduled', 'err', a, 'nb', b, 'w', '', 'lu', '')
        redis.call('ZADD', SCHED, b, id)
      else
        redis.call('HSET', jk(id), 'err', a, 'nb', b)
        make_ready(id)
      end
    else
      redis.call('HSET', jk(id), 'st', 'dead', 'err', a, 'w', '', 'lu', '', 'fin', NOW)
      redis.call('ZADD', DEAD, NOW, id)
      failed, dead = failed + 1, dead + 1
      outbox(id, j[3], events)
    end
  end
end
count('succeeded', ok)
count('failed', failed)
count('retried', retried)
count('dead', dead)
return events
