-- bench/segment-show.lua: wrk script for GET /api/v1/segments/{name} over
-- the segments bench/readiness-fill.py makes (seg-00000 ...), a random one
-- per request.
--
-- Environment:
--   YG_TOKEN_FILE   a reader's bearer token (e.g. admin.token)
--   YG_SEGMENTS     how many segments there are (default 10000)
--
--   YG_TOKEN_FILE=admin.token wrk -t1 -c1 -d10s --latency -s bench/segment-show.lua http://127.0.0.1:8470

local f = io.open(os.getenv("YG_TOKEN_FILE") or "", "r")
if not f then
   io.stderr:write("segment-show.lua: set YG_TOKEN_FILE\n")
   os.exit(2)
end
local token = f:read("*l")
f:close()
local n = tonumber(os.getenv("YG_SEGMENTS") or "10000")
local headers = { ["Authorization"] = "Bearer " .. token }

function init(args)
   math.randomseed(os.time() + math.floor(os.clock() * 1e6))
end

function request()
   return wrk.format("GET", string.format("/api/v1/segments/seg-%05d", math.random(0, n - 1)), headers)
end
