"""1000 signals x 30 frames/s over real TCP sockets on 127.0.0.1: 0 loss, exact values."""

from __future__ import annotations

import asyncio

import pytest
from draft_streaming import stream

from gridbind.sttp.draft import Publisher, Subscriber
from gridbind.sttp.draft.synthetic import SyntheticPmu


async def run(algorithm: str, seconds: float, count: int = 1000):
    pmu = SyntheticPmu(count, 30.0, start=638_000_000_000_000_000)
    publisher = Publisher(points=pmu.value_types(), stateful=[algorithm])
    await publisher.start()
    subscriber = Subscriber(port=publisher.port, stateful=[algorithm])
    try:
        negotiated = await subscriber.connect()
        assert negotiated.stateful == algorithm
        await subscriber.subscribe()
        await publisher.wait_subscribed()
        return await stream(publisher, subscriber, pmu, seconds)
    finally:
        await subscriber.close()
        await publisher.stop()


@pytest.mark.timeout(45)
def test_tssc_1000_signals_30fps_10s_no_loss_exact():
    outcome = asyncio.run(asyncio.wait_for(run("TSSC", 10.0), 40))
    assert outcome.expected == 300_000
    assert outcome.received == outcome.distinct == outcome.expected
    assert outcome.wrong == 0
    assert outcome.bytes_per_measurement < 4.0  # TSSC: a few bytes per measurement
    print(f"TSSC: {outcome.bytes_per_measurement:.2f} bytes/measurement in {outcome.seconds:.1f}s")


@pytest.mark.timeout(45)
def test_deflate_1000_signals_30fps_10s_no_loss_exact():
    outcome = asyncio.run(asyncio.wait_for(run("DEFLATE", 10.0), 40))
    assert outcome.received == outcome.distinct == outcome.expected == 300_000
    assert outcome.wrong == 0
    assert outcome.bytes_per_measurement < 9  # DEFLATE of ~18-byte basic records
    print(f"DEFLATE: {outcome.bytes_per_measurement:.2f} bytes/measurement")


@pytest.mark.timeout(25)
def test_basic_encoding_1000_signals_30fps_no_loss_exact():
    outcome = asyncio.run(asyncio.wait_for(run("NONE", 1.0), 20))
    assert outcome.received == outcome.distinct == outcome.expected == 30_000
    assert outcome.wrong == 0
