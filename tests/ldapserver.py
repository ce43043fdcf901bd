"""A real OpenLDAP server (Debian ``slapd``) for the login tests, on a loopback port.

Configured from scratch in a temporary directory (a generated ``slapd.conf``, an mdb
database loaded with ``slapadd``): the package's own instance plays no part. Users:
``ada`` (groups physics-lab, staff), ``bob`` (staff), ``eve`` (no group), and
``testuser`` (a name a local user also has). Every password is ``<name>-pw``.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path

import pytest
from conftest import free_port, unavailable, wait_listening

BASE = "dc=example,dc=org"
ADMIN_DN, ADMIN_PW = f"cn=admin,{BASE}", "admin-secret"
SERVICE_DN, SERVICE_PW = f"cn=reader,{BASE}", "reader-secret"
USERS = {"ada": ("Ada Lovelace", ["physics-lab", "staff"]),
         "bob": ("Bob Builder", ["staff"]),
         "eve": ("Eve Example", []),
         "testuser": ("Directory Testuser", [])}

CONF = """\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {dir}/slapd.pid
database mdb
suffix "{base}"
rootdn "{admin}"
rootpw {admin_pw}
directory {dir}/db
maxsize 10485760
access to attrs=userPassword by anonymous auth by self read by * none
access to * by dn.exact="{service}" read by self read by anonymous none by * read
"""


def user_dn(name: str) -> str:
    return f"uid={name},ou=people,{BASE}"


def ldif() -> str:
    out = [f"dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\no: Example\n"
           "dc: example\n",
           f"dn: ou=people,{BASE}\nobjectClass: organizationalUnit\nou: people\n",
           f"dn: ou=groups,{BASE}\nobjectClass: organizationalUnit\nou: groups\n",
           f"dn: {SERVICE_DN}\nobjectClass: person\ncn: reader\nsn: reader\n"
           f"userPassword: {SERVICE_PW}\n"]
    for name, (full, _) in USERS.items():
        out.append(f"dn: {user_dn(name)}\nobjectClass: inetOrgPerson\nuid: {name}\n"
                   f"cn: {full}\nsn: {full.split()[-1]}\ndisplayName: {full}\n"
                   f"mail: {name}@example.org\nuserPassword: {name}-pw\n")
    groups: dict[str, list[str]] = {}
    for name, (_, member_of) in USERS.items():
        for group in member_of:
            groups.setdefault(group, []).append(name)
    for group, members in groups.items():
        # groupOfNames needs a member: a placeholder, so that every user can be removed
        out.append(f"dn: cn={group},ou=groups,{BASE}\nobjectClass: groupOfNames\ncn: {group}\n"
                   f"member: cn=nobody,{BASE}\n"
                   + "".join(f"member: {user_dn(m)}\n" for m in members))
    return "\n".join(out)


def self_signed(root: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (and its key): the directory's, and the test's CA."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    import ipaddress

    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = root / "cert.pem", root / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class Slapd:
    def __init__(self, root: Path, tls: bool = False):
        if not shutil.which("slapd", path="/usr/sbin:/usr/bin") or \
                not Path("/usr/lib/ldap/back_mdb.so").exists():
            unavailable("OpenLDAP slapd is not installed (apt-get install slapd ldap-utils)")
        self.root = root
        self.port = free_port()
        self.url = f"ldap://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        (root / "db").mkdir(parents=True)
        self.conf = root / "slapd.conf"
        conf = CONF.format(dir=root, base=BASE, admin=ADMIN_DN, admin_pw=ADMIN_PW,
                           service=SERVICE_DN)
        self.urls = [self.url]
        self.cert: Path | None = None
        if tls:  # StartTLS on the ldap:// port, and an ldaps:// port
            self.cert, key = self_signed(root)
            conf = f"TLSCertificateFile {self.cert}\nTLSCertificateKeyFile {key}\n" + conf
            self.ldaps_url = f"ldaps://127.0.0.1:{free_port()}"
            self.urls.append(self.ldaps_url)
        self.conf.write_text(conf)
        data = root / "data.ldif"
        data.write_text(ldif())
        subprocess.run(["/usr/sbin/slapadd", "-f", str(self.conf), "-l", str(data)],
                       check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["/usr/sbin/slapd", "-f", str(self.conf), "-h", " ".join(f"{u}/" for u in self.urls),
             "-d", "0"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_listening(self.proc, self.port, "slapd",
                       lambda: self.proc.stderr.read().decode(), timeout=20)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def modify(self, ldif_text: str) -> None:
        """Change the directory as its administrator would (ldapmodify)."""
        subprocess.run(["ldapmodify", "-x", "-H", self.url, "-D", ADMIN_DN, "-w", ADMIN_PW],
                       input=ldif_text.encode(), check=True, capture_output=True, timeout=30)

    def settings(self, **extra: str) -> dict[str, str]:
        """The ldap plugin's settings for this server (OpenLDAP, search with a service
        account); the service password comes from the environment, as in production."""
        return {"sumatra.plugins": "ldap",
                "sumatra.ldap.url": self.url,
                "sumatra.ldap.user_search_base": f"ou=people,{BASE}",
                "sumatra.ldap.user_filter": "(&(objectClass=inetOrgPerson)(uid={username}))",
                "sumatra.ldap.bind_dn": SERVICE_DN,
                "sumatra.ldap.bind_password_env": "TEST_LDAP_READER_PASSWORD",
                "sumatra.ldap.group_search_base": f"ou=groups,{BASE}",
                "sumatra.ldap.group_filter": "(&(objectClass=groupOfNames)(member={dn}))",
                "sumatra.ldap.timeout": "2",
                **extra}


# -- fixtures for the login tests (import them: ``from ldapserver import slapd,
# ldap_app_settings  # noqa: F401 - fixtures``) ----------------------------------------


@pytest.fixture(scope="module")
def slapd(tmp_path_factory):
    server = Slapd(tmp_path_factory.mktemp("slapd"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(name="app_settings")
def ldap_app_settings(app_settings, slapd, monkeypatch):
    """The app's settings with the ``ldap`` plugin on this module's slapd."""
    monkeypatch.setenv("TEST_LDAP_READER_PASSWORD", SERVICE_PW)
    return {**app_settings, **slapd.settings()}
