-- wrk script for bench_webhooks.py: POST a JSON webhook with a unique webhook-id per request.
-- Ids are "<thread>-<counter>-<run tag>", unique across wrk threads and across runs.
-- thread_id is a global: setup() sets it in each thread's own Lua state (a local would shadow it).
local counter = 0
thread_id = 0
local threads = {}
local run_tag = os.getenv("BENCH_RUN_TAG") or tostring(os.time())

function setup(thread)
  thread:set("thread_id", #threads + 1)
  table.insert(threads, thread)
end

function request()
  counter = counter + 1
  local id = "bench-" .. run_tag .. "-" .. thread_id .. "-" .. counter
  local body = '{"id":"' .. id .. '","timestamp":"2026-01-01T00:00:00Z","data":{"amount":12.5,"currency":"EUR"}}'
  return wrk.format("POST", nil, {["Content-Type"] = "application/json", ["webhook-id"] = id}, body)
end

-- Per-thread answer counts; done() adds them up across threads.
accepted = 0
other = 0

function response(status, headers, body)
  if status == 202 then accepted = accepted + 1 else other = other + 1 end
end

function done(summary, latency, requests)
  local total_accepted, total_other = 0, 0
  for _, thread in ipairs(threads) do
    total_accepted = total_accepted + thread:get("accepted")
    total_other = total_other + thread:get("other")
  end
  -- A machine-readable line for bench_webhooks.py.
  io.write(string.format("BENCH accepted=%d other=%d requests=%d duration_us=%d p50_us=%d p99_us=%d errors_status=%d errors_connect=%d errors_timeout=%d\n",
    total_accepted, total_other, summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    summary.errors.status, summary.errors.connect, summary.errors.timeout))
end
