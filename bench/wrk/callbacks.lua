-- wrk script of the confctl benchmark: sends precomputed, signed Twilio callbacks.
--
-- Usage: wrk -t2 -cN -dS --latency -s bench/wrk/callbacks.lua URL -- PREFIX MODE [LIMIT1 LIMIT2 ...]
--   PREFIX  thread t (1-based) loads PREFIX-t.txt: one request per line, "path<TAB>signature<TAB>body"
--           (bench/signed.py writes them; the threads' files hold disjoint conferences)
--   MODE    "once":  each request is sent at most once; a thread that runs out stops (and says so in done())
--           "cycle": the thread starts again at its first request (every request after the first
--                    round is a repeat: the duplicates measurement)
--   LIMITt  optional: thread t uses only its first LIMITt requests
-- Requests are formatted once in init(); request() only picks the next one. No response() is defined, so
-- wrk does not parse response bodies.

local threads = {}
local counter = 1

function setup(thread)
   thread:set("id", counter)
   table.insert(threads, thread)
   counter = counter + 1
end

function init(args)
   local prefix, mode = args[1], args[2]
   local limit = tonumber(args[2 + id] or "")
   cycle = (mode == "cycle")
   requests = {}
   sent = 0
   exhausted = 0
   local headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
   local file = assert(io.open(prefix .. "-" .. id .. ".txt", "r"))
   for row in file:lines() do
      if limit ~= nil and #requests >= limit then break end
      local path, signature, body = row:match("^([^\t]+)\t([^\t]+)\t(.*)$")
      if path ~= nil then
         headers["X-Twilio-Signature"] = signature
         requests[#requests + 1] = wrk.format("POST", path, headers, body)
      end
   end
   file:close()
   count = #requests
   idle = wrk.format("GET", "/healthz")
end

function request()
   if sent >= count then
      if cycle and count > 0 then
         sent = 0
      else
         -- Out of fresh requests: stop this thread rather than send a repeat.
         exhausted = 1
         wrk.thread:stop()
         return idle
      end
   end
   sent = sent + 1
   return requests[sent]
end

function done(summary, latency, requests)
   for _, thread in ipairs(threads) do
      io.write(string.format("bench-thread %d loaded %d sent %d exhausted %d\n",
         thread:get("id"), thread:get("count"), thread:get("sent"), thread:get("exhausted")))
   end
end
