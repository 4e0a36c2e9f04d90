"""gridbind publisher <-> gridbind subscriber on the IEEE 2664 profile, over real sockets."""

from __future__ import annotations

import asyncio
import gzip
import itertools
import math
import uuid
from datetime import UTC, datetime

import pytest

import gridbind.sttp as sttp
from gridbind.sttp.ieee2664 import (
    PmuSource,
    Publisher,
    PublisherConfig,
    Subscriber,
    SubscriptionSettings,
    synthetic_pmu_metadata,
)
from gridbind.sttp.ieee2664.compact import expected_compact_roundtrip
from gridbind.sttp.ieee2664.events import (
    CipherKeysUpdated,
    DataStartTime,
    Notification,
    UserCommand,
    UserResponse,
)
from gridbind.sttp.ieee2664.subscriber_session import SubscriberConfig
from gridbind.sttp.measurement import Measurement, ticks_now

from sttpapi_peer import key, our_tables, pace_async, stream_frames

ALL = "FILTER ActiveMeasurements WHERE SignalType <> 'NONE'"


async def _receive(subscriber: Subscriber, expected: int, timeout: float = 20) -> list:
    received: list = []

    async def gather() -> None:
        async for batch in subscriber.batches():
            received.extend(batch)
            if len(received) >= expected:
                return

    await asyncio.wait_for(gather(), timeout)
    return received


async def _publish(publisher: Publisher, frames) -> None:
    for frame in frames:
        publisher.publish(frame)
        await publisher.drain()


NOON = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def _zero_fraction_xml(metadata, fraction: str) -> bytes:
    """Our XML with every ``12:00:00Z`` written as ``12:00:00<fraction>`` (``.000Z``; ``.Z`` is
    what sttpapi's serializer writes for a zero fraction: ``isoformat(milliseconds)`` with the
    zeros stripped)."""
    xml = metadata.to_xml()
    assert b"12:00:00Z" in xml
    return xml.replace(b"12:00:00Z", b"12:00:00" + fraction.encode())


def _served_xml(publisher) -> bytes:
    """The XML an unfiltered METADATA_REFRESH carries (GZip on the wire), decompressed."""
    return gzip.decompress(publisher.state.metadata_xml(True))


@pytest.mark.timeout(30)
@pytest.mark.parametrize("fraction", [".000Z", ".Z"])
def test_tssc_pair_exact_with_high_flags_irregular_times_and_000_metadata(fraction):
    """The cases sttpapi gets wrong: flags >= 0x100, irregular timestamps, and metadata whose
    timestamps carry a zero fraction on the wire (served verbatim by our publisher)."""
    metadata, signals = synthetic_pmu_metadata(200, updated_on=NOON)
    xml = _zero_fraction_xml(metadata, fraction)
    source = PmuSource(signals, start_ticks=ticks_now(), flag_every=3, jitter=9_973)
    frames = list(source.frames(90))
    frames[5][0].flags = 0xFFFF_FFFF
    frames[6][1].timestamp += 1  # one tick off the grid
    sent = [m for frame in frames for m in frame]
    assert any(m.flags >= 0x100 for m in sent)

    async def run() -> None:
        async with sttp.Publisher("ieee2664", metadata=xml, port=0) as publisher:
            served = _served_xml(publisher)
            assert served == xml and b"12:00:00" + fraction.encode() in served
            async with sttp.Subscriber(
                "ieee2664", port=publisher.port, filter_expression=ALL, auto_reconnect=False
            ) as subscriber:
                await subscriber.wait_subscribed(10)
                assert subscriber.stats.metadata_bytes == len(publisher.state.metadata_xml(True))
                for name in ("MeasurementDetail", "DeviceDetail", "PhasorDetail"):
                    assert {r["UpdatedOn"] for r in subscriber.metadata[name].rows} == {NOON}
                assert our_tables(subscriber.metadata) == our_tables(metadata)
                assert publisher.connections[0].session.uses_tssc
                await _publish(publisher, frames)
                received = await _receive(subscriber, len(sent))
                assert key(received) == key(sent)

    asyncio.run(run())


