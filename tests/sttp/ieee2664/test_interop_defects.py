"""Defects found against independent data and the deployed peers, over real sockets."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from gridbind.sttp.ieee2664 import PmuSource, Publisher, Subscriber, synthetic_pmu_metadata
from gridbind.sttp.measurement import ticks_now


@pytest.mark.timeout(30)
def test_a_disabled_signal_is_never_delivered_even_when_named_by_id():
    metadata, signals = synthetic_pmu_metadata(10)
    disabled = signals[0]
    for row in metadata["MeasurementDetail"].rows:
        if row["SignalID"] == disabled:
            row["Enabled"] = False
    frames = list(PmuSource(signals, start_ticks=ticks_now()).frames(5))

    async def run() -> None:
        async with Publisher(metadata, port=0) as publisher:
            for expression in (
                str(disabled),
                f"{disabled}; FILTER ActiveMeasurements WHERE SignalType <> 'NONE'",
            ):
                async with Subscriber(
                    port=publisher.port, filter_expression=expression, auto_reconnect=False
                ) as subscriber:
                    cache = await subscriber.wait_subscribed(5)
                    assert disabled not in cache.by_signal
                    received: list = []

                    async def gather() -> None:
                        async for batch in subscriber.batches():
                            received.extend(batch)

                    task = asyncio.create_task(gather())
                    for frame in frames:
                        publisher.publish(frame)
                        await publisher.drain()
                    await asyncio.sleep(0.3)
                    task.cancel()
                    assert all(m.signal_id != disabled for m in received)
                    wanted = 0 if expression == str(disabled) else len(frames) * 9
                    assert len(received) == wanted

    asyncio.run(run())
