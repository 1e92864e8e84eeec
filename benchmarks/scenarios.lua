-- wrk script for one scenario against one server (benchmarks/load.py runs it).
-- Each request picks a random user's token, so the server sees 1,000 different tokens and
-- users, not one hot token. Environment:
--   BENCH_SCENARIO  list | list_q | get | create | patch
--   BENCH_DATA      lines "T <token>", "G <user index> <todo id>", "Q <search term>"
--   BENCH_PATCH     lines "<user index> <todo id> <version>" (patch only)
--   BENCH_THREADS   wrk's -t, so each thread patches its own share of todos
--   BENCH_DELAY_MS  think time of each connection before each request; 0 or unset: none

local scenario = os.getenv("BENCH_SCENARIO")
local tokens, todos, terms, targets, versions = {}, {}, {}, {}, {}
local next_target = 1
local threads_started = 0
local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "") or 0

if delay_ms > 0 then
  -- Defined only when wanted: wrk then times each request from its send, after the wait, and
  -- the offered load is about connections / (think time + latency) whichever server answers.
  function delay()
    return delay_ms
  end
end

function setup(thread)
  thread:set("thread_index", threads_started)
  threads_started = threads_started + 1
end

function init(args)
  for line in io.lines(os.getenv("BENCH_DATA")) do
    local kind, a, b = line:match("^(%a) (%S+) ?(%S*)$")
    if kind == "T" then
      tokens[#tokens + 1] = "Bearer " .. a
    elseif kind == "G" then
      todos[#todos + 1] = { tonumber(a) + 1, b }
    elseif kind == "Q" then
      terms[#terms + 1] = a
    end
  end
  if scenario == "patch" then
    -- Disjoint shares: a todo is only ever patched by one thread, which knows its version.
    local threads, n = tonumber(os.getenv("BENCH_THREADS")), 0
    for line in io.lines(os.getenv("BENCH_PATCH")) do
      if n % threads == thread_index then
        local user, id, version = line:match("^(%d+) (%S+) (%d+)$")
        targets[#targets + 1] = { tonumber(user) + 1, id }
        versions[id] = '"' .. version .. '"'
      end
      n = n + 1
    end
  end
  math.randomseed(os.time() * 100 + thread_index)
end

local function auth(user)
  return { Authorization = tokens[user] }
end

local titles = { "Buy oat milk", "Call the bank about the card", "Book a table for Friday" }

function request()
  if scenario == "list" then
    return wrk.format("GET", "/todos", auth(math.random(#tokens)))
  elseif scenario == "list_q" then
    local path = "/todos?q=" .. terms[math.random(#terms)]
    return wrk.format("GET", path, auth(math.random(#tokens)))
  elseif scenario == "get" then
    local todo = todos[math.random(#todos)]
    return wrk.format("GET", "/todos/" .. todo[2], auth(todo[1]))
  elseif scenario == "create" then
    local headers = auth(math.random(#tokens))
    headers["Content-Type"] = "application/json"
    local body = string.format(
      '{"title":"%s","description":"Created by the benchmark","priority":"high",'
        .. '"due_at":"2030-01-0%dT09:00:00Z"}',
      titles[math.random(#titles)], math.random(9))
    return wrk.format("POST", "/todos", headers, body)
  elseif scenario == "patch" then
    -- Round robin over this thread's todos: one is reused only long after its last response.
    local target = targets[next_target]
    next_target = next_target % #targets + 1
    local headers = auth(target[1])
    headers["Content-Type"] = "application/json"
    headers["If-Match"] = versions[target[2]]
    local body = math.random(2) == 1 and '{"completed":true}' or '{"completed":false}'
    return wrk.format("PATCH", "/todos/" .. target[2], headers, body)
  end
  error("unknown BENCH_SCENARIO " .. tostring(scenario))
end

if scenario == "patch" then
  -- Remember each todo's new ETag, in case the round robin comes back to it.
  function response(status, headers, body)
    local id = body:match('"id":"([%x%-]+)"')
    local etag = headers["etag"] or headers["ETag"]
    if id and etag then
      versions[id] = etag
    end
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
