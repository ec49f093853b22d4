-- POST one fixed JSON body to the URL given to wrk, and print exact statistics when done.
--
-- Environment:
--   BENCH_BODY_FILE   path of the JSON request body (required)
--   BENCH_STOP_AFTER  optional: each wrk thread stops after this many responses (soak runs)
--   BENCH_AUTHORIZATION  optional: the Authorization header to send (e.g. "Bearer gw-...")
--
-- done() prints one line, "BENCH_RESULT {json}", with latencies in microseconds, which
-- bench/wrk.py parses (wrk's own summary rounds to 2 decimals of a millisecond).

local body_file = assert(os.getenv("BENCH_BODY_FILE"), "BENCH_BODY_FILE is not set")
local file = assert(io.open(body_file, "rb"))
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"
local authorization = os.getenv("BENCH_AUTHORIZATION")
if authorization and authorization ~= "" then
  wrk.headers["Authorization"] = authorization
end

-- BENCH_UNIQUE set: every request's user message gets a number of its own (after a random
-- tag of this wrk run), so a response cache misses every time (bench/compare.py cache-miss).
if os.getenv("BENCH_UNIQUE") then
  math.randomseed(os.time() + math.floor(os.clock() * 1e6))
  local tag = tostring(math.random(1, 1e9))
  local template = wrk.body
  local sent = 0
  function request()
    sent = sent + 1
    local body = string.gsub(template, "load testing%.", "load testing. #" .. tag .. "-" .. sent, 1)
    return wrk.format(nil, nil, nil, body)
  end
end

local stop_after = tonumber(os.getenv("BENCH_STOP_AFTER") or "")
if stop_after then
  local seen = 0
  function response(status, headers, body)
    seen = seen + 1
    if seen >= stop_after then
      wrk.thread:stop()
    end
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"connect_errors": %d, "read_errors": %d, "write_errors": %d, "status_errors": %d, ' ..
    '"timeouts": %d, "min_us": %d, "mean_us": %.1f, "max_us": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "p999_us": %d}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.max,
    latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9)))
end
