-- wrk script: replays a pool of pre-signed raw HTTP requests written by bench/prepare.ts.
--
--   wrk -t2 -c32 -d15s --latency -s bench/wrk-requests.lua http://127.0.0.1:PORT -- <pool file>
--
-- Pool file: for each request, its byte length in decimal, "\n", then exactly that many bytes
-- (a complete HTTP/1.1 request: request line, headers, body).
--
-- Each thread walks the pool round-robin from its own offset. Every response whose status is not
-- 2xx is counted (and the first one kept as a sample). done() prints one machine-readable line:
--
--   BENCH_RESULT requests=N duration_us=D rps=R p50_us=.. p90_us=.. p99_us=.. max_us=..
--                non2xx=N connect_errors=N read_errors=N write_errors=N timeouts=N
--
-- followed, when there were non-2xx responses, by BENCH_NON2XX_SAMPLE lines.

local threads = {}
local thread_count = 0

function setup(thread)
  thread:set("thread_index", thread_count)
  thread_count = thread_count + 1
  table.insert(threads, thread)
end

local pool = {}
local position = 1
non2xx = 0
sample = ""

local function load_pool(path)
  local file = assert(io.open(path, "rb"))
  local data = file:read("*a")
  file:close()
  local requests = {}
  local at = 1
  local size = #data
  while at <= size do
    local newline = string.find(data, "\n", at, true)
    if not newline then error("pool file truncated (no length line) at byte " .. at) end
    local length = tonumber(string.sub(data, at, newline - 1))
    if not length then error("pool file: bad length line at byte " .. at) end
    local first = newline + 1
    local last = newline + length
    if last > size then error("pool file truncated at byte " .. at) end
    requests[#requests + 1] = string.sub(data, first, last)
    at = last + 1
  end
  if #requests == 0 then error("pool file " .. path .. " holds no requests") end
  return requests
end

function init(args)
  local path = args[1]
  if not path then error("usage: wrk ... -s wrk-requests.lua <url> -- <pool file>") end
  pool = load_pool(path)
  -- Spread threads over the pool: thread k starts k/2 of the way round (two threads: 0 and half).
  local index = tonumber(thread_index) or 0
  position = (math.floor(#pool * index / 2) % #pool) + 1
end

function request()
  local raw = pool[position]
  position = position + 1
  if position > #pool then position = 1 end
  return raw
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    if sample == "" then
      sample = tostring(status) .. " " .. string.gsub(string.sub(body or "", 1, 300), "[\r\n]", " ")
    end
  end
end

function done(summary, latency, requests)
  local total_non2xx = 0
  local samples = {}
  for _, thread in ipairs(threads) do
    total_non2xx = total_non2xx + (tonumber(thread:get("non2xx")) or 0)
    local s = thread:get("sample")
    if s and s ~= "" then table.insert(samples, s) end
  end
  local seconds = summary.duration / 1e6
  local errors = summary.errors
  io.write(string.format(
    "BENCH_RESULT requests=%d duration_us=%d rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d " ..
      "non2xx=%d connect_errors=%d read_errors=%d write_errors=%d timeouts=%d\n",
    summary.requests, summary.duration, summary.requests / seconds,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    total_non2xx, errors.connect, errors.read, errors.write, errors.timeout))
  for _, s in ipairs(samples) do
    io.write("BENCH_NON2XX_SAMPLE " .. s .. "\n")
  end
end
