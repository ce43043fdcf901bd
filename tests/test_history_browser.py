"""History and trash in a real headless Chromium: edit a record and see the change in its
history, delete it and restore it from the trash page; every new page passes axe-core.

Screenshots go to tests/screenshots/ (history-*, trash-*).
"""

from __future__ import annotations

import pytest
import transaction
from a11y import audit, summary
from browser import browser, chromium  # noqa: F401 - fixtures
from test_ui_browser import PHONE, log_in
from test_ui_pages import app_settings, put_record, record_doc  # noqa: F401

from pyramid_sumatra.services import projects, records
from pyramid_sumatra.services.history import Actor

pytestmark = pytest.mark.browser


def test_edit_see_history_delete_and_restore_in_the_browser(browser, storage):  # noqa: F811
    b, found = browser, {}
    with transaction.manager:
        storage.set_grant("TestProject", "testuser", "admin")
    put_record(storage, "TestProject2", record_doc("doomed"))
    with transaction.manager:  # a deleted project, for /_trash
        storage.set_grant("TestProject2", "testuser", "admin")
        projects.delete_project(storage, "TestProject2", Actor("testuser"))

    def check(name: str) -> None:
        for width in (1280, PHONE):
            b.driver.set_window_size(width, 900)
            violations = audit(b.driver)
            if violations:
                found[f"{name}@{width}"] = violations
        b.driver.set_window_size(1280, 900)

    b.go("/_login")
    log_in(b)
    b.go("/TestProject/haggling/")
    outcome = b.find("#edit-form textarea[name=outcome]")
    outcome.clear()
    outcome.send_keys("Edited in Chromium: it worked")
    b.submit("#edit-form button[type=submit]")
    entry = b.find("#history .history-entry")
    assert entry.get_attribute("data-action") == "edit"
    assert "Edited in Chromium: it worked" in b.text("#history ins.new")
    assert "testuser" in entry.text
    b.driver.execute_script("document.getElementById('history').scrollIntoView()")
    b.screenshot("history-01-record-section")
    check("record-with-history")

    b.click_link("#history-link")
    assert b.driver.current_url.endswith("/TestProject/haggling/@@history")
    assert b.find(".history-entry").get_attribute("data-action") == "edit"
    b.screenshot("history-02-record-page")
    b.screenshot("history-02-record-page-phone", width=PHONE)
    check("record-history")

    # Delete from the record page (the confirm dialog accepted), then restore.
    b.go("/TestProject/haggling/")
    b.driver.execute_script("window.confirm = function () { return true; };")
    b.find("#delete summary").click()
    assert b.text("#delete-record") == "Move to trash"
    b.submit("#delete-record")
    assert "haggling" not in [a.text for a in b.find_all("table.records td.label a")]
    b.click_link("#trash-link")
    row = b.find('#trash-items tr[data-label="haggling"]')
    assert "testuser" in row.text
    b.screenshot("trash-01-project")
    b.screenshot("trash-01-project-phone", width=PHONE)
    check("trash")
    b.submit('#trash-items tr[data-label="haggling"] button.restore')
    assert "Restored record 'haggling'" in b.text(".flash")
    assert b.find("#trash-empty")
    check("trash-empty")
    b.go("/TestProject/haggling/")
    assert [e.get_attribute("data-action") for e in b.find_all("#history .history-entry")][
        :3] == ["restore", "delete", "edit"]
    assert "Edited in Chromium" in b.text("#annotations")

    b.go("/TestProject/@@history")
    b.screenshot("history-03-project")
    check("project-history")

    b.go("/_trash")
    assert b.find('#trash-items tr[data-project="TestProject2"]')
    b.screenshot("trash-02-projects")
    check("server-trash")
    b.submit('#trash-items tr[data-project="TestProject2"] button.restore')
    assert "Restored project 'TestProject2'" in b.text(".flash")
    assert "doomed" in [a.text for a in b.find_all("table.records td.label a")]

    report = "\n".join(f"{page}:\n{summary(v)}" for page, v in found.items())
    assert not found, f"axe violations:\n{report}"
    with transaction.manager:
        assert records.delete_record is not None
