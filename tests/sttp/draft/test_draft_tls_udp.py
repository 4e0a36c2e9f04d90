"""TLS (CA-issued and pinned self-signed, both socket styles), reverse connections, the UDP data
channel with AES-256 (SecureDataChannel) and its three Failed cases."""

from __future__ import annotations

import asyncio
import logging
import ssl
import uuid

import pytest

from gridbind.sttp import Measurement
from gridbind.sttp.draft import (
    CommandError,
    Publisher,
    SessionError,
    Subscriber,
    TlsConfig,
    ValueType,
)
from gridbind.sttp.draft.synthetic import SyntheticPmu

from draft_pki import pki_fixture  # noqa: F401 - provides the pki fixture
from draft_streaming import stream

REFUSED = (ssl.SSLError, ConnectionError, SessionError, asyncio.TimeoutError, OSError)
T0 = 638_000_000_000_000_000


def run(coro, timeout=20):
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def exchange(publisher: Publisher, subscriber: Subscriber, *, reverse=False) -> list:
    """Connect (forward or reverse), subscribe to everything, send one frame, return it."""
    signal = uuid.uuid4()
    publisher.define_points({signal: ValueType.DOUBLE})
    try:
        if reverse:
            subscriber.listen_mode = True
            await subscriber.start()
            port = subscriber.port
            await publisher.connect("127.0.0.1", port)
            await subscriber.wait_negotiated(5)
        else:
            await publisher.start()
            subscriber.port = publisher.port
            await subscriber.start(timeout=5)
        await subscriber.subscribe()
        await publisher.wait_subscribed()
        publisher.publish([Measurement(signal, 0.1, T0, 7)])
        return await subscriber.collect(1, 5)
    finally:
        await subscriber.stop()
        await publisher.stop()


@pytest.mark.timeout(20)
def test_ca_issued_certificates_validated_both_ways(pki):
    publisher = Publisher(
        port=0, tls=TlsConfig(str(pki.publisher.cert), str(pki.publisher.key), cafile=str(pki.ca))
    )
    subscriber = Subscriber(
        port=0, tls=TlsConfig(str(pki.subscriber.cert), str(pki.subscriber.key), cafile=str(pki.ca))
    )
    identities = []
    publisher.on_event = lambda link, event: identities.append(link.identity)
    got = run(exchange(publisher, subscriber))
    assert [(m.value, m.flags) for m in got] == [(0.1, 7)]
    assert "operator-1" in identities  # the publisher validated and named its subscriber


@pytest.mark.timeout(20)
def test_untrusted_server_certificate_is_refused(pki):
    publisher = Publisher(port=0, tls=TlsConfig(str(pki.intruder.cert), str(pki.intruder.key)))
    subscriber = Subscriber(port=0, tls=TlsConfig(cafile=str(pki.ca)))
    with pytest.raises(REFUSED):
        run(exchange(publisher, subscriber))


@pytest.mark.timeout(20)
def test_wrong_name_is_refused_unless_relaxed_with_a_warning(pki, caplog):
    def publisher():
        return Publisher(port=0, tls=TlsConfig(str(pki.wrong_name.cert), str(pki.wrong_name.key)))

    with pytest.raises(REFUSED):
        run(exchange(publisher(), Subscriber(port=0, tls=TlsConfig(cafile=str(pki.ca)))))
    relaxed = Subscriber(port=0, tls=TlsConfig(cafile=str(pki.ca), check_hostname=False))
    with caplog.at_level(logging.WARNING, logger="gridbind.sttp.draft"):
        assert len(run(exchange(publisher(), relaxed))) == 1
    assert "name mismatch tolerated" in caplog.text


@pytest.mark.timeout(20)
def test_pinned_self_signed_certificate(pki):
    def publisher():
        return Publisher(port=0, tls=TlsConfig(str(pki.self_signed.cert), str(pki.self_signed.key)))

    pinned = Subscriber(port=0, tls=TlsConfig(cafile=str(pki.self_signed.cert)))
    assert len(run(exchange(publisher(), pinned))) == 1
    # a self-signed certificate not exchanged in advance is untrusted
    with pytest.raises(REFUSED):
        run(exchange(publisher(), Subscriber(port=0, tls=TlsConfig(cafile=str(pki.ca)))))


