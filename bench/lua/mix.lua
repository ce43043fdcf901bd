-- 90 % GET of a random seeded record under BENCH_PREFIX, 10 % PUT of a new record
-- under BENCH_PUT_PREFIX (another project, so the read set stays the same).
local common = dofile(os.getenv("BENCH_LUA") .. "/common.lua")
local prefix = os.getenv("BENCH_PREFIX")
local put_prefix = os.getenv("BENCH_PUT_PREFIX")
local count = tonumber(os.getenv("BENCH_COUNT"))
local run = os.getenv("BENCH_RUN")
local template = common.read_body()
local n = 0

common.headers()
setup = common.setup
done = common.done

function init(args)
   math.randomseed(os.time() + (thread_id or 0))
end

function request()
   n = n + 1
   if n % 10 == 0 then
      return common.put_request(put_prefix, template, run, n)
   end
   return wrk.format("GET", common.seeded_path(prefix, count))
end
