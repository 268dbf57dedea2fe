-- Leases up to ARGV[3] ready jobs of one queue for worker ARGV[2] until ARGV[4], after making
-- due scheduled jobs ready and ending expired leases (lost-lease count, poison guard).
-- Entries are read with NOACK: the lease is the LEASES sorted set, timed by the client's clock
-- (the PEL's idle times are the server's), so a delivered entry is never needed again.
-- Returns {jobs, events}: jobs as {id, task, payload, attempt, max_retries, ready_at};
-- events are workflow members that reached an end here or whose propagation looks stalled.
local W = ARGV[2]
local MAX = tonumber(ARGV[3])
local LU = ARGV[4]
local events = {}

for _, id in ipairs(redis.call('ZRANGEBYSCORE', SCHED, '-inf', NOW, 'LIMIT', 0, 1000)) do
  redis.call('ZREM', SCHED, id)
  if redis.call('HGET', jk(id), 'st') == 'scheduled' then make_ready(id) end
end

for _, id in ipairs(redis.call('ZRANGEBYSCORE', LEASES, '-inf', NOW, 'LIMIT', 0, 1000)) do
  lose(id, 'its lease ran out', events)
end

-- Workflow events older than 10 s were left by a client that died mid-propagation.
local stale = redis.call('ZRANGEBYSCORE', OUTBOX, '-inf', string.format('%d', NOWN - 10000),
  'LIMIT', 0, 100)
for _, id in ipairs(stale) do
  redis.call('ZADD', OUTBOX, NOW, id)
  events[#events + 1] = id
end

local jobs = {}
if MAX > 0 then
  local function read()
    return redis.pcall('XREADGROUP', 'GROUP', GROUP, W, 'COUNT', MAX, 'NOACK', 'STREAMS',
      STREAM, '>')
  end
  local res = read()
  if type(res) == 'table' and res.err then
    -- The group is created on first use, and again after Redis lost its data (NOGROUP);
    -- from entry 0, so jobs added before it are delivered too.
    if not string.find(res.err, 'NOGROUP', 1, true) then return redis.error_reply(res.err) end
    redis.call('XGROUP', 'CREATE', STREAM, GROUP, '0', 'MKSTREAM')
    res = read()
  end
  if res and res[1] then
    for _, entry in ipairs(res[1][2]) do
      local eid = entry[1]
      local id = entry[2][2]
      local j = redis.call('HMGET', jk(id), 'st', 'e', 'task', 'payload', 'att', 'mr', 'ra')
      -- (An entry of a job that is no longer ready was left behind: it is consumed now.)
      if j[1] == 'ready' and j[2] == eid then
        local att = tonumber(j[5]) + 1
        redis.call('HSET', jk(id), 'st', 'running', 'e', '', 'w', W, 'lu', LU, 'att', att)
        redis.call('ZADD', LEASES, LU, id)
        jobs[#jobs + 1] = {id, j[3], j[4], att, j[6], j[7]}
      end
    end
    -- Every entry before the last one read is delivered: drop whole nodes of them.
    local entries = res[1][2]
    if #entries > 0 then
      redis.call('XTRIM', STREAM, 'MINID', '~', entries[#entries][1])
    end
  end
end
count('started', #jobs)
return {jobs, events}
