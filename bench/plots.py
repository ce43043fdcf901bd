"""How long the project page's plots take to draw 10,000 records in headless Chromium.

``python -m bench.plots [--records 10000] [--repeats 5]`` seeds a public project in a
temporary SQLite store, serves the app with waitress on loopback, opens the project
page's plots in the system's Chromium and reads the time each draw took, measured by
``static/plots.js`` with ``performance.now()`` (the canvas's ``data-draw-ms``): the
first draw after loading, then ``--repeats`` redraws, for the scatter plot and for
parallel coordinates. It also reports fetching and parsing ``@@plotdata`` (``data-load-ms``).
Prints one JSON object. Independent of the test suite.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import threading
import time

import transaction
import waitress.server

import pyramid_sumatra
from pyramid_sumatra import build_storage, resolve_settings
from pyramid_sumatra.records import build_stored_record
from pyramid_sumatra.storage.types import ANONYMOUS, ProjectInfo

PROJECT = "PlotBench"


def seed(settings: dict, n: int) -> None:
    """``n`` records of a parameter sweep: 4 numeric parameters, 2 categorical, tags."""
    storage = build_storage(resolve_settings(settings))
    storage.initialize()
    rng = random.Random(1)
    with transaction.manager:
        storage.put_project(ProjectInfo(id=PROJECT, name="Plot benchmark"))
        storage.set_grant(PROJECT, ANONYMOUS, "read")
    for start in range(0, n, 1000):
        with transaction.manager:
            for i in range(start, min(start + 1000, n)):
                parameters = {"lr": 10 ** rng.uniform(-4, -1), "layers": rng.randint(1, 8),
                              "batch": rng.choice([16, 32, 64, 128]),
                              "optimizer": rng.choice(["adam", "sgd", "rmsprop"]),
                              "model": {"dropout": rng.random() / 2, "kind": rng.choice("abcd")}}
                doc = {"label": f"r{i:06d}",
                       "timestamp": f"2024-{1 + i % 12:02d}-{1 + i % 28:02d} 12:00:{i % 60:02d}",
                       "reason": "bench", "outcome": rng.choice(["ok", "diverged"]),
                       "tags": [rng.choice(["a", "b", "c"])], "user": "bench",
                       "main_file": "train.py", "version": "v1", "duration": rng.uniform(1, 300),
                       "parameters": {"content": json.dumps(parameters),
                                      "type": "JSONParameterSet"}}
                storage.put_record(build_stored_record(PROJECT, doc), create=True)
    storage.dispose()


def chromium():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--no-first-run", "--window-size=1280,900"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def measure(driver, url: str, kind: str, repeats: int) -> dict:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    driver.get(url + f"{PROJECT}/#plots")
    WebDriverWait(driver, 120).until(lambda d: d.find_element(By.ID, "plots").get_attribute(
        "data-state") in ("ready", "error"))
    canvas = driver.find_element(By.ID, "plot-canvas")
    load_ms = float(canvas.get_attribute("data-load-ms"))
    Select(driver.find_element(By.ID, "plot-kind")).select_by_value(kind)
    first = float(canvas.get_attribute("data-draw-ms"))
    redraws = [driver.execute_script("return window.SumatraPlot.redraw()")
               for _ in range(repeats)]
    return {"kind": kind, "points": int(canvas.get_attribute("data-points")),
            "load_ms": load_ms, "first_draw_ms": first,
            "redraw_ms_median": statistics.median(redraws), "redraw_ms_max": max(redraws)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    workdir = tempfile.mkdtemp(prefix="sumatra-plotbench-")
    settings = {"sumatra.backend": "sqlalchemy",
                "sqlalchemy.url": f"sqlite:///{workdir}/store.sqlite",
                "sumatra.initdb": "true", "sumatra.secret": "b" * 32}
    started = time.perf_counter()
    seed(settings, args.records)
    seeded = time.perf_counter() - started
    server = waitress.server.create_server(pyramid_sumatra.main({}, **settings),
                                           host="127.0.0.1", port=0, threads=2)
    threading.Thread(target=server.run, daemon=True).start()
    url = f"http://127.0.0.1:{server.effective_port}/"
    driver = chromium()
    try:
        results = [measure(driver, url, kind, args.repeats) for kind in ("scatter", "parallel")]
    finally:
        driver.quit()
        server.close()
    print(json.dumps({"records": args.records, "seed_s": round(seeded, 1),
                      "results": results}, indent=1))
    return 0 if all(r["points"] == args.records for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
