"""Targets, the table on screen and the JSON file."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .wrk import Result


@dataclass
class Target:
    backend: str
    name: str
    measured: str
    passed: bool

    def as_dict(self) -> dict:
        return {"backend": self.backend, "target": self.name, "measured": self.measured,
                "passed": self.passed}


def find(results: list[Result], scenario: str, concurrency: int | None = None) -> Result | None:
    return next((r for r in results if r.scenario == scenario
                 and (concurrency is None or r.concurrency == concurrency)), None)


def check_targets(backend: str, results: list[Result], levels: list[int],
                  pss_mb: float | None, rss_mb: float | None = None,
                  every: dict[str, list[Result]] | None = None) -> list[Target]:
    """The targets of one backend's run; ``every`` holds all backends' results of the
    same run (PostgreSQL and the filesystem are judged against SQLite's figures)."""
    small, middle, large = levels[0], levels[1], levels[-1]
    sqlite = (every or {}).get("sqlite", [])
    targets: list[Target] = []

    def add(name: str, measured: str, passed: bool) -> None:
        targets.append(Target(backend, name, measured, passed))

    get = find(results, f"GET record ({small} records)", 8)
    put = find(results, "PUT new record", 8)
    # The stack's own floor (measured in this run on the same database) is the yardstick.
    for kind, result in (("GET record", get), ("PUT", put)):
        if result and result.floor_ratio is not None:
            add(f"{kind} >= 0.8 x {kind.split()[0]} floor", f"{result.floor_ratio:.2f}",
                result.floor_ratio >= 0.8)
    if backend == "postgresql":
        lite = find(sqlite, f"GET record ({small} records)", 8)
        if get and lite:
            share = get.rps / lite.rps
            add("GET record >= 0.8 x SQLite's", f"{get.rps:.0f} / {lite.rps:.0f} = {share:.2f}",
                share >= 0.8)
        _latency(add, find(results, f"GET project ({large} records)"), 80)
        _latency(add, find(results, f"GET project ?tags=rare ({large} records)"), 30)
    if backend == "filesystem":
        first = find(results, f"PUT into the project ({small} records)")
        last = find(results, f"PUT into the project ({large} records)")
        if first and last:
            factor = first.rps / last.rps if last.rps else float("inf")
            add(f"PUT at {large} records within 2 x PUT at {small}",
                f"{first.rps:.0f} / {last.rps:.0f} req/s = {factor:.2f}", factor <= 2)
        lite = find(sqlite, "PUT new record", 8)
        if put and lite:
            share = put.rps / lite.rps
            add("PUT >= 0.5 x SQLite's", f"{put.rps:.0f} / {lite.rps:.0f} = {share:.2f}",
                share >= 0.5)
    big = find(results, f"GET record ({large} records)", 8)
    if get and big:
        factor = big.p50_ms / get.p50_ms if get.p50_ms else float("inf")
        add(f"GET record p50 at {large} <= 1.2 x at {small}",
            f"{big.p50_ms} / {get.p50_ms} ms = {factor:.2f}", factor <= 1.2)
    _latency(add, find(results, f"GET project ({middle} records)"), 50)
    _latency(add, find(results, f"GET project ?tags=rare ({middle} records)"), 20)
    _latency(add, find(results, f"GET project page, HTML ({middle} records)"), 200)
    if pss_mb is not None:
        # Pss: the pages a pre-fork server's processes share are counted once.
        add(f"server memory after {large} records <= 250 MB",
            f"Pss {pss_mb:.0f} MB (RSS summed over processes {rss_mb or 0:.0f} MB)",
            pss_mb <= 250)
    at32 = [r for r in results if r.concurrency >= 32]
    if at32:
        errors = sum(r.errors for r in at32)
        add("no errors at concurrency 32", f"{errors} errors", errors == 0)
        spread = max(r.p99_ms / r.p50_ms if r.p50_ms else float("inf") for r in at32)
        add("p99 <= 10 x p50 at concurrency 32", f"worst {spread:.1f} x", spread <= 10)
    return targets


def _latency(add, result: Result | None, limit_ms: float) -> None:
    if result:  # a scenario that completed no request has no latency to pass with
        add(f"{result.scenario} p50 <= {limit_ms:g} ms",
            f"{result.p50_ms} ms" if result.requests else "no request completed",
            bool(result.requests) and result.p50_ms <= limit_ms)


def table(results: list[Result]) -> str:
    head = (f"{'scenario':<44} {'c':>3} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
            f"{'errors':>6} {'cpu ms':>6}  ratio")
    lines = [head, "-" * len(head)]
    for r in results:
        ratio = f"{r.ratio:.2f} of {r.limit}" if r.ratio is not None else ""
        if r.floor_ratio is not None:
            ratio += f", {r.floor_ratio:.2f} of floor"
        cpu = f"{r.server_cpu_ms:.2f}" if r.server_cpu_ms is not None else "-"
        lines.append(f"{r.scenario:<44} {r.concurrency:>3} {r.rps:>8.1f} {r.p50_ms:>8.2f} "
                     f"{r.p99_ms:>8.2f} {r.errors:>6} {cpu:>6}  {ratio}")
    return "\n".join(lines)


def target_lines(targets: list[Target]) -> str:
    return "\n".join(f"  {'PASS' if t.passed else 'FAIL'}  {t.name}: {t.measured}"
                     for t in targets)


def write_json(path: Path, report: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
