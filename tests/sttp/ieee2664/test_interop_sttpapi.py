"""gridbind <-> sttpapi over 127.0.0.1, both directions: TSSC, compact, UDP, metadata, filters.

The heavy runs (1000 signals x 30 frames/s x 10 s of stream time = 300 000 measurements, TSSC)
happen once per direction; the variants use 1 s of stream time.
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from sttpapi_peer import (
    AVAILABLE,
    from_sttpapi,
    key,
    loopback_publisher,
    sttpapi_dataset,
    to_sttpapi,
)

from conftest import require
from gridbind.sttp.expressions import select_signal_ids
from gridbind.sttp.ieee2664 import PmuSource, Publisher, Subscriber, synthetic_pmu_metadata
from gridbind.sttp.ieee2664.compact import expected_compact_roundtrip
from gridbind.sttp.ieee2664.metadata import active_measurements
from gridbind.sttp.ieee2664.session import SubscriberConfig
from gridbind.sttp.measurement import ticks_now

pytestmark = pytest.mark.sttpapi

ALL = "FILTER ActiveMeasurements WHERE SignalType <> 'NONE'"


@pytest.fixture(scope="module")
def fleet():
    metadata, signals = synthetic_pmu_metadata(1000)
    return metadata, signals


@pytest.fixture
def sttpapi_publisher(fleet):
    require(AVAILABLE, "sttpapi")
    publisher = loopback_publisher()
    errors: list[str] = []
    publisher.errormessage_callback = errors.append
    publisher.define_metadata(sttpapi_dataset(fleet[0]))
    publisher.start(0)
    yield publisher
    publisher.stop()


def _frames(signals, seconds: float, **options):
    source = PmuSource(signals, start_ticks=ticks_now(), **options)
    frames = list(source.frames(int(30 * seconds)))
    return frames, [m for frame in frames for m in frame]


async def _receive(subscriber: Subscriber, expected: int, timeout: float) -> list:
    received: list = []

    async def gather() -> None:
        async for batch in subscriber.batches():
            received.extend(batch)
            if len(received) >= expected:
                return

    await asyncio.wait_for(gather(), timeout)
    return received


def _run_sttpapi_publisher(publisher, frames) -> None:
    for frame in frames:
        publisher.publish_measurements(to_sttpapi(frame))


@pytest.mark.timeout(120)
def test_sttpapi_publisher_to_gridbind_subscriber_tssc_300k(sttpapi_publisher, fleet):
    metadata, signals = fleet
    frames, sent = _frames(signals, 10.0)

    async def run() -> None:
        async with Subscriber(
            port=int(sttpapi_publisher.port), filter_expression=ALL, auto_reconnect=False
        ) as subscriber:
            cache = await subscriber.wait_subscribed(15)
            assert set(cache.signal_ids) == set(signals)
            # metadata: what we parsed equals what the peer serves (its own XML reader agrees)
            ours = subscriber.metadata
            assert ours is not None
            assert [row["SignalID"] for row in ours["MeasurementDetail"].rows] == signals
            assert ours["MeasurementDetail"].rows == metadata["MeasurementDetail"].rows
            assert ours["DeviceDetail"].rows == metadata["DeviceDetail"].rows
            publishing = asyncio.create_task(
                asyncio.to_thread(_run_sttpapi_publisher, sttpapi_publisher, frames)
            )
            received = await _receive(subscriber, len(sent), 90)
            await publishing
            assert len(received) == len(sent) == 300_000
            assert key(received) == key(sent)  # values, timestamps and flags exact, 0 lost
            assert subscriber.stats.dropped_packets == 0
            assert subscriber.session.modes & 0x20000000  # it asked for payload compression
            assert subscriber.stats.data_bytes / len(sent) < 4.0  # TSSC, not compact (17+ B)

    asyncio.run(run())


class _SttpapiSubscriber:
    """sttpapi's high-level Subscriber, collecting into lists from its threads."""

    def __init__(self, compress: bool = True, udp_port: int = 0, filter_expression: str = ALL):
        from sttp.config import Config
        from sttp.settings import Settings
        from sttp.subscriber import Subscriber as SttpSubscriber

        self.received: list = []
        self.metadata: list = []
        self.errors: list[str] = []
        self.subscribed = threading.Event()
        self.signal_ids: set = set()
        self.peer = SttpSubscriber()
        self.peer.statusmessage_logger = lambda message: None
        self.peer.errormessage_logger = self.errors.append
        self.peer.set_newmeasurements_receiver(self.received.extend)
        self.peer.set_metadatanotification_receiver(self.metadata.append)
        self.peer.set_subscriptionupdated_receiver(self._updated)
        self.config = Config(autoreconnect=False, compress_payloaddata=compress)
        self.peer.subscribe(filter_expression, Settings(udpport=udp_port, udpinterface="127.0.0.1"))

    def _updated(self, cache) -> None:
        self.signal_ids = set(cache.signalids)
        self.subscribed.set()

    async def connect(self, port: int) -> None:
        err = await asyncio.to_thread(self.peer.connect, f"127.0.0.1:{port}", self.config)
        assert err is None, err
        assert await asyncio.to_thread(self.subscribed.wait, 15), self.errors

    async def wait_for(self, count: int, timeout: float, settle: float = 1.5) -> None:
        """Wait for ``count`` measurements, or until nothing new arrived for ``settle`` s."""
        deadline = time.monotonic() + timeout
        last, last_change = -1, time.monotonic()
        while len(self.received) < count and time.monotonic() < deadline:
            if len(self.received) != last:
                last, last_change = len(self.received), time.monotonic()
            elif time.monotonic() - last_change > settle:
                return
            await asyncio.sleep(0.05)

    def close(self) -> None:
        self.peer.disconnect()
        self.peer.dispose()


