"""Characteristics the other side cannot live with end the connection, over real sockets on
127.0.0.1: the publisher requiring lossy delivery from a subscriber without a data channel, the
publisher unable to fulfil the requested exception characteristics (volume), and the subscriber
refusing the volume of points requiring verification. Each is a RequestFailed with
TerminateConnection and a clear reason, then a clean close."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from gridbind.generated.sttp import draft_0_8 as wire
from gridbind.sttp import Measurement
from gridbind.sttp.draft import (
    CommandError,
    Policy,
    Publisher,
    SessionClosed,
    SessionError,
    Subscriber,
    ValueType,
)

T0 = 638_000_000_000_000_000
CC = wire.CommandCode


def run(coro, timeout=15):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def points(count: int) -> list[uuid.UUID]:
    return [uuid.uuid4() for _ in range(count)]


async def connected(publisher: Publisher, **options) -> Subscriber:
    await publisher.start()
    subscriber = Subscriber(port=publisher.port, **options)
    await subscriber.start(timeout=5)
    return subscriber


async def closed_cleanly(publisher: Publisher, subscriber: Subscriber) -> tuple[str, list[str]]:
    """Wait for both ends to close; the subscriber's close reason and the publisher's."""
    reason = await asyncio.wait_for(asyncio.shield(subscriber.link.closed), 5)
    await publisher.wait_for(lambda: not publisher.connections, 5)
    closes = [e.reason for _, e in publisher.events if isinstance(e, SessionClosed)]
    return reason, closes


# --- publisher: required lossy delivery ---------------------------------------------------------


@pytest.mark.timeout(20)
def test_publisher_terminates_when_required_lossy_points_have_no_data_channel():
    ids = points(3)
    policy = Policy(lossy_points=frozenset(ids[:2]))

    async def main():
        publisher = Publisher(port=0, points={p: ValueType.DOUBLE for p in ids}, policy=policy)
        subscriber = await connected(publisher)  # TCP only: no data channel defined
        try:
            # a point the publisher sends reliably is fine
            await subscriber.subscribe([ids[2]])
            with pytest.raises(CommandError) as refused:
                await subscriber.subscribe(ids)
            return refused.value.event, await closed_cleanly(publisher, subscriber)
        finally:
            await subscriber.stop()
            await publisher.stop()

    event, (reason, closes) = run(main())
    assert event.command == CC.Subscribe and event.terminate
    assert "requires 2 of the 3 subscribed data points" in event.reason
    assert "lossy data communications channel (UDP)" in event.reason
    assert "subscriber has not defined one" in event.reason
    assert reason.startswith("peer terminated:") and "lossy" in reason
    assert closes == [event.reason]  # the publisher closed for that reason


@pytest.mark.timeout(20)
def test_required_lossy_points_are_assigned_to_the_udp_data_channel():
    lossy, reliable = uuid.uuid4(), uuid.uuid4()
    policy = Policy(lossy_points=frozenset({lossy}))

    async def main():
        publisher = Publisher(
            port=0, points={lossy: ValueType.DOUBLE, reliable: ValueType.DOUBLE}, policy=policy
        )
        subscriber = await connected(publisher, udp=True)
        try:
            await subscriber.subscribe()  # no reliability requested
            await publisher.wait_subscribed()
            flags = {key[0]: key[2] for key in subscriber.session.mapping.values()}
            got = []
            for k in range(50):  # UDP on loopback: a few frames until both arrived
                publisher.publish(
                    [Measurement(lossy, 1.0, T0 + k), Measurement(reliable, 2.0, T0 + k)]
                )
                got += await subscriber.collect(2, 0.2)
                if {m.signal_id for m in got} == {lossy, reliable}:
                    break
            return flags, subscriber.session.received, [m.signal_id for m in got]
        finally:
            await subscriber.stop()
            await publisher.stop()

    flags, received, got = run(main())
    assert flags[lossy] & wire.StateFlags.Reliability  # the publisher-assigned value
    assert not flags[reliable] & wire.StateFlags.Reliability
    assert lossy in got and reliable in got
    assert received["udp"] >= 1 and received["tcp"] >= 1


# --- publisher: exception characteristics beyond its capacity -----------------------------------


@pytest.mark.timeout(20)
def test_publisher_terminates_when_it_cannot_fulfil_exception_characteristics():
    ids = points(5)
    policy = Policy(max_exception_points=3)

    async def main():
        publisher = Publisher(port=0, points={p: ValueType.DOUBLE for p in ids}, policy=policy)
        subscriber = await connected(publisher)
        try:
            exception = {"exception": "true", "deadband": "0.5"}
            await subscriber.subscribe(ids[:3], options=exception)  # at the limit: served
            ok = len(publisher.connections[0].session.subscribed_points)
            with pytest.raises(CommandError) as refused:
                await subscriber.subscribe(
                    ids[3:], options=exception, mode=wire.SubscriptionMode.Append
                )
            return ok, refused.value.event, await closed_cleanly(publisher, subscriber)
        finally:
            await subscriber.stop()
            await publisher.stop()

    ok, event, (reason, closes) = run(main())
    assert ok == 3
    assert event.command == CC.Subscribe and event.terminate
    assert "cannot fulfil the requested exception characteristics for 5 data points" in (
        event.reason
    )
    assert "at most 3" in event.reason
    assert reason.startswith("peer terminated:") and closes == [event.reason]


@pytest.mark.timeout(20)
def test_exception_limit_does_not_count_points_without_exception_delivery():
    ids = points(6)

    async def main():
        publisher = Publisher(
            port=0, points={p: ValueType.DOUBLE for p in ids}, policy=Policy(max_exception_points=2)
        )
        subscriber = await connected(publisher)
        try:
            await subscriber.subscribe(ids)  # all six, none on exception
            await subscriber.subscribe(
                ids[:2], options={"exception": "true"}, mode=wire.SubscriptionMode.Append
            )
            session = publisher.connections[0].session
            return session.configured(), subscriber.session.closed
        finally:
            await subscriber.stop()
            await publisher.stop()

    configured, closed = run(main())
    assert sum(configured["by_priority"]) == 6 and configured["exception"] == 2
    assert not closed


# --- subscriber: too many points requiring verification ------------------------------------------


@pytest.mark.timeout(20)
def test_subscriber_terminates_when_too_many_points_require_verification():
    ids = points(4)
    policy = Policy(verified_points=frozenset(ids[:3]))

    async def main():
        publisher = Publisher(port=0, points={p: ValueType.DOUBLE for p in ids}, policy=policy)
        subscriber = await connected(publisher, max_verified_points=2)
        failures = []
        publisher.on_event = lambda link, event: failures.append(event)
        try:
            await subscriber.subscribe(ids[1:3] + ids[3:])  # 2 verified: accepted
            accepted = subscriber.session.verified_points
            with pytest.raises(SessionError) as refused:
                await subscriber.subscribe(ids)  # 3 verified: too many
            return (
                accepted,
                str(refused.value),
                failures,
                await closed_cleanly(publisher, subscriber),
            )
        finally:
            await subscriber.stop()
            await publisher.stop()

    accepted, error, failures, (reason, closes) = run(main())
    assert accepted == 2
    assert (
        error == "3 subscribed data points require verification; this subscriber accepts at most 2"
    )
    assert reason == error
    # the publisher got the subscriber's terminating RequestFailed before the close
    [failed] = [e for e in failures if type(e).__name__ == "CommandFailed"]
    assert failed.command == CC.RuntimeIDMapping and failed.terminate and failed.reason == error
    assert closes == [f"peer terminated: {error}"]
