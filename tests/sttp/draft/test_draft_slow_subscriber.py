"""The draft publisher's slow-subscriber policy over real sockets: a subscriber that stops
reading lags, loses its data and is disconnected; the other one receives every data point."""

from __future__ import annotations

import asyncio
import socket

import pytest

from gridbind.sttp.draft import Publisher, Subscriber
from gridbind.sttp.draft.synthetic import SyntheticPmu


@pytest.mark.timeout(30)
def test_a_subscriber_that_stops_reading_never_stalls_the_other():
    pmu = SyntheticPmu(200, 50.0, start=638_000_000_000_000_000)

    async def run() -> None:
        publisher = Publisher(
            port=0,
            points=pmu.value_types(),
            stateful=["NONE"],
            high_water=32 * 1024,
            slow_timeout=1.0,
        )
        await publisher.start()
        healthy = Subscriber(port=publisher.port, stateful=["NONE"])
        stalled = Subscriber(port=publisher.port, stateful=["NONE"])
        try:
            for subscriber in (healthy, stalled):
                await subscriber.start()
                await subscriber.subscribe()
            await publisher.wait_subscribed(2)
            received = 0

            def count(batch) -> None:
                nonlocal received
                received += len(batch)

            healthy.on_measurements = count
            # the stalled subscriber stops reading its socket; the publisher's kernel buffer is
            # kept small so the stall shows within a short test
            stalled_port = stalled.link.transport.get_extra_info("sockname")[1]
            stalled.link.transport.pause_reading()
            link = next(c for c in publisher.connections if c.peer[1] == stalled_port)
            link.transport.get_extra_info("socket").setsockopt(
                socket.SOL_SOCKET, socket.SO_SNDBUF, 4096
            )
            frames = 150
            for k in range(frames):
                publisher.publish(pmu.frame(k))  # a live source: no drain
                await asyncio.sleep(0.01)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 5
            while (received < frames * pmu.count or link in publisher.connections) and (
                loop.time() < deadline
            ):
                await asyncio.sleep(0.05)
            assert received == frames * pmu.count
            assert link not in publisher.connections and link.dropped > 0
        finally:
            await healthy.stop()
            await stalled.stop()
            await publisher.stop()

    asyncio.run(asyncio.wait_for(run(), 25))


@pytest.mark.parametrize(
    "named",
    [
        {"deadband": "inf"},
        {"deadband": "nan"},
        {"zeroDeadband": "-inf"},
        {"resolution": "1e308"},  # round(1e308 * 1e7) raised OverflowError while publishing
        {"resolution": "1e-12"},  # a zero-tick window raised ZeroDivisionError
        {"resolution": "inf"},
    ],
)
def test_out_of_range_subscription_options_are_refused(named):
    from gridbind.sttp.draft.characteristics import CharacteristicsError, Options

    with pytest.raises(CharacteristicsError):
        Options.from_named(named)


@pytest.mark.timeout(30)
def test_an_error_publishing_to_one_connection_closes_only_that_one(monkeypatch):
    from gridbind.sttp.draft.publisher_session import PublisherSession

    pmu = SyntheticPmu(20, 50.0, start=638_000_000_000_000_000)
    real = PublisherSession.publish
    broken: list = []

    def publish(self, measurements, now=0.0):
        if self in broken:
            raise RuntimeError("boom")
        return real(self, measurements, now)

    monkeypatch.setattr(PublisherSession, "publish", publish)

    async def run() -> None:
        publisher = Publisher(port=0, points=pmu.value_types(), stateful=["NONE"])
        await publisher.start()
        healthy = Subscriber(port=publisher.port, stateful=["NONE"])
        victim = Subscriber(port=publisher.port, stateful=["NONE"])
        try:
            for subscriber in (healthy, victim):
                await subscriber.start()
                await subscriber.subscribe()
            await publisher.wait_subscribed(2)
            victim_port = victim.link.transport.get_extra_info("sockname")[1]
            link = next(c for c in publisher.connections if c.peer[1] == victim_port)
            broken.append(link.session)
            received = 0

            def count(batch) -> None:
                nonlocal received
                received += len(batch)

            healthy.on_measurements = count
            for k in range(20):
                publisher.publish(pmu.frame(k))  # must not raise
                await asyncio.sleep(0.005)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 5
            while received < 20 * pmu.count and loop.time() < deadline:
                await asyncio.sleep(0.02)
            assert received == 20 * pmu.count
            assert link not in publisher.connections
        finally:
            await healthy.stop()
            await victim.stop()
            await publisher.stop()

    asyncio.run(asyncio.wait_for(run(), 25))
