-- wrk script for `make bench`: replays the requests listed in $BENCH_REQUESTS (one per line:
-- METHOD<TAB>PATH[<TAB>Header: value]...), each thread walking the list from its own offset so
-- the threads never send the same line, and writes a JSON summary to $BENCH_OUT when done.
-- Authenticated GETs carry a session cookie, API writes a Bearer token (votes: each line is a
-- distinct member/idea pair, so every PUT is a real vote and every DELETE a real withdrawal).

local lines = {}
local counter = 0
local step = 1
local thread_count = 0

local function load(path)
  local list = {}
  for line in io.lines(path) do
    if line ~= "" then
      local fields = {}
      for field in string.gmatch(line, "[^\t]+") do table.insert(fields, field) end
      local headers = {}
      for i = 3, #fields do
        local name, value = string.match(fields[i], "^([^:]+):%s*(.*)$")
        if name then headers[name] = value end
      end
      table.insert(list, {method = fields[1], path = fields[2], headers = headers})
    end
  end
  return list
end

-- setup() runs in the main thread once per wrk thread (each thread may start before the next
-- is set up, so the thread count comes from $BENCH_THREADS, not from counting here).
function setup(thread)
  thread:set("id", thread_count)
  thread_count = thread_count + 1
end

function init(args)
  lines = load(os.getenv("BENCH_REQUESTS"))
  -- An explicit header table replaces wrk's defaults: keep its Host header on every line.
  for _, entry in ipairs(lines) do
    for name, value in pairs(wrk.headers) do
      if entry.headers[name] == nil then entry.headers[name] = value end
    end
  end
  step = tonumber(os.getenv("BENCH_THREADS") or "1")
  counter = id
end

function request()
  local entry = lines[(counter % #lines) + 1]
  counter = counter + step
  return wrk.format(entry.method, entry.path, entry.headers, nil)
end

function done(summary, latency, requests)
  local e = summary.errors
  local out = io.open(os.getenv("BENCH_OUT"), "w")
  out:write(string.format(
    '{"requests": %d, "duration_us": %d, "bytes": %d, "connect_errors": %d, "read_errors": %d, ' ..
    '"write_errors": %d, "status_errors": %d, "timeouts": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, ' ..
    '"max_us": %d, "mean_us": %.1f}',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
  out:close()
end
