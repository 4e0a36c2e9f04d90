"""Stateful DEFLATE on the TCP channel: one stream per session direction, sync-flushed packets,
the seed's limits, and corrupt / truncated / reordered stream packets ending the session
cleanly (RequestFailed, close), never a crash or a hang."""

from __future__ import annotations

import asyncio
import uuid
import zlib

import pytest

from gridbind.generated.sttp import draft_0_8 as wire
from gridbind.sttp import Measurement
from gridbind.sttp.draft import Publisher, Subscriber, ValueType
from gridbind.sttp.draft.metadata import MetadataDatabase
from gridbind.sttp.draft.session import (
    Catalog,
    DataPointsReceived,
    PublisherSession,
    SessionClosed,
    SubscriberSession,
)

from draft_sansio import encode, frames, pump

CC = wire.CommandCode
DEFLATE = wire.CompressionMode.Deflate
T0 = 638_000_000_000_000_000
SYNC = b"\x00\x00\xff\xff"


IDS = [uuid.uuid4() for _ in range(200)]


def subscribed(stateful="DEFLATE"):
    pub = PublisherSession(
        Catalog(MetadataDatabase(), value_types={i: ValueType.SINGLE for i in IDS}),
        stateful=[stateful],
        udp=False,
    )
    sub = SubscriberSession(stateful=[stateful])
    pump(pub, sub)
    sub.subscribe(
        [wire.SubscribeItem(sub_command=wire.SubscribeSubCommand.AllDataPoints, body=None)], 0.0
    )
    pump(pub, sub)
    assert len(sub.mapping) == len(IDS)
    return pub, sub


def batch(k: int) -> list[Measurement]:
    return [Measurement(p, float(j * 10 + k) / 8, T0 + k, 0) for j, p in enumerate(IDS)]


def packet(pub, k):
    pub.publish(batch(k))
    [(code, payload)] = frames(pub.data_to_send())
    assert code == CC.BeginFragment
    return wire.BeginFragment.parse(payload)


def values(events):
    return [m.value for e in events if isinstance(e, DataPointsReceived) for m in e.measurements]


@pytest.mark.timeout(10)
def test_stream_packets_are_sync_flushed_and_share_history():
    pub, sub = subscribed()
    first = packet(pub, 0)
    assert first.compression_mode == DEFLATE and first.first_fragment.endswith(SYNC)
    # without the session's history a later packet is not a stand-alone DEFLATE stream ...
    pub.publish(batch(0))  # the same points again: the stream codes them as a back-reference
    [(_, again)] = frames(pub.data_to_send())
    second = wire.BeginFragment.parse(again)
    assert second.total_fragment_size < first.total_fragment_size // 10
    with pytest.raises(zlib.error):
        zlib.decompressobj(-15).decompress(second.first_fragment)
    # ... but the subscriber's stream inflates both in order, exactly
    events = sub.receive_data(encode(CC.BeginFragment, first.build()), 0.0)
    events += sub.receive_data(encode(CC.BeginFragment, second.build()), 0.0)
    assert not sub.closed
    assert values(events) == [m.value for m in batch(0)] * 2


@pytest.mark.timeout(10)
def test_stateless_deflate_stays_per_packet_where_stateful_is_not_deflate():
    pub, sub = subscribed("NONE")
    assert pub._deflate_out is None and sub._deflate_in is None
    from gridbind.sttp.draft.packets import DataEncoder

    udp = DataEncoder("DEFLATE", stateful=False)
    assert udp.deflate_stream is None


def _corrupt(begin: wire.BeginFragment) -> wire.BeginFragment:
    data = b"\xff" * 16 + SYNC  # BFINAL=1, BTYPE=11: a reserved block type
    return wire.BeginFragment(len(data), begin.total_raw_size, CC.SendDataPoints, DEFLATE, data)


def _truncated(begin: wire.BeginFragment) -> wire.BeginFragment:
    data = begin.first_fragment[:-4]  # the sync flush marker lost
    return wire.BeginFragment(len(data), begin.total_raw_size, CC.SendDataPoints, DEFLATE, data)


