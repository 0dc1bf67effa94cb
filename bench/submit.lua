-- bench/submit.lua: wrk script for POST /api/v1/requests.
--
-- Every request is bench/request.yaml (about 1.5 KB of YAML) with a unique
-- metadata.name ("b<run>-t<thread>-<counter>") and a lease about 180 days
-- ahead, sent as application/yaml with a department bearer token.
--
-- Environment:
--   YG_TOKEN or YG_TOKEN_FILE   the bearer token (a department token for
--                               metadata.department, or an admin token)
--   YG_REQUEST_TEMPLATE         the document (default bench/request.yaml)
--   YG_DEPARTMENT               replaces metadata.department (default: as in the file)
--   YG_RUN_ID                   makes names unique across runs on one store
--                               (default: the current time)
--
-- At the end it prints every status code seen and one summary line:
--   SUBMIT requests=N rps=R p50_ms= p90_ms= p99_ms= p999_ms= max_ms= status_201=N non_2xx=N socket_errors=N
--
--   wrk -t2 -c32 -d15s --latency -s bench/submit.lua http://127.0.0.1:8470

local function read_file(path)
   local f = io.open(path, "rb")
   if not f then return nil end
   local s = f:read("*a")
   f:close()
   return s
end

local function trim(s) return (s:gsub("^%s+", ""):gsub("%s+$", "")) end

local token = os.getenv("YG_TOKEN")
if not token or token == "" then
   local tf = os.getenv("YG_TOKEN_FILE")
   token = tf and read_file(tf)
end
if not token or token == "" then
   io.stderr:write("submit.lua: set YG_TOKEN or YG_TOKEN_FILE\n")
   os.exit(2)
end
token = trim(token)

local template_path = os.getenv("YG_REQUEST_TEMPLATE") or "bench/request.yaml"
local template = read_file(template_path)
if not template then
   io.stderr:write("submit.lua: cannot read " .. template_path .. "\n")
   os.exit(2)
end
local lease = os.date("!%Y-%m-%d", os.time() + 180 * 86400)
template = template:gsub("__LEASE_UNTIL__", lease)
local department = os.getenv("YG_DEPARTMENT")
if department and department ~= "" then
   template = template:gsub("\n  department: [%w-]+", "\n  department: " .. department, 1)
end
local name_at = template:find("name: __NAME__", 1, true)
if not name_at then
   io.stderr:write("submit.lua: " .. template_path .. " has no 'name: __NAME__'\n")
   os.exit(2)
end
name_at = name_at + #"name: "
local prefix = template:sub(1, name_at - 1)
local suffix = template:sub(name_at + #"__NAME__")
local run_id = os.getenv("YG_RUN_ID") or tostring(os.time())

local headers = {
   ["Content-Type"] = "application/yaml",
   ["Authorization"] = "Bearer " .. token,
}

-- setup() runs in the main Lua state; each thread gets its own id.
local threads = {}
local next_id = 0
function setup(thread)
   next_id = next_id + 1
   thread:set("tid", next_id)
   table.insert(threads, thread)
end

-- Per thread (each wrk thread has its own Lua state).
counter = 0
counts = {}

function request()
   counter = counter + 1
   local body = prefix .. string.format("b%s-t%d-%d", run_id, tid, counter) .. suffix
   return wrk.format("POST", "/api/v1/requests", headers, body)
end

function response(status, hdrs, body)
   counts[status] = (counts[status] or 0) + 1
end

function done(summary, latency, requests)
   local total = {}
   for _, t in ipairs(threads) do
      local c = t:get("counts")
      for status, n in pairs(c) do
         total[status] = (total[status] or 0) + n
      end
   end
   local ok201, non2xx = 0, 0
   local codes = {}
   for status, n in pairs(total) do
      table.insert(codes, status)
      if status == 201 then ok201 = n end
      if status < 200 or status > 299 then non2xx = non2xx + n end
   end
   table.sort(codes)
   for _, status in ipairs(codes) do
      io.write(string.format("status %d: %d\n", status, total[status]))
   end
   local e = summary.errors
   local secs = summary.duration / 1e6
   io.write(string.format(
      "SUBMIT requests=%d rps=%.0f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f p999_ms=%.2f max_ms=%.2f " ..
      "status_201=%d non_2xx=%d socket_errors=%d\n",
      summary.requests, summary.requests / secs,
      latency:percentile(50) / 1000, latency:percentile(90) / 1000,
      latency:percentile(99) / 1000, latency:percentile(99.9) / 1000, latency.max / 1000,
      ok201, non2xx, e.connect + e.read + e.write + e.timeout))
end
