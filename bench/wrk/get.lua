-- wrk script for static GETs (counterd's GET /counters/x and nginx's fixed
-- JSON alike): the request is wrk's own static one; this file only adds
-- the machine-readable summary line that bench/run parses.
--   wrk -t1 -c1 -d10s --latency -s bench/wrk/get.lua http://127.0.0.1:PORT/counters/x

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d p50_us=%d p99_us=%d max_us=%d " ..
    "status_errors=%d socket_errors=%d\n",
    summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), latency.max,
    e.status, e.connect + e.read + e.write + e.timeout))
end
