"""Failure paths over real sockets: negotiation refused or silent, malformed and out-of-order
frames (RequestFailed + clean close, never a crash or hang), NoOp time-out, the facade."""

from __future__ import annotations

import asyncio
import struct

import pytest

import gridbind.sttp
from gridbind.generated.sttp import draft_0_8 as wire
from gridbind.sttp.draft import Publisher, SessionError, Subscriber

CC = wire.CommandCode


def run(coro, timeout=15):
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def read_frames(
    reader: asyncio.StreamReader, timeout: float = 5.0
) -> list[tuple[int, bytes]]:
    """Every frame until the peer closes (bounded by ``timeout``)."""
    data = b""
    while True:
        chunk = await asyncio.wait_for(reader.read(65536), timeout)
        if not chunk:
            break
        data += chunk
    out, offset = [], 0
    while offset + 3 <= len(data):
        code, length = struct.unpack_from(">BH", data, offset)
        out.append((code, data[offset + 3 : offset + length]))
        offset += length
    return out


async def negotiate_raw(reader, writer):
    """Play a well-behaved subscriber's negotiation by hand."""
    from gridbind.sttp.draft.session import _modes

    head = await reader.readexactly(3)
    code, length = struct.unpack(">BH", head)
    await reader.readexactly(length - 3)
    ok = wire.RequestSucceeded(
        command=CC.NegotiateSession,
        data=wire.ProtocolVersions(versions=[wire.Version(1, 0)]).build(),
    )
    writer.write(wire.build_frame(ok))
    head = await reader.readexactly(3)
    await reader.readexactly(struct.unpack(">BH", head)[1] - 3)
    choice = wire.RequestSucceeded(
        command=CC.NegotiateSession, data=_modes(0, ["NONE"], ["NONE"]).build()
    )
    writer.write(wire.build_frame(choice))
    head = await reader.readexactly(3)
    code, length = struct.unpack(">BH", head)
    assert code == CC.RequestSucceeded
    await reader.readexactly(length - 3)


@pytest.mark.parametrize(
    "garbage, why",
    [
        (b"\x09\x00\x00", "malformed frame"),
        (b"\x77\x00\x03", "unknown command"),
        (wire.build_frame(wire.SendDataPoints(points=[])), "not sent to a publisher"),
        (b"\x05\x00\x05\x09\x09", "malformed Subscribe"),
    ],
)
@pytest.mark.timeout(15)
def test_publisher_answers_garbage_with_request_failed_and_closes(garbage, why):
    async def main():
        publisher = Publisher(port=0)
        await publisher.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", publisher.port)
            await negotiate_raw(reader, writer)
            writer.write(garbage)
            frames = await read_frames(reader)
            writer.close()
            # the publisher is still serving others
            subscriber = Subscriber(port=publisher.port)
            await subscriber.start()
            await subscriber.stop()
            return frames
        finally:
            await publisher.stop()

    frames = run(main())
    assert frames[-1][0] == CC.RequestFailed
    failed = wire.RequestFailed.parse(frames[-1][1])
    assert failed.terminate_connection and why in failed.reason


@pytest.mark.timeout(15)
def test_publisher_refuses_commands_before_negotiation_over_tcp():
    async def main():
        publisher = Publisher(port=0)
        await publisher.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", publisher.port)
            writer.write(wire.build_frame(wire.GetMetadataSchema(include_schema=True)))
            return await read_frames(reader)
        finally:
            await publisher.stop()

    frames = run(main())
    assert [code for code, _ in frames] == [CC.NegotiateSession, CC.RequestFailed]
    assert "before session negotiation" in wire.RequestFailed.parse(frames[1][1]).reason


@pytest.mark.timeout(15)
def test_silent_peers_are_disconnected_after_the_negotiation_timeout():
    async def main():
        publisher = Publisher(port=0, negotiation_timeout=0.5)
        await publisher.start()
        loop = asyncio.get_running_loop()
        began = loop.time()
        reader, writer = await asyncio.open_connection("127.0.0.1", publisher.port)
        frames = await read_frames(reader)  # we never answer
        publisher_waited = loop.time() - began
        await publisher.stop()

        async def mute(reader, writer):
            await asyncio.sleep(5)

        server = await asyncio.start_server(mute, "127.0.0.1", 0)
        subscriber = Subscriber(port=server.sockets[0].getsockname()[1], negotiation_timeout=0.5)
        began = loop.time()
        with pytest.raises(SessionError, match="timed out"):
            await subscriber.start()
        subscriber_waited = loop.time() - began
        server.close()
        return frames, publisher_waited, subscriber_waited

    frames, publisher_waited, subscriber_waited = run(main())
    assert frames[-1][0] == CC.RequestFailed and 0.4 < publisher_waited < 3
    assert 0.4 < subscriber_waited < 3


