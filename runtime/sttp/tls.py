"""TLS configuration shared by both STTP profiles: :class:`TlsConfig`.

``gridbind.sttp.Publisher(profile=..., tls=TlsConfig(...))`` and ``Subscriber(..., tls=...)``
take the same object in ``ieee2664`` and ``draft-0.8``; the CLI builds it from the same
``--tls-*`` options. Option names follow Python's :mod:`ssl`: ``certfile`` / ``keyfile`` (this
side's certificate chain and key), ``cafile`` (the trust anchors peers are validated against),
``server_hostname`` (name expected in the server's certificate), ``require_client_cert``
(server side), ``crlfile`` (revocation), ``minimum_version``.

TLS: 1.3 by default (``minimum_version`` configurable; a connection below the latest version
logs a warning). Peers are validated against ``cafile``: a CA bundle for CA-issued certificates,
or the peer's own self-signed certificate(s) exchanged out of band (pinning: a self-signed
certificate that is not in the file is untrusted). A client without ``cafile`` validates the
server against the system's default trust store. Server-style sockets require and validate
client certificates when ``cafile`` is given (``require_client_cert``: ``None`` = that default,
``True`` = always, ``False`` = validate a certificate the client offers, accept clients without
one), so a publisher can validate its subscribers. Relaxations (``check_hostname=False`` for
NAT'd names, ``verify=False``) are possible but logged loudly.

Revocation ("Certificate Validation": CA-issued certificates are checked against the certificate
revocation lists): ``crlfile`` names PEM CRL(s) of the issuing CA(s). Client-style sockets check
the server's (leaf) certificate during the handshake (``ssl.VERIFY_CRL_CHECK_LEAF``): a revoked
one fails with ``SSLCertVerificationError`` "certificate revoked". Server-style sockets check the
client's leaf certificate right after the handshake instead (:meth:`TlsConfig.refusal`; same
rules: the issuer's CRL must be present, correctly signed by that issuer and current, and must
not list the serial), because asyncio drops the TLS alert of a failed server-side handshake: the
client would only see an EOF and the server would log nothing. The refusal is logged and the
connection closed (the draft profile first sends a terminating RequestFailed naming the cause).
With ``crlfile`` every issuer of a peer leaf needs a CRL (fail-closed, as OpenSSL's "unable to
get certificate CRL"), so it is for CA-issued certificates, not pinned self-signed ones.

Client address (server-style sockets; "Server Certificate Validation" step 3 of the draft):
after the handshake, one of the IP addresses or host names of the validated client certificate
(subjectAltName, else the subject common name) must match the client's peer address; host names
match when they resolve to it. ``check_client_address`` is ``None`` (default: checked for
CA-issued client certificates, not for pinned self-signed ones, whose trust is the out-of-band
exchange itself), ``True`` (always) or ``False`` (never; logged loudly, e.g. behind NAT).
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import logging
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from cryptography import x509

from gridbind.sttp.errors import InvalidArgument

__all__ = [
    "LATEST_TLS",
    "TlsConfig",
    "certificate_addresses",
    "names_resolve_to",
    "peer_identity",
]

log = logging.getLogger("gridbind.sttp.tls")
LATEST_TLS = ssl.TLSVersion.TLSv1_3


@dataclass
class TlsConfig:
    """Certificates and validation policy of one side's TLS sockets."""

    #: This side's certificate chain (PEM); required on server-style sockets.
    certfile: str | None = None
    #: The private key of ``certfile`` (PEM; ``None``: inside ``certfile``).
    keyfile: str | None = None
    #: Trust anchors: CA bundle or pinned self-signed peer certificates (PEM) that peers are
    #: validated against (client side without it: the system's default trust store).
    cafile: str | None = None
    #: Validate the peer's certificate.
    verify: bool = True
    #: Server side: whether clients must present a certificate (``None``: when ``cafile`` is
    #: given; ``False``: validated against ``cafile`` when offered, else accepted without one).
    require_client_cert: bool | None = None
    #: Check the peer's name against the certificate (client side).
    check_hostname: bool = True
    #: Name expected in the server's certificate (client side; defaults to the host dialled).
    server_hostname: str | None = None
    minimum_version: ssl.TLSVersion = LATEST_TLS
    #: PEM certificate revocation list(s) of the CA(s): revoked peer certificates are refused.
    crlfile: str | None = None
    #: Server side: match the client certificate's addresses/names against the peer address
    #: (``None``: for CA-issued client certificates only; ``False``: never, logged loudly).
    check_client_address: bool | None = None
    #: Seconds allowed to resolve a client certificate's host names for that check.
    resolve_timeout: float = 5.0
    _revocation: Any = field(default=None, init=False, repr=False, compare=False)

    def _base(self, purpose: ssl.Purpose) -> ssl.SSLContext:
        protocol = (
            ssl.PROTOCOL_TLS_SERVER
            if purpose == ssl.Purpose.CLIENT_AUTH
            else (ssl.PROTOCOL_TLS_CLIENT)
        )
        context = ssl.SSLContext(protocol)
        context.minimum_version = self.minimum_version
        if self.minimum_version < LATEST_TLS:
            log.warning(
                "TLS minimum version %s is below the latest (%s)",
                self.minimum_version.name,
                LATEST_TLS.name,
            )
        context.options |= ssl.OP_NO_COMPRESSION  # STTP compresses itself
        if self.certfile:
            context.load_cert_chain(self.certfile, self.keyfile)
        if self.cafile:
            context.load_verify_locations(cafile=self.cafile)
        elif purpose == ssl.Purpose.SERVER_AUTH and self.verify:
            context.load_default_certs(purpose)
        if self.crlfile and purpose == ssl.Purpose.SERVER_AUTH:
            context.load_verify_locations(cafile=self.crlfile)  # PEM CRLs join the store
            context.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
        elif self.crlfile:
            self._revocations()  # server side: checked after the handshake; fail early if bad
        return context

    def _revocations(self) -> _Revocations:
        assert self.crlfile
        key = tuple(
            (name, Path(name).stat().st_mtime_ns) for name in (self.crlfile, self.cafile) if name
        )
        if self._revocation is None or self._revocation.key != key:
            self._revocation = _Revocations(key, self.crlfile, self.cafile)
        return self._revocation

    def server_context(self) -> ssl.SSLContext:
        """Context for server-style sockets (publisher listening, or subscriber in reverse mode)."""
        if not self.certfile:
            raise InvalidArgument("a TLS server needs certfile (and keyfile)")
        if self.require_client_cert and not (self.verify and self.cafile):
            raise InvalidArgument("require_client_cert needs cafile (and verify) to validate them")
        context = self._base(ssl.Purpose.CLIENT_AUTH)
        if self.verify and self.cafile:
            required = self.require_client_cert is not False
            context.verify_mode = ssl.CERT_REQUIRED if required else ssl.CERT_OPTIONAL
        elif self.verify:
            context.verify_mode = ssl.CERT_NONE
        else:
            log.warning("TLS server: client certificates are NOT validated (verify=False)")
            context.verify_mode = ssl.CERT_NONE
        if context.verify_mode == ssl.CERT_REQUIRED and self.check_client_address is False:
            log.warning(
                "TLS server: client certificate addresses are NOT checked against the "
                "connecting peer (check_client_address=False)"
            )
        return context

    def client_refusal(
        self, ssl_object: ssl.SSLObject | None, peer: Any
    ) -> tuple[str | None, list[str]]:
        """Server side, after the handshake: ``(None, [])`` when the client may proceed,
        else ``(reason, names)``: refused for ``reason`` (revoked, or not naming the peer
        address) unless one of the host ``names`` of its certificate resolves to the peer
        address (see :func:`names_resolve_to`)."""
        if ssl_object is None or not ssl_object.server_side:
            return None, []
        cert = ssl_object.getpeercert()
        if not cert:
            return None, []  # no validated client certificate (verification off)
        if self.crlfile:
            der = ssl_object.getpeercert(binary_form=True)
            problem = self._revocations().problem(der) if der else "no certificate"
            if problem:
                return f"client certificate {_subject(cert)!r}: {problem}", []
        if self.check_client_address is False:
            return None, []
        if self.check_client_address is None and cert.get("issuer") == cert.get("subject"):
            return None, []  # pinned self-signed: trusted by the out-of-band exchange
        host = _peer_host(peer)
        addresses, names = certificate_addresses(cert)
        try:
            address = _normal(ipaddress.ip_address(host))
        except ValueError:
            address = None
        if address is not None and address in addresses:
            return None, []
        listed = [str(a) for a in addresses] + names
        reason = (
            f"client certificate {_subject(cert)!r} lists {listed or 'no address'}, "
            f"none of which matches the client's address {host}"
        )
        return reason, [n for n in names if "*" not in n]

    async def refusal(self, ssl_object: ssl.SSLObject | None, peer: Any) -> str | None:
        """Server side, after the handshake: why the client is refused (revoked certificate,
        or one naming neither the peer address nor a host name resolving to it), or ``None``
        when it may proceed. Resolving host names takes at most ``resolve_timeout``."""
        reason, names = self.client_refusal(ssl_object, peer)
        if reason is None:
            return None
        if names and await names_resolve_to(names, peer, self.resolve_timeout):
            return None
        return reason + (" (nor does any of its host names resolve to it)" if names else "")

    def client_context(self) -> ssl.SSLContext:
        """Context for client-style sockets (subscriber dialling, or publisher in reverse mode)."""
        context = self._base(ssl.Purpose.SERVER_AUTH)
        if not self.verify:
            log.warning("TLS client: the server certificate is NOT validated (verify=False)")
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        elif not self.check_hostname:
            log.warning("TLS client: certificate name mismatch tolerated (check_hostname=False)")
            context.check_hostname = False
            context.verify_mode = ssl.CERT_REQUIRED
        else:
            context.check_hostname = True
            context.verify_mode = ssl.CERT_REQUIRED
        return context


