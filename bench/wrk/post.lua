-- wrk script for durable increments on one counter with wrk's own static
-- request (no Lua call per request, as redis-benchmark sends a prepared
-- command): POST to the URL given, empty body (by = 1).
--   wrk -t1 -c1 -d10s --latency -s bench/wrk/post.lua http://127.0.0.1:PORT/counters/x/increment
-- bench/run compares these rows with Redis INCR; the hot-vs-spread rows use
-- increment.lua for both sides, so that they differ only in the names hit.

wrk.method = "POST"
wrk.body = ""

-- done(): the BENCH summary line, shared with the other scripts.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "summary.lua")
