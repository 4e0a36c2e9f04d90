"""Test certificates for E2E security: a CA and E2E end-entity certificates bound to a JID.

Meant for tests, demos and a CLI (never for production keys)::

    ca = make_ca("gridbind test E2E CA")
    leaf = make_e2e_certificate(ca, "ied1@example.test")   # keyUsage digitalSignature +
                                                           # keyAgreement, SAN id-on-xmppAddr
    paths = write_pem(leaf, directory, "ied1")             # cert (leaf + chain), key, trust

Options exist to make deliberately wrong certificates (other JID, keyUsage, validity, RSA).

From a shell (a test CA plus one E2E certificate per JID, PEM files in ``DIR``)::

    python -m gridbind.iec61850.e2e_certs --out DIR ied1@example.org client1@example.org
"""

from __future__ import annotations

import argparse
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from gridbind.iec61850.pki import make_ca_certificate, xmpp_addr

__all__ = ["Issued", "main", "make_ca", "make_e2e_certificate", "write_pem", "xmpp_addr"]


@dataclass
class Issued:
    """A certificate with its private key and the chain above it (issuers, leaf excluded)."""

    certificate: x509.Certificate
    key: Any
    chain: list[x509.Certificate] = field(default_factory=list)


def _key(kind: str) -> Any:
    if kind == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    if kind.startswith("rsa"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(kind[3:] or 2048))
    raise ValueError(f"key kind {kind!r}: ec or rsa<bits>")


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca(
    name: str = "gridbind test E2E CA",
    *,
    issuer: Issued | None = None,
    key_kind: str = "ec",
    days: int = 30,
    path_length: int | None = None,
) -> Issued:
    """A self-signed CA (or an intermediate CA below ``issuer``); ``path_length`` is its
    basicConstraints pathLenConstraint (None: unlimited)."""
    key = _key(key_kind)
    now = dt.datetime.now(dt.UTC)
    cert = make_ca_certificate(
        _name(name),
        key,
        not_before=now - dt.timedelta(minutes=5),
        not_after=now + dt.timedelta(days=days),
        issuer=issuer.certificate if issuer else None,
        issuer_key=issuer.key if issuer else None,
        path_length=path_length,
    )
    chain = ([issuer.certificate] + issuer.chain) if issuer else []
    return Issued(cert, key, chain)


def make_e2e_certificate(
    ca: Issued,
    jid: str,
    *,
    key_kind: str = "ec",
    digital_signature: bool = True,
    key_agreement: bool = True,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    san: bool = True,
) -> Issued:
    """An E2E end-entity certificate for ``jid`` issued by ``ca`` (chain includes ``ca``
    unless ``ca`` is a self-signed root)."""
    key = _key(key_kind)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(jid))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - dt.timedelta(minutes=5))
        .not_valid_after(not_after or now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=digital_signature,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=key_agreement,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    if san:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([xmpp_addr(jid)]), critical=False
        )
    cert = builder.sign(ca.key, hashes.SHA256())
    # certPath: the intermediates only (a self-signed root is what the peer trusts anyway).
    chain = [c for c in [ca.certificate] + ca.chain if c.issuer != c.subject]
    return Issued(cert, key, chain)


def write_pem(issued: Issued, directory: str | Path, stem: str) -> dict[str, Path]:
    """``<stem>.crt`` (leaf then intermediates) and ``<stem>.key`` (PKCS#8, unencrypted,
    mode 0600); returns both paths."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    crt, key = d / f"{stem}.crt", d / f"{stem}.key"
    crt.write_bytes(
        b"".join(
            c.public_bytes(serialization.Encoding.PEM) for c in [issued.certificate] + issued.chain
        )
    )
    key.touch(mode=0o600)
    key.write_bytes(
        issued.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return {"certificate": crt, "key": key}


def main(argv: list[str] | None = None) -> int:
    """Write ``ca.crt`` (the trust anchor), and ``<local part>.crt`` / ``.key`` per JID."""
    parser = argparse.ArgumentParser(
        prog="python -m gridbind.iec61850.e2e_certs",
        description="Make a test CA and IEC 62351-4 E2E certificates bound to JIDs.",
    )
    parser.add_argument("jids", nargs="+", metavar="JID")
    parser.add_argument("--out", required=True, type=Path, help="directory for the PEM files")
    parser.add_argument("--days", type=int, default=30, help="validity (default 30)")
    parser.add_argument("--rsa", action="store_true", help="RSA-2048 keys instead of P-256")
    args = parser.parse_args(argv)
    ca = make_ca(days=args.days)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ca.crt").write_bytes(ca.certificate.public_bytes(serialization.Encoding.PEM))
    now = dt.datetime.now(dt.UTC)
    for jid in args.jids:
        leaf = make_e2e_certificate(
            ca,
            jid,
            key_kind="rsa2048" if args.rsa else "ec",
            not_after=now + dt.timedelta(days=args.days),
        )
        paths = write_pem(leaf, args.out, jid.split("@", 1)[0])
        print(f"{jid}: {paths['certificate']} {paths['key']}")
    print(f"trust anchor: {args.out / 'ca.crt'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