@pytest.mark.timeout(20)
def test_publisher_refuses_subscriber_with_untrusted_or_missing_certificate(pki):
    def publisher():
        return Publisher(
            port=0,
            tls=TlsConfig(str(pki.publisher.cert), str(pki.publisher.key), cafile=str(pki.ca)),
        )

    intruder = Subscriber(
        port=0, tls=TlsConfig(str(pki.intruder.cert), str(pki.intruder.key), cafile=str(pki.ca))
    )
    with pytest.raises(REFUSED):
        run(exchange(publisher(), intruder))
    anonymous = Subscriber(port=0, tls=TlsConfig(cafile=str(pki.ca)))
    with pytest.raises(REFUSED):
        run(exchange(publisher(), anonymous))


@pytest.mark.timeout(20)
def test_reverse_connection_plain_and_tls(pki):
    assert len(run(exchange(Publisher(port=0), Subscriber(port=0), reverse=True))) == 1
    # over TLS the subscriber is the server-style socket and the publisher validates it
    publisher = Publisher(
        port=0, tls=TlsConfig(str(pki.publisher.cert), str(pki.publisher.key), cafile=str(pki.ca))
    )
    subscriber = Subscriber(
        port=0, tls=TlsConfig(str(pki.subscriber.cert), str(pki.subscriber.key), cafile=str(pki.ca))
    )
    assert len(run(exchange(publisher, subscriber, reverse=True))) == 1
    # ... and refuses an untrusted listening subscriber
    impostor = Subscriber(port=0, tls=TlsConfig(str(pki.intruder.cert), str(pki.intruder.key)))
    publisher = Publisher(port=0, tls=TlsConfig(cafile=str(pki.ca)))
    with pytest.raises(REFUSED):
        run(exchange(publisher, impostor, reverse=True), 10)


@pytest.mark.timeout(20)
def test_tls_below_latest_version_logs_a_warning(pki, caplog):
    publisher = Publisher(
        port=0,
        tls=TlsConfig(
            str(pki.publisher.cert),
            str(pki.publisher.key),
            minimum_version=ssl.TLSVersion.TLSv1_2,
        ),
    )
    subscriber = Subscriber(
        port=0,
        tls=TlsConfig(
            cafile=str(pki.ca),
            minimum_version=ssl.TLSVersion.TLSv1_2,
        ),
    )
    with caplog.at_level(logging.WARNING, logger="gridbind.sttp.draft"):
        assert len(run(exchange(publisher, subscriber))) == 1
    assert "below the latest" in caplog.text


def tls_pair(pki, *, udp=True):
    publisher = Publisher(port=0, tls=TlsConfig(str(pki.publisher.cert), str(pki.publisher.key)))
    subscriber = Subscriber(port=0, tls=TlsConfig(cafile=str(pki.ca)), udp=udp)
    return publisher, subscriber


async def secure_after(publisher, subscriber, *, subscribe_first=False):
    await publisher.start()
    subscriber.port = publisher.port
    try:
        await subscriber.start()
        if subscribe_first:
            await subscriber.subscribe()
        await subscriber.secure_data_channel()
    finally:
        closed = subscriber.link.closed if subscriber.link else None
        if closed is not None:
            await asyncio.wait_for(asyncio.shield(closed), 5)  # the subscriber disconnects
        await subscriber.stop()
        await publisher.stop()


@pytest.mark.timeout(20)
def test_secure_data_channel_failed_without_udp(pki):
    with pytest.raises(CommandError, match="lossy communications protocol"):
        run(secure_after(*tls_pair(pki, udp=False)))


@pytest.mark.timeout(20)
def test_secure_data_channel_failed_without_tls():
    with pytest.raises(CommandError, match="secured using TLS"):
        run(secure_after(Publisher(port=0), Subscriber(port=0, udp=True)))


@pytest.mark.timeout(20)
def test_secure_data_channel_failed_after_subscription(pki):
    with pytest.raises(CommandError, match="after a subscription"):
        run(secure_after(*tls_pair(pki), subscribe_first=True))


