-- POST CreateLancamento through the REST gateway, a fresh request_id per request.
-- Env: MERCHANTS (count), DAYS (count), RUN (unique run id), DELAY_MS (pacing),
-- TOKEN (a bearer JWT for every merchant, when the stack checks tokens).
local merchants = tonumber(os.getenv("MERCHANTS") or "1000")
local days = tonumber(os.getenv("DAYS") or "365")
local run = os.getenv("RUN") or tostring(os.time())
local delay_ms = tonumber(os.getenv("DELAY_MS") or "0")
local headers = {["Content-Type"] = "application/json"}
if os.getenv("TOKEN") then
   headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
end
local threads = {}
local counter = 0
local thread_id = 0
local failures = 0

function setup(thread)
   thread:set("thread_id", #threads)
   table.insert(threads, thread)
end

function init(args)
   math.randomseed(os.time() + thread_id * 7919)
end

local function value_date(n)
   local t = os.time({year = 2025, month = 1, day = 1, hour = 12}) + n * 86400
   return os.date("!%Y-%m-%d", t)
end

function request()
   counter = counter + 1
   local merchant = "m" .. math.random(0, merchants - 1)
   local body = string.format(
      '{"kind":"KIND_CREDIT","amount_cents":%d,"value_date":"%s","request_id":"%s-%d-%d"}',
      math.random(1, 100000), value_date(math.random(0, days - 1)), run, thread_id, counter)
   return wrk.format("POST", "/v1/merchants/" .. merchant .. "/lancamentos", headers, body)
end

function delay()
   return delay_ms
end

function response(status, headers, body)
   if status ~= 200 then
      failures = failures + 1
   end
end

function done(summary, latency, requests)
   local failed = 0
   for _, t in ipairs(threads) do
      failed = failed + (t:get("failures") or 0)
   end
   io.write(string.format(
      'RESULT {"requests":%d,"seconds":%.3f,"non_2xx":%d,"socket_errors":%d,' ..
      '"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,"failed":%d}\n',
      summary.requests, summary.duration / 1e6, summary.errors.status,
      summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
      latency:percentile(50) / 1000, latency:percentile(90) / 1000,
      latency:percentile(99) / 1000, latency.max / 1000, failed))
end
