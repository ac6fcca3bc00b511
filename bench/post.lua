-- wrk script for the benches: POST a fixed body, then print the figures as one JSON line.
-- Body, headers and method come from the environment so one script serves every target:
--   BENCH_BODY_FILE  path of the request body (JSON)
--   BENCH_AUTH       value of the Authorization header (optional)

local body_file = os.getenv("BENCH_BODY_FILE")
local f = assert(io.open(body_file, "rb"), "cannot open " .. tostring(body_file))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
local auth = os.getenv("BENCH_AUTH")
if auth and auth ~= "" then
  wrk.headers["Authorization"] = auth
end

-- Latency figures are in microseconds; "non2xx" counts answers other than 2xx/3xx.
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH_JSON {\"requests\": %d, \"duration_us\": %d, \"bytes\": %d, " ..
    "\"connect_errors\": %d, \"read_errors\": %d, \"write_errors\": %d, " ..
    "\"non2xx\": %d, \"timeouts\": %d, \"mean_us\": %.1f, \"max_us\": %d, " ..
    "\"p50_us\": %d, \"p90_us\": %d, \"p99_us\": %d, \"p999_us\": %d}\n",
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9)))
end
