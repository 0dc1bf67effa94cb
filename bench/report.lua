-- bench/report.lua: wrk script for POST /api/v1/agents/self/reports —
-- simulated yunguan-agents, one agent token per host (made by
-- bench/readiness-fill.py --tokens).
--
-- Each wrk thread takes the hosts whose index % YG_WRK_THREADS = its
-- number - 1 and cycles through them; each report carries the host's next
-- seq and its evaluation of the 4 segments it carries (8 checks each, as
-- yunguan-agent words them; about 4.6 KB of JSON).  A report is a heartbeat
-- with the same results as the host's previous one, except that with
-- probability YG_CHANGE_PERCENT the host's ipv6-default-route check on its
-- first segment flips between pass and fail (a change: the controller
-- stores it and recomputes the segment).
--
-- As yunguan-agent does (doc/AGENT.md, "Heartbeats"), a full report
-- carries results_sha256, and a heartbeat whose results equal those of the
-- host's last full report carries only seq and that hash (~100 bytes).  The
-- controller treats the hash as opaque, so this script uses a fingerprint
-- of (host, results) instead of computing SHA-256 in Lua.  A host's first
-- report in a run is full unless YG_ASSUME_STORED=1 (the store already
-- holds the steady-state results with their hash: a previous run with
-- YG_CHANGE_PERCENT=0 stored them).  YG_COMPACT=0 sends every report in
-- full (as agents did before heartbeats, and as the cold case needs).
--
-- Environment:
--   YG_TOKENS             "INDEX SECRET" lines (required)
--   YG_WRK_THREADS        wrk's -t (default 2)
--   YG_SEGMENTS_PER_HOST  default 4;  YG_HOSTS_PER_SEGMENT  default 25
--                         (as given to readiness-fill.py)
--   YG_CHANGE_PERCENT     default 10
--   YG_SEQ_BASE           first seq (default: the time in ms, so a later run
--                         on the same store continues above an earlier one)
--   YG_ONCE=1             each thread stops once every one of its hosts
--                         has been answered once (a warm-up pass)
--   YG_COMPACT            1 (default): hash-only heartbeats; 0: every report full
--   YG_ASSUME_STORED=1    the store holds each host's steady-state hash already
--
-- At the end: every status code, and one line
--   REPORTS requests=N rps=R p50_ms= p90_ms= p99_ms= p999_ms= max_ms= applied=N not_applied=N resync=N changed=N full=N heartbeats=N non_2xx=N socket_errors=N
--
--   YG_TOKENS=tokens wrk -t2 -c32 -d15s --latency -s bench/report.lua http://127.0.0.1:8470

local nthreads = tonumber(os.getenv("YG_WRK_THREADS") or "2")
local K = tonumber(os.getenv("YG_SEGMENTS_PER_HOST") or "4")
local H = tonumber(os.getenv("YG_HOSTS_PER_SEGMENT") or "25")
local change = tonumber(os.getenv("YG_CHANGE_PERCENT") or "10") / 100
local once = os.getenv("YG_ONCE") == "1"
local compact = os.getenv("YG_COMPACT") ~= "0"
local assume_stored = os.getenv("YG_ASSUME_STORED") == "1"
local seq_base = tonumber(os.getenv("YG_SEQ_BASE") or "") or os.time() * 1000

local threads = {}
local next_id = 0
function setup(thread)
   next_id = next_id + 1
   thread:set("tid", next_id)
   table.insert(threads, thread)
end

-- Per thread.
hosts = {}
pos = 0
counts = {}
applied, not_applied, resync, changed, answered, full, heartbeats = 0, 0, 0, 0, 0, 0, 0

-- The simulated agent's results_sha256: 64 hex digits, unique per host
-- and per state of its results.
function fingerprint(h)
   return string.format("%056x%08x", h.bad and 1 or 0, h.i)
end

function init(args)
   local path = os.getenv("YG_TOKENS")
   local f = path and io.open(path, "r")
   if not f then
      io.stderr:write("report.lua: set YG_TOKENS to the tokens file of readiness-fill.py\n")
      os.exit(2)
   end
   for line in f:lines() do
      local i, secret = line:match("^(%d+) (%S+)$")
      i = tonumber(i)
      if i and i % nthreads == tid - 1 then
         local h = { i = i, seq = seq_base, bad = false, auth = "Bearer " .. secret }
         if assume_stored then h.acked = fingerprint(h) end
         table.insert(hosts, h)
      end
   end
   f:close()
   math.randomseed(os.time() + tid)
end

local function v4net(s)
   local a, b = math.floor(s / 512), s % 512
   return string.format("10.%d.%d", a % 256, math.floor(b / 2)), (b % 2) * 128
end

local function v6net(s)
   return string.format("2001:db8:%x:%x", math.floor(s / 65536), s % 65536)
end

local CHECK = '{"check":"%s","severity":"%s","reason":"%s","message":"%s"}'

