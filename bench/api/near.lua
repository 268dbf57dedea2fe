-- wrk script: nearest-20 queries (distance sort) at random points over Sado Island.
-- Each thread draws its own points; `done` prints p50/p99 latency and the request rate as JSON.

local south, north, west, east = 37.80, 38.33, 138.22, 138.56

function init(args)
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 100000)
end

function request()
  local lat = south + math.random() * (north - south)
  local lng = west + math.random() * (east - west)
  local path = string.format("/v1/places?near=%.5f,%.5f&sort=distance&limit=20", lat, lng)
  return wrk.format("GET", path)
end

function done(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  io.write(string.format(
    '{"requests": %d, "seconds": %.2f, "rps": %.0f, "p50_ms": %.3f, "p99_ms": %.3f, "max_ms": %.3f, "errors": %d}\n',
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000, errors))
end
