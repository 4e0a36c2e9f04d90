"""Commands sent by the subscriber that exceed a packet travel as BeginFragment + NextFragment
and the publisher reassembles them (bounded); hostile fragment sequences from the subscriber get
RequestFailed and a clean close. Sans-IO cores and real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import struct
import uuid
import zlib

import pytest

from gridbind.generated.sttp import draft_0_8 as wire
from gridbind.sttp import Measurement
from gridbind.sttp.draft import Publisher, Subscriber, ValueType
from gridbind.sttp.draft.gateway import Gateway
from gridbind.sttp.draft.metadata import MetadataDatabase
from gridbind.sttp.draft.publisher_session import MAX_COMMAND_FRAGMENTED
from gridbind.sttp.draft.session import (
    Catalog,
    CommandFailed,
    PublisherSession,
    SessionClosed,
    SubscriberSession,
)
from gridbind.sttp.draft.transport import CommandError

from draft_sansio import encode, frames, pump

CC = wire.CommandCode
SSC, SM = wire.SubscribeSubCommand, wire.SubscriptionMode
T0 = 638_000_000_000_000_000


def negotiated(ids=(), stateful=("TSSC",), sub_payload=16384):
    pub = PublisherSession(
        Catalog(MetadataDatabase(), value_types={i: ValueType.SINGLE for i in ids}),
        stateful=list(stateful),
    )
    sub = SubscriberSession(stateful=list(stateful), max_payload=sub_payload)
    pump(pub, sub)
    assert pub.negotiated and sub.negotiated
    return pub, sub


def by_id(ids, chunk=3000):
    return [
        wire.SubscribeItem(
            sub_command=SSC.DataPointByID,
            mode=SM.Replace if start == 0 else SM.Append,
            body=ids[start : start + chunk],
        )
        for start in range(0, len(ids), chunk)
    ]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("stateful", ["TSSC", "DEFLATE", "NONE"])
def test_subscribe_by_5000_ids_is_fragmented_and_reassembled(stateful):
    ids = [uuid.uuid4() for _ in range(5000)]
    pub, sub = negotiated(ids, [stateful])
    sub.subscribe(by_id(ids), 0.0)
    sent = sub.data_to_send()
    seen = frames(sent)
    assert [code for code, _ in seen] == [CC.BeginFragment] + [CC.NextFragment] * (len(seen) - 1)
    assert len(seen) >= 5 and all(len(p) <= sub.max_payload for _, p in seen)
    begin = wire.BeginFragment.parse(seen[0][1])
    assert begin.command_code == CC.Subscribe and begin.total_raw_size > 65535 + 10_000
    # above 16384 bytes a command is never deflated, even with a stateful DEFLATE stream
    assert begin.compression_mode == wire.CompressionMode.Uncompressed
    pub_events = pub.receive_data(sent, 0.0)
    assert not pub.closed and not any(isinstance(e, SessionClosed) for e in pub_events)
    _, sub_events = pump(pub, sub)
    assert set(pub.subscribed_points) == set(ids) and len(sub.mapping) == 5000
    assert not any(isinstance(e, CommandFailed) for e in sub_events)


@pytest.mark.timeout(30)
def test_fragmented_commands_use_the_subscribers_deflate_stream():
    """With stateful DEFLATE and a small max_payload, an oversized command of at most 16384
    bytes goes as Deflate fragments of the subscriber's session stream: repeating it costs far
    less the second time (the history holds it) and the publisher decodes both."""
    ids = [uuid.uuid4() for _ in range(300)]
    pub, sub = negotiated(ids, ["DEFLATE"], sub_payload=1024)
    sizes = []
    for _ in range(2):
        sub.subscribe(by_id(ids), 0.0)
        sent = sub.data_to_send()
        begin = wire.BeginFragment.parse(frames(sent)[0][1])
        assert begin.compression_mode == wire.CompressionMode.Deflate
        assert begin.command_code == CC.Subscribe and begin.total_raw_size > 4800
        sizes.append(begin.total_fragment_size)
        pub.receive_data(sent, 0.0)
        assert not pub.closed, pub.close_reason
        pump(pub, sub)
    assert set(pub.subscribed_points) == set(ids)
    assert sizes[0] > 4000  # random ids hardly compress ...
    assert sizes[1] < sizes[0] // 20  # ... but the stream remembers them


def _begin(total, raw, code=CC.Subscribe, mode=0, first=b""):
    return encode(CC.BeginFragment, struct.pack(">iiBB", total, raw, code, mode) + first)


_BOMB = zlib.compressobj(9, zlib.DEFLATED, -15)
_BOMB_DATA = _BOMB.compress(b"\0" * 10_000_000) + _BOMB.flush()


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    "data, why, command",
    [
        (encode(CC.NextFragment, b"abc"), "without a BeginFragment", CC.NextFragment),
        (_begin(100, 100, first=b"x" * 10) + encode(CC.NoOp, b""), "interleaved", CC.NoOp),
        (
            _begin(100, 100, first=b"x" * 10) + wire.build_frame(wire.GetMetadataSchema()),
            "interleaved",
            CC.GetMetadataSchema,
        ),
        (
            _begin(100, 100, first=b"x" * 10) + _begin(10, 10, first=b"y" * 10),
            "BeginFragment interleaved",
            CC.BeginFragment,
        ),
        (_begin(12, 12, first=b"x" * 10) + encode(CC.NextFragment, b"y" * 5), "overlong", 2),
        # declared above the cap: refused at once for the fragmented command, nothing buffered
        (
            _begin(MAX_COMMAND_FRAGMENTED + 1, MAX_COMMAND_FRAGMENTED + 1, first=b"x"),
            f"exceeds the {MAX_COMMAND_FRAGMENTED}-byte limit",
            CC.Subscribe,
        ),
        (_begin(0x7FFFFFFF, 0x7FFFFFFF), "exceeds", CC.Subscribe),
        (_begin(4, 4, mode=2, first=b"abcd"), "TSSC-coded Subscribe", CC.Subscribe),
        (_begin(3, 3, code=CC.SendDataPoints, first=b"abc"), "not sent to a publisher", 0x06),
        (_begin(3, 3, code=CC.BeginFragment, first=b"abc"), "fragment command", 1),
        (_begin(len(_BOMB_DATA), 16384, mode=1, first=_BOMB_DATA), "inflate", 1),
        (_begin(5, 5, first=b"junk!"), "malformed fragmented Subscribe", CC.Subscribe),
        (encode(CC.BeginFragment, b"\x00\x00\x00"), "malformed BeginFragment", 1),
    ],
)
def test_hostile_fragments_from_the_subscriber_get_request_failed_and_close(data, why, command):
    pub, sub = negotiated()
    events = pub.receive_data(data, 0.0)
    assert pub.closed and isinstance(events[-1], SessionClosed)
    [(code, payload)] = frames(pub.data_to_send())
    refusal = wire.RequestFailed.parse(payload)
    assert code == CC.RequestFailed and refusal.terminate_connection
    assert why in refusal.reason and refusal.command == command
    assert pub.receive_data(encode(CC.NextFragment, b"z"), 0.0) == []  # closed: ignored
    sub_events = sub.receive_data(encode(code, payload), 0.0)
    assert sub.closed and any(isinstance(e, SessionClosed) for e in sub_events)


@pytest.mark.timeout(10)
def test_a_fragmented_command_cut_short_by_the_connection_end_is_dropped():
    pub, _ = negotiated()
    assert pub.receive_data(_begin(100, 100, first=b"x" * 10), 0.0) == []
    assert not pub.closed and pub.subscribed_points == []
    pub.close("socket closed")
    assert pub.closed and pub.data_to_send() == b""


def run(coro, timeout=20):
    return asyncio.run(asyncio.wait_for(coro, timeout))


@pytest.mark.timeout(30)
@pytest.mark.parametrize("stateful", ["TSSC", "DEFLATE"])
def test_socket_subscribe_to_5000_ids_by_datapointbyid_and_receive_them(stateful):
    ids = [uuid.uuid4() for _ in range(6000)]
    wanted = ids[500:5500]  # 5000 of the 6000 offered: 80 KB of ids, above a frame's 64 KB

    async def main():
        publisher = Publisher(
            port=0, points={i: ValueType.SINGLE for i in ids}, stateful=[stateful], udp=False
        )
        await publisher.start()
        subscriber = Subscriber(port=publisher.port, stateful=[stateful])
        try:
            await subscriber.start()
            [link] = publisher.connections
            seen = []
            handle = link.session._frame

            def frame(code, payload, now):
                seen.append(code)
                return handle(code, payload, now)

            link.session._frame = frame
            result = await subscriber.subscribe(wanted, timeout=10)
            await publisher.wait_subscribed()
            publisher.publish(
                [Measurement(p, float(k) / 4, T0 + k % 7, k % 5) for k, p in enumerate(ids)]
            )
            got = await subscriber.collect(5000, 10)
            await asyncio.sleep(0.1)
            extra = subscriber.received - len(got)
            return result, seen, got, extra, link.session.closed, subscriber.session.closed
        finally:
            await subscriber.stop()
            await publisher.stop()

    result, seen, got, extra, pub_closed, sub_closed = run(main())
    assert not pub_closed and not sub_closed and "5000" in result.reason
    assert seen.count(CC.BeginFragment) == 1 and seen.count(CC.NextFragment) >= 4
    index = {p: k for k, p in enumerate(ids)}
    assert extra == 0 and len(got) == 5000
    assert {m.signal_id for m in got} == set(wanted)
    for m in got:
        k = index[m.signal_id]
        assert (m.value, m.timestamp, m.flags) == (float(k) / 4, T0 + k % 7, k % 5)


@pytest.mark.timeout(60)
def test_socket_subscribe_above_the_publishers_limit_is_refused_with_a_reason():
    count = MAX_COMMAND_FRAGMENTED // 16 + 100

    async def main():
        publisher = Publisher(port=0, points={uuid.uuid4(): ValueType.SINGLE}, udp=False)
        await publisher.start()
        subscriber = Subscriber(port=publisher.port)
        try:
            await subscriber.start()
            with pytest.raises(CommandError) as refused:
                await subscriber.subscribe([uuid.uuid4() for _ in range(count)], timeout=20)
            await asyncio.wait_for(publisher.wait_for(lambda: not publisher.connections), 5)
            return refused.value, subscriber.session.closed
        finally:
            await subscriber.stop()
            await publisher.stop()

    error, closed = run(main(), 50)
    assert closed and error.event.terminate and error.event.command == CC.Subscribe
    assert f"exceeds the {MAX_COMMAND_FRAGMENTED}-byte limit" in error.event.reason


@pytest.mark.timeout(30)
def test_gateway_routes_a_fragmented_subscribe_to_its_publisher_core():
    points = [uuid.uuid4() for _ in range(5000)]

    async def main():
        east = Gateway(publisher_options={"points": {p: ValueType.SINGLE for p in points}})
        west = Gateway()
        await east.start()
        try:
            await west.connect("127.0.0.1", east.port)
            await east.wait_negotiated()
            await west.subscriber.subscribe(points, timeout=10)
            east.publisher.publish([Measurement(p, float(k), T0) for k, p in enumerate(points)])
            got = await west.subscriber.collect(5000, 10)
            return got, west.subscriber.session.closed
        finally:
            await west.stop()
            await east.stop()

    got, closed = run(main())
    assert not closed
    assert sorted((m.signal_id, m.value) for m in got) == sorted(
        (p, float(k)) for k, p in enumerate(points)
    )
