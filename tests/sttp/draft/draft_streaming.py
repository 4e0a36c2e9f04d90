"""Paced 30 frames/s streaming between a draft publisher and subscriber, with exact checks."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from gridbind.sttp.draft import Publisher, Subscriber
from gridbind.sttp.draft.synthetic import SyntheticPmu


@dataclass
class Outcome:
    expected: int
    received: int
    distinct: int
    wrong: int
    bytes_in: int
    seconds: float

    @property
    def bytes_per_measurement(self) -> float:
        return self.bytes_in / max(self.received, 1)


async def stream(
    publisher: Publisher,
    subscriber: Subscriber,
    pmu: SyntheticPmu,
    seconds: float,
    *,
    settle: float = 5.0,
    lossy: bool = False,
) -> Outcome:
    """Publish ``seconds`` of frames in real time; check every received value exactly."""
    received: dict[tuple, tuple] = {}
    count = 0
    wrong = 0
    start_frame = {pmu.timestamp(k): k for k in range(int(seconds * pmu.rate) + 1)}

    def check(batch):
        nonlocal count, wrong
        count += len(batch)
        for m in batch:
            frame = start_frame.get(m.timestamp)
            index = pmu.index.get(m.signal_id)
            if (
                frame is None
                or index is None
                or m.value != pmu.value(index, frame)
                or m.flags != pmu.flags(index, frame)
            ):
                wrong += 1
            received[(m.signal_id, m.timestamp)] = m.value

    subscriber.on_measurements = check
    frames = int(seconds * pmu.rate)
    expected = frames * pmu.count
    loop = asyncio.get_running_loop()
    began = loop.time()
    for k in range(frames):
        publisher.publish(pmu.frame(k))
        await publisher.drain()
        delay = began + (k + 1) / pmu.rate - loop.time()
        await asyncio.sleep(max(delay, 0))
    deadline = loop.time() + settle
    while count < expected and loop.time() < deadline:
        await asyncio.sleep(0.05)
        if lossy and loop.time() > deadline - settle + 1.0:
            break
    elapsed = loop.time() - began
    return Outcome(
        expected,
        count,
        len(received),
        wrong,
        subscriber.session.stats["bytes_in"] + subscriber.bytes_received,
        elapsed,
    )
