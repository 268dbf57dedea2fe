-- Records chord member ARGV[1]'s result ARGV[2] in the workflow hash KEYS[1] (its own slot,
-- `{wf:<id>}`); idempotent. When every one of the ARGV[3] members has a result, returns them
-- in member order; otherwise an empty list.
local n = tonumber(ARGV[3])
if redis.call('HSETNX', KEYS[1], 'r:' .. ARGV[1], ARGV[2]) == 1 then
  redis.call('HINCRBY', KEYS[1], 'done', 1)
end
if tonumber(redis.call('HGET', KEYS[1], 'done')) < n then return {} end
local fields = {}
for i = 0, n - 1 do fields[#fields + 1] = 'r:' .. i end
return redis.call('HMGET', KEYS[1], unpack(fields))
