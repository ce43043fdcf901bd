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
                  pss_mb: float | None, rss_mb: float | None = None) -> list[Target]:
    small, middle, large = levels[0], levels[1], levels[-1]
    targets: list[Target] = []

    def add(name: str, measured: str, passed: bool) -> None:
        targets.append(Target(backend, name, measured, passed))

    get = find(results, f"GET record ({small} records)")
    if get and get.ratio is not None:
        add("GET record >= 0.5 x GET ceiling", f"{get.ratio:.2f}", get.ratio >= 0.5)
    put = find(results, "PUT new record")
    if backend == "sqlite" and put and put.ratio is not None:
        add("PUT >= 0.5 x PUT ceiling (SQLite)", f"{put.ratio:.2f}", put.ratio >= 0.5)
    big = find(results, f"GET record ({large} records)")
    if get and big:
        factor = big.p50_ms / get.p50_ms if get.p50_ms else float("inf")
        add(f"GET record p50 at {large} <= 1.2 x at {small}",
            f"{big.p50_ms} / {get.p50_ms} ms = {factor:.2f}", factor <= 1.2)
    project = find(results, f"GET project ({middle} records)")
    if project:
        add(f"GET project ({middle} records) p50 <= 50 ms", f"{project.p50_ms} ms",
            project.p50_ms <= 50)
    tags = find(results, f"GET project ?tags=rare ({middle} records)")
    if tags:
        add(f"?tags= on {middle} records p50 <= 20 ms", f"{tags.p50_ms} ms", tags.p50_ms <= 20)
    page = find(results, f"GET project page, HTML ({middle} records)")
    if page:
        add(f"project page HTML ({middle} records) p50 <= 200 ms", f"{page.p50_ms} ms",
            page.p50_ms <= 200)
    if pss_mb is not None:
        # Pss: the pages a pre-fork server's processes share are counted once.
        add(f"server memory after {large} records <= 250 MB",
            f"Pss {pss_mb:.0f} MB (RSS summed over processes {rss_mb or 0:.0f} MB)",
            pss_mb <= 250)
    at32 = [r for r in results if r.concurrency >= 32]
    if at32:
        errors = sum(r.errors for r in at32)
        add("no errors at concurrency 32", f"{errors} errors", errors == 0)
    return targets


def table(results: list[Result]) -> str:
    head = (f"{'scenario':<44} {'c':>3} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
            f"{'errors':>6} {'cpu ms':>6}  ratio")
    lines = [head, "-" * len(head)]
    for r in results:
        ratio = f"{r.ratio:.2f} of {r.limit}" if r.ratio is not None else ""
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
