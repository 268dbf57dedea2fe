-- Counts of one queue: {ready, scheduled, running, dead, ready_at of the oldest ready job or ''}.
local from, lag = undelivered()
local ready, oldest = 0, ''
if from then
  local first = redis.call('XRANGE', STREAM, from, '+', 'COUNT', 1)
  if first[1] then oldest = first[1][2][4] end
  if lag then
    ready = lag
  elseif first[1] then
    -- Entries were deleted among the undelivered ones (cancel, purge): count them.
    local cursor = from
    while true do
      local chunk = redis.call('XRANGE', STREAM, cursor, '+', 'COUNT', 1000)
      ready = ready + #chunk
      if #chunk < 1000 then break end
      cursor = '(' .. chunk[#chunk][1]
    end
  end
end
return {ready, redis.call('ZCARD', SCHED), redis.call('ZCARD', LEASES), redis.call('ZCARD', DEAD),
  oldest}