@pytest.mark.timeout(90)
def test_pair_paced_1000_signals_30_fps_10_s_tssc_compact_and_udp():
    """gridbind's own pair on the interop stream: 1000 signals x 30 frames/s for 10 s of
    wall-clock time to three subscribers at once (TSSC, compact, UDP). TCP runs are exact (0
    lost), UDP loss is counted; flags >= 0x100, irregular timestamps and ``.000`` metadata."""
    metadata, signals = synthetic_pmu_metadata(1000, updated_on=NOON)
    xml = _zero_fraction_xml(metadata, ".000Z")
    frames, sent = stream_frames(signals, 10.0, flag_every=97, jitter=9_973)
    frames[5][0].flags = 0xFFFF_FFFF
    frames[6][1].timestamp += 1
    compacted = [(s, v, t, expected_compact_roundtrip(f)) for s, v, t, f in key(sent)]
    got: dict[str, list] = {"tssc": [], "compact": [], "udp": []}

    async def run() -> None:
        async with Publisher(xml, port=0) as publisher:
            assert _served_xml(publisher) == xml
            options = {"port": publisher.port, "filter_expression": ALL, "auto_reconnect": False}
            subscribers = {
                "tssc": Subscriber(on_measurements=got["tssc"].extend, **options),
                "compact": Subscriber(
                    on_measurements=got["compact"].extend,
                    config=SubscriberConfig(compress_payload=False),
                    **options,
                ),
                "udp": Subscriber(on_measurements=got["udp"].extend, udp=True, **options),
            }
            try:
                for subscriber in subscribers.values():
                    await subscriber.start()
                    assert set((await subscriber.wait_subscribed(10)).signal_ids) == set(signals)
                    assert our_tables(subscriber.metadata) == our_tables(metadata)
                for _ in range(100):  # UDP data flows once the cache is confirmed
                    if all(
                        c.session.subscribed and not c.session._awaiting_cache_confirm
                        for c in publisher.connections
                    ):
                        break
                    await asyncio.sleep(0.02)
                sessions = {
                    c.session.udp_target is not None: c.session for c in publisher.connections
                }
                elapsed = await pace_async(frames, publisher.publish, 30, publisher.drain)
                assert elapsed >= 10.0
                for _ in range(200):
                    if all(len(got[name]) >= len(sent) for name in got):
                        break
                    await asyncio.sleep(0.05)
                assert key(got["tssc"]) == key(sent)  # values, timestamps, flags exact; 0 lost
                assert key(got["compact"]) == compacted
                udp = key(got["udp"])
                lost = len(sent) - len(udp)
                print(f"gridbind pair UDP: {len(udp)} of {len(sent)}, {lost} lost")
                assert 0 <= lost <= len(sent) * 0.01
                index = {(s, t): (v, f) for s, v, t, f in compacted}
                assert all(index[(s, t)] == (v, f) for s, v, t, f in udp)
                assert subscribers["tssc"].stats.dropped_packets == 0
                assert subscribers["tssc"].stats.data_bytes / len(sent) < 4.0
                assert sessions[True].stats.data_packets >= len(frames)
            finally:
                for subscriber in subscribers.values():
                    await subscriber.stop()

    asyncio.run(run())


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "settings,timestamps",
    [
        (SubscriptionSettings(filter_expression=ALL), "exact"),
        (SubscriptionSettings(filter_expression=ALL, use_millisecond_resolution=True), "ms"),
        (SubscriptionSettings(filter_expression=ALL, include_time=False), "none"),
    ],
)
def test_compact_pair_base_times_and_time_options(settings, timestamps):
    metadata, signals = synthetic_pmu_metadata(100)
    source = PmuSource(signals, start_ticks=ticks_now(), flag_every=5, jitter=1234)
    frames = list(source.frames(30))
    sent = [m for frame in frames for m in frame]

    async def run() -> None:
        async with Publisher(metadata, port=0) as publisher:
            async with Subscriber(
                port=publisher.port,
                settings=settings,
                config=SubscriberConfig(compress_payload=False),
                auto_reconnect=False,
            ) as subscriber:
                await subscriber.wait_subscribed(10)
                await _publish(publisher, frames)
                received = await _receive(subscriber, len(sent))
        for got, want in zip(received, sent, strict=True):
            assert (got.signal_id, got.value) == (want.signal_id, want.value)
            assert got.flags == expected_compact_roundtrip(want.flags)
            if timestamps == "exact":
                assert got.timestamp == want.timestamp
            elif timestamps == "ms":
                assert got.timestamp == want.timestamp - (want.timestamp - got.timestamp) % 10_000
                assert 0 <= want.timestamp - got.timestamp < 10_000
            else:
                assert got.timestamp == 0

    asyncio.run(run())