-- One segment's evaluation for host h (index i) on its k-th segment.
local function segment(h, k)
   local g, n = math.floor(h.i / H), h.i % H
   local s = g * K + k
   local ifn = "br" .. k
   local p3, p4 = v4net(s)
   local v6 = v6net(s)
   local addr6 = string.format("%s::%x", v6, 10 + n)
   local gw6 = v6 .. "::1"
   local route
   local fail = k == 0 and h.bad
   if fail then
      route = string.format(CHECK, "ipv6-default-route", "fail", "NO_IPV6_DEFAULT_ROUTE",
         string.format("an IPv4 default route exists via %s.%d on %s but there is no IPv6 default route on %s",
                       p3, p4 + 1, ifn, ifn))
   else
      route = string.format(CHECK, "ipv6-default-route", "pass", "OK",
         string.format("IPv6 default route via %s on %s", gw6, ifn))
   end
   local checks = table.concat({
      string.format(CHECK, "ipv6-enabled", "pass", "OK",
         string.format("IPv6 is enabled on %s, which is up with MTU 1500", ifn)),
      string.format(CHECK, "link-local", "pass", "OK",
         string.format("link-local address fe80::%x:%xff:fe%02x:%x/64 on %s", h.i % 65536, k, n, s % 65536, ifn)),
      string.format(CHECK, "ipv6-global-address", "pass", "OK",
         string.format("address %s/64 on %s is usable and inside %s::/64", addr6, ifn, v6)),
      string.format(CHECK, "ipv4-address", "pass", "OK",
         string.format("address %s.%d/25 on %s is inside %s.%d/25", p3, p4 + 10 + n, ifn, p3, p4)),
      route,
      string.format(CHECK, "gateway-neighbour", "pass", "OK",
         string.format("gateway %s on %s is reachable as a router (neighbour state STALE)", gw6, ifn)),
      string.format(CHECK, "accept-ra", "pass", "OK",
         string.format("the segment does not use SLAAC (accept_ra = 1, forwarding = 0 on %s)", ifn)),
      string.format(CHECK, "ipv4-only-listeners", "pass", "OK",
         string.format("every TCP port listening on IPv4 on %s also listens on IPv6", ifn)),
   }, ",")
   return string.format('{"name":"seg-%05d","interface":"%s","status":"%s","checks":[%s]}',
                        s, ifn, fail and "fail" or "pass", checks)
end

function request()
   pos = pos % #hosts + 1
   local h = hosts[pos]
   h.seq = h.seq + 1
   if math.random() < change then
      h.bad = not h.bad
      changed = changed + 1
   end
   local fp = fingerprint(h)
   local body
   if compact and h.acked == fp then
      heartbeats = heartbeats + 1
      body = string.format('{"host":"hv-%06d","seq":%d,"results_sha256":"%s"}', h.i, h.seq, fp)
   else
      full = full + 1
      local segs = {}
      for k = 0, K - 1 do segs[k + 1] = segment(h, k) end
      body = string.format('{"host":"hv-%06d","seq":%d,"generated_at":"%s","results_sha256":"%s","segments":[%s]}',
                           h.i, h.seq, os.date("!%Y-%m-%dT%H:%M:%S.000Z"), fp, table.concat(segs, ","))
      -- Assumed applied: a host's next report goes out only after the
      -- thread's other hosts (thousands of requests later); a wrong
      -- assumption shows as not_applied/resync answers below.
      h.acked = fp
   end
   return wrk.format("POST", "/api/v1/agents/self/reports",
                     { ["Authorization"] = h.auth, ["Content-Type"] = "application/json" }, body)
end

function response(status, hdrs, body)
   counts[status] = (counts[status] or 0) + 1
   answered = answered + 1
   if status == 200 then
      if body:find('"applied": *true') then applied = applied + 1 else not_applied = not_applied + 1 end
      if body:find('"resync": *true') then resync = resync + 1 end
   end
   if once and answered >= #hosts then
      wrk.thread:stop()
   end
end

function done(summary, latency, requests)
   local total, sums = {}, { applied = 0, not_applied = 0, resync = 0, changed = 0, full = 0, heartbeats = 0 }
   for _, t in ipairs(threads) do
      for status, n in pairs(t:get("counts")) do
         total[status] = (total[status] or 0) + n
      end
      for k, _ in pairs(sums) do sums[k] = sums[k] + t:get(k) end
   end
   local non2xx, codes = 0, {}
   for status, n in pairs(total) do
      table.insert(codes, status)
      if status < 200 or status > 299 then non2xx = non2xx + n end
   end
   table.sort(codes)
   for _, status in ipairs(codes) do
      io.write(string.format("status %d: %d\n", status, total[status]))
   end
   local e = summary.errors
   local secs = summary.duration / 1e6
   io.write(string.format(
      "REPORTS requests=%d rps=%.0f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f p999_ms=%.2f max_ms=%.2f " ..
      "applied=%d not_applied=%d resync=%d changed=%d full=%d heartbeats=%d non_2xx=%d socket_errors=%d\n",
      summary.requests, summary.requests / secs,
      latency:percentile(50) / 1000, latency:percentile(90) / 1000,
      latency:percentile(99) / 1000, latency:percentile(99.9) / 1000, latency.max / 1000,
      sums.applied, sums.not_applied, sums.resync, sums.changed, sums.full, sums.heartbeats, non2xx,
      e.connect + e.read + e.write + e.timeout))
end
