-- GET a random merchant's balance for a random day through the REST gateway:
-- with 1,000 merchants x 365 days nearly every request is a cache miss.
local merchants = tonumber(os.getenv("MERCHANTS") or "1000")
local days = tonumber(os.getenv("DAYS") or "365")
local thread_id = 0

function setup(thread)
   thread:set("thread_id", math.random(1, 1000000))
end

function init(args)
   math.randomseed(os.time() + thread_id)
end

function request()
   local t = os.time({year = 2025, month = 1, day = 1, hour = 12})
      + math.random(0, days - 1) * 86400
   local path = string.format("/v1/merchants/m%d/daily-balances/%s",
      math.random(0, merchants - 1), os.date("!%Y-%m-%d", t))
   return wrk.format("GET", path)
end

function done(summary, latency, requests)
   io.write(string.format(
      'RESULT {"requests":%d,"seconds":%.3f,"non_2xx":%d,"socket_errors":%d,' ..
      '"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,"failed":0}\n',
      summary.requests, summary.duration / 1e6, summary.errors.status,
      summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
      latency:percentile(50) / 1000, latency:percentile(90) / 1000,
      latency:percentile(99) / 1000, latency.max / 1000))
end