@pytest.mark.timeout(30)
def test_udp_with_cipher_keys_and_rotation():
    metadata, signals = synthetic_pmu_metadata(100)
    source = PmuSource(signals, start_ticks=ticks_now())
    frames = list(source.frames(60))
    sent = [m for frame in frames for m in frame]
    rotations: list = []

    async def run() -> None:
        config = PublisherConfig(encrypt_udp=True)
        async with Publisher(
            metadata, port=0, config=config, cipher_rotation_interval=0.15
        ) as publisher:
            async with Subscriber(
                port=publisher.port,
                filter_expression=ALL,
                udp=True,
                auto_reconnect=False,
                on_event=lambda e: (
                    rotations.append(e) if isinstance(e, CipherKeysUpdated) else None
                ),
            ) as subscriber:
                await subscriber.wait_subscribed(10)
                session = publisher.connections[0].session
                await asyncio.sleep(0.1)
                assert session.udp_target is not None and session.keys is not None
                for frame in frames:
                    publisher.publish(frame)
                    await asyncio.sleep(0.01)
                subscriber.rotate_cipher_keys()  # asked for by the subscriber too
                try:
                    received = await _receive(subscriber, len(sent), 5)
                except TimeoutError:
                    received = []
                stats = subscriber.stats
                assert stats.measurements >= len(sent) * 0.8, stats
                assert stats.dropped_packets <= len(frames) * 0.2
                indexes = {key.active for key in (event.keys for event in rotations)}
                assert len(rotations) >= 3 and indexes == {0, 1}
                assert session.stats.data_packets >= len(frames)
                expected = {(m.signal_id, m.timestamp): m.value for m in sent}
                for measurement in received:
                    assert (
                        expected[(measurement.signal_id, measurement.timestamp)]
                        == measurement.value
                    )

    asyncio.run(run())


@pytest.mark.timeout(30)
def test_wrongly_keyed_and_unencrypted_datagrams_are_dropped_and_counted():
    """On an encrypted UDP channel, datagrams that are not encrypted with the announced keys
    (plain, a foreign key, the other key index) are dropped and counted; good ones still flow."""
    import socket

    from gridbind.generated.sttp.ieee2664 import DataPacketFlags, ServerCommand, ServerResponse
    from gridbind.sttp.ieee2664.cipher import decrypt, encrypt
    from gridbind.sttp.ieee2664.wire import response_body

    metadata, signals = synthetic_pmu_metadata(20)
    frames = list(PmuSource(signals, start_ticks=ticks_now()).frames(3))
    captured: list[bytes] = []

    async def run() -> None:
        config = PublisherConfig(encrypt_udp=True)
        async with Publisher(
            metadata, port=0, config=config, cipher_rotation_interval=None
        ) as publisher:
            async with Subscriber(
                port=publisher.port, filter_expression=ALL, udp=True, auto_reconnect=False
            ) as subscriber:
                await subscriber.wait_subscribed(10)
                session = publisher.connections[0].session
                for _ in range(100):
                    if not session._awaiting_cache_confirm:
                        break
                    await asyncio.sleep(0.02)
                original = session.datagrams_to_send

                def spy() -> list[bytes]:
                    out = original()
                    captured.extend(out)
                    return out

                session.datagrams_to_send = spy
                publisher.publish(frames[0])
                assert key(await _receive(subscriber, 20, 5)) == key(frames[0])
                genuine = captured[0]
                flags, body = genuine[6], genuine[7:]
                active = 1 if flags & DataPacketFlags.CipherIndex else 0
                assert session.keys is not None and session.keys.active == active
                plain = decrypt(*session.keys.keys[active], body)

                def datagram(first: int, payload: bytes) -> bytes:
                    return response_body(
                        ServerResponse.DataPacket,
                        ServerCommand.Subscribe,
                        bytes([first]) + payload,
                    )

                forged = [
                    datagram(flags & ~DataPacketFlags.CipherIndex & 0xFF, plain),  # unencrypted
                    datagram(flags, encrypt(b"\x01" * 32, b"\x02" * 16, plain)),  # foreign key
                    datagram(flags ^ DataPacketFlags.CipherIndex, body),  # other key index
                ]
                stats = subscriber.stats
                dropped, measurements = stats.dropped_packets, stats.measurements
                sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                try:
                    for packet in forged:
                        sender.sendto(packet, ("127.0.0.1", subscriber.udp_port))
                    for _ in range(100):
                        if subscriber.stats.dropped_packets >= dropped + len(forged):
                            break
                        await asyncio.sleep(0.02)
                finally:
                    sender.close()
                assert subscriber.stats.dropped_packets == dropped + len(forged)
                assert subscriber.stats.measurements == measurements
                assert subscriber.connected  # dropped, not fatal
                publisher.publish(frames[1])
                assert key(await _receive(subscriber, 20, 5)) == key(frames[1])

    asyncio.run(run())


