"""Every page passes axe-core's WCAG 2.0/2.1 A and AA rules, and works from the keyboard."""

from __future__ import annotations

import pytest
import transaction
from a11y import audit, summary
from browser import browser, chromium  # noqa: F401 - fixtures
from test_ui_browser import PHONE, log_in
from test_ui_pages import app_settings, put_record, record_doc  # noqa: F401

from pyramid_sumatra.storage.types import ProjectInfo

pytestmark = pytest.mark.browser

#: Pages audited after logging in: (name, path). The logged-out ones are audited first.
LOGGED_IN_PAGES = (
    ("projects-logged-in", "/"),
    ("project", "/TestProject/"),
    ("tag", "/TestProject/tag/foobar/"),
    ("record", "/TestProject/haggling/"),
    ("compare", "/TestProject/@@compare?labels=haggling,20111013-172503,haggling_repeat"),
    ("compare-across", "/@@compare?records=TestProject/haggling,TestProject2/20141013-172504"),
    ("compare-empty", "/TestProject/@@compare"),
    ("parameters", "/TestProject/@@parameters"),
    ("permissions", "/TestProject/permissions/"),
    ("api", "/_api/"),
    ("error", "/NoSuchProject/"),
)


def seed_many_projects(storage, n: int = 40) -> None:
    with transaction.manager:
        for i in range(n):
            storage.put_project(ProjectInfo(id=f"Many{i:02d}", name=f"Many project {i}",
                                            description="One of many." if i % 2 else ""))
            storage.set_grant(f"Many{i:02d}", "testuser", "read" if i % 3 else "admin")
    put_record(storage, "Many00", record_doc("r1"))


def test_every_page_passes_the_wcag_audit(browser, storage):  # noqa: F811
    seed_many_projects(storage)
    b, found = browser, {}

    def check(name: str) -> None:
        """Audit at laptop and phone widths (the layout, so the contrast, changes)."""
        for width in (1280, PHONE):
            b.driver.set_window_size(width, 900)
            violations = audit(b.driver)
            if violations:
                found[f"{name}@{width}"] = violations
        b.driver.set_window_size(1280, 900)

    b.go("/")
    check("projects-logged-out")
    b.go("/NoSuchProject/")
    check("error-logged-out")
    b.go("/_login")
    check("login")
    log_in(b)
    for name, path in LOGGED_IN_PAGES:
        b.go(path)
        check(name)
    report = "\n".join(f"{page}:\n{summary(v)}" for page, v in found.items())
    counts = {page: sum(len(v["nodes"]) for v in vs) for page, vs in found.items()}
    assert not found, f"axe violations {counts}:\n{report}"


def tab_to(b, css: str, limit: int = 120):
    """Press Tab until the focused element matches ``css``; fail if it never does."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    for _ in range(limit):
        ActionChains(b.driver).send_keys(Keys.TAB).perform()
        if b.driver.execute_script("return document.activeElement.matches(arguments[0])", css):
            return b.driver.switch_to.active_element
    raise AssertionError(f"Tab never reached {css}")


def press(b, key: str, wait_for_page: bool = False) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    old = b.find("html")
    ActionChains(b.driver).send_keys(key).perform()
    if wait_for_page:
        WebDriverWait(b.driver, 10).until(expected_conditions.staleness_of(old))


def has_focus_ring(b) -> bool:
    return b.driver.execute_script(
        "var s = getComputedStyle(document.activeElement);"
        "return s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2")


def test_the_record_table_works_from_the_keyboard(browser, storage):  # noqa: F811
    from selenium.webdriver.common.keys import Keys

    b = browser
    b.go("/_login")
    log_in(b)
    b.go("/TestProject/")

    # The skip link comes first and is visible when focused.
    skip = tab_to(b, "a.skip")
    assert skip.is_displayed() and has_focus_ring(b)

    # The search form: type, then Enter submits it.
    tab_to(b, '#filters input[name="q"]')
    assert has_focus_ring(b)
    press(b, "gourd")
    press(b, Keys.ENTER, wait_for_page=True)
    assert b.driver.current_url.endswith("/TestProject/?q=gourd")
    assert [a.text for a in b.find_all("table.records td.label a")] == ["haggling"]

    # A record link: Enter opens it.
    b.go("/TestProject/")
    tab_to(b, 'td.label a[href$="/haggling/"]')
    assert has_focus_ring(b)
    press(b, Keys.ENTER, wait_for_page=True)
    assert b.text("h1") == "haggling"

    # The compare checkboxes: Space ticks them, Enter on "Compare" opens the comparison.
    b.go("/TestProject/")
    tab_to(b, 'input[name="label"][value="haggling"]')
    assert has_focus_ring(b)
    press(b, " ")
    tab_to(b, 'input[name="label"][value="20111013-172503"]')
    press(b, " ")
    assert b.text("#selected-count") == "2"
    tab_to(b, "#compare-selected")
    press(b, Keys.ENTER, wait_for_page=True)
    assert "/@@compare" in b.driver.current_url
    assert [a.text for a in b.find_all("#comparison thead a")] == ["haggling", "20111013-172503"]


def test_compare_across_projects_from_the_keyboard(browser):  # noqa: F811
    from selenium.webdriver.common.keys import Keys

    b = browser
    b.go("/_login")
    log_in(b)
    b.go("/TestProject/@@compare?labels=haggling")
    field = tab_to(b, "#compare-records-input")
    assert field.get_attribute("value") == "TestProject/haggling"
    press(b, Keys.END)  # tabbing in selects the value; type after it
    press(b, ", TestProject2/20141013-172504")
    press(b, Keys.ENTER, wait_for_page=True)
    assert [a.text for a in b.find_all("#comparison thead a")] == [
        "TestProject/haggling", "TestProject2/20141013-172504"]
    b.screenshot("13-compare-across-projects")
    b.screenshot("13-compare-across-projects-phone", width=PHONE)