def _cut(begin: wire.BeginFragment) -> wire.BeginFragment:
    data = begin.first_fragment[: len(begin.first_fragment) // 2] + SYNC
    return wire.BeginFragment(len(data), begin.total_raw_size, CC.SendDataPoints, DEFLATE, data)


def _undersized(begin: wire.BeginFragment) -> wire.BeginFragment:
    raw = begin.total_raw_size - 1
    data = begin.first_fragment
    return wire.BeginFragment(len(data), raw, CC.SendDataPoints, DEFLATE, data)


def _bomb(begin: wire.BeginFragment) -> wire.BeginFragment:
    stream = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = stream.compress(b"\0" * 10_000_000) + stream.flush(zlib.Z_SYNC_FLUSH)
    return wire.BeginFragment(len(data), 16384, CC.SendDataPoints, DEFLATE, data)


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    "damage, why",
    [
        (_corrupt, "invalid"),
        (_truncated, "truncated"),
        (_cut, "inflate"),
        (_undersized, "more than"),
        (_bomb, "past the 16384-byte limit"),
    ],
)
def test_corrupt_or_truncated_stream_packet_ends_the_session(damage, why):
    pub, sub = subscribed()
    good = packet(pub, 0)
    events = sub.receive_data(encode(CC.BeginFragment, good.build()), 0.0)
    assert len(values(events)) == len(IDS)
    bad = damage(packet(pub, 1))
    events = sub.receive_data(encode(CC.BeginFragment, bad.build()), 0.0)
    assert sub.closed and isinstance(events[-1], SessionClosed)
    [(code, payload)] = frames(sub.data_to_send())
    refusal = wire.RequestFailed.parse(payload)
    assert code == CC.RequestFailed and refusal.terminate_connection
    assert why in refusal.reason and "inflate" in refusal.reason
    # the peer closes on the refusal; later bytes are ignored, not a crash
    assert sub.receive_data(encode(CC.BeginFragment, packet(pub, 2).build()), 0.0) == []
    pub_events = pub.receive_data(encode(code, payload), 0.0)
    assert pub.closed and pub_events[-1].by_peer


@pytest.mark.timeout(10)
def test_a_stream_packet_out_of_order_is_refused():
    pub, sub = subscribed()
    first = packet(pub, 0)
    pub.publish(batch(0))
    [(_, second)] = frames(pub.data_to_send())
    events = sub.receive_data(encode(CC.BeginFragment, second), 0.0)  # its history is missing
    assert sub.closed and isinstance(events[-1], SessionClosed) and not values(events)
    refusal = wire.RequestFailed.parse(frames(sub.data_to_send())[0][1])
    assert refusal.terminate_connection and "inflate" in refusal.reason
    assert first


@pytest.mark.timeout(10)
def test_a_corrupt_stream_command_from_the_subscriber_ends_the_session():
    pub, sub = subscribed()
    bad = _corrupt(wire.BeginFragment(0, 100, CC.Subscribe, DEFLATE, b""))
    bad = wire.BeginFragment(
        bad.total_fragment_size, 100, CC.Subscribe, DEFLATE, bad.first_fragment
    )
    events = pub.receive_data(encode(CC.BeginFragment, bad.build()), 0.0)
    assert pub.closed and isinstance(events[-1], SessionClosed)
    refusal = wire.RequestFailed.parse(frames(pub.data_to_send())[0][1])
    assert refusal.terminate_connection and "invalid DEFLATE data" in refusal.reason


@pytest.mark.timeout(20)
def test_socket_corrupted_stream_packet_closes_both_ends_cleanly():
    async def main():
        publisher = Publisher(
            port=0, points={i: ValueType.SINGLE for i in IDS}, stateful=["DEFLATE"], udp=False
        )
        await publisher.start()
        subscriber = Subscriber(port=publisher.port, stateful=["DEFLATE"])
        try:
            await subscriber.start()
            await subscriber.subscribe()
            await publisher.wait_subscribed()
            publisher.publish(batch(0))
            got = await subscriber.collect(len(IDS), 5)
            stream = publisher.connections[0].session._deflate_out
            compress = stream.compress
            stream.compress = lambda data: b"\xff" * 8 + compress(data)  # corrupt on the wire
            publisher.publish(batch(1))
            await asyncio.wait_for(publisher.wait_for(lambda: not publisher.connections), 5)
            for _ in range(100):
                if subscriber.session.closed:
                    break
                await asyncio.sleep(0.02)
            return got, subscriber.session.closed, subscriber.session.close_reason
        finally:
            await subscriber.stop()
            await publisher.stop()

    got, closed, reason = asyncio.run(asyncio.wait_for(main(), 15))
    assert [m.value for m in got] == [m.value for m in batch(0)]
    assert closed and "inflate" in reason


@pytest.mark.timeout(10)
def test_stateless_deflate_packets_fit_one_frame_each():
    import random

    from gridbind.sttp.draft.fragments import Assembler
    from gridbind.sttp.draft.framing import FrameReader
    from gridbind.sttp.draft.packets import DataDecoder, DataEncoder, WirePoint

    rng = random.Random(7)
    points = [
        WirePoint(i, ValueType.DOUBLE, T0 + i, rng.random(), rng.getrandbits(32))
        for i in range(3000)
    ]
    udp = DataEncoder("DEFLATE", stateful=False, max_payload=1400)
    decoder = DataDecoder(stateful=False)
    got = []
    for frame in udp.encode(points):
        assert len(frame) <= 1400 + 3
        ((code, payload),) = FrameReader().feed(frame)
        assert code in (CC.SendDataPoints, CC.BeginFragment)
        if code == CC.SendDataPoints:
            got += decoder.basic(payload)
        else:
            packet = Assembler().feed(code, payload)
            assert packet is not None  # complete in one frame, no NextFragment
            got += decoder.packet(packet)
    assert got == points