@pytest.mark.timeout(40)
def test_auto_reconnect_with_backoff():
    """While the publisher is down the subscriber redials with doubling waits up to the cap
    (0.1, 0.2, 0.4, 0.4 ... s, really slept between attempts), and starts over after success."""
    metadata, signals = synthetic_pmu_metadata(50)
    source = PmuSource(signals, start_ticks=ticks_now())

    async def run() -> None:
        publisher = Publisher(metadata, port=0)
        await publisher.start()
        port = publisher.port
        subscriber = Subscriber(
            port=port, filter_expression=ALL, retry_interval=0.1, max_retry_interval=0.4
        )
        await subscriber.start()
        await subscriber.wait_subscribed(10)
        frame = source.next_frame()
        publisher.publish(frame)
        assert len(await _receive(subscriber, len(frame))) == len(frame)
        assert subscriber.retry_waits == [] and len(subscriber.attempt_times) == 1
        await publisher.stop()
        await asyncio.sleep(1.6)  # 0.1 + 0.2 + 0.4 + 0.4 + 0.4 = 1.5 s of waits
        assert not subscriber.connected
        waits = list(subscriber.retry_waits)
        attempts = list(subscriber.attempt_times)
        assert waits[:4] == [0.1, 0.2, 0.4, 0.4], waits
        assert set(waits[3:]) == {0.4}  # capped
        assert 4 <= len(waits) <= 6, waits
        assert len(attempts) == len(waits) or len(attempts) == len(waits) + 1
        # the waits are really slept: attempt k+1 follows attempt k by wait k (failed dials
        # to a closed loopback port return at once)
        gaps = [b - a for a, b in itertools.pairwise(attempts[1:])]
        # the last attempt may have no wait after it: compare only the pairs both have
        for gap, wait in zip(gaps, waits[1:], strict=False):
            assert wait * 0.95 <= gap < wait + 0.25, (gaps, waits)
        assert gaps[0] < gaps[1] < gaps[2] + 0.05  # growing until the cap
        publisher = Publisher(metadata, port=port)
        await publisher.start()
        await subscriber.wait_subscribed(10)
        assert subscriber.connections == 2
        for _ in range(50):
            if publisher.connections and publisher.connections[0].session.subscribed:
                break
            await asyncio.sleep(0.05)
        frame = source.next_frame()
        publisher.publish(frame)
        assert key(await _receive(subscriber, len(frame))) == key(frame)
        # a new outage starts from retry_interval again
        before = len(subscriber.retry_waits)
        await publisher.stop()
        await asyncio.sleep(0.45)
        assert subscriber.retry_waits[before : before + 2] == [0.1, 0.2]
        await subscriber.stop()

    asyncio.run(run())


@pytest.mark.timeout(30)
def test_historical_replay_with_processing_interval():
    metadata, signals = synthetic_pmu_metadata(20)
    start = ticks_now() - 60 * 10_000_000
    archive = list(PmuSource(signals, start_ticks=start).frames(30))
    asked: list = []

    async def history(first: int, last: int, wanted: list[uuid.UUID]):
        asked.append((first, last, set(wanted)))
        for frame in archive:
            if first <= frame[0].timestamp <= last:
                yield [m for m in frame if m.signal_id in set(wanted)]

    events: list = []

    async def run() -> None:
        async with Publisher(metadata, port=0, history=history) as publisher:
            settings = SubscriptionSettings(
                filter_expression="FILTER ActiveMeasurements WHERE SignalType = 'FREQ'",
                start_time="*-2m",
                stop_time="*",
                processing_interval=1,
            )
            async with Subscriber(
                port=publisher.port, settings=settings, auto_reconnect=False, on_event=events.append
            ) as subscriber:
                await subscriber.wait_subscribed(10)
                await subscriber.wait_processing_complete(10)
                received = subscriber.stats.measurements
                assert received == 2 * 30
        first, last, wanted = asked[0]
        assert first < start < last and len(wanted) == 2
        assert [e.ticks for e in events if isinstance(e, DataStartTime)] == [start]

    asyncio.run(run())