def watch_datagrams(subscriber: Subscriber) -> dict[str, int]:
    """Count the decrypted UDP datagrams by kind: DEFLATE BeginFragment, plain, other."""
    from gridbind.generated.sttp import draft_0_8 as wire

    counts = {"deflate": 0, "raw_bytes": 0, "wire_bytes": 0, "other": 0}
    session = subscriber.session
    receive = session.receive_frame_datagram

    def spy(datagram: bytes):
        code = datagram[0]
        if code == wire.CommandCode.BeginFragment:
            begin = wire.BeginFragment.parse(datagram[3:])
            if (
                begin.compression_mode == wire.CompressionMode.Deflate
                and begin.command_code == wire.CommandCode.SendDataPoints
            ):
                counts["deflate"] += 1
                counts["raw_bytes"] += begin.total_raw_size
                counts["wire_bytes"] += begin.total_fragment_size
            else:
                counts["other"] += 1
        else:
            counts["other"] += 1
        return receive(datagram)

    session.receive_frame_datagram = spy
    return counts


async def udp_stream(pki, seconds):
    pmu = SyntheticPmu(1000, 30.0, start=T0)
    publisher, subscriber = tls_pair(pki)
    publisher.define_points(pmu.value_types())
    await publisher.start()
    subscriber.port = publisher.port
    try:
        await subscriber.start()
        negotiated = subscriber.negotiated
        assert negotiated.udp_port == subscriber.udp_port != 0
        assert negotiated.stateless == "DEFLATE"  # the stateless algorithm for UDP
        modes = watch_datagrams(subscriber)
        await subscriber.secure_data_channel()
        assert subscriber.link.cipher is not None
        await subscriber.subscribe(options={"reliability": "lossy"})
        await publisher.wait_subscribed()
        [link] = publisher.connections
        assert link.session.negotiated.stateless == "DEFLATE"
        await publisher.wait_for(lambda: link.udp is not None, 5)
        outcome = await stream(publisher, subscriber, pmu, seconds, settle=2.0, lossy=True)
        return outcome, subscriber.session.received, subscriber.bad_datagrams, modes
    finally:
        await subscriber.stop()
        await publisher.stop()


@pytest.mark.timeout(45)
def test_udp_data_channel_with_aes_1000_signals_30fps_10s(pki):
    outcome, by_channel, bad, modes = run(udp_stream(pki, 10.0), 40)
    loss = outcome.expected - outcome.distinct
    print(f"UDP+AES: {outcome.distinct}/{outcome.expected} received, loss {loss}")
    assert by_channel["udp"] == outcome.received > 0 and by_channel["tcp"] == 0
    assert outcome.wrong == 0 and bad == 0  # loss is only counted; what arrives is exact
    assert outcome.distinct <= outcome.expected
    # every data datagram was a stateless DEFLATE packet, and DEFLATE actually compressed
    assert modes["deflate"] > 0 and modes["other"] == 0
    assert modes["wire_bytes"] < modes["raw_bytes"]


@pytest.mark.timeout(20)
def test_forged_datagrams_are_dropped(pki):
    from gridbind.generated.sttp import draft_0_8 as wire
    from gridbind.sttp.draft.security import DatagramCipher

    signal = uuid.uuid4()

    async def main():
        publisher, subscriber = tls_pair(pki)
        publisher.define_points({signal: ValueType.DOUBLE})
        await publisher.start()
        subscriber.port = publisher.port
        try:
            await subscriber.start()
            await subscriber.secure_data_channel()
            await subscriber.subscribe(options={"reliability": "lossy"})
            [link] = publisher.connections
            await publisher.wait_for(lambda: link.udp is not None, 5)
            loop = asyncio.get_running_loop()
            forger, _ = await loop.create_datagram_endpoint(
                asyncio.DatagramProtocol, remote_addr=("127.0.0.1", subscriber.udp_port)
            )
            plain = wire.build_frame(wire.SendDataPoints(points=[]))
            forger.sendto(plain)  # not encrypted
            forger.sendto(DatagramCipher(bytes(32), bytes(16)).encrypt(plain))  # wrong key
            forger.sendto(b"\x00" * 48)
            forger.close()
            await asyncio.sleep(0.2)
            publisher.publish([Measurement(signal, 2.5, T0)])
            got = await subscriber.collect(1, 5)
            return got, subscriber.bad_datagrams, subscriber.session.closed
        finally:
            await subscriber.stop()
            await publisher.stop()

    got, bad, closed = run(main())
    assert [(m.value, m.timestamp) for m in got] == [(2.5, T0)]
    assert bad == 3 and not closed
