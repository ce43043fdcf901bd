"""Drive Debian's ``wrk`` with the Lua scripts in bench/lua and read their JSON summary."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

LUA = Path(__file__).resolve().parent / "lua"


@dataclass
class Result:
    scenario: str
    concurrency: int
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int  # non-2xx/3xx responses plus socket errors (connect, read, write, timeout)
    server_cpu_ms: float | None = None  # server CPU time per request (robust to noisy neighbours)
    ratio: float | None = None  # to the matching limit, when there is one
    limit: str | None = None
    floor_ratio: float | None = None  # to the same request on the thinnest stack, if measured

    def as_dict(self) -> dict:
        return asdict(self)


def available() -> str | None:
    return None if shutil.which("wrk") else "wrk is not installed (Debian package wrk)"


def run(scenario: str, url: str, script: str, *, concurrency: int, seconds: float,
        env: dict[str, str] | None = None, timeout: float = 30.0) -> Result:
    """Run ``wrk`` against ``url`` with bench/lua/``script``; keep its JSON summary."""
    threads = max(1, min(2, concurrency))
    command = ["wrk", f"-t{threads}", f"-c{concurrency}", f"-d{max(1, round(seconds))}s",
               f"--timeout={int(timeout)}s", "-s", str(LUA / script), url]
    full_env = {**os.environ, "BENCH_LUA": str(LUA), **(env or {})}
    done = subprocess.run(command, env=full_env, capture_output=True, text=True,
                          timeout=seconds + timeout + 30)
    lines = [line for line in done.stdout.splitlines() if line.startswith("BENCHJSON ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}\n{done.stderr}")
    data = json.loads(lines[-1][len("BENCHJSON "):])
    elapsed = data["duration_us"] / 1e6
    errors = sum(data[k] for k in ("connect", "read", "write", "status", "timeout"))
    return Result(scenario=scenario, concurrency=concurrency, requests=data["requests"],
                  seconds=round(elapsed, 2), rps=round(data["requests"] / elapsed, 1),
                  p50_ms=round(data["p50_us"] / 1000, 2), p99_ms=round(data["p99_us"] / 1000, 2),
                  errors=errors)