@pytest.mark.timeout(30)
def test_historical_replay_absolute_times_cut_the_archive():
    """Absolute start and stop times bound the replay even when the history source yields the
    whole archive: only frames 6..18 of 30 go out, the first is announced, then completion."""
    from gridbind.sttp.measurement import ticks_to_datetime

    metadata, signals = synthetic_pmu_metadata(20)
    second = 10_000_000
    start = (ticks_now() - 60 * second) // second * second
    archive = list(PmuSource(signals, start_ticks=start).frames(30))
    first, last = archive[6][0].timestamp, archive[18][0].timestamp
    asked: list = []

    async def history(low: int, high: int, wanted: list[uuid.UUID]):
        asked.append((low, high))
        for frame in archive:  # ignores the bounds: the publisher must enforce them
            yield frame

    def iso(ticks: int) -> str:
        whole = ticks_to_datetime(ticks - ticks % second)
        return f"{whole:%Y-%m-%dT%H:%M:%S}.{ticks % second:07d}Z"

    received: list = []
    events: list = []

    async def run() -> None:
        async with Publisher(metadata, port=0, history=history) as publisher:
            settings = SubscriptionSettings(
                filter_expression="FILTER ActiveMeasurements WHERE SignalType = 'FREQ'",
                start_time=iso(first),
                stop_time=iso(last),
                processing_interval=0,
            )
            async with Subscriber(
                port=publisher.port,
                settings=settings,
                auto_reconnect=False,
                on_event=events.append,
                on_measurements=received.extend,
            ) as subscriber:
                await subscriber.wait_subscribed(10)
                await subscriber.wait_processing_complete(10)
                await asyncio.sleep(0.1)
        assert asked == [(first, last)]
        stamps = sorted({m.timestamp for m in received})
        assert stamps == [frame[0].timestamp for frame in archive[6:19]]
        assert len(received) == 13 * 2  # two FREQ signals per frame
        assert [e.ticks for e in events if isinstance(e, DataStartTime)] == [first]

    asyncio.run(run())


@pytest.mark.timeout(30)
def test_temporal_subscription_refused_without_history():
    metadata, _ = synthetic_pmu_metadata(10)

    async def run() -> None:
        async with Publisher(metadata, port=0) as publisher:
            settings = SubscriptionSettings(filter_expression=ALL, start_time="*-1m")
            async with Subscriber(
                port=publisher.port, settings=settings, auto_reconnect=False
            ) as sub:
                with pytest.raises(asyncio.TimeoutError):
                    await sub.wait_subscribed(1)
                assert "historical replay" in (sub.last_error or "")

    asyncio.run(run())


@pytest.mark.timeout(30)
def test_throttled_subscription_sends_latest_values_per_interval():
    metadata, signals = synthetic_pmu_metadata(10)
    source = PmuSource(signals, start_ticks=ticks_now())

    async def run() -> None:
        async with Publisher(metadata, port=0) as publisher:
            settings = SubscriptionSettings(
                filter_expression=ALL, throttled=True, publish_interval=0.2
            )
            async with Subscriber(
                port=publisher.port, settings=settings, auto_reconnect=False
            ) as sub:
                await sub.wait_subscribed(10)
                last = None
                for frame in source.frames(40):
                    publisher.publish(frame)
                    last = frame
                received = await _receive(sub, 10, 5)
                assert key(received) == key(last)

    asyncio.run(run())


