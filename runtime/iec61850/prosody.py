"""A private Prosody XMPP server on loopback, for the tests, the benchmark and the demo.

Everything lives in one temporary directory: the config, a throw-away test CA with a leaf
certificate for the virtual host (subjectAltName = the domain, because slixmpp checks the
certificate against the JID's domain, not against 127.0.0.1), the account store and the log. The
system Prosody is never touched. Facts behind the config (``run_as_root``, Nagle, smacks) are in
the project's reference notes on the XMPP test server.

With ``client_certs=True`` a second virtual host (:attr:`Prosody.cert_domain`, ``ccert.<domain>``)
authenticates clients with SASL EXTERNAL only: Prosody asks for a client certificate, checks its
chain against the test CA and takes the account from the certificate's subjectAltName
``id-on-xmppAddr`` (community module ``mod_auth_ccert``, Debian package ``prosody-modules``).
:meth:`Prosody.issue_client_cert` makes such certificates.
"""

from __future__ import annotations

import datetime
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gridbind.errors import LocalError
from gridbind.iec61850.errors import Iec61850Error

from .pki import ID_ON_XMPP_ADDR, make_ca_certificate, xmpp_addr

__all__ = [
    "ProsodyError",
    "Prosody",
    "prosody_available",
    "client_cert_auth_available",
    "make_test_pki",
    "make_client_cert",
    "TestPKI",
]

LOOPBACK = "127.0.0.1"
#: id-on-xmppAddr (RFC 6120 section 13.7.1.4): the otherName of a certificate that carries a JID.
ID_ON_XMPPADDR = ID_ON_XMPP_ADDR  # the name this module exported before pki.py
# Where Debian's prosody-modules puts mod_auth_ccert (Prosody's own module dir); other layouts
# keep the community modules apart and need plugin_paths.
_CCERT_DIRS = (
    Path("/usr/lib/prosody/modules"),
    Path("/usr/lib/prosody-modules"),
    Path("/usr/share/prosody-modules"),
    Path("/usr/local/lib/prosody/modules"),
)


class ProsodyError(Iec61850Error, LocalError, RuntimeError):
    """The private Prosody could not be configured, started or used."""


def prosody_available() -> bool:
    """True when both ``prosody`` and ``prosodyctl`` are on PATH."""
    return bool(shutil.which("prosody") and shutil.which("prosodyctl"))


def _ccert_module_dir() -> Path | None:
    for base in _CCERT_DIRS:
        for candidate in (
            base / "mod_auth_ccert" / "mod_auth_ccert.lua",
            base / "mod_auth_ccert.lua",
        ):
            if candidate.is_file():
                return base
    return None


def client_cert_auth_available() -> bool:
    """True when Prosody and its community module ``mod_auth_ccert`` (prosody-modules) exist."""
    return prosody_available() and _ccert_module_dir() is not None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class TestPKI:
    """Paths of a test CA and of leaf certificates signed by it (all PEM)."""

    __test__ = False  # not a pytest test class despite the name

    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "gridbind test"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def make_test_pki(
    directory: Path, domain: str, *, days: int = 2, extra_domains: tuple[str, ...] = ()
) -> TestPKI:
    """Create a P-256 test CA and a server leaf for ``domain`` (SAN DNS:domain) in ``directory``.

    ``extra_domains`` are further DNS names of the leaf (other virtual hosts of the server).
    """
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    until = now + datetime.timedelta(days=days)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name(f"gridbind test CA for {domain}")
    ca_cert = make_ca_certificate(ca_name, ca_key, not_before=now, not_after=until, path_length=0)
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name(domain))
        .issuer_name(ca_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(until)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(d) for d in (domain, *extra_domains)]),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pki = TestPKI(
        ca_cert=directory / "ca.pem",
        ca_key=directory / "ca.key",
        server_cert=directory / "cert.pem",
        server_key=directory / "key.pem",
    )
    pki.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    _write_key(pki.ca_key, ca_key)
    pki.server_cert.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    _write_key(pki.server_key, leaf_key)
    return pki


def make_client_cert(
    ca_cert: Path,
    ca_key: Path,
    jid: str,
    directory: Path,
    *,
    name: str | None = None,
    days: int = 2,
) -> tuple[Path, Path]:
    """Issue a client certificate for ``jid`` signed by the CA in ``ca_cert``/``ca_key``.

    The JID travels as subjectAltName otherName ``id-on-xmppAddr`` (UTF8String, RFC 6120 section
    13.7.1.4, what ``mod_auth_ccert`` reads) and as the subject CN. Returns ``(cert, key)`` PEM
    paths in ``directory`` (file stem ``name``, default the JID's local part).
    """
    directory.mkdir(parents=True, exist_ok=True)
    issuer = x509.load_pem_x509_certificate(Path(ca_cert).read_bytes())
    signer = serialization.load_pem_private_key(Path(ca_key).read_bytes(), password=None)
    if not isinstance(signer, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
        raise ProsodyError(f"{ca_key}: a CA key must be EC or RSA (signed with SHA-256)")
    now = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(jid))
        .issuer_name(issuer.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([xmpp_addr(jid)]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), False
        )
        .sign(signer, hashes.SHA256())
    )
    stem = name or jid.split("@", 1)[0]
    cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key_path, key)
    return cert_path, key_path


