"""The project page's plots in headless Chromium: they draw, a click opens a record, a
selection compares, the panel passes the WCAG audit; screenshots at laptop and phone widths."""

from __future__ import annotations

import json
import random

import pytest
import transaction
from a11y import audit, summary
from browser import SCREENSHOTS, browser, chromium  # noqa: F401 - fixtures
from test_ui_browser import PHONE, log_in
from test_ui_pages import app_settings  # noqa: F401

from pyramid_sumatra.records import build_stored_record
from pyramid_sumatra.storage.types import ProjectInfo

pytestmark = pytest.mark.browser


def seed_sweep(storage, project: str = "Sweep", n: int = 300) -> None:
    """A parameter sweep: numbers, categories, a nested parameter, tags and outcomes."""
    rng = random.Random(4)
    with transaction.manager:
        storage.put_project(ProjectInfo(id=project, name="Parameter sweep"))
        storage.set_grant(project, "testuser", "admin")
    with transaction.manager:
        for i in range(n):
            lr, layers = 10 ** rng.uniform(-4, -1), rng.choice([1, 2, 3, 4, 6])
            optimizer = rng.choice(["adam", "sgd", "rmsprop"])
            parameters = {"learning_rate": lr, "layers": layers, "optimizer": optimizer,
                          "model": {"dropout": round(rng.uniform(0, 0.5), 2)}}
            stamp = f"2024-03-{1 + i % 28:02d} 10:{i % 60:02d}:00"
            doc = {"label": f"run{i:04d}", "timestamp": stamp,
                   "reason": "sweep", "outcome": rng.choice(["converged", "diverged", "slow"]),
                   "tags": ["sweep"] + (["best"] if i % 17 == 0 else []), "user": "testuser",
                   "main_file": "train.py", "version": "abc",
                   "duration": layers * 30 + rng.random() * 20,
                   "parameters": {"content": json.dumps(parameters), "type": "JSONParameterSet"}}
            storage.put_record(build_stored_record(project, doc), create=True)


def open_plots(b, kind: str = "scatter") -> None:
    from selenium.webdriver.support.ui import Select, WebDriverWait

    if not b.find("#plots").get_attribute("open"):
        b.find("#plots > summary").click()
    WebDriverWait(b.driver, 20).until(
        lambda d: b.find("#plots").get_attribute("data-state") in ("ready", "error"))
    assert b.find("#plots").get_attribute("data-state") == "ready", b.text("#plot-status")
    Select(b.find("#plot-kind")).select_by_value(kind)
    assert b.find("#plot-canvas").get_attribute("data-kind") == kind


def click_at(b, x: float, y: float, shift: bool = False) -> None:
    """Click the canvas at CSS pixels (x, y) from its top-left corner."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    canvas = b.find("#plot-canvas")
    b.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", canvas)
    size = canvas.size
    chain = ActionChains(b.driver)
    if shift:
        chain.key_down(Keys.SHIFT)
    chain.move_to_element_with_offset(canvas, int(x - size["width"] / 2),
                                      int(y - size["height"] / 2))
    chain.click()
    if shift:
        chain.key_up(Keys.SHIFT)
    chain.perform()


def point_of(b, label: str) -> dict:
    point = b.driver.execute_script("return window.SumatraPlot.pointOf(arguments[0])", label)
    assert point, f"no point for {label}"
    return point


def test_plots_draw_open_records_and_compare_a_selection(browser, storage):  # noqa: F811
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    b = browser
    b.go("/_login")
    log_in(b)
    b.go("/TestProject/")
    open_plots(b)
    canvas = b.find("#plot-canvas")
    assert canvas.get_attribute("data-points") == "4"
    assert "4 of 4 records plotted" in b.text("#plot-status")
    assert "n" in canvas.get_attribute("aria-label")

    # Shift-click two points: they are selected, and "Compare selected" links to them.
    click_at(b, **point_of(b, "haggling"), shift=True)
    click_at(b, **point_of(b, "20111013-172503"), shift=True)
    assert b.text("#plot-selected-count") == "2"
    compare = b.find("#plot-compare")
    assert compare.is_displayed()
    assert compare.get_attribute("href").endswith("@@compare?labels=haggling%2C20111013-172503")
    b.click_link("#plot-compare")
    assert [a.text for a in b.find_all("#comparison thead a")] == ["haggling", "20111013-172503"]

    # A plain click on a point opens its record.
    b.go("/TestProject/#plots")
    open_plots(b)
    old = b.find("html")
    click_at(b, **point_of(b, "haggling_repeat"))
    WebDriverWait(b.driver, 10).until(expected_conditions.staleness_of(old))
    assert b.text("h1") == "haggling_repeat"

    # The keyboard reaches the points too: focus the plot, move, Enter opens.
    b.go("/TestProject/#plots")
    open_plots(b)
    b.find("#plot-canvas").click()  # focus (a click off any point does nothing else)
    from selenium.webdriver.common.keys import Keys
    b.find("#plot-canvas").send_keys(Keys.ARROW_RIGHT)
    assert b.text("#plot-focus").split(":")[0] in {
        "haggling", "haggling_repeat", "20111013-172503", "20111013-172514"}


def test_plots_of_a_sweep_are_readable_and_accessible(browser, storage):  # noqa: F811
    from selenium.webdriver.support.ui import Select

    seed_sweep(storage)
    b, found = browser, {}
    b.go("/_login")
    log_in(b)
    for width in (1280, PHONE):
        b.driver.set_window_size(width, 900)
        b.go("/Sweep/#plots")
        for kind in ("scatter", "parallel"):
            open_plots(b, kind)
            if kind == "scatter":
                Select(b.find("#plot-x")).select_by_value("p:learning_rate")
                Select(b.find("#plot-colour")).select_by_value("p:optimizer")
            assert int(b.find("#plot-canvas").get_attribute("data-points")) == 300
            assert len(b.find_all("#plot-legend li")) == 3  # adam, sgd, rmsprop
            violations = audit(b.driver)
            if violations:
                found[f"{kind}@{width}"] = violations
            path = SCREENSHOTS / f"12-plot-{kind}-{width}.png"
            SCREENSHOTS.mkdir(exist_ok=True)
            assert b.find("#plots").screenshot(str(path))  # the panel alone
    assert not found, "\n".join(f"{k}:\n{summary(v)}" for k, v in found.items())


def test_parallel_coordinates_brush_selects_records(browser, storage):  # noqa: F811
    from selenium.webdriver.common.action_chains import ActionChains

    seed_sweep(storage, n=60)
    b = browser
    b.go("/_login")
    log_in(b)
    b.go("/Sweep/#plots")
    open_plots(b, "parallel")
    canvas = b.find("#plot-canvas")
    b.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", canvas)
    size = canvas.size
    # Drag along the first axis over its lower half.
    first_x = b.driver.execute_script(
        "var m = window.innerWidth < 560 ? 34 : 56; return m;")
    ActionChains(b.driver).move_to_element_with_offset(
        canvas, int(first_x - size["width"] / 2), int(size["height"] * 0.1)).click_and_hold() \
        .move_by_offset(0, int(size["height"] * 0.35)).release().perform()
    selected = int(b.text("#plot-selected-count"))
    assert 0 < selected < 60
    assert b.find("#plot-compare").is_displayed()