@pytest.mark.timeout(120)
def test_gridbind_publisher_to_sttpapi_subscriber_tssc_300k(fleet):
    require(AVAILABLE, "sttpapi")
    metadata, signals = fleet
    frames, sent = _frames(signals, 10.0)

    async def run() -> None:
        async with Publisher(metadata, port=0) as publisher:
            peer = _SttpapiSubscriber()
            try:
                await peer.connect(publisher.port)
                assert peer.signal_ids == set(signals)
                # metadata as the peer parsed it
                table = peer.metadata[0]["MeasurementDetail"]
                column = table.column_byname("SignalID").index
                assert [table.row(i)[column] for i in range(table.rowcount)] == signals
                assert publisher.connections[0].session.uses_tssc
                for frame in frames:
                    publisher.publish(frame)
                    await publisher.drain()
                await peer.wait_for(len(sent), 90)
                assert len(peer.received) == 300_000
                assert from_sttpapi(peer.received) == key(sent)
                assert not peer.errors
            finally:
                peer.close()

    asyncio.run(run())


@pytest.mark.timeout(60)
def test_compact_encoding_both_directions(sttpapi_publisher, fleet):
    """Compact measurements carry full timestamps/values; flags by the protocol's compact map."""
    metadata, signals = fleet
    frames, sent = _frames(signals, 1.0, flag_every=7)
    compacted = [(s, v, t, expected_compact_roundtrip(f)) for s, v, t, f in key(sent)]

    async def run() -> None:
        # sttpapi publisher -> gridbind subscriber (compact: no TSSC requested)
        async with Subscriber(
            port=int(sttpapi_publisher.port),
            filter_expression=ALL,
            auto_reconnect=False,
            config=SubscriberConfig(compress_payload=False),
        ) as subscriber:
            await subscriber.wait_subscribed(15)
            publishing = asyncio.create_task(
                asyncio.to_thread(_run_sttpapi_publisher, sttpapi_publisher, frames)
            )
            received = await _receive(subscriber, len(sent), 30)
            await publishing
            assert key(received) == compacted
            assert subscriber.stats.data_bytes / len(sent) >= 17  # compact, full timestamps
        # gridbind publisher -> sttpapi subscriber (compact with base time offsets)
        async with Publisher(metadata, port=0) as publisher:
            peer = _SttpapiSubscriber(compress=False)
            try:
                await peer.connect(publisher.port)
                session = publisher.connections[0].session
                assert not session.uses_tssc
                for frame in frames:
                    publisher.publish(frame)
                    await publisher.drain()
                await peer.wait_for(len(sent), 30)
                assert from_sttpapi(peer.received) == compacted
                assert session.compact.base_times[0] > 0  # 4-byte offsets were used
                assert session.stats.data_bytes / len(sent) < 14.5
            finally:
                peer.close()

    asyncio.run(run())


