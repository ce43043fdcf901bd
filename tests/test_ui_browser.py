"""The web interface in a real headless Chromium against the app served by waitress.

Each page is saved as a screenshot under tests/screenshots/ (laptop and phone widths).
"""

from __future__ import annotations

import pytest
import transaction
from browser import browser, chromium  # noqa: F401 - fixtures
from test_ui_pages import XSS, app_settings, put_record, record_doc  # noqa: F401

from pyramid_sumatra.passwords import hash_password
from pyramid_sumatra.storage.types import UserInfo

pytestmark = pytest.mark.browser
PHONE = 390


def log_in(b, username: str = "testuser", password: str = "abc123") -> None:
    b.find('input[name="username"]').send_keys(username)
    b.find('input[name="password"]').send_keys(password)
    b.submit('#login-form button[type="submit"]')


def labels(b) -> list[str]:
    return [a.text for a in b.find_all("table.records td.label a")]


def test_a_session_in_the_browser(browser, storage):  # noqa: F811
    b = browser
    with transaction.manager:
        storage.set_grant("TestProject", "testuser", "admin")
        storage.put_user(UserInfo("alice", hash_password("alicepw")))

    # Anonymous: the public project only.
    b.go("/")
    names = [a.text for a in b.find_all(".project-name")]
    assert names == ["Test Project #2"]
    b.screenshot("01-projects-anonymous")

    # A private project sends the browser to the login form, then back.
    b.go("/TestProject/")
    assert "/_login" in b.driver.current_url
    b.screenshot("02-login")
    log_in(b)
    assert b.driver.current_url.endswith("/TestProject/")
    assert b.text(".who") == "T\ntestuser" or "testuser" in b.text(".who")
    assert labels(b) == ["haggling_repeat", "20111013-172514", "haggling", "20111013-172503"]
    b.screenshot("03-project")
    b.screenshot("03-project-phone", width=PHONE)
    b.go("/")
    assert [a.text for a in b.find_all(".project-name")] == ["Test Project #2", "Test Project #1"]
    b.find("details.create-project summary").click()
    b.screenshot("03-projects-logged-in")
    b.go("/TestProject/")

    # Filter by a tag chip, then clear.
    b.submit('.chips button[data-tag="foobar"]')
    assert labels(b) == ["haggling"]
    assert "1 record" in b.text("#record-count")
    b.screenshot("04-project-tag-filter")
    b.click_link("#clear-filters")
    assert len(labels(b)) == 4

    # Free-text search; empty filter fields stay out of the URL.
    b.find('#filters input[name="q"]').send_keys("gourd")
    b.submit('#filters button[type="submit"]')
    assert labels(b) == ["haggling"]
    assert b.driver.current_url.endswith("/TestProject/?q=gourd")
    b.go("/TestProject/")

    # Sort by label (ascending, then descending).
    b.click_link('th[data-col="label"] a')
    assert labels(b) == ["20111013-172503", "20111013-172514", "haggling", "haggling_repeat"]
    b.click_link('th[data-col="label"] a')
    assert labels(b) == ["haggling_repeat", "haggling", "20111013-172514", "20111013-172503"]

    # Hide a column; the choice survives a reload.
    b.find("#columns-menu summary").click()
    b.find('#columns-menu input[data-col="reason"]').click()
    assert not b.find('th[data-col="reason"]').is_displayed()
    b.go("/TestProject/")
    assert not b.find('th[data-col="reason"]').is_displayed()
    assert b.find('th[data-col="outcome"]').is_displayed()
    b.find("#columns-menu summary").click()
    b.find('#columns-menu input[data-col="reason"]').click()
    assert b.find('th[data-col="reason"]').is_displayed()

    # Open a record and edit its outcome.
    b.click_link('td.label a[href$="/haggling/"]')
    assert b.text("h1") == "haggling"
    b.screenshot("05-record")
    b.screenshot("05-record-phone", width=PHONE)
    outcome = b.find("#outcome")
    outcome.clear()
    outcome.send_keys("Worth exactly 3 shekels.")
    b.submit("#save-annotations")
    assert b.text("p.flash") == "Saved."
    assert b.find("#outcome").get_attribute("value") == "Worth exactly 3 shekels."
    with transaction.manager:
        assert storage.get_record("TestProject", "haggling").document["outcome"] == \
            "Worth exactly 3 shekels."

    # Compare two records picked in the table.
    b.go("/TestProject/")
    b.find('input[name="label"][value="haggling"]').click()
    b.find('input[name="label"][value="20111013-172503"]').click()
    assert b.text("#selected-count") == "2"
    b.screenshot("06-project-selection")
    b.submit("#compare-selected")
    assert "/@@compare" in b.driver.current_url
    differing = [tr.find_element("css selector", "th").text
                 for tr in b.find_all("#cmp-parameters tr.differs")]
    assert differing == ["distr", "n", "seed"]
    b.screenshot("07-compare")
    b.find("#only-diff").click()
    assert not b.find_all("#cmp-fields tr.same")[0].is_displayed()
    b.screenshot("07-compare-only-differences")
    b.find("#only-diff").click()

    # Parameter table, sorted by a column in the page.
    b.go("/TestProject/@@parameters")
    b.find_all("#parameter-table thead th")[3].click()  # "n"
    column = [tr.find_elements("css selector", "td")[3].text
              for tr in b.find_all("#parameter-table tbody tr")]
    assert column == sorted(column, key=int)
    b.screenshot("08-parameters")

    # Grant alice access.
    b.go("/TestProject/permissions/")
    b.find('#grant-form input[name="user"]').send_keys("alice")
    b.find('#grant-form select[name="role"] option[value="read"]').click()
    b.submit('#grant-form button[type="submit"]')
    assert b.text("p.flash") == "alice now has the read role."
    assert [tr.get_attribute("data-user") for tr in b.find_all("#grants tr[data-user]")] == [
        "alice", "testuser"]
    b.screenshot("09-permissions")
    with transaction.manager:
        assert storage.get_grants("TestProject")["alice"] == "read"

    # Log out: back to anonymous.
    b.submit("#logout")
    assert b.find_all("#login")
    assert [a.text for a in b.find_all(".project-name")] == ["Test Project #2"]


def test_a_hostile_record_renders_inert(browser, storage):  # noqa: F811
    put_record(storage, "TestProject2", record_doc(
        "hostile", reason=XSS, outcome=XSS, tags=[XSS], stdout_stderr=XSS, diff=f"+{XSS}",
        parameters={"content": f'{{"p": "{XSS}"}}'.replace('"x"', "'x'").replace(
            'onerror="window.__xss=1"', "onerror=window.__xss=1"),
            "type": "JSONParameterSet"}))
    for path in ("/TestProject2/", "/TestProject2/hostile/",
                 "/TestProject2/@@compare?labels=hostile,20141013-172504"):
        browser.go(path)
        assert browser.driver.execute_script("return window.__xss === undefined")
        assert "<script>window.__xss=1</script>" in browser.text()
    browser.screenshot("10-hostile-record")


def test_error_pages_in_the_browser(browser):  # noqa: F811
    browser.go("/NoSuchProject/")
    assert browser.text(".error-code") == "404"
    browser.screenshot("11-not-found")
