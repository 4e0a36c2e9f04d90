"""Certificates for the draft-profile TLS tests (own test CA, self-signed, wrong names).

Imported by the tests that need them (`from draft_pki import pki_fixture`); not a conftest, so the
project-wide `conftest` module name stays the top-level one.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass
class Cert:
    cert: Path
    key: Path


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write(
    folder: Path, stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> Cert:
    cert_path, key_path = folder / f"{stem}.pem", folder / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Cert(cert_path, key_path)


def _issue(cn, issuer_name, issuer_key, *, ca=False, sans=("127.0.0.1",), key=None):
    key = key or ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer_name or _name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        alt = [
            x509.IPAddress(ipaddress.ip_address(s)) if s[0].isdigit() else x509.DNSName(s)
            for s in sans
        ]
        builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
    return builder.sign(issuer_key or key, hashes.SHA256()), key


@dataclass
class Pki:
    ca: Path
    other_ca: Path
    publisher: Cert
    subscriber: Cert
    intruder: Cert  # issued by the other CA
    wrong_name: Cert  # issued by the CA for another host name
    self_signed: Cert  # publisher's pinned self-signed certificate
    self_signed_sub: Cert
    ca_key: Path | None = None  # the test CA's private key (PEM), e.g. to sign CRLs


@pytest.fixture(scope="session", name="pki")
def pki_fixture(tmp_path_factory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert, _ = _issue("gridbind test CA", None, None, ca=True, key=ca_key)
    other_key = ec.generate_private_key(ec.SECP256R1())
    other_cert, _ = _issue("other CA", None, None, ca=True, key=other_key)
    (folder / "ca.pem").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    (folder / "other.pem").write_bytes(other_cert.public_bytes(serialization.Encoding.PEM))
    (folder / "ca.key").write_bytes(
        ca_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )

    def issued(stem, cn, issuer_cert, issuer_key, sans=("127.0.0.1", "localhost")):
        cert, key = _issue(cn, issuer_cert.subject, issuer_key, sans=sans)
        return _write(folder, stem, cert, key)

    def self_signed(stem, cn):
        cert, key = _issue(cn, None, None)
        return _write(folder, stem, cert, key)

    return Pki(
        ca=folder / "ca.pem",
        other_ca=folder / "other.pem",
        publisher=issued("publisher", "publisher", ca_cert, ca_key),
        subscriber=issued("subscriber", "operator-1", ca_cert, ca_key),
        intruder=issued("intruder", "publisher", other_cert, other_key),
        wrong_name=issued("wrong", "elsewhere", ca_cert, ca_key, sans=("192.0.2.7",)),
        self_signed=self_signed("pinned", "pinned-publisher"),
        self_signed_sub=self_signed("pinned-sub", "pinned-subscriber"),
        ca_key=folder / "ca.key",
    )
