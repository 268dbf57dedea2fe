-- Makes dead jobs ready again with fresh attempts: the ids ARGV[3..], or when ARGV[2] is a
-- number, up to that many of the oldest dead jobs. Returns how many.
local ids = {}
if ARGV[2] ~= '' then
  ids = redis.call('ZRANGE', DEAD, 0, tonumber(ARGV[2]) - 1)
else
  for i = 3, #ARGV do ids[#ids + 1] = ARGV[i] end
end
local n = 0
for _, id in ipairs(ids) do
  redis.call('ZREM', DEAD, id)
  if redis.call('HGET', jk(id), 'st') == 'dead' then
    redis.call('HSET', jk(id), 'att', 0, 'lost', 0, 'fin', '')
    make_ready(id)
    n = n + 1
  end
end
return n
