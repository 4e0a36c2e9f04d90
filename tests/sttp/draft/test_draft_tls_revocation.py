"""Certificate revocation lists (both socket styles) and the server-side check that a CA-issued
client certificate names the connecting address ("Certificate Validation", steps 2 and 3), over
real TLS sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import datetime
import logging
import ssl
import uuid

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from test_draft_tls_udp import exchange, run

from gridbind.sttp import Measurement
from gridbind.sttp.draft import (
    Publisher,
    SessionClosed,
    SessionError,
    Subscriber,
    TlsConfig,
    ValueType,
)

from draft_pki import Cert, _issue, _write, pki_fixture  # noqa: F401 - provides the pki fixture

T0 = 638_000_000_000_000_000


def _ca(pki):
    cert = x509.load_pem_x509_certificate(pki.ca.read_bytes())
    key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), None)
    return cert, key


def write_crl(pki, folder, name: str, *revoked: Cert):
    """A CRL of the test CA revoking ``revoked`` (none: a valid, empty CRL)."""
    ca_cert, ca_key = _ca(pki)
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(now - datetime.timedelta(minutes=5))
        .next_update(now + datetime.timedelta(days=1))
    )
    for cert in revoked:
        serial = x509.load_pem_x509_certificate(cert.cert.read_bytes()).serial_number
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(now - datetime.timedelta(minutes=1))
            .build()
        )
    path = folder / f"{name}.crl.pem"
    path.write_bytes(builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
    return str(path)


def issued(pki, folder, stem: str, cn: str, sans) -> Cert:
    ca_cert, ca_key = _ca(pki)
    cert, key = _issue(cn, ca_cert.subject, ca_key, sans=sans)
    return _write(folder, stem, cert, key)


def tls(cert: Cert | None, cafile, **options) -> TlsConfig:
    if cert is None:
        return TlsConfig(cafile=str(cafile), **options)
    return TlsConfig(str(cert.cert), str(cert.key), cafile=str(cafile), **options)


def refusals(publisher: Publisher) -> list[str]:
    """Connections the publisher refused after the handshake (not ordinary closes)."""
    return [
        e.reason
        for _, e in publisher.events
        if isinstance(e, SessionClosed) and e.reason.startswith("connection refused")
    ]


# --- revocation ------------------------------------------------------------------------------


@pytest.mark.timeout(20)
def test_crls_checked_both_ways_on_the_good_path(pki, tmp_path):
    crl = write_crl(pki, tmp_path, "empty")
    publisher = Publisher(port=0, tls=tls(pki.publisher, pki.ca, crlfile=crl))
    subscriber = Subscriber(port=0, tls=tls(pki.subscriber, pki.ca, crlfile=crl))
    # client side in the handshake; server side right after it (see gridbind.sttp.tls)
    assert ssl.VERIFY_CRL_CHECK_LEAF in subscriber.tls.client_context().verify_flags
    got = run(exchange(publisher, subscriber))
    assert [(m.value, m.flags) for m in got] == [(0.1, 7)]
    assert refusals(publisher) == []


@pytest.mark.timeout(20)
def test_revoked_publisher_certificate_is_refused_by_the_subscriber(pki, tmp_path):
    crl = write_crl(pki, tmp_path, "publisher-revoked", pki.publisher)
    publisher = Publisher(port=0, tls=tls(pki.publisher, pki.ca))
    subscriber = Subscriber(port=0, tls=tls(pki.subscriber, pki.ca, crlfile=crl))
    with pytest.raises(ssl.SSLCertVerificationError) as refused:
        run(exchange(publisher, subscriber))
    assert "revoked" in str(refused.value)
    # the same publisher is accepted with a CRL that does not list it
    good = Subscriber(
        port=0, tls=tls(pki.subscriber, pki.ca, crlfile=write_crl(pki, tmp_path, "none"))
    )
    assert len(run(exchange(Publisher(port=0, tls=tls(pki.publisher, pki.ca)), good))) == 1


@pytest.mark.timeout(20)
def test_revoked_subscriber_certificate_is_refused_by_the_publisher(pki, tmp_path, caplog):
    crl = write_crl(pki, tmp_path, "subscriber-revoked", pki.subscriber)
    publisher = Publisher(port=0, tls=tls(pki.publisher, pki.ca, crlfile=crl))
    subscriber = Subscriber(port=0, tls=tls(pki.subscriber, pki.ca))
    with caplog.at_level(logging.WARNING, logger="gridbind.sttp.draft"):
        with pytest.raises(SessionError) as refused:
            run(exchange(publisher, subscriber), 10)
    message = str(refused.value)
    assert message.startswith("peer terminated: connection refused: client certificate")
    assert "'operator-1': certificate revoked" in message
    assert "certificate revoked" in caplog.text  # the publisher logged why
    [reason] = refusals(publisher)
    assert "certificate revoked" in reason and publisher.connections == []
    # another subscriber certificate of the same CA is not revoked
    other = issued(pki, tmp_path, "operator-2", "operator-2", ("127.0.0.1",))
    publisher = Publisher(port=0, tls=tls(pki.publisher, pki.ca, crlfile=crl))
    assert len(run(exchange(publisher, Subscriber(port=0, tls=tls(other, pki.ca))))) == 1


# --- the client certificate must name the client's address ------------------------------------


@pytest.mark.timeout(20)
def test_client_certificate_not_naming_the_peer_address_is_refused(pki, caplog):
    publisher = Publisher(port=0, tls=tls(pki.publisher, pki.ca))
    subscriber = Subscriber(port=0, tls=tls(pki.wrong_name, pki.ca))  # CA-issued, SAN 192.0.2.7
    with caplog.at_level(logging.WARNING, logger="gridbind.sttp.draft"):
        with pytest.raises(SessionError) as refused:
            run(exchange(publisher, subscriber), 10)
    message = str(refused.value)
    assert "peer terminated: connection refused" in message
    assert "192.0.2.7" in message and "127.0.0.1" in message
    assert "refused the connection" in caplog.text and "192.0.2.7" in caplog.text
    [reason] = refusals(publisher)
    assert "none of which matches the client's address 127.0.0.1" in reason
    assert publisher.connections == []


@pytest.mark.timeout(20)
def test_client_address_check_can_be_disabled_loudly(pki, caplog):
    publisher = Publisher(port=0, tls=tls(pki.publisher, pki.ca, check_client_address=False))
    subscriber = Subscriber(port=0, tls=tls(pki.wrong_name, pki.ca))
    identities = []
    publisher.on_event = lambda link, event: identities.append(link.identity)
    with caplog.at_level(logging.WARNING, logger="gridbind.sttp.draft"):
        assert len(run(exchange(publisher, subscriber))) == 1
    assert "client certificate addresses are NOT checked" in caplog.text
    assert "elsewhere" in identities


@pytest.mark.timeout(20)
def test_host_name_in_client_certificate_matches_when_it_resolves_to_the_peer(pki, tmp_path):
    by_name = issued(pki, tmp_path, "by-name", "operator-3", ("localhost",))
    publisher = Publisher(port=0, tls=tls(pki.publisher, pki.ca))
    assert len(run(exchange(publisher, Subscriber(port=0, tls=tls(by_name, pki.ca))))) == 1
    assert refusals(publisher) == []


@pytest.mark.timeout(20)
def test_pinned_self_signed_client_is_not_address_checked_unless_asked(pki, tmp_path):
    cert, key = _issue("pinned-far", None, None, sans=("192.0.2.8",))
    pinned = _write(tmp_path, "pinned-far", cert, key)

    def publisher(**options):
        return Publisher(port=0, tls=tls(pki.publisher, pinned.cert, **options))

    subscriber = Subscriber(port=0, tls=tls(pinned, pki.ca))
    assert len(run(exchange(publisher(), subscriber))) == 1  # trust is the pin itself
    strict = publisher(check_client_address=True)
    with pytest.raises(SessionError, match="192.0.2.8"):
        run(exchange(strict, Subscriber(port=0, tls=tls(pinned, pki.ca))), 10)


@pytest.mark.timeout(20)
def test_listening_subscriber_checks_the_dialling_publishers_address(pki):
    # reverse connection: the subscriber is the server-style socket
    async def main():
        publisher = Publisher(port=0, tls=tls(pki.wrong_name, pki.ca))
        subscriber = Subscriber(port=0, tls=tls(pki.subscriber, pki.ca))
        try:
            subscriber.listen_mode = True
            await subscriber.start()
            port = subscriber.port
            publisher.define_points({uuid.uuid4(): ValueType.DOUBLE})
            link = await publisher.connect("127.0.0.1", port)
            reason = await asyncio.wait_for(asyncio.shield(link.closed), 5)
            events = [e for e in subscriber.events if isinstance(e, SessionClosed)]
            return reason, events, subscriber.link
        finally:
            await subscriber.stop()
            await publisher.stop()

    reason, events, link = run(main())
    assert reason.startswith("peer terminated: connection refused") and "192.0.2.7" in reason
    assert len(events) == 1 and link is None


@pytest.mark.timeout(20)
def test_accepted_connection_after_name_resolution_keeps_early_bytes(pki, tmp_path):
    # reverse: the dialling publisher sends ProtocolVersions at once, while the listening
    # subscriber still resolves the host name of its certificate; nothing may be lost
    by_name = issued(pki, tmp_path, "pub-by-name", "publisher-by-name", ("localhost",))

    async def main():
        publisher = Publisher(port=0, tls=tls(by_name, pki.ca))
        subscriber = Subscriber(port=0, tls=tls(pki.subscriber, pki.ca))
        signal = uuid.uuid4()
        publisher.define_points({signal: ValueType.DOUBLE})
        try:
            subscriber.listen_mode = True
            await subscriber.start()
            port = subscriber.port
            await publisher.connect("127.0.0.1", port)
            await subscriber.wait_negotiated(5)
            await subscriber.subscribe()
            await publisher.wait_subscribed()
            publisher.publish([Measurement(signal, 2.5, T0)])
            return await subscriber.collect(1, 5)
        finally:
            await subscriber.stop()
            await publisher.stop()

    assert [m.value for m in run(main())] == [2.5]


@pytest.mark.timeout(20)
def test_publisher_with_crls_refuses_a_client_whose_issuer_has_no_valid_crl(pki, tmp_path):
    # fail-closed like OpenSSL: a CRL signed by another key does not count
    ca_cert, _ = _ca(pki)
    forged_key = _issue("forger", None, None)[1]
    now = datetime.datetime.now(datetime.UTC)
    forged = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(now - datetime.timedelta(minutes=5))
        .next_update(now + datetime.timedelta(days=1))
        .sign(forged_key, hashes.SHA256())
    )
    path = tmp_path / "forged.crl.pem"
    path.write_bytes(forged.public_bytes(serialization.Encoding.PEM))
    publisher = Publisher(port=0, tls=tls(pki.publisher, pki.ca, crlfile=str(path)))
    with pytest.raises(SessionError, match="no valid certificate revocation list"):
        run(exchange(publisher, Subscriber(port=0, tls=tls(pki.subscriber, pki.ca))), 10)


@pytest.mark.timeout(20)
def test_subscriber_names_a_bare_close_after_the_handshake(pki, tmp_path):
    # a peer that drops the connection right after the handshake (as a TLS stack refusing the
    # client certificate does): the subscriber's error says so instead of "connection closed"
    async def main():
        async def drop(reader, writer):
            writer.close()

        context = tls(pki.publisher, pki.ca).server_context()
        server = await asyncio.start_server(drop, "127.0.0.1", 0, ssl=context)
        port = server.sockets[0].getsockname()[1]
        subscriber = Subscriber(port=port, tls=tls(pki.subscriber, pki.ca))
        try:
            with pytest.raises(SessionError) as closed:
                await subscriber.start(timeout=5)
            return str(closed.value)
        finally:
            await subscriber.stop()
            server.close()
            await server.wait_closed()

    assert "right after the TLS handshake" in run(main())


def test_refused_connections_do_not_grow_the_event_lists_forever():
    from gridbind.sttp.draft.transport import MAX_EVENTS

    publisher, subscriber = Publisher(port=0), Subscriber(port=0)
    publisher._notify = lambda: None  # no event loop here
    refused = SessionClosed("certificate revoked")
    for _ in range(MAX_EVENTS + 10):
        publisher._refused(None, refused)
        subscriber._refused(None, refused)
    assert len(publisher.events) <= MAX_EVENTS
    assert len(subscriber.events) <= MAX_EVENTS
    assert publisher.events[-1] == (None, refused) and subscriber.events[-1] == refused


def test_name_resolution_has_one_deadline_and_a_name_cap():
    import time

    from gridbind.sttp import tls as security

    calls = []

    async def check(names, timeout, delay):
        loop = asyncio.get_running_loop()

        async def slow(name, *args, **kwargs):
            calls.append(name)
            await asyncio.sleep(delay)
            return [(None, None, None, "", ("10.9.9.9", 0))]

        loop.getaddrinfo = slow
        try:
            return await security.names_resolve_to(names, ("127.0.0.1", 1), timeout)
        finally:
            del loop.getaddrinfo

    many = [f"h{i}.example" for i in range(300)]
    started = time.monotonic()
    assert asyncio.run(check(many, 0.5, 0.2)) is False
    assert time.monotonic() - started < 1.5  # one deadline, not 300 x 0.5 s
    calls.clear()
    assert asyncio.run(check(many, 5.0, 0.0)) is False
    assert len(calls) == security.MAX_RESOLVED_NAMES
