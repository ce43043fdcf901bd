"""``python -m bench [--quick] [--backends sqlite,postgresql,filesystem]``.

For each backend: a fresh store, the app under pserve/waitress with production.ini's
[server:main], a store made by ``sumatra-server initdb`` and ``adduser``, a project seeded level by
level, then ``wrk`` per scenario. The limits (bare WSGI apps under the same server)
are measured before and after the backends; every throughput is printed as a ratio
to their mean.
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from . import floor, report, servers, stores, wrk
from .seed import Client, basic_auth, create_project, seed_direct, seed_http
from .servers import REPO, Server, free_port, prepare_store, production_server_settings, write_ini
from .workload import RARE_TAG, template

PROJECT, WRITE_PROJECT = "bench", "bench-w"
USER, PASSWORD = "bench", "bench-password"
RECORD_ACCEPT = "application/vnd.sumatra.record-v4+json, application/json"
PROJECT_ACCEPT = "application/vnd.sumatra.project-v4+json, application/json"
LIST_ACCEPT = "application/vnd.sumatra.project-list-v4+json, application/json"
HTML_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@dataclass
class Plan:
    levels: list[int]  # records in the project when each level is measured
    seconds: float  # wrk duration per scenario
    http_seed_max: int  # levels above this are seeded through storage, not HTTP
    concurrency: int = 8  # throughput scenarios; latency scenarios run at 1
    mix_concurrency: tuple[int, ...] = (1, 8, 32)


FULL = Plan(levels=[1_000, 10_000, 100_000], seconds=5, http_seed_max=10_000)
QUICK = Plan(levels=[20, 100, 200], seconds=1, http_seed_max=200)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def settle(plan: Plan) -> None:
    """Let the machine go quiet: write back what the last store left dirty, so that
    the next measurement does not share the machine with that I/O. (A slow second
    ceiling first blamed on this came from measuring before every worker listened:
    see ``Server._all_workers_up``.)"""
    os.sync()
    time.sleep(plan.seconds / 2)


def cpu_per_request(server: Server, before: float, result: wrk.Result) -> float | None:
    if not result.requests:
        return None
    return round((server.cpu_seconds() - before) * 1000 / result.requests, 2)


def measure_limits(workdir: Path, plan: Plan, body_file: Path) -> dict[str, wrk.Result]:
    """GET and PUT ceilings: bare WSGI apps under the same server settings."""
    limits = {}
    for kind, factory, extra in (
        ("GET", "get_app", {}),
        ("PUT", "put_app", {"database": str(workdir / f"ceiling-{secrets.token_hex(4)}.sqlite")}),
    ):
        port = free_port()
        ini = write_ini(workdir / f"ceiling-{kind}.ini",
                        {"use": f"call:bench.ceilings:{factory}", **extra}, port)
        with Server(ini, port, workdir / f"ceiling-{kind}.log") as server:
            cpu = server.cpu_seconds()
            if kind == "GET":
                result = wrk.run(f"{kind} ceiling", server.url + "/ceiling/r0000001/", "get.lua",
                                 concurrency=plan.concurrency, seconds=plan.seconds)
            else:
                result = wrk.run(f"{kind} ceiling", server.url, "put.lua",
                                 concurrency=plan.concurrency, seconds=plan.seconds,
                                 env={"BENCH_PREFIX": "/ceiling/", "BENCH_BODY": str(body_file),
                                      "BENCH_RUN": secrets.token_hex(3)})
            result.server_cpu_ms = cpu_per_request(server, cpu, result)
        log(f"{kind} ceiling: {result.rps} req/s, p50 {result.p50_ms} ms, "
            f"server CPU {result.server_cpu_ms} ms/request")
        limits[kind] = result
    return limits


class BackendRun:
    """One backend: store, server, seeding and scenarios."""

    def __init__(self, name: str, plan: Plan, workdir: Path, limits: dict[str, float]):
        self.name, self.plan, self.workdir, self.limits = name, plan, workdir, limits
        self.results: list[wrk.Result] = []
        self.seeding: list[dict] = []
        self.rss_mb: float | None = None
        self.pss_mb: float | None = None
        self.failure: str | None = None
        self.auth = basic_auth(USER, PASSWORD)
        self.floors: dict[str, wrk.Result] = {}

    def measure_floors(self, body_file: Path) -> None:
        """The thinnest stack on a fresh store of the same database (SQL backends only)."""
        if self.name not in floor.BACKENDS:
            return
        where = self.workdir / "floor"
        where.mkdir()
        with stores.fresh_store(self.name, where) as settings:
            url = settings["sqlalchemy.url"]
            floor.prepare(url, self.plan.levels[0])
            self.floors = floor.measure(url, where, seconds=self.plan.seconds,
                                        concurrency=self.plan.concurrency,
                                        count=self.plan.levels[0], body_file=body_file)
        for kind, result in self.floors.items():
            self.results.append(result)
            log(f"{self.name}: {kind} floor: {result.rps} req/s, p50 {result.p50_ms} ms, "
                f"server CPU {result.server_cpu_ms} ms/request")
        settle(self.plan)

    def scenario(self, name: str, path: str, script: str, *, concurrency: int,
                 limit: str | None = None, **env: str) -> wrk.Result:
        cpu = self.server.cpu_seconds()
        result = wrk.run(name, self.server.url + path, script, concurrency=concurrency,
                         seconds=self.plan.seconds,
                         # A new token per scenario: its PUTs create records, never update
                         # the labels an earlier scenario wrote.
                         env={"BENCH_AUTH": self.auth, "BENCH_RUN": secrets.token_hex(4),
                              **env})
        result.server_cpu_ms = cpu_per_request(self.server, cpu, result)
        if limit:
            result.limit = limit
            result.ratio = round(result.rps / self.limits[limit], 3)
            if limit in self.floors:
                result.floor_ratio = round(result.rps / self.floors[limit].rps, 3)
        self.results.append(result)
        log(f"{self.name}: {name} c={concurrency}: {result.rps} req/s, p50 {result.p50_ms} ms, "
            f"p99 {result.p99_ms} ms, errors {result.errors}, "
            f"server CPU {result.server_cpu_ms} ms/request")
        return result

    def seed(self, ini: Path, client: Client, start: int, stop: int) -> None:
        if stop <= self.plan.http_seed_max:
            how, rate = "HTTP PUT, 8 threads", seed_http(client, PROJECT, start, stop)
        else:
            # Seeding over HTTP would take most of the run; storage hooks, server stopped.
            self.server.stop()
            how, rate = "storage hooks", seed_direct(ini, PROJECT, start, stop)
            if self.name == "postgresql":  # as autovacuum would soon (this server's is off)
                stores.vacuum_analyze(self.url)
                how += ", then VACUUM ANALYZE"
            self.server.start()
            self.warm_up(client)
        self.seeding.append({"from": start, "to": stop, "how": how, "records_per_s": round(rate)})
        log(f"{self.name}: seeded {start}..{stop} by {how}: {rate:.0f} records/s")

    @staticmethod
    def warm_up(client: Client) -> None:
        """A fresh process verifies the password once (argon2) and fills its caches."""
        for path in (f"/{PROJECT}/", "/"):
            client.request("GET", path)

    def run(self, app_settings: dict[str, str], body_file: Path) -> None:
        self.url = app_settings.get("sqlalchemy.url", "")
        port = free_port()
        ini = write_ini(self.workdir / "app.ini", {
            "use": "egg:pyramid_sumatra", **app_settings,
            "sumatra.secret": secrets.token_hex(32)}, port)
        prepare_store(ini, USER, PASSWORD)
        self.server = Server(ini, port, self.workdir / "server.log").start()
        try:
            self._scenarios(ini, body_file)
            self.rss_mb = round(self.server.rss_mb(), 1)
            self.pss_mb = round(self.server.pss_mb(), 1)
        finally:
            self.server.stop()

    def _scenarios(self, ini: Path, body_file: Path) -> None:
        plan, c = self.plan, self.plan.concurrency
        client = Client(self.server.port, self.auth)
        create_project(client, PROJECT)
        create_project(client, WRITE_PROJECT)
        seeded = 0
        record_env = {"BENCH_ACCEPT": RECORD_ACCEPT, "BENCH_PREFIX": f"/{PROJECT}/"}
        put_env = {"BENCH_ACCEPT": RECORD_ACCEPT, "BENCH_PREFIX": f"/{WRITE_PROJECT}/",
                   "BENCH_BODY": str(body_file)}
        # PUTs into the seeded project itself: does a write slow down as the project grows?
        grow_body = self.workdir / "grow.json"
        grow_body.write_text(template(PROJECT))  # the body names its project
        grow_env = {**put_env, "BENCH_PREFIX": f"/{PROJECT}/", "BENCH_BODY": str(grow_body)}
        last = len(plan.levels) - 1
        for n, level in enumerate(plan.levels):
            self.seed(ini, client, seeded, level)
            seeded = level
            self.scenario(f"GET record ({level} records)", "/", "get.lua", concurrency=c,
                          limit="GET", BENCH_COUNT=str(level), **record_env)
            self.scenario(f"GET project ({level} records)", f"/{PROJECT}/", "get.lua",
                          concurrency=1, BENCH_ACCEPT=PROJECT_ACCEPT)
            if n in (0, last):
                self.scenario(f"PUT into the project ({level} records)", "/", "put.lua",
                              concurrency=c, **grow_env)
            if n == 0:
                self.scenario("PUT new record", "/", "put.lua", concurrency=c, limit="PUT",
                              **put_env)
                self.scenario("GET / (project list)", "/", "get.lua", concurrency=c,
                              limit="GET", BENCH_ACCEPT=LIST_ACCEPT)
            if n in (1, last):
                self.scenario(f"GET project ?tags={RARE_TAG} ({level} records)",
                              f"/{PROJECT}/?tags={RARE_TAG}", "get.lua", concurrency=1,
                              BENCH_ACCEPT=PROJECT_ACCEPT)
            if n == 1:  # the p99 <= 10 x p50 target at c=32, on reads and writes alone
                self.scenario(f"GET record ({level} records)", "/", "get.lua", concurrency=32,
                              BENCH_COUNT=str(level), **record_env)
                self.scenario("PUT new record", "/", "put.lua", concurrency=32, **put_env)
                # What a browser gets: the record table's first page (issue: < 200 ms).
                self.scenario(f"GET project page, HTML ({level} records)", f"/{PROJECT}/",
                              "get.lua", concurrency=1, BENCH_ACCEPT=HTML_ACCEPT)
                for mc in plan.mix_concurrency:
                    self.scenario(f"mix 90% GET / 10% PUT ({level} records)", "/", "mix.lua",
                                  concurrency=mc, limit="MIX", BENCH_COUNT=str(level),
                                  BENCH_PUT_PREFIX=f"/{WRITE_PROJECT}/", **record_env,
                                  BENCH_BODY=str(body_file))

    def as_dict(self) -> dict:
        return {"results": [r.as_dict() for r in self.results], "seeding": self.seeding,
                "rss_mb": self.rss_mb, "pss_mb": self.pss_mb, "failed": self.failure}


def mix_limit(limits: dict[str, float]) -> float:
    """The ceiling of a 90/10 mix: time per request is 0.9 of a GET's plus 0.1 of a PUT's."""
    return 1 / (0.9 / limits["GET"] + 0.1 / limits["PUT"])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="small record counts and 1 s per scenario (a smoke run)")
    parser.add_argument("--backends", default=",".join(stores.BACKENDS),
                        help="comma-separated: sqlite,postgresql,filesystem (default: all)")
    parser.add_argument("--seconds", type=float, help="wrk duration per scenario")
    parser.add_argument("--levels", help="record counts measured, e.g. 1000,10000,100000")
    parser.add_argument("--http-seed-max", type=int,
                        help="seed levels up to this over HTTP, larger ones through storage")
    parser.add_argument("--output", type=Path, help="JSON file (default bench/results/...)")
    parser.add_argument("--server", action="append", default=[], metavar="KEY=VALUE",
                        help="try a [server:main] setting instead of production.ini's "
                             "(e.g. threads=16), for the app and the limits alike")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    base = QUICK if args.quick else FULL
    plan = Plan(levels=[int(x) for x in args.levels.split(",")] if args.levels else base.levels,
                seconds=args.seconds or base.seconds,
                http_seed_max=args.http_seed_max if args.http_seed_max is not None
                else base.http_seed_max)
    if len(plan.levels) < 2:
        raise SystemExit("--levels needs at least two record counts")
    for item in args.server:
        key, _, value = item.partition("=")
        servers.SERVER_OVERRIDES[key.strip()] = value.strip()
    problem = wrk.available()
    if problem:
        print(f"bench: {problem}", file=sys.stderr)
        return 2
    names = [b for b in args.backends.split(",") if b]
    stamp = time.strftime("%Y%m%d-%H%M%S")
    suffix = "-quick" if args.quick else ""
    output = args.output or REPO / "bench" / "results" / f"{stamp}{suffix}.json"
    began = time.monotonic()
    data: dict = {"started": stamp, "quick": args.quick, "plan": asdict(plan),
                  "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                              "platform": platform.platform()},
                  "server": {**production_server_settings(), **servers.SERVER_OVERRIDES},
                  "backends": {}}
    all_results: list[wrk.Result] = []
    all_targets: list[report.Target] = []
    with tempfile.TemporaryDirectory(prefix="sumatra-bench-") as tmp:
        workdir = Path(tmp)
        body_file = workdir / "record.json"
        body_file.write_text(template(WRITE_PROJECT))
        log("limits (bare WSGI apps under the same server), first measurement")
        first = measure_limits(workdir, plan, body_file)
        start_limits = {k: r.rps for k, r in first.items()}
        start_limits["MIX"] = mix_limit(start_limits)
        runs: list[BackendRun] = []
        for name in names:
            why = stores.missing(name)
            if why:
                log(f"{name}: skipped: {why}")
                data["backends"][name] = {"skipped": why}
                continue
            backend_dir = workdir / name
            backend_dir.mkdir()
            run = BackendRun(name, plan, backend_dir, start_limits)  # ratios redone below
            log(f"{name}: starting")
            try:
                run.measure_floors(body_file)
                with stores.fresh_store(name, backend_dir) as app_settings:
                    run.run(app_settings, body_file)
            except Exception as exc:  # noqa: BLE001 - one backend failing must not lose the rest
                log(f"{name}: FAILED: {exc!r}")
                run.failure = repr(exc)
            runs.append(run)
            shutil.rmtree(backend_dir, ignore_errors=True)
            settle(plan)
        log("limits, second measurement")
        second = measure_limits(workdir, plan, body_file)
    limits = {k: (first[k].rps + second[k].rps) / 2 for k in first}
    limits["MIX"] = mix_limit(limits)
    data["limits"] = {"first": {k: r.as_dict() for k, r in first.items()},
                      "second": {k: r.as_dict() for k, r in second.items()},
                      "used_rps": {k: round(v, 1) for k, v in limits.items()},
                      "note": "MIX = 1 / (0.9 / GET + 0.1 / PUT)"}
    print()
    print(f"Limits (req/s, c={plan.concurrency}): GET {limits['GET']:.0f} "
          f"({first['GET'].rps:.0f} then {second['GET'].rps:.0f}), PUT {limits['PUT']:.0f} "
          f"({first['PUT'].rps:.0f} then {second['PUT'].rps:.0f}), mix {limits['MIX']:.0f}")
    for run in runs:
        for r in run.results:
            if r.limit:
                r.ratio = round(r.rps / limits[r.limit], 3)
        targets = report.check_targets(run.name, run.results, plan.levels, run.pss_mb,
                                       run.rss_mb, {r.name: r.results for r in runs})
        if run.failure:
            targets.append(report.Target(run.name, "the run completes", run.failure, False))
        all_results += run.results
        all_targets += targets
        data["backends"][run.name] = {**run.as_dict(),
                                      "targets": [t.as_dict() for t in targets]}
        if run.failure:
            print(f"\n== {run.name} ==  FAILED: {run.failure}")
        print(f"\n== {run.name} ==  seeding: " + "; ".join(
            f"{s['from']}..{s['to']} {s['how']} {s['records_per_s']}/s" for s in run.seeding)
            + f"; server memory at the end: Pss {run.pss_mb} MB (RSS summed {run.rss_mb} MB)")
        print(report.table(run.results))
        print("targets:")
        print(report.target_lines(targets))
    for name, entry in data["backends"].items():
        if "skipped" in entry:
            print(f"\n== {name} ==  skipped: {entry['skipped']}")
    data["seconds"] = round(time.monotonic() - began, 1)
    data["errors"] = sum(r.errors for r in all_results)
    data["passed"] = all(t.passed for t in all_targets)
    report.write_json(output, data)
    print(f"\n{len(all_results)} scenarios, {data['errors']} errors, "
          f"{sum(t.passed for t in all_targets)}/{len(all_targets)} targets passed, "
          f"{data['seconds']} s; JSON: {output}")
    return 0
