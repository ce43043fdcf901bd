"""A real OpenID Connect provider (Node ``oidc-provider`` v9, tests/oidc/provider.mjs) on
a loopback port, and a scripted browser for its login page.

Accounts: ``carol`` (groups physics-lab), ``erin`` (physics-lab too, for tests that
change her groups: :meth:`OidcProvider.set_groups`), ``dave`` (no groups), ``testuser`` (a
name a local user has). The provider's development login page takes any password.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urljoin

import pytest
import requests
from conftest import free_port, unavailable, wait_listening
from joserfc.jwk import RSAKey

HERE = Path(__file__).parent / "oidc"
CLIENT_ID, CLIENT_SECRET = "sumatra-test", "a-client-secret-for-tests"
#: Where the in-process test app (webtest, host localhost) takes the provider's answer.
CALLBACK = "http://localhost/_login/oidc/callback"
ACCOUNTS = {
    "carol": {"preferred_username": "carol", "name": "Carol Curie",
              "email": "carol@example.org", "groups": ["physics-lab"]},
    "erin": {"preferred_username": "erin", "name": "Erin Euler", "email": "erin@example.org",
             "groups": ["physics-lab"]},
    "dave": {"preferred_username": "dave", "name": "Dave Dirac", "email": "dave@example.org",
             "groups": []},
    "testuser": {"preferred_username": "testuser", "name": "Impostor", "groups": []},
    "bad name": {"preferred_username": "bad*name", "groups": []},
}


def signing_key(kid: str) -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"},
                               private=True)


class OidcProvider:
    def __init__(self, root: Path, redirect_uris: list[str], kid: str = "key-1"):
        node = shutil.which("node")
        if node is None or not (HERE / "node_modules" / "oidc-provider").exists():
            unavailable("node and oidc-provider are needed: npm install --prefix tests/oidc "
                        "oidc-provider@9")
        self.node, self.root, self.redirect_uris = node, root, redirect_uris
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.key = signing_key(kid)

    def start(self) -> None:
        config = {"port": self.port, "accounts": json.loads(json.dumps(ACCOUNTS)),
                  "jwks": {"keys": [self.key.as_dict(private=True)]},
                  "client": {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                             "redirect_uris": self.redirect_uris,
                             "post_logout_redirect_uris": [
                                 u.split("/_login")[0] + "/" for u in self.redirect_uris],
                             "grant_types": ["authorization_code"],
                             "response_types": ["code"],
                             "token_endpoint_auth_method": "client_secret_basic"}}
        self.config = config
        self.config_path = path = self.root / f"provider-{self.port}.json"
        path.write_text(json.dumps(config))
        self.log = open(self.root / "provider.log", "ab")  # noqa: SIM115 - closed in stop
        self.proc = subprocess.Popen([self.node, str(HERE / "provider.mjs"), str(path)],
                                     cwd=HERE, stdout=self.log, stderr=subprocess.STDOUT)
        wait_listening(self.proc, self.port, "the provider",
                       lambda: (self.root / "provider.log").read_text(), timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if getattr(self, "log", None):
            self.log.close()

    def set_groups(self, login: str, groups: list[str]) -> None:
        """The account's groups in its next ID token (the provider reads them per login)."""
        self.config["accounts"][login] = {**self.config["accounts"][login], "groups": groups}
        self.config_path.write_text(json.dumps(self.config))

    def rotate(self, kid: str) -> None:
        """Restart with a new signing key (the old one is no longer published)."""
        self.stop()
        self.key = signing_key(kid)
        self.start()

    def settings(self, **extra: str) -> dict[str, str]:
        return {"sumatra.oidc.issuer": self.issuer, "sumatra.oidc.client_id": CLIENT_ID,
                "sumatra.oidc.client_secret_env": "TEST_OIDC_CLIENT_SECRET",
                "sumatra.oidc.name": "Example University",
                "sumatra.oidc.scopes": "openid profile email groups",
                "sumatra.oidc.timeout": "5", **extra}


def log_in_at_provider(authorize_url: str, login: str, stop_at: str,
                       session: requests.Session | None = None) -> str:
    """Follow the provider's pages like a browser (its own login form) until a redirect
    to ``stop_at`` (our callback); return that URL."""
    http = session or requests.Session()
    url = authorize_url
    for _ in range(20):
        if url.startswith(stop_at):
            return url
        res = http.get(url, allow_redirects=False, timeout=10)
        if res.is_redirect:
            url = urljoin(url, res.headers["Location"])
            continue
        assert res.status_code == 200, (res.status_code, res.text[:500])
        action = res.text.split('action="', 1)[1].split('"', 1)[0]
        res = http.post(urljoin(url, action), data={"prompt": "login", "login": login,
                                                    "password": "any"},
                        allow_redirects=False, timeout=10)
        assert res.is_redirect, (res.status_code, res.text[:500])
        url = urljoin(url, res.headers["Location"])
    raise AssertionError("the provider never sent the browser back")


# -- fixtures for the login tests (import them: ``from oidcprovider import provider,
# oidc_app_settings  # noqa: F401 - fixtures``) --------------------------------------


@pytest.fixture(scope="module")
def provider(tmp_path_factory):
    """A provider started for this module, redirecting to :data:`CALLBACK`."""
    server = OidcProvider(tmp_path_factory.mktemp("oidc"), [CALLBACK])
    server.start()
    yield server
    server.stop()


@pytest.fixture(name="app_settings")
def oidc_app_settings(app_settings, provider, monkeypatch):
    """The app's settings with OpenID Connect on ``provider`` (keys refetched after 1 s,
    so that the key rotation test need not wait)."""
    monkeypatch.setenv("TEST_OIDC_CLIENT_SECRET", CLIENT_SECRET)
    return {**app_settings, **provider.settings(**{"sumatra.oidc.jwks_refetch_seconds": "1"})}
