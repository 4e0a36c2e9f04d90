"""Pinned self-signed SUBSCRIBER certificates validated by the publisher (server-side pinning,
and client-side in reverse connections), and unpinned ones refused, over real TLS sockets."""

from __future__ import annotations

import pytest
from test_draft_tls_udp import REFUSED, exchange, run

from gridbind.sttp.draft import Publisher, Subscriber, TlsConfig

from draft_pki import pki_fixture  # noqa: F401 - provides the pki fixture


def pinning_publisher(pki, *, self_signed=False):
    """A publisher that trusts exactly the pinned self-signed subscriber certificate."""
    own = pki.self_signed if self_signed else pki.publisher
    return Publisher(
        port=0, tls=TlsConfig(str(own.cert), str(own.key), cafile=str(pki.self_signed_sub.cert))
    )


def subscriber_with(cert, cafile) -> Subscriber:
    return Subscriber(port=0, tls=TlsConfig(str(cert.cert), str(cert.key), cafile=str(cafile)))


@pytest.mark.timeout(20)
def test_publisher_validates_a_pinned_self_signed_subscriber(pki):
    publisher = pinning_publisher(pki)
    identities = []
    publisher.on_event = lambda link, event: identities.append(link.identity)
    got = run(exchange(publisher, subscriber_with(pki.self_signed_sub, pki.ca)))
    assert [(m.value, m.flags) for m in got] == [(0.1, 7)]
    assert set(identities) == {"pinned-subscriber"}  # named from the pinned certificate


@pytest.mark.timeout(20)
def test_both_sides_pinned_self_signed(pki):
    publisher = pinning_publisher(pki, self_signed=True)
    subscriber = subscriber_with(pki.self_signed_sub, pki.self_signed.cert)
    assert len(run(exchange(publisher, subscriber))) == 1


@pytest.mark.timeout(30)
def test_publisher_refuses_unpinned_subscriber_certificates(pki):
    # another self-signed certificate, never exchanged with this publisher
    with pytest.raises(REFUSED):
        run(exchange(pinning_publisher(pki), subscriber_with(pki.self_signed, pki.ca)), 10)
    # even a CA-issued one: this publisher trusts only what it pinned
    with pytest.raises(REFUSED):
        run(exchange(pinning_publisher(pki), subscriber_with(pki.subscriber, pki.ca)), 10)
    # and a subscriber without a certificate
    anonymous = Subscriber(port=0, tls=TlsConfig(cafile=str(pki.ca)))
    with pytest.raises(REFUSED):
        run(exchange(pinning_publisher(pki), anonymous), 10)


@pytest.mark.timeout(30)
def test_reverse_connection_pins_the_listening_subscriber(pki):
    # the subscriber is the server-style socket; the dialling publisher validates it by pin
    def dialler():
        return Publisher(
            port=0,
            tls=TlsConfig(
                str(pki.publisher.cert),
                str(pki.publisher.key),
                cafile=str(pki.self_signed_sub.cert),
            ),
        )

    listening = subscriber_with(pki.self_signed_sub, pki.ca)
    assert len(run(exchange(dialler(), listening, reverse=True))) == 1
    unpinned = subscriber_with(pki.self_signed, pki.ca)
    with pytest.raises(REFUSED):
        run(exchange(dialler(), unpinned, reverse=True), 10)
