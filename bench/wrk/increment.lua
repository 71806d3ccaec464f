-- wrk script for durable increments: POST /counters/{name}/increment with
-- an empty body (by = 1), cycling over a set of names.
--   wrk ... -s bench/wrk/increment.lua URL -- [COUNT [FORMAT [STEP [OFFSET]]]]
-- Names are string.format(FORMAT, i * STEP) for i = 0 .. COUNT-1:
--   -- 1 x                one hot counter "x" (the default)
--   -- 1000 s%04d 1       spread over s0000 .. s0999
--   -- 1000 c%07d 1000    c0000000, c0001000, ... across a 10^6 store
-- Hot and spread runs both build their requests here (one Lua call per
-- request), so they differ only in the names they hit. Each wrk thread
-- starts at a different offset so threads do not walk the names in step;
-- OFFSET shifts them all, for several wrk processes run at once (one per
-- counterd replica in bench/postgres.sh).

local thread_count = 0

function setup(thread)
  thread:set("thread_index", thread_count)
  thread_count = thread_count + 1
end

local requests_ = {}
local next_ = 1

function init(args)
  local count = tonumber(args[1]) or 1
  local format = args[2] or "x"
  local step = tonumber(args[3]) or 1
  for i = 0, count - 1 do
    local name = string.format(format, i * step)
    requests_[#requests_ + 1] = wrk.format("POST",
      "/counters/" .. name .. "/increment", nil, "")
  end
  local index = tonumber(wrk.thread:get("thread_index")) or 0
  local offset = tonumber(args[4]) or 0
  next_ = (index * 7919 + offset) % #requests_ + 1
end

function request()
  local r = requests_[next_]
  next_ = next_ % #requests_ + 1
  return r
end

-- done(): the BENCH summary line, shared with the other scripts.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "summary.lua")
