"""``python -m bench.profile``: where the server spends its time, per scenario.

Starts the app on a fresh store of one backend (``--backend``, SQLite by default)
as ``python -m bench`` does, seeds a project, then samples the server and its
workers with py-spy (the ``bench`` extra) while wrk drives GET record, PUT and
GET project (``--scenarios`` picks some). Prints the functions holding most
samples (inclusive and leaf) and keeps the raw stacks for flame graphs. Time a
thread spends waiting (a lock, fsync, the database) is sampled too (``--idle``):
the leaf then names what it waited for.
"""

from __future__ import annotations

import argparse
import collections
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from . import stores, wrk
from .run import PASSWORD, PROJECT, PROJECT_ACCEPT, RECORD_ACCEPT, USER, WRITE_PROJECT
from .seed import Client, basic_auth, create_project, seed_http
from .servers import REPO, VENV_BIN, Server, free_port, prepare_store, write_ini
from .workload import template

IDLE = ("wait (threading", "select (selectors", "poll (waitress", "_wait_for_tstate_lock")


def summarise(raw: Path, top: int) -> str:
    inclusive: collections.Counter[str] = collections.Counter()
    leaf: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if any(marker in frames[-1] for marker in IDLE):
            continue  # idle threads waiting for work
        n = int(count)
        total += n
        leaf[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    lines = [f"{total} busy samples", "  inclusive:"]
    lines += [f"    {100 * n / total:5.1f}%  {f}" for f, n in inclusive.most_common(top)]
    lines += ["  leaf:"]
    lines += [f"    {100 * n / total:5.1f}%  {f}" for f, n in leaf.most_common(top // 2)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--backend", default="sqlite", choices=stores.BACKENDS)
    parser.add_argument("--scenarios", default="get-record,put-record,get-project",
                        help="comma-separated, of get-record,put-record,get-project")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "profile")
    args = parser.parse_args(argv)
    py_spy = shutil.which("py-spy", path=str(VENV_BIN)) or shutil.which("py-spy")
    if not py_spy:
        print("py-spy is missing: pip install -e '.[bench]'", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    auth = basic_auth(USER, PASSWORD)
    with tempfile.TemporaryDirectory(prefix="sumatra-profile-") as tmp:
        workdir = Path(tmp)
        body_file = workdir / "record.json"
        body_file.write_text(template(WRITE_PROJECT))
        with stores.fresh_store(args.backend, workdir) as settings:
            port = free_port()
            ini = write_ini(workdir / "app.ini", {
                "use": "egg:pyramid_sumatra", **settings,
                "sumatra.secret": secrets.token_hex(32)}, port)
            prepare_store(ini, USER, PASSWORD)
            with Server(ini, port, workdir / "server.log") as server:
                client = Client(port, auth)
                create_project(client, PROJECT)
                create_project(client, WRITE_PROJECT)
                seed_http(client, PROJECT, 0, args.records)
                base = {"BENCH_AUTH": auth, "BENCH_RUN": secrets.token_hex(3)}
                scenarios = [
                    ("get-record", "/", "get.lua", 8,
                     {"BENCH_ACCEPT": RECORD_ACCEPT, "BENCH_PREFIX": f"/{PROJECT}/",
                      "BENCH_COUNT": str(args.records)}),
                    ("put-record", "/", "put.lua", 8,
                     {"BENCH_ACCEPT": RECORD_ACCEPT, "BENCH_PREFIX": f"/{WRITE_PROJECT}/",
                      "BENCH_BODY": str(body_file)}),
                    ("get-project", f"/{PROJECT}/", "get.lua", 1,
                     {"BENCH_ACCEPT": PROJECT_ACCEPT}),
                ]
                wanted = set(args.scenarios.split(","))
                for name, path, script, concurrency, env in scenarios:
                    if name not in wanted:
                        continue
                    raw = args.out / f"{args.backend}-{name}.txt"
                    spy = subprocess.Popen(
                        [py_spy, "record", "-p", str(server.process.pid), "-r", "250",
                         "--subprocesses", "--idle",
                         "-d", str(int(args.seconds) + 1), "-f", "raw", "-o", str(raw)],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    cpu = server.cpu_seconds()
                    result = wrk.run(name, server.url + path, script, concurrency=concurrency,
                                     seconds=args.seconds, env={**base, **env})
                    spent = (server.cpu_seconds() - cpu) * 1000 / max(result.requests, 1)
                    spy.wait()
                    print(f"\n=== {name}: {result.rps} req/s (under py-spy), p50 {result.p50_ms} "
                          f"ms, server CPU {spent:.2f} ms/request, {result.errors} errors")
                    print(summarise(raw, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
