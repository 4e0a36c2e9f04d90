"""The private Prosody launcher: starts on loopback, serves TLS with its own CA, stops cleanly."""

from __future__ import annotations

import socket
import ssl

import pytest
from cryptography import x509

from gridbind.iec61850.prosody import Prosody, ProsodyError, make_test_pki


@pytest.mark.timeout(20)
def test_direct_tls_port_presents_leaf_for_domain(prosody: Prosody) -> None:
    ctx = ssl.create_default_context(cafile=str(prosody.ca_cert))
    with socket.create_connection(("127.0.0.1", prosody.c2s_tls_port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=prosody.domain) as tls:
            der = tls.getpeercert(binary_form=True)
    cert = x509.load_der_x509_certificate(der)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [prosody.domain]


@pytest.mark.timeout(20)
def test_foreign_ca_is_refused_by_validation(prosody: Prosody, tmp_path) -> None:
    other = make_test_pki(tmp_path, prosody.domain)
    ctx = ssl.create_default_context(cafile=str(other.ca_cert))
    with socket.create_connection(("127.0.0.1", prosody.c2s_tls_port), timeout=5) as raw:
        with pytest.raises(ssl.SSLCertVerificationError):
            ctx.wrap_socket(raw, server_hostname=prosody.domain)


@pytest.mark.timeout(20)
def test_only_loopback_and_stop_closes_ports(prosody: Prosody, tmp_path) -> None:
    server = Prosody(domain="stop.local", directory=tmp_path)
    server.start()
    port = server.c2s_port
    assert server.running
    assert "127.0.0.1" in server.config_path.read_text()
    server.stop()
    assert not server.running
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


@pytest.mark.timeout(20)
def test_register_rejects_bad_user(prosody: Prosody) -> None:
    with pytest.raises(ProsodyError):
        prosody.register("bad user@x", "pw")


def test_pki_chain_verifies(tmp_path) -> None:
    pki = make_test_pki(tmp_path, "ied.example")
    ca = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    leaf = x509.load_pem_x509_certificate(pki.server_cert.read_bytes())
    leaf.verify_directly_issued_by(ca)
    assert leaf.issuer == ca.subject
