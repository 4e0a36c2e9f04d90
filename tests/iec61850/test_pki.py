"""The shared X.509 helpers: DER UTF8String both ways, xmppAddr, the CA certificate maker."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtensionOID, NameOID
from hypothesis import given
from hypothesis import strategies as st

from gridbind.iec61850 import e2e_certs, prosody
from gridbind.iec61850.e2e.trust import certificate_jids
from gridbind.iec61850.pki import (
    der_utf8string,
    make_ca_certificate,
    parse_der_utf8string,
    xmpp_addr,
)


@given(st.text(max_size=400))
def test_utf8string_round_trip(text):
    assert parse_der_utf8string(der_utf8string(text)) == text


def test_long_jid_in_a_certificate():
    jid = "a" * 200 + "@example.test"  # more than 127 octets: long-form length
    assert der_utf8string(jid)[1:3] == b"\x81\xd5"
    now = dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "long")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([xmpp_addr(jid)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    assert certificate_jids(cert) == [jid]


@pytest.mark.parametrize(
    "der",
    [
        b"",
        b"\x0c",
        b"\x04\x01a",  # OCTET STRING, not UTF8String
        b"\x0c\x02a",  # short
        b"\x0c\x01ab",  # trailing octets
        b"\x0c\x81\x01a",  # long form where DER needs the short one
        b"\x0c\x80",  # indefinite length
        b"\x0c\x01\xff",  # not UTF-8
    ],
)
def test_non_der_utf8strings_are_refused(der):
    assert parse_der_utf8string(der) is None


def test_one_ca_maker_for_both_pkis(tmp_path):
    now = dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "root")])
    root = make_ca_certificate(name, key, not_before=now, not_after=now + dt.timedelta(days=1))
    usage = root.extensions.get_extension_for_oid(ExtensionOID.KEY_USAGE).value
    constraints = root.extensions.get_extension_for_oid(ExtensionOID.BASIC_CONSTRAINTS).value
    assert usage.key_cert_sign and usage.crl_sign and constraints.ca
    root.verify_directly_issued_by(root)
    with pytest.raises(ValueError):
        make_ca_certificate(name, key, not_before=now, not_after=now, issuer=root)
    # The XMPP test CA and the E2E test CA carry the same CA extensions.
    pki = prosody.make_test_pki(tmp_path / "pki", "example.test")
    xmpp_ca = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    e2e_ca = e2e_certs.make_ca().certificate
    for ca in (xmpp_ca, e2e_ca):
        assert ca.extensions.get_extension_for_oid(ExtensionOID.KEY_USAGE).value.key_cert_sign
        assert ca.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_KEY_IDENTIFIER)
    assert xmpp_addr("a@b").value == b"\x0c\x03a@b"
