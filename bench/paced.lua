-- Each connection waits BENCH_THINK_MILLISECONDS before its next request, so that wrk sends
-- a chosen rate (connections * 1000 / think time) and reports latency at that load.
local think = tonumber(os.getenv("BENCH_THINK_MILLISECONDS") or "0")

function delay()
  return think
end
