-- wrk script for static GETs (counterd's GET /counters/x and nginx's fixed
-- JSON alike): the request is wrk's own static one; this file only adds
-- the machine-readable summary line that bench/run parses.
--   wrk -t1 -c1 -d10s --latency -s bench/wrk/get.lua http://127.0.0.1:PORT/counters/x

-- done(): the BENCH summary line, shared with the other scripts.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "summary.lua")