@pytest.mark.timeout(15)
def test_negotiation_failure_surfaces_as_session_error():
    async def main():
        publisher = Publisher(port=0, stateful=["DEFLATE"])
        await publisher.start()
        try:
            subscriber = Subscriber(port=publisher.port, stateful=["TSSC"])
            with pytest.raises(SessionError, match="no common stateful"):
                await subscriber.start()
            await asyncio.sleep(0.1)
            return publisher.connections
        finally:
            await publisher.stop()

    assert run(main()) == []


@pytest.mark.timeout(15)
def test_subscriber_refuses_out_of_order_publisher():
    async def rogue(reader, writer):
        # data before any negotiation
        writer.write(wire.build_frame(wire.SendDataPoints(points=[])))
        frames.extend(await read_frames(reader))

    frames: list = []

    async def main():
        server = await asyncio.start_server(rogue, "127.0.0.1", 0)
        subscriber = Subscriber(port=server.sockets[0].getsockname()[1])
        with pytest.raises(SessionError, match="before session negotiation"):
            await subscriber.start()
        await asyncio.sleep(0.2)
        server.close()

    run(main())
    assert frames and frames[-1][0] == CC.RequestFailed


@pytest.mark.timeout(15)
def test_noop_keepalive_timeout_disconnects_over_tcp():
    async def main():
        publisher = Publisher(port=0, keepalive_interval=0.2, noop_timeout=0.3)
        await publisher.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", publisher.port)
        await negotiate_raw(reader, writer)
        loop = asyncio.get_running_loop()
        began = loop.time()
        frames = await read_frames(reader)  # NoOp arrives, we stay silent
        elapsed = loop.time() - began
        reasons = [e.reason for _, e in publisher.events if type(e).__name__ == "SessionClosed"]
        await publisher.stop()
        return frames, elapsed, reasons

    frames, elapsed, reasons = run(main())
    assert (CC.NoOp, b"") in frames
    assert 0.4 < elapsed < 3
    assert any("NoOp" in reason for reason in reasons)


@pytest.mark.timeout(15)
def test_noop_keepalive_keeps_a_live_session():
    async def main():
        publisher = Publisher(port=0, keepalive_interval=0.1, noop_timeout=0.3)
        await publisher.start()
        subscriber = Subscriber(port=publisher.port, keepalive_interval=0.1, noop_timeout=0.3)
        await subscriber.start()
        await asyncio.sleep(1.0)
        alive = not subscriber.session.closed and len(publisher.connections) == 1
        noops = subscriber.session.stats["frames_in"]
        await subscriber.stop()
        await publisher.stop()
        return alive, noops

    alive, frames_in = run(main())
    assert alive and frames_in > 8


@pytest.mark.timeout(15)
def test_facade_selects_the_draft_profile():
    async def main():
        publisher = gridbind.sttp.Publisher(port=0, profile="draft-0.8", udp=False)
        subscriber = gridbind.sttp.Subscriber(port=0, profile="draft-0.8")
        assert isinstance(publisher, Publisher) and isinstance(subscriber, Subscriber)
        await publisher.start()
        subscriber.port = publisher.port
        await subscriber.start()
        negotiated = subscriber.negotiated
        await subscriber.stop()
        await publisher.stop()
        return negotiated

    assert run(main()).stateful == "TSSC"


@pytest.mark.timeout(20)
def test_subscriber_reconnects_and_resubscribes():
    import uuid

    from gridbind.sttp import Measurement
    from gridbind.sttp.draft import ValueType

    signal = uuid.uuid4()

    async def main():
        publisher = Publisher(port=0, points={signal: ValueType.DOUBLE})
        await publisher.start()
        subscriber = Subscriber(port=publisher.port, reconnect=0.1)
        try:
            await subscriber.start()
            await subscriber.subscribe([signal], options={"priority": "2"})
            [link] = publisher.connections
            link.close()  # the connection breaks
            await publisher.wait_for(
                lambda: any(
                    c is not link and c.session.subscribed_points for c in publisher.connections
                ),
                5,
            )
            publisher.publish([Measurement(signal, 4.25, 99)])
            got = await subscriber.collect(1, 5)
            [fresh] = publisher.connections
            return got, subscriber.reconnects, fresh.session._points[signal].options.priority
        finally:
            await subscriber.stop()
            await publisher.stop()

    got, reconnects, priority = run(main())
    assert [(m.signal_id, m.value) for m in got] == [(signal, 4.25)]
    assert reconnects == 1 and priority == 2
