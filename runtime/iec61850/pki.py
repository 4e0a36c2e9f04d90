"""X.509 pieces shared by the XMPP test PKI (:mod:`.prosody`), the E2E test certificates
(:mod:`.e2e_certs`) and the E2E trust checks (:mod:`.e2e.trust`).

- ``id-on-xmppAddr`` (RFC 6120 13.7.1.4): the JID as a DER UTF8String in a subjectAltName
  ``otherName``: :func:`xmpp_addr` writes it, :func:`der_utf8string` /
  :func:`parse_der_utf8string` encode and decode the UTF8String.
- :func:`make_ca_certificate`: a CA certificate (self-signed root or an intermediate), with
  basicConstraints CA (critical), keyUsage keyCertSign + cRLSign (critical) and the subject /
  authority key identifiers.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ObjectIdentifier

__all__ = [
    "ID_ON_XMPP_ADDR",
    "der_utf8string",
    "make_ca_certificate",
    "parse_der_utf8string",
    "xmpp_addr",
]

#: id-on-xmppAddr (RFC 6120).
ID_ON_XMPP_ADDR = ObjectIdentifier("1.3.6.1.5.5.7.8.5")
_UTF8STRING = 0x0C
#: A JID is at most 3 x 1023 octets plus separators (RFC 7622); a longer value is refused.
_MAX_LENGTH = 0xFFFF


def der_utf8string(text: str) -> bytes:
    """``text`` as a DER UTF8String (definite length, short or long form)."""
    data = text.encode("utf-8")
    if len(data) > _MAX_LENGTH:
        raise ValueError(f"UTF8String of {len(data)} octets (at most {_MAX_LENGTH})")
    if len(data) < 0x80:
        length = bytes([len(data)])
    else:
        raw = len(data).to_bytes((len(data).bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(raw)]) + raw
    return bytes([_UTF8STRING]) + length + data


def parse_der_utf8string(der: bytes) -> str | None:
    """The text of a DER UTF8String, or None when ``der`` is not exactly one (minimal length)."""
    if len(der) < 2 or der[0] != _UTF8STRING:
        return None
    length, offset = der[1], 2
    if length & 0x80:
        n = length & 0x7F
        if n == 0 or n > 2 or len(der) < 2 + n or der[2] == 0:
            return None
        length, offset = int.from_bytes(der[2 : 2 + n], "big"), 2 + n
        if length < 0x80:
            return None  # DER: the short form was required
    if len(der) != offset + length:
        return None
    try:
        return der[offset:].decode("utf-8")
    except UnicodeDecodeError:
        return None


def xmpp_addr(jid: str) -> x509.OtherName:
    """subjectAltName otherName id-on-xmppAddr for ``jid``."""
    return x509.OtherName(ID_ON_XMPP_ADDR, der_utf8string(jid))


def make_ca_certificate(
    subject: x509.Name,
    key: Any,
    *,
    not_before: dt.datetime,
    not_after: dt.datetime,
    issuer: x509.Certificate | None = None,
    issuer_key: Any = None,
    path_length: int | None = None,
) -> x509.Certificate:
    """A CA certificate for ``key``: self-signed, or below ``issuer`` signed by ``issuer_key``.

    ``path_length``: basicConstraints pathLenConstraint (None: unlimited)."""
    if (issuer is None) != (issuer_key is None):
        raise ValueError("issuer and issuer_key go together")
    signer_key = issuer_key if issuer_key is not None else key
    authority = (issuer_key if issuer_key is not None else key).public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject if issuer is not None else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(authority), False)
        .sign(signer_key, hashes.SHA256())
    )