class _Revocations:
    """The CRLs of ``crlfile`` and the issuer certificates they are checked against."""

    def __init__(self, key: tuple, crlfile: str, cafile: str | None) -> None:
        self.key = key
        text = Path(crlfile).read_bytes()
        marker = b"-----BEGIN X509 CRL-----"
        self.crls = [x509.load_pem_x509_crl(marker + part) for part in text.split(marker)[1:]]
        if not self.crls:
            raise InvalidArgument(f"{crlfile}: no PEM certificate revocation list")
        self.issuers: list[x509.Certificate] = []
        for name in (cafile, crlfile):
            if name and b"-----BEGIN CERTIFICATE-----" in Path(name).read_bytes():
                self.issuers += x509.load_pem_x509_certificates(Path(name).read_bytes())

    def problem(self, der: bytes) -> str | None:
        """Why the certificate ``der`` is not acceptable (``None``: not revoked)."""
        cert = x509.load_der_x509_certificate(der)
        issuer = cert.issuer.rfc4514_string()
        keys = [c.public_key() for c in self.issuers if c.subject == cert.issuer]
        crls = []
        for crl in self.crls:
            if crl.issuer != cert.issuer:
                continue
            for key in keys:
                try:
                    if crl.is_signature_valid(key):  # type: ignore[arg-type]
                        crls.append(crl)
                        break
                except (TypeError, ValueError):
                    continue
        if not crls:
            return f"no valid certificate revocation list of its issuer {issuer!r}"
        now = datetime.datetime.now(datetime.UTC)
        current = [
            crl
            for crl in crls
            if crl.last_update_utc <= now
            and (crl.next_update_utc is None or now <= crl.next_update_utc)
        ]
        if not current:
            return f"the certificate revocation list of {issuer!r} has expired or is not yet valid"
        for crl in current:
            revoked = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
            if revoked is not None:
                when = revoked.revocation_date_utc.isoformat()
                return f"certificate revoked (serial {cert.serial_number:#x}, since {when})"
        return None


