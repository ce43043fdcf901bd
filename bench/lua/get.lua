-- GET: the URL given to wrk, or (with BENCH_COUNT) a random seeded record under BENCH_PREFIX.
local common = dofile(os.getenv("BENCH_LUA") .. "/common.lua")
local count = tonumber(os.getenv("BENCH_COUNT") or "0")
local prefix = os.getenv("BENCH_PREFIX")

common.headers()
setup = common.setup
done = common.done

if count > 0 then
   function init(args)
      math.randomseed(os.time() + (thread_id or 0))
   end
   function request()
      return wrk.format("GET", common.seeded_path(prefix, count))
   end
end
