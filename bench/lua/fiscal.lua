-- POST XML documents through the REST gateway to FISCAL_PATH, each in turn from
-- FISCAL_DOCS (files 0.xml .. FISCAL_COUNT-1.xml, read once per thread).
-- Env: FISCAL_PATH (e.g. /v1/fiscal/documents:validate, with its query string),
-- FISCAL_DOCS, FISCAL_COUNT, TOKEN (a bearer JWT, when the stack checks tokens).
local path = os.getenv("FISCAL_PATH")
local folder = os.getenv("FISCAL_DOCS")
local count = tonumber(os.getenv("FISCAL_COUNT"))
local headers = {["Content-Type"] = "application/xml"}
if os.getenv("TOKEN") then
   headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
end
local threads = {}
local docs = {}
local counter = 0
local thread_id = 0
local failures = 0

function setup(thread)
   thread:set("thread_id", #threads)
   table.insert(threads, thread)
end

function init(args)
   for i = 0, count - 1 do
      local file = assert(io.open(folder .. "/" .. i .. ".xml", "rb"))
      docs[i + 1] = file:read("*a")
      file:close()
   end
end

function request()
   counter = counter + 1
   -- Threads take interleaved documents, so no two send the same one.
   local index = ((counter - 1) * #threads + thread_id) % count + 1
   return wrk.format("POST", path, headers, docs[index])
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
