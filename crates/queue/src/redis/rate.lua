-- A token bucket shared by every worker (KEYS[1], its own slot `{rate:<key>}`).
-- ARGV: now (ms), rate (tokens/s), burst. Returns {1, 0} when a token was taken, else
-- {0, milliseconds to wait}.
local now, rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens, ts = tonumber(b[1]) or burst, tonumber(b[2]) or now
if now > ts then
  tokens = math.min(burst, tokens + (now - ts) * rate / 1000)
  ts = now
end
local granted, wait = 0, 0
if tokens >= 1 then
  tokens = tokens - 1
  granted = 1
elseif rate > 0 then
  wait = math.ceil((1 - tokens) * 1000 / rate)
else
  wait = 3600000
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'ts', string.format('%d', ts))
-- Only garbage collection: a forgotten bucket is a full one, as after a long pause.
if rate > 0 then
  redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 60000)
end
return {granted, wait}