@pytest.mark.timeout(30)
def test_metadata_filters_notifications_user_commands_buffer_blocks_nan_filter():
    metadata, signals = synthetic_pmu_metadata(30)
    seen: list = []

    def on_publisher_event(connection, event) -> None:
        if isinstance(event, UserCommand):
            connection.session.user_response(0xE1, event.command, event.payload[::-1])
            connection.flush()

    async def run() -> None:
        async with Publisher(metadata, port=0, on_event=on_publisher_event) as publisher:
            settings = SubscriptionSettings(filter_expression=ALL, request_nan_value_filter=True)
            async with Subscriber(
                port=publisher.port, settings=settings, auto_reconnect=False, on_event=seen.append
            ) as sub:
                await sub.wait_subscribed(10)
                filtered = await sub.request_metadata(
                    "FILTER MeasurementDetail WHERE SignalAcronym = 'FREQ'"
                )
                assert {r["SignalAcronym"] for r in filtered["MeasurementDetail"].rows} == {"FREQ"}
                assert len(filtered["DeviceDetail"].rows) == 3
                publisher.notify("maintenance at noon")
                sub.send_user_command(0xD1, b"abc")
                assert publisher.send_buffer_block(signals[0], b"\x00opaque\xff") == 1
                frame = [
                    Measurement(signals[0], math.nan, ticks_now()),
                    Measurement(signals[1], 1.5, ticks_now()),
                ]
                publisher.publish(frame)
                received = await _receive(sub, 1, 5)
                assert [m.signal_id for m in received] == [signals[1]]  # NaN filtered out
                for _ in range(40):
                    if any(isinstance(e, UserResponse) for e in seen):
                        break
                    await asyncio.sleep(0.05)
        notes = [e.message for e in seen if isinstance(e, Notification)]
        assert notes == ["maintenance at noon"]
        responses = [e for e in seen if isinstance(e, UserResponse)]
        assert responses and responses[0].code == 0xE1 and responses[0].payload == b"cba"
        blocks = [e for e in seen if type(e).__name__ == "BufferBlockReceived"]
        assert (
            blocks and blocks[0].signal_id == signals[0] and blocks[0].payload == b"\x00opaque\xff"
        )

    asyncio.run(run())


@pytest.mark.timeout(20)
def test_sync_collect_helper():
    metadata, signals = synthetic_pmu_metadata(10)
    source = PmuSource(signals, start_ticks=ticks_now())
    import threading

    result: list = []

    async def serve(ready: threading.Event, done: threading.Event, port_box: list) -> None:
        async with Publisher(metadata, port=0) as publisher:
            port_box.append(publisher.port)
            ready.set()
            while not done.is_set():
                publisher.publish(source.next_frame())
                await asyncio.sleep(0.01)

    ready, done, port_box = threading.Event(), threading.Event(), []
    thread = threading.Thread(target=lambda: asyncio.run(serve(ready, done, port_box)))
    thread.start()
    try:
        assert ready.wait(5)
        from gridbind.sttp.ieee2664 import collect

        result = collect(
            "127.0.0.1", port_box[0], count=25, filter_expression=ALL, auto_reconnect=False
        )
    finally:
        done.set()
        thread.join(5)
    assert len(result) == 25 and all(m.signal_id in set(signals) for m in result)