_CONFIG = """\
-- generated by gridbind.iec61850.prosody: a private, loopback-only test instance
run_as_root = true
pidfile = "{dir}/prosody.pid"
data_path = "{dir}/data"
log = {{ info = "{dir}/prosody.log" }}
interfaces = {{ "{host}" }}
local_interfaces = {{ "{host}" }}
c2s_ports = {{ {c2s} }}
c2s_direct_tls_ports = {{ {c2s_tls} }}
s2s_ports = {{ }}
s2s_direct_tls_ports = {{ }}
http_ports = {{ }}
https_ports = {{ }}
modules_enabled = {{ "roster"; "saslauth"; "tls"; "disco"; "ping"; "smacks" }}
modules_disabled = {{ "s2s"; "s2s_auth_certs" }}
c2s_require_encryption = true
allow_registration = false
authentication = "internal_hashed"
storage = "internal"
smacks_hibernation_time = {hibernation}
certificates = "{dir}/certs"
ssl = {{ certificate = "{dir}/pki/cert.pem"; key = "{dir}/pki/key.pem"; }}
network_settings = {{ nagle = false }}
VirtualHost "{domain}"
"""

# SASL EXTERNAL only (mod_auth_ccert): the account is the certificate's id-on-xmppAddr on this
# host. verify peer + client_once asks the client for a certificate, on STARTTLS (c2s_ssl) and on
# direct TLS (c2s_direct_tls_ssl, chosen by SNI). Prosody's default verifyext lsec_continue stays:
# a bad chain gets through the handshake so that mod_auth_ccert refuses it in SASL
# (<not-authorized/>, a clear error, not a TLS alert); its default lsec_ignore_purpose is removed
# (`= false` takes an entry out of the set): with it, OpenSSL checks a client certificate as a
# server certificate (serverAuth) and refuses the clientAuth-only certificates made here.
_CCERT_TLS = """{{
        certificate = "{dir}/pki/cert.pem";
        key = "{dir}/pki/key.pem";
        cafile = "{dir}/pki/ca.pem";
        capath = false;
        verify = {{ "peer"; "client_once" }};
        verifyext = {{ lsec_ignore_purpose = false }};
    }}"""
_CCERT_HOST = f"""
VirtualHost "{{cert_domain}}"
    authentication = "ccert"
    certificate_match = "xmppaddr"
    c2s_ssl = {_CCERT_TLS}
    c2s_direct_tls_ssl = {_CCERT_TLS}
"""