@pytest.mark.timeout(60)
def test_udp_data_channel_to_sttpapi_subscriber(fleet):
    """gridbind publisher -> sttpapi subscriber with a UDP data channel (loss counted)."""
    require(AVAILABLE, "sttpapi")
    metadata, signals = fleet
    frames, sent = _frames(signals, 1.0)

    async def run() -> None:
        import socket

        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.bind(("127.0.0.1", 0))
        udp_port = probe.getsockname()[1]
        probe.close()
        async with Publisher(metadata, port=0) as publisher:
            peer = _SttpapiSubscriber(compress=False, udp_port=udp_port)
            try:
                await peer.connect(publisher.port)
                session = publisher.connections[0].session
                assert session.udp_target == ("127.0.0.1", udp_port)
                await asyncio.sleep(0.2)  # cache confirmation round trip
                for frame in frames:
                    publisher.publish(frame)
                    await publisher.drain()
                    await asyncio.sleep(1 / 30)  # real time: 30 frames/s
                await peer.wait_for(len(sent), 10)
                received = from_sttpapi(peer.received)
                lost = len(sent) - len(received)
                print(f"UDP to sttpapi: {len(received)} of {len(sent)} received, {lost} lost")
                assert 0 <= lost < len(sent) // 2, f"lost {lost} of {len(sent)}"
                expected = {(s, t): (v, expected_compact_roundtrip(f)) for s, v, t, f in key(sent)}
                for signal, value, stamp, flags in received:
                    assert expected[(signal, stamp)] == (value, flags)
                assert session.stats.data_packets >= len(frames)
            finally:
                peer.close()

    asyncio.run(run())


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "expression",
    [
        "FILTER ActiveMeasurements WHERE SignalType='FREQ'",
        "FILTER TOP 7 ActiveMeasurements WHERE SignalType LIKE 'VPH%'",
        "FILTER ActiveMeasurements WHERE Device IN ('PMU0003', 'PMU0042') AND SignalType <> 'DFDT'",
        "PPA:17; PPA:18; FILTER ActiveMeasurements WHERE PhasorType = 'I' AND Device = 'PMU0001'",
    ],
)
def test_filter_expressions_select_what_sttpapi_selects(sttpapi_publisher, fleet, expression):
    """The same filter selects the same signals from sttpapi's publisher and from ours."""
    metadata, _ = fleet
    from sttp.data.filterexpressionparser import FilterExpressionParser

    expected, err = FilterExpressionParser.select_signalidset(
        sttpapi_publisher.filtering_metadata, expression, "ActiveMeasurements", None, True
    )
    assert err is None and expected
    ours_local = select_signal_ids(
        [active_measurements(metadata, sttpapi_publisher.node_id)], expression
    )
    assert set(ours_local) == expected

    async def caches(port: int) -> set:
        async with Subscriber(port=port, filter_expression=expression, auto_reconnect=False) as sub:
            return set((await sub.wait_subscribed(15)).signal_ids)

    # sttpapi's publisher splits the connection string at every ';', even inside braces, so it
    # cannot take multi-statement filters (its defect); there only our publisher is compared.
    multi = ";" in expression

    async def run() -> None:
        from_sttpapi_publisher = expected if multi else await caches(int(sttpapi_publisher.port))
        async with Publisher(metadata, port=0) as publisher:
            from_ours = await caches(publisher.port)
            peer = _SttpapiSubscriber(filter_expression=expression)
            try:
                await peer.connect(publisher.port)
                sttpapi_view_of_ours = peer.signal_ids
            finally:
                peer.close()
        assert from_sttpapi_publisher == from_ours == sttpapi_view_of_ours == expected

    asyncio.run(run())


@pytest.mark.timeout(60)
def test_gridbind_udp_subscriber_against_sttpapi_publisher(sttpapi_publisher, fleet):
    """sttpapi's publisher has no UDP data channel: it ignores dataChannel and keeps sending
    (compact) on TCP; our subscriber asks for UDP and still receives everything."""
    _, signals = fleet
    frames, sent = _frames(signals, 0.5)

    async def run() -> None:
        async with Subscriber(
            port=int(sttpapi_publisher.port), filter_expression=ALL, udp=True, auto_reconnect=False
        ) as subscriber:
            await subscriber.wait_subscribed(15)
            assert subscriber.settings.udp_port > 0
            publishing = asyncio.create_task(
                asyncio.to_thread(_run_sttpapi_publisher, sttpapi_publisher, frames)
            )
            received = await _receive(subscriber, len(sent), 30)
            await publishing
        assert [(s, v, t) for s, v, t, _ in key(received)] == [
            (s, v, t) for s, v, t, _ in key(sent)
        ]

    asyncio.run(run())
