"""Fill a project: over HTTP (concurrent PUTs, like many ``smt run``s) or through storage.

``python -m bench.seed INI PROJECT START STOP`` stores records START..STOP-1
through the storage hooks (``build_storage`` + ``records.build_stored_record``)
in a process of its own, in transactions of a thousand: the fast way to the
100,000-record level.
"""

from __future__ import annotations

import base64
import http.client
import json
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .servers import REPO, clean_env
from .workload import body, label

RECORD_TYPE = "application/vnd.sumatra.record-v4+json"


def basic_auth(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


class Client:
    """One keep-alive connection per thread."""

    def __init__(self, port: int, auth: str):
        self.port, self.auth = port, auth
        self.local = threading.local()

    def request(self, method: str, path: str, data: bytes | None = None,
                content_type: str = RECORD_TYPE) -> tuple[int, bytes]:
        headers = {"Authorization": self.auth, "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = content_type
        for attempt in range(2):
            conn = getattr(self.local, "conn", None)
            if conn is None:
                conn = self.local.conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                                                    timeout=120)
            try:
                conn.request(method, path, body=data, headers=headers)
                res = conn.getresponse()
                return res.status, res.read()
            except (ConnectionError, http.client.HTTPException):
                conn.close()
                self.local.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")


def create_project(client: Client, project: str) -> None:
    doc = {"name": project, "description": "benchmark"}
    status, text = client.request("PUT", f"/{project}/", json.dumps(doc).encode(),
                                  "application/vnd.sumatra.project-v4+json")
    if status not in (200, 201):
        raise RuntimeError(f"PUT /{project}/ answered {status}: {text[:300]!r}")


def seed_http(client: Client, project: str, start: int, stop: int, workers: int = 8) -> float:
    """PUT records start..stop-1; return records per second."""
    def put(i: int) -> None:
        status, text = client.request("PUT", f"/{project}/{label(i)}/", body(project, label(i), i))
        if status != 201:
            raise RuntimeError(f"PUT {label(i)} answered {status}: {text[:300]!r}")

    began = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        for _ in pool.map(put, range(start, stop)):
            pass
    return (stop - start) / max(time.perf_counter() - began, 1e-9)


def seed_direct(ini: Path, project: str, start: int, stop: int) -> float:
    """Store records start..stop-1 through the storage hooks, in another process."""
    began = time.perf_counter()
    subprocess.run([sys.executable, "-m", "bench.seed", str(ini), project, str(start), str(stop)],
                   check=True, env=clean_env(), cwd=REPO)
    return (stop - start) / max(time.perf_counter() - began, 1e-9)


def _main(argv: list[str]) -> int:
    import transaction
    from pyramid.paster import get_appsettings

    from pyramid_sumatra import build_storage, resolve_settings
    from pyramid_sumatra.records import build_stored_record

    ini, project, start, stop = argv[0], argv[1], int(argv[2]), int(argv[3])
    storage = build_storage(resolve_settings(dict(get_appsettings(ini))))
    try:
        for chunk in range(start, stop, 1000):
            with transaction.manager:
                for i in range(chunk, min(chunk + 1000, stop)):
                    storage.put_record(build_stored_record(project, json.loads(
                        body(project, label(i), i))), create=True)
    finally:
        storage.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
