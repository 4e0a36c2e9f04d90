"""Multi-fragment packets (BeginFragment + NextFragment) end to end over real TCP sockets:
values and metadata responses larger than the maximum packet size."""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest

from gridbind.generated.sttp import draft_0_8 as wire
from gridbind.generated.sttp.templates import PmuRecord
from gridbind.sttp import Measurement
from gridbind.sttp.draft import MetadataDatabase, Publisher, Subscriber, ValueType
from gridbind.sttp.draft.packets import MAX_RAW_PACKET

CC = wire.CommandCode
T0 = 638_000_000_000_000_000


def run(coro, timeout=15):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def tap(subscriber: Subscriber) -> list[tuple[int, int]]:
    """Record (code, payload size) of every frame the subscriber's session handles."""
    session = subscriber.session
    seen: list[tuple[int, int]] = []
    handle = session._frame

    def frame(code, payload, now):
        seen.append((code, len(payload)))
        return handle(code, payload, now)

    session._frame = frame
    return seen


def fragments(seen: list[tuple[int, int]]) -> list[list[tuple[int, int]]]:
    """The fragment sequences among the frames seen: BeginFragment then its NextFragments."""
    runs: list[list[tuple[int, int]]] = []
    for code, size in seen:
        if code == CC.BeginFragment:
            runs.append([(code, size)])
        elif code == CC.NextFragment:
            assert runs, "NextFragment without BeginFragment"
            runs[-1].append((code, size))
    return runs


@pytest.mark.timeout(20)
@pytest.mark.parametrize("stateful", ["TSSC", "DEFLATE", "NONE"])
def test_large_values_travel_in_begin_and_next_fragments(stateful):
    text, blob, small = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    big_text = "".join(chr(0x41 + (i * 7) % 26) for i in range(40_000)) + "\u00e9\u20ac"
    big_blob = os.urandom(50_000)  # incompressible, larger than 3 packets

    async def main():
        publisher = Publisher(
            port=0,
            points={text: ValueType.STRING, blob: ValueType.STTP_BUFFER, small: ValueType.DOUBLE},
            stateful=[stateful],
            udp=False,
        )
        await publisher.start()
        subscriber = Subscriber(port=publisher.port)
        try:
            await subscriber.start()
            seen = tap(subscriber)
            await subscriber.subscribe()
            publisher.publish([Measurement(text, big_text, T0, 1)])
            publisher.publish([Measurement(small, 1.5, T0)])
            publisher.publish([Measurement(blob, big_blob, T0 + 1, 2)])
            publisher.publish([Measurement(small, 2.5, T0 + 1)])
            got = await subscriber.collect(4, 5)
            return got, seen, subscriber.session.closed
        finally:
            await subscriber.stop()
            await publisher.stop()

    got, seen, closed = run(main())
    assert not closed
    assert [(m.signal_id, m.value, m.timestamp, m.flags) for m in got] == [
        (text, big_text, T0, 1),
        (small, 1.5, T0, 0),
        (blob, big_blob, T0 + 1, 2),
        (small, 2.5, T0 + 1, 0),
    ]
    runs = [r for r in fragments(seen) if len(r) > 1]
    assert len(runs) == 2  # one multi-fragment packet per large value
    for run_ in runs:
        assert len(run_) >= 3  # BeginFragment + at least two NextFragment
        assert all(size <= MAX_RAW_PACKET for _, size in run_)  # none above the packet limit


@pytest.mark.timeout(20)
def test_fragments_respect_a_smaller_negotiated_max_payload():
    signal = uuid.uuid4()
    value = os.urandom(5_000)

    async def main():
        publisher = Publisher(
            port=0, points={signal: ValueType.STTP_BUFFER}, stateful=["NONE"], max_payload=1024
        )
        await publisher.start()
        subscriber = Subscriber(port=publisher.port)
        try:
            await subscriber.start()
            seen = tap(subscriber)
            await subscriber.subscribe()
            publisher.publish([Measurement(signal, value, T0)])
            got = await subscriber.collect(1, 5)
            return got, seen
        finally:
            await subscriber.stop()
            await publisher.stop()

    got, seen = run(main())
    assert [m.value for m in got] == [value]
    [run_] = fragments(seen)
    assert len(run_) >= 5 and all(size <= 1024 for _, size in run_)


@pytest.mark.timeout(20)
@pytest.mark.parametrize("size", [30_000, 65_000])
def test_metadata_row_larger_than_a_packet_arrives_fragmented(size):
    db = MetadataDatabase()
    db.define_template(PmuRecord)
    key = uuid.uuid4()
    description = "".join(chr(0x61 + (i * 11) % 26) for i in range(size))
    db.upsert("PMU", {"ResourceID": key, "Acronym": "BIG", "Name": description})
    db.upsert("PMU", {"ResourceID": uuid.uuid4(), "Acronym": "SMALL", "Name": "small"})

    async def main():
        publisher = Publisher(port=0, metadata=db, udp=False)
        await publisher.start()
        subscriber = Subscriber(port=publisher.port)
        try:
            await subscriber.start()
            seen = tap(subscriber)
            result = await subscriber.request_metadata("SELECT * FROM PMU", timeout=5)
            after = await subscriber.get_metadata_schema(include_schema=False, timeout=5)
            return result, seen, after, subscriber.session.closed
        finally:
            await subscriber.stop()
            await publisher.stop()

    result, seen, after, closed = run(main())
    assert not closed and after.revision == db.revision  # the session goes on
    rows = {r["Acronym"]: r for r in result.rows}
    assert rows["BIG"]["Name"] == description and rows["SMALL"]["Name"] == "small"
    runs = [r for r in fragments(seen) if len(r) > 1]
    assert len(runs) == 1 and all(s <= MAX_RAW_PACKET for _, s in runs[0])
    assert all(s <= MAX_RAW_PACKET for _, s in seen)


@pytest.mark.timeout(20)
def test_a_lossy_point_too_big_for_a_datagram_travels_reliably():
    """A datagram carries one frame, so a value needing fragments goes on the TCP channel;
    small lossy points still use UDP."""
    blob, small = uuid.uuid4(), uuid.uuid4()
    big_blob = os.urandom(50_000)

    async def main():
        publisher = Publisher(port=0, points={blob: ValueType.STTP_BUFFER, small: ValueType.DOUBLE})
        await publisher.start()
        subscriber = Subscriber(port=publisher.port, udp=True)
        try:
            await subscriber.start()
            await subscriber.subscribe(options={"reliability": "lossy"})
            await publisher.wait_subscribed(1)
            publisher.publish([Measurement(blob, big_blob, T0, 2)])
            publisher.publish([Measurement(small, 1.5, T0)])
            got = await subscriber.collect(2, 5)
            (link,) = publisher.connections
            return got, link.session.published, subscriber.session.stats
        finally:
            await subscriber.stop()
            await publisher.stop()

    got, published, stats = run(main())
    assert sorted((m.signal_id, m.value) for m in got) == sorted([(blob, big_blob), (small, 1.5)])
    assert published["tcp"] == 1 and published["udp"] == 1
    assert stats.get("bad_datagrams", 0) == 0
