"""OpenID Connect login for browsers: authorization code flow with PKCE (Authlib).

Enabled by ``sumatra.oidc.issuer``. ``/_login/oidc`` sends the browser to the
provider with a fresh state, nonce and PKCE verifier kept in the session;
``/_login/oidc/callback`` takes them back *once* (a replayed state is refused),
exchanges the code, and validates the ID token (issuer, audience, expiry, nonce,
signature against the provider's JWKS; an unknown ``kid`` refetches the JWKS, at most
once per ``jwks_refetch_seconds``). The user appears on first login (external, source
``oidc``) and the token's group claim becomes the session's groups until
``sumatra.oidc.groups_seconds``, when the session ends and the browser logs in again.
API clients cannot do OpenID Connect: they use a personal API token made after logging in,
which gets the groups kept at the last login for ``sumatra.oidc.token_groups_max_age``.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from ..storage.types import ExternalIdentity
from .external import DirectoryUnavailable, usable_groups
from .settings import ConfigError, SettingsReader

log = logging.getLogger(__name__)
PREFIX = "sumatra.oidc."
REGISTRY_KEY = "sumatra.oidc"
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"]
MAX_DOCUMENT = 256 * 1024  # discovery and JWKS documents
#: A week: someone who uses smt daily and the browser now and then keeps their group
#: grants; a change of groups reaches their tokens by their next browser login.
DEFAULT_TOKEN_GROUPS_MAX_AGE = 7 * 86400


class LoginFailed(Exception):
    """The provider's answer cannot log anyone in (400); the message is safe to show."""


class InvalidIdToken(LoginFailed):
    """The ID token does not verify (401)."""


@dataclass(frozen=True)
class OidcSettings:
    issuer: str
    client_id: str
    client_secret: str
    name: str
    scopes: str
    username_claim: str
    groups_claim: str
    timeout: float
    groups_seconds: float
    jwks_refetch_seconds: float
    #: How long API tokens use the groups kept at the user's last login (0: never).
    token_groups_max_age: float = DEFAULT_TOKEN_GROUPS_MAX_AGE

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> OidcSettings | None:
        read = SettingsReader(settings, PREFIX)
        issuer = read.optional("issuer")
        if issuer is None:
            return None
        if not issuer.startswith(("https://", "http://127.0.0.1", "http://localhost")):
            raise ConfigError(f"{PREFIX}issuer must be an https:// URL, not {issuer!r}")
        secret = read.secret("client_secret")
        if secret is None:
            raise ConfigError(f"{PREFIX}client_secret_env is required: the name of the "
                              "environment variable holding the client secret")
        scopes = read.optional("scopes") or "openid profile email"
        if "openid" not in scopes.split():
            raise ConfigError(f"{PREFIX}scopes must include openid")
        return cls(
            issuer=issuer.rstrip("/"), client_id=read.required("client_id"),
            client_secret=secret, name=(read.optional("name") or "your institution")[:60],
            scopes=scopes, username_claim=read.optional("username_claim")
            or "preferred_username", groups_claim=read.optional("groups_claim") or "groups",
            timeout=read.number("timeout", 5.0, low=0.1, high=60),
            groups_seconds=read.number("groups_seconds", 3600, low=10, high=86400 * 7),
            jwks_refetch_seconds=read.number("jwks_refetch_seconds", 60, low=0, high=86400),
            token_groups_max_age=read.number("token_groups_max_age",
                                             DEFAULT_TOKEN_GROUPS_MAX_AGE, low=0,
                                             high=90 * 86400),
        )


def _fetch_json(url: str, timeout: float) -> dict:
    """A provider document, bounded in time and size; DirectoryUnavailable if unreachable."""
    try:
        with requests.get(url, timeout=timeout, stream=True,
                          headers={"Accept": "application/json"}) as res:
            res.raise_for_status()
            body = res.raw.read(MAX_DOCUMENT + 1, decode_content=True)
    except requests.RequestException as exc:
        log.warning("oidc: the provider is unreachable: %s", type(exc).__name__)
        raise DirectoryUnavailable("the login provider cannot be reached; try again "
                                   "shortly") from None
    if len(body) > MAX_DOCUMENT:
        raise DirectoryUnavailable("the login provider's answer is too large")
    try:
        doc = json.loads(body)
    except ValueError:
        raise DirectoryUnavailable("the login provider's answer is not JSON") from None
    if not isinstance(doc, dict):
        raise DirectoryUnavailable("the login provider's answer is not a JSON object")
    return doc


