"""Throughput of the draft profile over loopback TCP: ``.venv/bin/python bench/sttp_draft.py``.

Publishes ``--frames`` frames of ``--signals`` synthetic PMU signals as fast as the subscriber
takes them, for each compression mode, and prints measurements/s, bytes per measurement on the
wire and CPU microseconds per measurement (both ends share this process, so the CPU figure is
publisher + subscriber). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from gridbind.sttp.draft.synthetic import SyntheticPmu
from gridbind.sttp.draft.transport import Publisher, Subscriber


async def measure(algorithm: str, signals: int, frames: int) -> tuple[float, float, float]:
    """(measurements/s, bytes/measurement, CPU us/measurement) for one algorithm."""
    pmu = SyntheticPmu(signals, 30.0, start=638_000_000_000_000_000)
    batches = [pmu.frame(k) for k in range(frames)]
    publisher = Publisher(port=0, points=pmu.value_types(), stateful=[algorithm])
    await publisher.start()
    subscriber = Subscriber(port=publisher.port, stateful=[algorithm], queue_size=10**6)
    try:
        await subscriber.start()
        await subscriber.subscribe()
        expected = signals * frames
        wall, cpu = time.perf_counter(), time.process_time()
        for batch in batches:
            publisher.publish(batch)
            await publisher.drain()
            await asyncio.sleep(0)
        while subscriber.received < expected:
            await asyncio.sleep(0.001)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        data = subscriber.session.stats["bytes_in"]
        return expected / wall, data / expected, cpu / expected * 1e6
    finally:
        await subscriber.stop()
        await publisher.stop()


def main() -> None:
    """Run the benchmark and print one line per algorithm."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--signals", type=int, default=1000)
    parser.add_argument("--frames", type=int, default=300)
    args = parser.parse_args()
    print(f"{args.signals} signals x {args.frames} frames, loopback TCP, one process")
    for algorithm in ("TSSC", "DEFLATE", "NONE"):
        rate, per, cpu = asyncio.run(measure(algorithm, args.signals, args.frames))
        print(
            f"{algorithm:8s} {rate:12,.0f} measurements/s  {per:6.2f} bytes/measurement"
            f"  {cpu:6.1f} us CPU/measurement"
        )


if __name__ == "__main__":
    main()
