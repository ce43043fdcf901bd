"""Browser fixtures: the system's headless Chromium driven through its own chromedriver.

Selenium is given ``/usr/bin/chromedriver`` explicitly, so Selenium Manager never
downloads a driver or a browser. Screenshots go to ``tests/screenshots/`` (git-ignored).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import unavailable

CHROMIUM = os.environ.get("SUMATRA_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("SUMATRA_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")
SCREENSHOTS = Path(__file__).parent / "screenshots"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage")


class Browser:
    """A thin helper over a WebDriver: go to a path of the live server, find, shoot."""

    def __init__(self, driver, base_url: str):
        self.driver = driver
        self.base_url = base_url

    def go(self, path: str) -> None:
        self.driver.get(self.base_url + path.lstrip("/"))

    def find(self, css: str):
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css: str) -> list:
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def text(self, css: str = "body") -> str:
        return self.find(css).text

    def submit(self, button_css: str) -> None:
        """Click a submit button and wait for the next page to load."""
        from selenium.webdriver.support.ui import WebDriverWait

        old = self.find("html")
        self.find(button_css).click()
        WebDriverWait(self.driver, 10).until(lambda _: _gone(old))

    def click_link(self, css: str) -> None:
        self.submit(css)

    def screenshot(self, name: str, width: int = 1280) -> Path:
        """Save a full-page screenshot (page height measured) at a given viewport width."""
        SCREENSHOTS.mkdir(exist_ok=True)
        self.driver.set_window_size(width, 900)  # lay out at this width, then measure
        height = self.driver.execute_script(
            "return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight)")
        self.driver.set_window_size(width, min(max(int(height) + 120, 600), 4000))
        path = SCREENSHOTS / f"{name}.png"
        self.driver.save_screenshot(str(path))
        self.driver.set_window_size(1280, 900)
        return path


@pytest.fixture(scope="session")
def chromium() -> Iterator:
    """One headless Chromium for the whole session (fresh profile directory)."""
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        unavailable(f"Chromium ({CHROMIUM}) or chromedriver ({CHROMEDRIVER}) is not installed")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        unavailable("selenium is not installed (pip install -e .[test])")
    profile = tempfile.mkdtemp(prefix="sumatra-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}", "--window-size=1280,900"):
        options.add_argument(flag)
    try:
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    except Exception as exc:  # noqa: BLE001 - any start-up failure means "no browser here"
        shutil.rmtree(profile, ignore_errors=True)
        unavailable(f"Chromium did not start: {exc}")
    driver.set_page_load_timeout(20)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def browser(chromium, live_server) -> Iterator[Browser]:
    """The shared Chromium pointed at a fresh live server, with no cookies or storage left."""
    chromium.delete_all_cookies()
    yield Browser(chromium, live_server.url)
    chromium.get("about:blank")
    chromium.delete_all_cookies()


def _gone(element) -> bool:
    """Whether ``element`` left the document (the page it was on was replaced).

    Chromium reports a node of a replaced document either as stale or, at times, as an
    "unknown error: ... Node with given id does not belong to the document", which
    Selenium's ``staleness_of`` does not take for staleness (seen in full runs).
    """
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException

    try:
        element.is_enabled()
    except StaleElementReferenceException:
        return True
    except WebDriverException as exc:
        if "does not belong to the document" in str(exc):
            return True
        raise
    return False
