-- Extends worker ARGV[2]'s leases on the jobs ARGV[4..] until ARGV[3]; returns the ids whose
-- lease is gone (re-leased, reclaimed, cancelled or finished).
local W = ARGV[2]
local LU = ARGV[3]
local lost = {}
for i = 4, #ARGV do
  local id = ARGV[i]
  local j = redis.call('HMGET', jk(id), 'st', 'w')
  if j[1] == 'running' and j[2] == W then
    redis.call('ZADD', LEASES, LU, id)
    redis.call('HSET', jk(id), 'lu', LU)
  else
    lost[#lost + 1] = id
  end
end
return lost