@dataclass
class Prosody:
    """A private Prosody instance: ``start()``, ``register(user, password)``, ``stop()``.

    Use as a context manager. ``c2s_port`` speaks STARTTLS, ``c2s_tls_port`` direct TLS; clients
    must trust :attr:`ca_cert`. ``hibernation`` is XEP-0198's resumption window in seconds.
    """

    domain: str = "test.local"
    hibernation: int = 600
    directory: Path | None = None
    start_timeout: float = 10.0
    #: Add the SASL EXTERNAL virtual host :attr:`cert_domain` (needs prosody-modules).
    client_certs: bool = False
    #: Log at debug level (what an operator could see of the traffic).
    debug_log: bool = False
    #: Modules enabled beside the default ones (e.g. ``("offline",)`` to store messages).
    extra_modules: tuple[str, ...] = ()
    c2s_port: int = 0
    c2s_tls_port: int = 0
    host: str = LOOPBACK
    _proc: subprocess.Popen | None = field(default=None, init=False, repr=False)
    _own_dir: bool = field(default=False, init=False, repr=False)
    pki: TestPKI | None = field(default=None, init=False)

    @property
    def config_path(self) -> Path:
        assert self.directory is not None
        return self.directory / "prosody.cfg.lua"

    @property
    def log_path(self) -> Path:
        assert self.directory is not None
        return self.directory / "prosody.log"

    @property
    def ca_cert(self) -> Path:
        """PEM file of the CA that signed the server certificate."""
        if self.pki is None:
            raise ProsodyError("Prosody is not configured yet")
        return self.pki.ca_cert

    @property
    def cert_domain(self) -> str:
        """The virtual host of certificate (SASL EXTERNAL) accounts, when ``client_certs``."""
        return f"ccert.{self.domain}"

    def issue_client_cert(self, user: str, directory: Path | None = None) -> tuple[Path, Path]:
        """A client certificate of the test CA for ``user@cert_domain``: ``(cert, key)`` paths.

        No account needs registering: on :attr:`cert_domain` the certificate is the account.
        """
        self.configure()
        assert self.pki is not None and self.directory is not None
        jid = f"{user}@{self.cert_domain}"
        return make_client_cert(
            self.pki.ca_cert, self.pki.ca_key, jid, directory or self.directory / "clients"
        )

    def configure(self) -> None:
        """Write the directory, certificates and config (idempotent)."""
        if not prosody_available():
            raise ProsodyError("prosody/prosodyctl not found (Debian: apt-get install prosody)")
        if self.directory is None:
            self.directory = Path(tempfile.mkdtemp(prefix="gridbind-prosody-"))
            self._own_dir = True
        if self.pki is not None:
            return
        (self.directory / "data").mkdir(parents=True, exist_ok=True)
        (self.directory / "certs").mkdir(exist_ok=True)
        config = _CONFIG
        if self.debug_log:
            config = config.replace("log = {{ info =", "log = {{ debug =", 1)
        if self.extra_modules:
            more = "".join(f' "{name}";' for name in self.extra_modules)
            config = config.replace('"smacks" }}', f'"smacks";{more} }}}}', 1)
        extra: tuple[str, ...] = ()
        if self.client_certs:
            modules = _ccert_module_dir()
            if modules is None:
                raise ProsodyError(
                    "client_certs needs mod_auth_ccert (Debian: apt-get install prosody-modules)"
                )
            if modules != _CCERT_DIRS[0]:
                config = f'plugin_paths = {{{{ "{modules}" }}}}\n' + config
            # Direct TLS also needs the request at port level: the SNI switch to the host's
            # context swaps the certificate but keeps the port context's verify mode (measured).
            config = config.replace(
                "network_settings", f"c2s_direct_tls_ssl = {_CCERT_TLS}\nnetwork_settings", 1
            )
            config += _CCERT_HOST
            extra = (self.cert_domain,)
        self.pki = make_test_pki(self.directory / "pki", self.domain, extra_domains=extra)
        self.c2s_port = self.c2s_port or _free_port()
        self.c2s_tls_port = self.c2s_tls_port or _free_port()
        self.config_path.write_text(
            config.format(
                dir=self.directory,
                host=self.host,
                c2s=self.c2s_port,
                c2s_tls=self.c2s_tls_port,
                hibernation=int(self.hibernation),
                domain=self.domain,
                cert_domain=self.cert_domain,
            )
        )

    def register(self, user: str, password: str) -> str:
        """Create (or reset) the account ``user@domain``; returns the bare JID."""
        self.configure()
        result = subprocess.run(
            [
                "prosodyctl",
                "--config",
                str(self.config_path),
                "register",
                user,
                self.domain,
                password,
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if result.returncode != 0:
            raise ProsodyError(
                f"prosodyctl register {user}@{self.domain} failed: "
                f"{(result.stderr or result.stdout).strip()}"
            )
        return f"{user}@{self.domain}"

    def start(self) -> None:
        """Start Prosody in the foreground as a child and wait until both c2s ports accept."""
        self.configure()
        if self._proc is not None and self._proc.poll() is None:
            return
        self._proc = subprocess.Popen(
            ["prosody", "-F", "--config", str(self.config_path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + self.start_timeout
        pending = {self.c2s_port, self.c2s_tls_port}
        while pending:
            if self._proc.poll() is not None:
                raise ProsodyError(
                    f"prosody exited with {self._proc.returncode}: {self._log_tail()}"
                )
            for port in list(pending):
                try:
                    with socket.create_connection((self.host, port), timeout=0.2):
                        pending.discard(port)
                except OSError:
                    pass
            if pending and time.monotonic() > deadline:
                self.stop()
                raise ProsodyError(
                    f"prosody did not open ports {sorted(pending)} in {self.start_timeout} s: "
                    f"{self._log_tail()}"
                )
            if pending:
                time.sleep(0.02)

    def _log_tail(self, lines: int = 15) -> str:
        try:
            return " | ".join(self.log_path.read_text().splitlines()[-lines:])
        except OSError:
            return "(no log)"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL after ``timeout``)."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)

    def cleanup(self) -> None:
        """Stop and remove the temporary directory when this object created it."""
        self.stop()
        if self._own_dir and self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> Prosody:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    def __del__(self) -> None:  # last resort: never leave an orphan server behind
        proc = self._proc
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass
