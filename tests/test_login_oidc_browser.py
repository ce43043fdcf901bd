"""Chromium logs in through the OpenID provider's own login page and back, then logs out
at both ends. Screenshots: tests/screenshots/oidc-*.png."""

from __future__ import annotations

import pytest
import transaction
from browser import browser, chromium  # noqa: F401 - fixtures
from conftest import unique
from oidcprovider import OidcProvider, oidc_app_settings  # noqa: F401 - fixture
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from pyramid_sumatra.storage.types import ProjectInfo

pytestmark = pytest.mark.browser


@pytest.fixture
def provider(tmp_path):
    server = OidcProvider(tmp_path, [])  # started once the live server's address is known
    yield server
    server.stop()


def test_chromium_logs_in_through_the_provider_and_out(browser, provider, storage,  # noqa: F811
                                                       live_server):
    provider.redirect_uris = [live_server.url + "_login/oidc/callback"]
    provider.start()
    pid = unique("lab")
    with transaction.manager:
        storage.put_project(ProjectInfo(id=pid, name="Physics lab runs"))
        storage.set_grant(pid, "testuser", "admin")
        storage.set_grant(pid, "group:physics-lab", "write")
    b = browser
    b.go(f"/{pid}/")  # private: to our login page, which offers the provider
    assert "Log in with Example University" in b.text("#oidc-login")
    b.screenshot("oidc-1-login-page")
    b.click_link("#oidc-login")
    assert b.driver.current_url.startswith(provider.issuer)  # the provider's own page
    b.find('input[name="login"]').send_keys("carol")
    b.find('input[name="password"]').send_keys("anything")
    b.screenshot("oidc-2-provider-login")
    b.find("button[type=submit]").click()
    WebDriverWait(b.driver, 15).until(expected_conditions.url_contains(f"/{pid}/"))
    assert b.driver.current_url == live_server.url + f"{pid}/"  # back where it began
    assert b.text(".who").endswith("carol")
    assert "Physics lab runs" in b.text("main")
    b.screenshot("oidc-3-back-logged-in")
    b.submit("header form button[type=submit]")  # log out: here, then at the provider
    assert b.driver.current_url.startswith(provider.issuer)
    b.screenshot("oidc-4-provider-logout")
    b.find('button[name="logout"]').click()
    WebDriverWait(b.driver, 15).until(expected_conditions.url_to_be(live_server.url))
    assert "carol" not in b.text("header")
    b.go(f"/{pid}/")
    assert "/_login" in b.driver.current_url