def _peer_host(peer: Any) -> str:
    host = peer[0] if isinstance(peer, (tuple, list)) and peer else str(peer)
    return str(host).split("%", 1)[0]


def _normal(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> Any:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _subject(cert: dict) -> str:
    for rdn in cert.get("subject", ()):
        for name, value in rdn:
            if name == "commonName":
                return str(value)
    return ""


def certificate_addresses(cert: dict) -> tuple[list[Any], list[str]]:
    """IP addresses and host names a (``getpeercert()``) certificate is issued for: its
    subjectAltName entries, else the subject common name."""
    addresses: list[Any] = []
    names: list[str] = []
    entries = [(kind, value) for kind, value in cert.get("subjectAltName", ())]
    if not entries:
        entries = [("DNS", _subject(cert))] if _subject(cert) else []
    for kind, value in entries:
        text = str(value).strip()
        try:
            address = _normal(ipaddress.ip_address(text))
        except ValueError:
            if kind == "DNS" and text:
                names.append(text.lower().rstrip("."))
            continue
        if kind in ("IP Address", "DNS"):
            addresses.append(address)
    return addresses, names


#: :func:`names_resolve_to` resolves at most this many host names of one certificate.
MAX_RESOLVED_NAMES = 8


async def names_resolve_to(names: Sequence[str], peer: Any, timeout: float = 5.0) -> bool:
    """Whether one of the host ``names`` resolves to the ``peer`` address.

    ``timeout`` bounds the whole check, not each name; only the first
    :data:`MAX_RESOLVED_NAMES` names are tried (a certificate listing more must name the
    peer by one of those, or by an IP address SAN)."""
    try:
        wanted = _normal(ipaddress.ip_address(_peer_host(peer)))
    except ValueError:
        return False
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    for name in names[:MAX_RESOLVED_NAMES]:
        remaining = deadline - loop.time()
        if remaining <= 0:
            return False
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(name, None, type=socket.SOCK_STREAM), remaining
            )
        except (TimeoutError, OSError, UnicodeError):
            continue
        for info in infos:
            try:
                if _normal(ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])) == wanted:
                    return True
            except ValueError:
                continue
    return False


def peer_identity(ssl_object: ssl.SSLObject | None) -> str | None:
    """Subject common name of a validated peer certificate (``None`` without one)."""
    if ssl_object is None:
        return None
    version = ssl_object.version()
    if version and version != "TLSv1.3":
        log.warning("TLS connection uses %s, below the latest TLSv1.3", version)
    cert = ssl_object.getpeercert()
    if not cert:
        return None
    # typeshed types every entry as a union of the shapes of all keys; "subject" is RDNs of pairs
    subject = cast(tuple[tuple[tuple[str, str], ...], ...], cert.get("subject", ()))
    for rdn in subject:
        for name, value in rdn:
            if name == "commonName":
                return str(value)
    return None
