-- GET daily balances through REST. Env: MERCHANTS, DAYS (the keys m0.. x days
-- from 2025-01-01). By default each request reads a key not read before in this
-- run (a walk of every key, so nearly every read is a cache miss); with MERCHANT
-- and DAY set, every request reads that one key (warm: a cache hit).
local merchants = tonumber(os.getenv("MERCHANTS") or "1000")
local days = tonumber(os.getenv("DAYS") or "365")
local fixed_merchant = os.getenv("MERCHANT")
local fixed_day = tonumber(os.getenv("DAY") or "0")
-- A prime dividing no bench's merchants x days: the walk visits every key once.
local step = 7919
local counter = 0
offset = 0  -- a global: setup() sets it per thread

function setup(thread)
   thread:set("offset", math.random(0, 1000000))
end

local function day_string(n)
   local t = os.time({year = 2025, month = 1, day = 1, hour = 12}) + n * 86400
   return os.date("!%Y-%m-%d", t)
end

function request()
   local merchant, day
   if fixed_merchant then
      merchant, day = fixed_merchant, fixed_day
   else
      local key = (offset + counter * step) % (merchants * days)
      counter = counter + 1
      merchant, day = "m" .. math.floor(key / days), key % days
   end
   return wrk.format("GET", "/v1/merchants/" .. merchant .. "/daily-balances/" .. day_string(day))
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
