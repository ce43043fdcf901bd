-- PUT a new record (a label never used before) under BENCH_PREFIX.
local common = dofile(os.getenv("BENCH_LUA") .. "/common.lua")
local prefix = os.getenv("BENCH_PREFIX")
local run = os.getenv("BENCH_RUN")
local template = common.read_body()
local n = 0

common.headers()
setup = common.setup
done = common.done

function request()
   n = n + 1
   return common.put_request(prefix, template, run, n)
end
