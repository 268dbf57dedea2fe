-- Gives queue ARGV[1] its number (1..65535) once and for all. KEYS: name->number hash,
-- number->name hash, counter; all in the `{meta}` slot.
local n = redis.call('HGET', KEYS[1], ARGV[1])
if n then return tonumber(n) end
n = redis.call('INCR', KEYS[3])
if n > 65535 then return redis.error_reply('ERR too many queues (65535)') end
redis.call('HSET', KEYS[1], ARGV[1], n)
redis.call('HSET', KEYS[2], n, ARGV[1])
return n
