"""Checks of a peer's E2E certificate: trust path, validity, keyUsage and the peer's JID.

- Path: the certificate, then the ``certPath`` certificates the peer sent (at most
  :data:`MAX_PATH`), up to a configured trust anchor; every link's signature is verified
  (``verify_directly_issued_by``) and every certificate must be valid at ``now``. An
  intermediate must be a CA (basicConstraints CA true) with keyUsage keyCertSign, and every CA
  on the path (the anchor too) must allow the intermediates below it (pathLenConstraint). No
  revocation source is consulted (diagnostic 10 stays reserved).
- keyUsage of the end-entity certificate: the extension must be present with both
  ``digitalSignature`` and ``keyAgreement`` (IEC 62351-4 E2E certificate).
- Identity: the peer's bare JID must be in the certificate's subjectAltName, as an ``otherName``
  ``id-on-xmppAddr`` (1.3.6.1.5.5.7.8.5, RFC 6120 13.7.1.4: a DER UTF8String) or as a URI
  ``xmpp:<bare JID>``; the comparison is case-insensitive and ignores the resource. The subject
  common name is never used.
"""

from __future__ import annotations

from datetime import UTC, datetime

from cryptography import x509

from gridbind.iec61850.e2e.config import bare_jid
from gridbind.iec61850.e2e.diagnostics import HandshakeDiag, HandshakeError
from gridbind.iec61850.pki import ID_ON_XMPP_ADDR, parse_der_utf8string

__all__ = [
    "ID_ON_XMPP_ADDR",
    "MAX_PATH",
    "certificate_jids",
    "check_certificate",
    "load_certificate",
]

#: At most this many intermediates are followed.
MAX_PATH = 4


def _fail(diag: HandshakeDiag, detail: str) -> HandshakeError:
    return HandshakeError(diag, detail)


def load_certificate(der: bytes) -> x509.Certificate:
    """A peer's DER certificate, parsed eagerly; MALFORMED_CERTIFICATE on any parsing failure.

    ``cryptography`` parses lazily: an unknown key algorithm (``UnsupportedAlgorithm``), a
    malformed extension or key only shows when used, so key and extensions are touched here.
    """
    try:
        cert = x509.load_der_x509_certificate(der)
        cert.public_key()
        list(cert.extensions)
        cert.subject, cert.issuer  # noqa: B018 - forces their parsing
    except Exception as exc:  # noqa: BLE001 - any parser failure is a malformed certificate
        raise _fail(
            HandshakeDiag.MALFORMED_CERTIFICATE, f"not a usable DER certificate: {exc}"
        ) from None
    return cert


def certificate_jids(cert: x509.Certificate) -> list[str]:
    """The JIDs a certificate names in its subjectAltName (xmppAddr and ``xmpp:`` URIs)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    jids = []
    for other in san.get_values_for_type(x509.OtherName):
        if other.type_id == ID_ON_XMPP_ADDR:
            value = parse_der_utf8string(other.value)
            if value is not None:
                jids.append(value)
    for uri in san.get_values_for_type(x509.UniformResourceIdentifier):
        if uri.startswith("xmpp:"):
            jids.append(uri[5:])
    return jids


def _valid_at(cert: x509.Certificate, now: datetime, what: str) -> None:
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise _fail(
            HandshakeDiag.CERTIFICATE_NOT_VALID_NOW,
            f"{what} is valid {cert.not_valid_before_utc:%Y-%m-%d %H:%M} .. "
            f"{cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC, not at {now:%Y-%m-%d %H:%M}",
        )


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except Exception:  # noqa: BLE001 - InvalidSignature, ValueError, TypeError by key type
        return False
    return True


def _check_issuing_ca(ca: x509.Certificate, below: int, what: str, anchor: bool) -> None:
    """``ca`` may issue the path below it, which holds ``below`` intermediates (RFC 5280 6.1.4).

    A trust anchor is configured, not sent: only its pathLenConstraint, when present, applies."""
    try:
        constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if not anchor:
        if constraints is None or not constraints.ca:
            raise _fail(HandshakeDiag.INVALID_CERTIFICATE_PATH, f"{what} is not a CA")
        try:
            usage = ca.extensions.get_extension_for_class(x509.KeyUsage).value
        except x509.ExtensionNotFound:
            usage = None
        if usage is None or not usage.key_cert_sign:
            raise _fail(HandshakeDiag.INVALID_CERTIFICATE_PATH, f"{what} lacks keyCertSign")
    limit = constraints.path_length if constraints is not None else None
    if limit is not None and below > limit:
        raise _fail(
            HandshakeDiag.INVALID_CERTIFICATE_PATH,
            f"{what} allows {limit} intermediate(s) below it, the path has {below}",
        )


def check_certificate(
    leaf_der: bytes,
    path_der: list[bytes],
    anchors: tuple[x509.Certificate, ...],
    now: float,
    peer_jid: str,
) -> x509.Certificate:
    """The peer's end-entity certificate if it passes every check; HandshakeError otherwise."""
    leaf = load_certificate(leaf_der)
    path = [load_certificate(d) for d in path_der]
    if len(path) > MAX_PATH:
        raise _fail(HandshakeDiag.INVALID_CERTIFICATE_PATH, f"certPath longer than {MAX_PATH}")
    at = datetime.fromtimestamp(now, tz=UTC)
    current = leaf
    for below in range(MAX_PATH + 1):
        anchor = next((a for a in anchors if _issued_by(current, a)), None)
        if anchor is not None:
            _check_issuing_ca(anchor, below, "the trust anchor", anchor=True)
            break
        # Any issuer found is checked, so a non-CA one is a clear path error, not "untrusted".
        nxt = next((c for c in path if _issued_by(current, c)), None)
        if nxt is None:
            raise _fail(
                HandshakeDiag.UNTRUSTED_CERTIFICATE,
                f"no path from {leaf.subject.rfc4514_string()} to a trust anchor",
            )
        _valid_at(nxt, at, "an intermediate CA certificate")
        _check_issuing_ca(nxt, below, f"intermediate {nxt.subject.rfc4514_string()}", anchor=False)
        current = nxt
    else:
        raise _fail(HandshakeDiag.INVALID_CERTIFICATE_PATH, "certificate path loops")
    _valid_at(leaf, at, "the E2E certificate")
    try:
        usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        raise _fail(
            HandshakeDiag.INVALID_KEY_USAGE, "the E2E certificate has no keyUsage"
        ) from None
    if not (usage.digital_signature and usage.key_agreement):
        raise _fail(
            HandshakeDiag.INVALID_KEY_USAGE,
            "keyUsage must include digitalSignature and keyAgreement",
        )
    want = bare_jid(peer_jid)
    names = certificate_jids(leaf)
    if want not in (bare_jid(n) for n in names):
        raise _fail(
            HandshakeDiag.PEER_IDENTITY_MISMATCH,
            f"certificate names {names or 'no JID'}, the peer is {want}",
        )
    return leaf
