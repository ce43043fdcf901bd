-- Shared by every benchmark script: headers from the environment, a JSON summary.
-- BENCH_AUTH     value of the Authorization header (HTTP Basic), optional
-- BENCH_ACCEPT   value of the Accept header
-- BENCH_BODY     file holding a record body whose label reads @@LABEL@@ (PUT scripts)
-- BENCH_PREFIX   path prefix of records, e.g. /bench/ (the label follows)
-- BENCH_COUNT    seeded records r0000000 .. r<COUNT-1> that GETs pick from
-- BENCH_RUN      a token making PUT labels unique in this run
local M = {}

function M.headers()
   local auth = os.getenv("BENCH_AUTH")
   if auth and auth ~= "" then wrk.headers["Authorization"] = auth end
   wrk.headers["Accept"] = os.getenv("BENCH_ACCEPT") or "application/json"
end

function M.read_body()
   local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
   local text = f:read("*a")
   f:close()
   return text
end

-- Numbers tie wrk's threads to distinct label ranges.
local counter = 0
function M.setup(thread)
   counter = counter + 1
   thread:set("thread_id", counter)
end

function M.seeded_path(prefix, count)
   return string.format("%sr%07d/", prefix, math.random(0, count - 1))
end

function M.put_request(prefix, template, run, n)
   local label = string.format("%s-%d-%d", run, thread_id or 0, n)
   local body = template:gsub("@@LABEL@@", label)
   -- wrk.format takes these headers instead of wrk.headers, not in addition.
   local headers = {["Content-Type"] = "application/vnd.sumatra.record-v4+json"}
   for name, value in pairs(wrk.headers) do headers[name] = value end
   return wrk.format("PUT", prefix .. label .. "/", headers, body)
end

function M.done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCHJSON {"requests": %d, "duration_us": %d, "bytes": %d, "connect": %d, ' ..
      '"read": %d, "write": %d, "status": %d, "timeout": %d, "p50_us": %d, ' ..
      '"p90_us": %d, "p99_us": %d, "mean_us": %.1f, "max_us": %d}\n',
      summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
      e.status, e.timeout, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency.mean, latency.max))
end

return M
