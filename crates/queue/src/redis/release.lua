-- ARGV[3] = 'jobs': gives worker ARGV[2]'s leases on ARGV[4..] back without counting anything.
-- ARGV[3] = 'worker': ends every lease of the (dead) worker as if it had run out.
-- Returns {count, events}.
local W = ARGV[2]
local events = {}
local n = 0
if ARGV[3] == 'jobs' then
  for i = 4, #ARGV do
    local id = ARGV[i]
    local j = redis.call('HMGET', jk(id), 'st', 'w')
    if j[1] == 'running' and j[2] == W then
      redis.call('ZREM', LEASES, id)
      drop_entry(id)
      redis.call('HINCRBY', jk(id), 'att', -1)
      make_ready(id)
      n = n + 1
    end
  end
else
  for _, id in ipairs(redis.call('ZRANGE', LEASES, 0, -1)) do
    if redis.call('HGET', jk(id), 'w') == W then
      lose(id, 'its worker died', events)
      n = n + 1
    end
  end
  -- Its entries are acknowledged now; forget the consumer so the group does not grow.
  redis.pcall('XGROUP', 'DELCONSUMER', STREAM, GROUP, W)
end
return {n, events}
