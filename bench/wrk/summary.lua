-- The summary line every bench/wrk script prints and bench/run parses:
-- request count, duration and latency percentiles in µs, errors. Loaded
-- with dofile() by every script in this directory.
--
-- A second line, BENCHQ, gives the latency distribution as quantiles (1%
-- apart below p90, 0.1% apart above, each the middle of its slice) so that
-- bench/run can pool the latencies of several wrk processes run at once
-- (one per counterd replica) into one p50/p99.

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d p50_us=%d p99_us=%d max_us=%d " ..
    "status_errors=%d socket_errors=%d\n",
    summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), latency.max,
    e.status, e.connect + e.read + e.write + e.timeout))
  local q = {}
  for i = 0, 89 do q[#q + 1] = string.format("%.2f:%d", i + 0.5, latency:percentile(i + 0.5)) end
  for i = 0, 99 do
    local p = 90 + i / 10 + 0.05
    q[#q + 1] = string.format("%.2f:%d", p, latency:percentile(p))
  end
  io.write("BENCHQ " .. summary.requests .. " " .. table.concat(q, " ") .. "\n")
end