def _self_signed(tmp_path):
    """A throw-away CA-less certificate for 127.0.0.1 (written by this test, not committed)."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.mark.timeout(30)
def test_tls_command_channel_with_pinned_self_signed_certificate(tmp_path):
    from gridbind.sttp.tls import TlsConfig

    cert, private = _self_signed(tmp_path)
    server = TlsConfig(certfile=str(cert), keyfile=str(private))
    client = TlsConfig(cafile=str(cert))
    metadata, signals = synthetic_pmu_metadata(20)
    frames = list(PmuSource(signals, start_ticks=ticks_now()).frames(10))
    sent = [m for frame in frames for m in frame]

    async def run() -> None:
        async with Publisher(metadata, port=0, tls=server) as publisher:
            async with Subscriber(
                port=publisher.port, filter_expression=ALL, tls=client, auto_reconnect=False
            ) as subscriber:
                await subscriber.wait_subscribed(10)
                assert publisher.connections[0].transport.get_extra_info("ssl_object") is not None
                await _publish(publisher, frames)
                assert key(await _receive(subscriber, len(sent))) == key(sent)
            # a subscriber that does not trust the certificate is refused
            untrusting = Subscriber(port=publisher.port, tls=TlsConfig(), auto_reconnect=False)
            with pytest.raises(ConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
                await untrusting.start()

    asyncio.run(run())


@pytest.mark.timeout(30)
def test_idle_timeout_redials_a_silent_publisher():
    """A publisher that accepts but never answers is dropped after idle_timeout and redialled."""
    accepted: list = []

    async def run() -> None:
        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted.append(writer)
            await reader.read(1 << 16)
            await asyncio.sleep(10)

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            subscriber = Subscriber(port=port, idle_timeout=0.4, retry_interval=0.05)
            await subscriber.start()
            for _ in range(60):
                if subscriber.connections >= 2:
                    break
                await asyncio.sleep(0.05)
            assert subscriber.connections >= 2 and "nothing received" in subscriber.last_error
            await subscriber.stop()
            for writer in accepted:
                writer.close()

    asyncio.run(run())


@pytest.mark.timeout(30)
def test_reverse_connection_publisher_dials_listening_subscriber():
    metadata, signals = synthetic_pmu_metadata(30)
    source = PmuSource(signals, start_ticks=ticks_now())

    async def run() -> None:
        subscriber = Subscriber(port=0, listen=True, filter_expression=ALL)
        await subscriber.start()
        publisher = Publisher(metadata)
        await publisher.start(listen=False)
        await publisher.connect("127.0.0.1", subscriber.port, retry_interval=0.1)
        await subscriber.wait_subscribed(10)
        for _ in range(40):
            if publisher.connections and publisher.connections[0].session.subscribed:
                break
            await asyncio.sleep(0.05)
        frame = source.next_frame()
        publisher.publish(frame)
        assert key(await _receive(subscriber, len(frame))) == key(frame)
        # the publisher redials after the connection drops
        publisher.connections[0].close()
        for _ in range(100):
            if subscriber.connections == 2 and subscriber.subscribed:
                break
            await asyncio.sleep(0.05)
        assert subscriber.connections == 2 and subscriber.subscribed
        await publisher.stop()
        await subscriber.stop()

    asyncio.run(run())


@pytest.mark.timeout(30)
def test_configuration_change_refreshes_metadata_and_subscription():
    small, _ = synthetic_pmu_metadata(10)
    large, signals = synthetic_pmu_metadata(20)

    async def run() -> None:
        async with Publisher(small, port=0) as publisher:
            async with Subscriber(
                port=publisher.port,
                filter_expression="FILTER ActiveMeasurements WHERE SignalType = 'FREQ'",
                auto_reconnect=False,
            ) as subscriber:
                assert len(await subscriber.wait_subscribed(10)) == 1
                publisher.define_metadata(large)
                for _ in range(100):
                    if subscriber.cache is not None and len(subscriber.cache) == 2:
                        break
                    await asyncio.sleep(0.05)
                assert set(subscriber.cache.signal_ids) == {signals[0], signals[10]}
                assert len(subscriber.metadata["MeasurementDetail"].rows) == 20

    asyncio.run(run())


@pytest.mark.timeout(30)
def test_noop_keepalive_and_time_reasonability_check():
    """NO_OPs keep an idle subscription alive; lag/lead time drop unreasonable timestamps."""
    metadata, signals = synthetic_pmu_metadata(3)
    seen: list = []

    async def run() -> None:
        async with Publisher(metadata, port=0, noop_interval=0.1) as publisher:
            settings = SubscriptionSettings(
                filter_expression=ALL,
                enable_time_reasonability_check=True,
                lag_time=5.0,
                lead_time=1.0,
            )
            async with Subscriber(
                port=publisher.port, settings=settings, idle_timeout=0.5, on_event=seen.append
            ) as subscriber:
                await subscriber.wait_subscribed(10)
                await asyncio.sleep(1.5)  # idle, but NO_OPs arrive every 0.1 s
                assert subscriber.connections == 1 and subscriber.connected
                assert sum(type(e).__name__ == "NoOp" for e in seen) >= 5
                now = ticks_now()
                publisher.publish(
                    [
                        Measurement(signals[0], 1.0, now - 60 * 10_000_000),  # too old
                        Measurement(signals[1], 2.0, now),
                        Measurement(signals[2], 3.0, now + 60 * 10_000_000),  # too far ahead
                    ]
                )
                received = await _receive(subscriber, 1, 5)
                await asyncio.sleep(0.2)
                assert [m.value for m in received] == [2.0]
                assert subscriber.stats.measurements == 1

    asyncio.run(run())


@pytest.mark.timeout(30)
def test_callback_only_subscriber_is_not_stalled_by_the_iterator_queue():
    metadata, signals = synthetic_pmu_metadata(5)
    source = PmuSource(signals, start_ticks=ticks_now())
    got: list = []

    async def run() -> None:
        async with Publisher(metadata, port=0) as publisher:
            async with Subscriber(
                port=publisher.port,
                filter_expression=ALL,
                on_measurements=got.extend,
                queue_batches=4,
                auto_reconnect=False,
            ) as subscriber:
                await subscriber.wait_subscribed(10)
                await _publish(publisher, source.frames(50))
                for _ in range(100):
                    if len(got) == 250:
                        break
                    await asyncio.sleep(0.02)
        assert len(got) == 250

    asyncio.run(run())


@pytest.mark.timeout(30)
@pytest.mark.parametrize("udp", [False, True])
def test_compact_base_time_rotation(udp):
    """Timestamps far apart make the publisher rotate base times; values stay exact. On UDP the
    offsets are used only once the subscriber confirmed the base times."""
    metadata, signals = synthetic_pmu_metadata(10)
    start = ticks_now()
    frames = []
    for step in range(6):
        frame = PmuSource(signals, start_ticks=start + step * 200 * 10_000_000).next_frame()
        frames.append(frame)
    sent = [m for frame in frames for m in frame]
    updates: list = []

    async def run() -> None:
        async with Publisher(metadata, port=0) as publisher:
            async with Subscriber(
                port=publisher.port,
                filter_expression=ALL,
                udp=udp,
                config=SubscriberConfig(compress_payload=False),
                auto_reconnect=False,
                on_event=lambda e: (
                    updates.append(e) if type(e).__name__ == "BaseTimesUpdated" else None
                ),
            ) as subscriber:
                await subscriber.wait_subscribed(10)
                session = publisher.connections[0].session
                for frame in frames:
                    publisher.publish(frame)
                    await publisher.drain()
                    await asyncio.sleep(0.05)  # lets UDP base-time confirmations come back
                received = await _receive(subscriber, len(sent), 10)
                assert [(m.signal_id, m.timestamp) for m in received] == [
                    (m.signal_id, m.timestamp) for m in sent
                ]
                assert len(updates) >= 3
                assert session.compact.base_times[session.compact.time_index] > 0
                assert session.stats.data_bytes / len(sent) < 17  # 4-byte offsets were used

    asyncio.run(run())


@pytest.mark.timeout(30)
def test_udp_batches_beyond_the_queue_bound_drop_the_oldest():
    """UDP data cannot be paused: an iterator that does not keep up loses the oldest batches
    (counted), the queue stays bounded."""
    metadata, signals = synthetic_pmu_metadata(4)
    frames = list(PmuSource(signals, start_ticks=0).frames(40))

    async def run() -> tuple[int, int, int, list[Measurement]]:
        async with Publisher(metadata, port=0) as publisher:
            subscriber = Subscriber(
                port=publisher.port,
                filter_expression=ALL,
                udp=True,
                auto_reconnect=False,
                queue_batches=4,
            )
            async with subscriber:
                iterator = subscriber.batches()
                await subscriber.wait_subscribed(10)
                for _ in range(100):  # UDP data flows once the cache is confirmed
                    connection = publisher.connections[0]
                    if connection.ready and not connection.session._awaiting_cache_confirm:
                        break
                    await asyncio.sleep(0.02)
                for frame in frames:
                    publisher.publish(frame)
                    await asyncio.sleep(0.002)
                for _ in range(200):
                    if subscriber.stats.measurements >= 4 * len(frames):
                        break
                    await asyncio.sleep(0.02)
                queued = subscriber._queue.qsize()
                batches = subscriber.stats.data_packets
                first = await asyncio.wait_for(anext(iterator), 2)
                return queued, subscriber.dropped_batches, batches, first

    queued, dropped, batches, first = asyncio.run(run())
    assert batches >= len(frames) // 2  # most of the data arrived (on loopback: all)
    assert queued == 8 and dropped == batches - 8
    assert first[0].timestamp > frames[0][0].timestamp  # the oldest went first
