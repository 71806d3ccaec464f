-- The summary line every bench/wrk script prints and bench/run parses:
-- request count, duration and latency percentiles in µs, errors. Loaded
-- with dofile() by every script in this directory.

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d p50_us=%d p99_us=%d max_us=%d " ..
    "status_errors=%d socket_errors=%d\n",
    summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), latency.max,
    e.status, e.connect + e.read + e.write + e.timeout))
end
