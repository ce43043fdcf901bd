"""LDAP / Active Directory login: a plugin (``sumatra.plugins = ldap``).

HTTP Basic (``smt``) and the login form reach it through ``sumatra_authenticate``: the
user's password is checked by *binding as the user* (the directory decides; nothing is
stored here). A verified bind is remembered for ``sumatra.ldap.cache_seconds`` (a keyed
digest of the password, as passwords.VerifiedCache does) with the user's profile and
groups, so a sweep's thousands of requests bind once. The directory unreachable is
:class:`DirectoryUnavailable` (503 + Retry-After) for directory users only: local users
are decided by the built-in check before this plugin is asked.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import queue
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from ldap3 import BASE, SUBTREE, Connection, Server, Tls
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn

from ..storage.hookspecs import hookimpl
from ..storage.types import ExternalIdentity
from ..usernames import username_problem
from .external import DirectoryUnavailable, usable_groups
from .settings import ConfigError, SettingsReader

log = logging.getLogger(__name__)
PREFIX = "sumatra.ldap."
T = TypeVar("T")


@dataclass(frozen=True)
class LdapSettings:
    url: str
    starttls: bool
    ca_file: str | None
    timeout: float
    #: Direct bind: ``uid={username},ou=people,dc=example,dc=org`` (no search needed).
    user_dn_template: str | None
    #: Search for the user's DN (Active Directory: ``(sAMAccountName={username})``).
    user_search_base: str | None
    user_filter: str
    #: The service account for searches (None: anonymous searches).
    bind_dn: str | None
    bind_password: str | None
    group_search_base: str | None
    group_filter: str
    group_name_attribute: str
    display_name_attribute: str
    mail_attribute: str
    cache_seconds: float
    pool_size: int

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> LdapSettings:
        """Read ``sumatra.ldap.*``; a missing or wrong setting raises ConfigError naming it."""
        read = SettingsReader(settings, PREFIX)
        url = read.required("url")
        if not url.startswith(("ldap://", "ldaps://")):
            raise ConfigError(f"{PREFIX}url must start with ldap:// or ldaps://, not {url!r}")
        starttls = read.boolean("starttls", False)
        if starttls and url.startswith("ldaps://"):
            raise ConfigError(f"{PREFIX}starttls is for ldap:// URLs; ldaps:// is TLS already")
        template = read.optional("user_dn_template")
        search_base = read.optional("user_search_base")
        if bool(template) == bool(search_base):
            raise ConfigError(f"set exactly one of {PREFIX}user_dn_template (direct bind) and "
                              f"{PREFIX}user_search_base (search, then bind)")
        if template and "{username}" not in template:
            raise ConfigError(f"{PREFIX}user_dn_template must contain {{username}}")
        user_filter = read.optional("user_filter") or "(uid={username})"
        if "{username}" not in user_filter:
            raise ConfigError(f"{PREFIX}user_filter must contain {{username}}")
        bind_dn = read.optional("bind_dn")
        bind_password = read.secret("bind_password")
        if bind_dn and bind_password is None:
            raise ConfigError(f"{PREFIX}bind_dn is set: set {PREFIX}bind_password_env to the "
                              "name of the environment variable holding its password")
        group_filter = read.optional("group_filter") or "(member={dn})"
        if "{dn}" not in group_filter and "{username}" not in group_filter:
            raise ConfigError(f"{PREFIX}group_filter must contain {{dn}} or {{username}}")
        return cls(
            url=url, starttls=starttls, ca_file=read.optional("ca_file"),
            timeout=read.number("timeout", 5.0, low=0.1, high=60),
            user_dn_template=template, user_search_base=search_base,
            user_filter=user_filter, bind_dn=bind_dn, bind_password=bind_password,
            group_search_base=read.optional("group_search_base"), group_filter=group_filter,
            group_name_attribute=read.optional("group_name_attribute") or "cn",
            display_name_attribute=read.optional("display_name_attribute") or "displayName",
            mail_attribute=read.optional("mail_attribute") or "mail",
            cache_seconds=read.number("cache_seconds", 300.0, low=0, high=86400),
            pool_size=int(read.number("pool_size", 4, low=1, high=64)),
        )


class BindCache:
    """Verified binds for ``ttl`` seconds: (username) → (keyed password digest, identity).

    Bounded (cleared when full); the key lives in this process only, so the cache
    holds nothing a reader could use as a password.
    """

    def __init__(self, ttl: float, size: int = 4096):
        self.ttl = ttl
        self.size = size
        self._key = os.urandom(32)
        self._entries: dict[str, tuple[bytes, float, ExternalIdentity]] = {}
        self._read: dict[str, tuple[float, ExternalIdentity]] = {}
        self._lock = threading.Lock()

    def _digest(self, password: str) -> bytes:
        return hmac.new(self._key, password.encode("utf-8", "surrogatepass"),
                        hashlib.sha256).digest()

    def verified(self, username: str, password: str) -> ExternalIdentity | None:
        entry = self._entries.get(username)
        if entry is None or entry[1] < time.monotonic():
            return None
        return entry[2] if hmac.compare_digest(entry[0], self._digest(password)) else None

    def identity(self, username: str) -> ExternalIdentity | None:
        """The identity of the last verified bind or refresh, while fresh (any password)."""
        now = time.monotonic()
        entry = self._entries.get(username)
        if entry and entry[1] >= now:
            return entry[2]
        read = self._read.get(username)
        return read[1] if read and read[0] >= now else None

    def add_identity(self, username: str, identity: ExternalIdentity) -> None:
        """A refresh read without a password (sessions, API tokens): reused for ``ttl``."""
        if self.ttl <= 0:
            return
        with self._lock:
            if len(self._read) >= self.size:
                self._read.clear()
            self._read[username] = (time.monotonic() + self.ttl, identity)

    def add(self, username: str, password: str, identity: ExternalIdentity) -> None:
        if self.ttl <= 0:
            return
        with self._lock:
            if len(self._entries) >= self.size:
                self._entries.clear()
            self._entries[username] = (self._digest(password),
                                       time.monotonic() + self.ttl, identity)


class Directory:
    """Talks to the directory: binds, searches; service connections are pooled."""

    def __init__(self, config: LdapSettings):
        self.config = config
        tls = None
        if config.url.startswith("ldaps://") or config.starttls:
            tls = Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=config.ca_file)
        self._tls = tls
        self._pool: queue.LifoQueue[Connection] = queue.LifoQueue(maxsize=config.pool_size)

    def _connect(self, user: str | None, password: str | None) -> Connection:
        """An open, bound connection; raise LDAPException when the server cannot be reached.

        Returns the connection even when the bind was refused (``conn.bound`` is False).
        """
        # A Server per connection: ldap3's Server remembers an address that failed as
        # unavailable for a while, which would outlast a directory restart.
        server = Server(self.config.url, use_ssl=self.config.url.startswith("ldaps://"),
                        tls=self._tls, connect_timeout=self.config.timeout, get_info="NO_INFO")
        conn = Connection(server, user=user, password=password,
                          receive_timeout=max(1, round(self.config.timeout)),
                          raise_exceptions=False, read_only=True, auto_referrals=False)
        conn.open()
        if self.config.starttls and not conn.start_tls():
            conn.unbind()
            raise DirectoryUnavailable("the directory refused StartTLS")
        conn.bind()
        return conn

    def with_service(self, work: Callable[[Connection], T]) -> T:
        """``work(conn)`` on a pooled service connection; once more on a fresh one if the
        pooled one had gone stale (the directory restarted, an idle timeout)."""
        try:
            with self.service() as conn:
                return work(conn)
        except LDAPException:
            self._drain()
            with self.service() as conn:
                return work(conn)

    def _drain(self) -> None:
        while True:
            try:
                self._pool.get_nowait().unbind()
            except queue.Empty:
                return
            except LDAPException:
                continue

    @contextmanager
    def service(self) -> Iterator[Connection]:
        """A bound service-account (or anonymous) connection from the pool."""
        try:
            conn = self._pool.get_nowait()
        except queue.Empty:
            conn = self._connect(self.config.bind_dn, self.config.bind_password)
            if not conn.bound:
                result = conn.result or {}
                conn.unbind()
                # A wrong service password is the operator's to fix: say so in the log.
                log.error("ldap: the service account bind failed: %s",
                          result.get("description"))
                raise DirectoryUnavailable("the directory refused the service account") from None
        try:
            yield conn
        except BaseException:
            conn.unbind()  # unknown state: never back into the pool
            raise
        try:
            self._pool.put_nowait(conn)
        except queue.Full:
            conn.unbind()

    def _search(self, conn: Connection, base: str, search_filter: str, scope, attributes,
                limit: int) -> list:
        if not conn.search(base, search_filter, search_scope=scope, attributes=attributes,
                           size_limit=limit, time_limit=int(self.config.timeout) or 1):
            result = (conn.result or {}).get("description", "")
            if result in ("success", "noSuchObject", "sizeLimitExceeded"):
                return list(conn.entries)
            raise LDAPException(f"search failed: {result}")
        return list(conn.entries)

    def find_user_dn(self, username: str) -> str | None:
        """The DN of ``username``, or None if the directory has no such user."""
        c = self.config
        if c.user_dn_template:
            return c.user_dn_template.format(username=escape_rdn(username))
        search_filter = c.user_filter.format(username=escape_filter_chars(username))
        entries = self.with_service(lambda conn: self._search(
            conn, c.user_search_base, search_filter, SUBTREE, [], 2))
        return entries[0].entry_dn if len(entries) == 1 else None

    def bind(self, dn: str, password: str) -> bool | None:
        """True: the password is right; False: wrong; None: no such entry."""
        conn = self._connect(dn, password)
        try:
            if conn.bound:
                return True
            code = (conn.result or {}).get("description")
            return None if code == "noSuchObject" else False
        finally:
            conn.unbind()

    def identity(self, username: str, dn: str) -> ExternalIdentity | None:
        """Profile and groups of the user at ``dn`` (read with the service connection);
        None if the entry is gone."""
        c = self.config
        attrs = [c.display_name_attribute, c.mail_attribute]

        def read(conn: Connection) -> tuple[list, list[str]]:
            entries = self._search(conn, dn, "(objectClass=*)", BASE, attrs, 1)
            groups: list[str] = []
            if c.group_search_base:
                group_filter = c.group_filter.format(dn=escape_filter_chars(dn),
                                                     username=escape_filter_chars(username))
                found = self._search(conn, c.group_search_base, group_filter, SUBTREE,
                                     [c.group_name_attribute], 1000)
                for entry in found:
                    groups += [str(v) for v in entry[c.group_name_attribute].values]
            return entries, groups

        entries, groups = self.with_service(read)
        if not entries:
            return None
        entry = entries[0]
        return ExternalIdentity(
            username=username, source="ldap",
            display_name=_first(entry, c.display_name_attribute),
            email=_first(entry, c.mail_attribute), groups=usable_groups(groups))


def _first(entry, attribute: str) -> str:
    if entry is None or attribute not in entry:
        return ""
    values = entry[attribute].values
    return str(values[0])[:200] if values else ""


class LdapAuthenticator:
    """The plugin object: ``sumatra_authenticate`` and ``sumatra_external_identity``."""

    def __init__(self, config: LdapSettings, directory: Directory | None = None):
        self.config = config
        self.directory = directory or Directory(config)
        self.cache = BindCache(config.cache_seconds)

    def _unavailable(self, exc: Exception) -> DirectoryUnavailable:
        # The exception text can carry the server's address; the client gets none of it.
        log.warning("ldap: the directory is unreachable: %s", type(exc).__name__)
        return DirectoryUnavailable("the login directory cannot be reached; try again shortly")

    @hookimpl
    def sumatra_authenticate(self, username: str, password: str) -> bool | None:
        # An empty password is an LDAP "unauthenticated bind", which succeeds: refuse it.
        if not password or username_problem(username) or "\0" in password:
            return None
        if self.cache.verified(username, password) is not None:
            return True
        try:
            dn = self.directory.find_user_dn(username)
            if dn is None:
                return None  # not a directory user: the built-in check decides
            verdict = self.directory.bind(dn, password)
            if verdict is None:
                return None
            if not verdict:
                return False
            identity = self.directory.identity(username, dn)
            if identity is None:  # bound but unreadable: a directory misconfiguration
                raise DirectoryUnavailable("the directory entry of the user cannot be read")
            self.cache.add(username, password, identity)
            return True
        except (LDAPException, OSError) as exc:
            raise self._unavailable(exc) from None

    @hookimpl
    def sumatra_external_identity(self, username: str) -> ExternalIdentity | None:
        cached = self.cache.identity(username)
        if cached is not None:
            return cached
        if username_problem(username):
            return None
        try:  # refresh (sessions, tokens): groups as the directory has them now
            dn = self.directory.find_user_dn(username)
            identity = None if dn is None else self.directory.identity(username, dn)
        except (LDAPException, OSError) as exc:
            raise self._unavailable(exc) from None
        if identity is not None:
            self.cache.add_identity(username, identity)
        return identity


def create_plugin(settings: dict[str, Any]) -> LdapAuthenticator:
    """The entry point ``pyramid_sumatra.plugins: ldap``."""
    return LdapAuthenticator(LdapSettings.from_settings(settings))
