-- Makes a workflow step that waits for an earlier one ready, with its final payload ARGV[3].
-- Idempotent: a step that is no longer waiting is left alone. Returns 1 when released.
local id = ARGV[2]
if redis.call('HGET', jk(id), 'st') ~= 'waiting' then return 0 end
redis.call('ZREM', WAITING, id)
redis.call('HSET', jk(id), 'payload', ARGV[3])
local nb = redis.call('HGET', jk(id), 'nb')
if nb and nb ~= '' and tonumber(nb) > NOWN then
  redis.call('HSET', jk(id), 'st', 'scheduled')
  redis.call('ZADD', SCHED, nb, id)
else
  make_ready(id)
end
return 1
