-- Shared prelude of every per-queue script. KEYS[1] is the queue's stream key
-- `<prefix>:{q:<name>}:ready`; every other key of the queue shares its hash tag, so the
-- script touches one cluster slot. ARGV[1] is the client's clock (ms): Redis TIME is never
-- used, so injected clocks work.
local P = string.sub(KEYS[1], 1, -6)
local NOW = ARGV[1]
local NOWN = tonumber(NOW)
local STREAM = KEYS[1]
local SCHED = P .. 'sched'
local LEASES = P .. 'leases'
local DEAD = P .. 'dead'
local DONE = P .. 'done'
local CANC = P .. 'cancelled'
local WAITING = P .. 'waiting'
local OUTBOX = P .. 'outbox'
local GROUP = 'workers'
local POISON = 3

local function jk(id) return P .. 'job:' .. id end

-- Totals for metrics (see `Broker::counters`).
local function count(field, n)
  if n > 0 then redis.call('HINCRBY', P .. 'counts', field, n) end
end

-- A new stream entry for the job: consumers see it with XREADGROUP '>'.
local function make_ready(id)
  local e = redis.call('XADD', STREAM, '*', 'id', id, 't', NOW)
  redis.call('HSET', jk(id), 'st', 'ready', 'e', e, 'ra', NOW, 'w', '', 'lu', '')
end

-- Deletes a ready job's undelivered entry (a leased job has none: entries are read with
-- NOACK, the lease lives in LEASES). The caller then sets the job's `e` field.
local function drop_entry(id)
  local e = redis.call('HGET', jk(id), 'e')
  if e and e ~= '' then redis.call('XDEL', STREAM, e) end
end

-- Where the undelivered entries start, as an XRANGE start ('(' after the group's last
-- delivered entry, or '-' before the group exists), and how many there are (the group's lag;
-- false when Redis cannot tell). nil when there is no stream.
local function undelivered()
  if redis.call('EXISTS', STREAM) == 0 then return nil, 0 end
  local groups = redis.pcall('XINFO', 'GROUPS', STREAM)
  if type(groups) == 'table' and not groups.err then
    for _, g in ipairs(groups) do
      local f = {}
      for k = 1, #g, 2 do f[g[k]] = g[k + 1] end
      if f['name'] == GROUP then return '(' .. f['last-delivered-id'], f['lag'] end
    end
  end
  return '-', redis.call('XLEN', STREAM)
end

-- Records a terminal transition of a workflow member for the client to propagate.
local function outbox(id, wf, events)
  if wf and wf ~= '' then
    redis.call('ZADD', OUTBOX, NOW, id)
    events[#events + 1] = id
  end
end

-- A lease that ended without a finish (ran out, or its worker died): one more lost lease;
-- the poison guard sends the job to the dead letters after POISON of them.
local function lose(id, why, events)
  redis.call('ZREM', LEASES, id)
  drop_entry(id)
  count('lease_expired', 1)
  local lost = redis.call('HINCRBY', jk(id), 'lost', 1)
  if lost >= POISON then
    redis.call('HSET', jk(id), 'st', 'dead', 'w', '', 'lu', '', 'fin', NOW,
      'err', 'poison guard: ' .. why .. ' ' .. lost .. ' times while running it')
    redis.call('ZADD', DEAD, NOW, id)
    count('dead', 1)
    outbox(id, redis.call('HGET', jk(id), 'wf'), events)
  else
    make_ready(id)
  end
end
