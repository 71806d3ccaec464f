-- wrk script: one static POST with a JSON body, built once per thread.
--   wrk ... -s bench/wrk/body.lua URL -- 'BODY'
-- bench/run's feature rows: bounded increments ('{"by":1,"max":...}') vs
-- the same request without the bound ('{"by":1}'), and a batch of ten
-- increments on POST /batch. Like post.lua, no Lua call builds a request.

local request_

function init(args)
  wrk.method = "POST"
  wrk.body = args[1] or ""
  wrk.headers["Content-Type"] = "application/json"
  request_ = wrk.format()
end

function request()
  return request_
end

-- done(): the BENCH summary line, shared with the other scripts.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "summary.lua")