class OidcClient:
    """The provider as this server sees it: discovery, JWKS, the code exchange."""

    def __init__(self, config: OidcSettings):
        self.config = config
        self._discovery: dict | None = None
        self._keys: KeySet | None = None
        self._keys_at = float("-inf")
        self._lock = threading.Lock()

    def discovery(self) -> dict:
        if self._discovery is None:
            doc = _fetch_json(self.config.issuer + "/.well-known/openid-configuration",
                              self.config.timeout)
            if doc.get("issuer", "").rstrip("/") != self.config.issuer:
                raise DirectoryUnavailable("the login provider names another issuer")
            for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
                if not isinstance(doc.get(key), str):
                    raise DirectoryUnavailable(f"the login provider has no {key}")
            self._discovery = doc
        return self._discovery

    def _fetch_keys(self) -> KeySet:
        doc = _fetch_json(self.discovery()["jwks_uri"], self.config.timeout)
        try:
            keys = KeySet.import_key_set(doc)
        except (JoseError, ValueError, TypeError, KeyError):
            raise DirectoryUnavailable("the login provider's JWKS cannot be read") from None
        self._keys, self._keys_at = keys, time.monotonic()
        return keys

    def key_for(self, kid: Any):
        """The provider's key ``kid``; an unknown kid refetches the JWKS (key rotation),
        at most once per jwks_refetch_seconds, so forged kids cannot make us hammer it."""
        with self._lock:
            keys = self._keys or self._fetch_keys()
            key = _find(keys, kid)
            if key is None and \
                    time.monotonic() - self._keys_at >= self.config.jwks_refetch_seconds:
                key = _find(self._fetch_keys(), kid)
        if key is None:
            raise InvalidIdToken("the ID token is signed with a key the provider does not "
                                 "publish")
        return key

    def authorization_url(self, redirect_uri: str) -> tuple[str, dict[str, str]]:
        """Where to send the browser, and what the session keeps for the callback."""
        pending = {"state": generate_token(32), "nonce": generate_token(32),
                   "verifier": generate_token(64)}
        session = self._session(redirect_uri)
        url, _ = session.create_authorization_url(
            self.discovery()["authorization_endpoint"], state=pending["state"],
            nonce=pending["nonce"], code_verifier=pending["verifier"])
        return url, pending

    def _session(self, redirect_uri: str) -> OAuth2Session:
        return OAuth2Session(self.config.client_id, self.config.client_secret,
                             scope=self.config.scopes, redirect_uri=redirect_uri,
                             code_challenge_method="S256")

    def exchange(self, redirect_uri: str, code: str, verifier: str) -> str:
        """The ID token for an authorization code."""
        try:
            token = self._session(redirect_uri).fetch_token(
                self.discovery()["token_endpoint"], grant_type="authorization_code",
                code=code, code_verifier=verifier, timeout=self.config.timeout)
        except requests.RequestException as exc:
            log.warning("oidc: the token endpoint is unreachable: %s", type(exc).__name__)
            raise DirectoryUnavailable("the login provider cannot be reached") from None
        except Exception as exc:  # Authlib's OAuthError and kin: the provider said no
            log.info("oidc: the code exchange was refused: %s", type(exc).__name__)
            raise LoginFailed("the login provider refused the code (expired or "
                              "used already); log in again") from None
        id_token = token.get("id_token")
        if not isinstance(id_token, str) or len(id_token) > 16384:
            raise LoginFailed("the login provider sent no usable ID token")
        return id_token

    def validate(self, id_token: str, nonce: str) -> dict[str, Any]:
        """The ID token's claims once signature, issuer, audience, times and nonce hold."""
        c = self.config
        try:
            token = jwt.decode(id_token, lambda obj: self.key_for(obj.headers().get("kid")),
                               algorithms=ALGORITHMS)
            jwt.JWTClaimsRegistry(
                leeway=60, iss={"essential": True, "value": c.issuer},
                aud={"essential": True, "value": c.client_id},
                exp={"essential": True}, iat={"essential": True},
                sub={"essential": True}, nonce={"essential": True, "value": nonce},
            ).validate(token.claims)
        except InvalidIdToken:
            raise
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise InvalidIdToken(f"the ID token does not verify ({type(exc).__name__})") \
                from None
        claims = token.claims
        azp = claims.get("azp")
        if isinstance(claims.get("aud"), list) and len(claims["aud"]) > 1 and \
                azp != c.client_id:
            raise InvalidIdToken("the ID token was issued to another client")
        return claims

    def identity(self, claims: dict[str, Any]) -> ExternalIdentity:
        c = self.config
        username = claims.get(c.username_claim)
        if not isinstance(username, str):
            raise LoginFailed(f"the ID token has no {c.username_claim!r} claim")

        def text(name: str) -> str:
            value = claims.get(name)
            return value[:200] if isinstance(value, str) else ""

        return ExternalIdentity(username=username, source="oidc", display_name=text("name"),
                                email=text("email"),
                                groups=usable_groups(claims.get(c.groups_claim)))


def token_groups_max_age(registry: Any) -> float:
    """Seconds API tokens use an OpenID user's kept groups; 0 without OpenID Connect
    configured (no provider vouches for them any more)."""
    client = registry.get(REGISTRY_KEY)
    return client.config.token_groups_max_age if client is not None else 0.0


def _find(keys: KeySet, kid: Any):
    if isinstance(kid, str):
        try:
            return keys.get_by_kid(kid)
        except (JoseError, ValueError, KeyError):
            return None
    return keys.keys[0] if len(keys.keys) == 1 else None  # no kid: only if unambiguous


def same(a: Any, b: Any) -> bool:
    return isinstance(a, str) and isinstance(b, str) and hmac.compare_digest(a, b)
