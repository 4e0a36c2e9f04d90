"""C37.118: frames parsed per second (gridbind vs pyc37) and measurements bridged to STTP.

Usage::

    .venv/bin/python bench/c37118.py [--pmus 100] [--phasors 10] [--rate 60] [--seconds 10]

The stream is one PDC data stream of ``--pmus`` PMU blocks of ``--phasors`` phasors each (plus
FREQ, DFREQ and one digital word per PMU) at ``--rate`` frames/s; FORMAT 0x7 (polar float
phasors, float analogs, integer FREQ / DFREQ: what pyc37 can read back; it cannot read a float
FREQ of 60 Hz).

1. Parsing, in process, best of three rounds: gridbind's ``FrameDecoder`` over the byte stream
   (SYNC, FRAMESIZE, CRC, one compiled ``struct`` per configuration), the same plus conversion to
   STTP measurements, and pyc37's ``CommonFrame.convert2frame`` on the same frames.
2. Bridging, three processes on 127.0.0.1: a C37.118 source (gridbind's PMU server, paced at
   ``--rate``), ``gridbind c37118 bridge`` (C37.118 in, IEEE 2664 STTP out, TSSC), and a gridbind
   STTP subscriber. Reported: measurements/s received, frames lost (bridge's count and
   subscriber's missing timestamps), and the bridge process's CPU per second and per measurement.

Measured figures: README.md, section "C37.118".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time

FORMAT = 0x7


def _config(pmus: int, phasors: int, idcode: int = 1):
    from gridbind.c37118.frames import (
        ConfigFrame,
        DigitalWord,
        PhasorChannel,
        PmuConfig,
        Stamp,
    )

    blocks = [
        PmuConfig(
            f"PMU{number:03d}",
            number + 1,
            FORMAT,
            [PhasorChannel(f"V{k + 1}", k % 2 == 1) for k in range(phasors)],
            [],
            [DigitalWord()],
        )
        for number in range(pmus)
    ]
    return ConfigFrame(Stamp(idcode), blocks, 1_000_000, 60)


def _frame(layout, config, number: int, rate: int, soc: int) -> bytes:
    import math

    from gridbind.c37118.frames import DataFrame, PmuData, Stamp

    step = 1_000_000 // rate
    blocks = []
    for index, pmu in enumerate(config.pmus):
        phasors = [
            (1000.0 + index + k, math.sin(number / rate + k) * 3.0) for k in range(len(pmu.phasors))
        ]
        blocks.append(PmuData(0, phasors, (number + index) % 200 - 100, number % 50, [], [index]))
    stamp = Stamp(config.stamp.idcode, soc + number // rate, (number % rate) * step)
    return layout.build(DataFrame(stamp, blocks))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# ----------------------------------------------------------------------------------- parsing


def parse_bench(args: argparse.Namespace) -> None:
    from gridbind.c37118.frames import build_config
    from gridbind.c37118.framing import FrameDecoder
    from gridbind.c37118.layout import DataLayout
    from gridbind.c37118.mapping import StreamMapping

    config = _config(args.pmus, args.phasors)
    config.data_rate = args.rate
    layout = DataLayout(config)
    frames = [_frame(layout, config, n, args.rate, 1_700_000_000) for n in range(args.rate * 5)]
    stream = b"".join(frames)
    mapping = StreamMapping(config)

    def ours() -> float:
        decoder = FrameDecoder()
        decoder.layout = layout
        start = time.perf_counter()
        for offset in range(0, len(stream), 65536):
            decoder.feed(stream[offset : offset + 65536])
        return len(frames) / (time.perf_counter() - start)

    def ours_to_sttp() -> tuple[float, float]:
        decoder = FrameDecoder()
        decoder.layout = layout
        count = 0
        start = time.perf_counter()
        for offset in range(0, len(stream), 65536):
            for event in decoder.feed(stream[offset : offset + 65536]):
                count += len(mapping.measurements(event.stamp, event.values))
        elapsed = time.perf_counter() - start
        return len(frames) / elapsed, count / elapsed

    gridbind_fps = max(ours() for _ in range(3))
    sttp_fps, sttp_mps = max(ours_to_sttp() for _ in range(3))
    line = (
        f"frame: {len(frames[0])} bytes, {args.pmus} PMUs x {args.phasors} phasors, "
        f"{len(mapping.signals)} STTP signals"
    )
    print(line)
    print(f"gridbind parse (framing, CRC, values)    : {gridbind_fps:10,.0f} frames/s")
    print(
        f"gridbind parse + STTP measurements       : {sttp_fps:10,.0f} frames/s "
        f"({sttp_mps:,.0f} measurements/s)"
    )
    try:
        from pyc37.frame import CommonFrame, ConfigFrame2
    except ImportError:
        print("pyc37 is not installed: no comparison")
        return
    from gridbind.c37118.errors import ConfigurationError

    try:
        cfg2 = ConfigFrame2.convert2frame(build_config(config))
    except ConfigurationError as exc:
        print(f"pyc37 reads CFG-2 only, and {exc}: no comparison")
        return
    sample = frames[:20]

    def theirs() -> float:
        start = time.perf_counter()
        for raw in sample:
            CommonFrame.convert2frame(raw, cfg2)
        return len(sample) / (time.perf_counter() - start)

    pyc37_fps = max(theirs() for _ in range(3))
    print(f"pyc37 CommonFrame.convert2frame          : {pyc37_fps:10,.1f} frames/s")
    # The first ratio compares a flat struct tuple with pyc37's frame objects; the second one
    # is like for like (both end with per-channel values in engineering units).
    print(f"gridbind parse / pyc37                    : {gridbind_fps / pyc37_fps:10,.0f}x")
    print(f"gridbind parse + measurements / pyc37     : {sttp_fps / pyc37_fps:10,.1f}x")


# ---------------------------------------------------------------------------------- bridging


def role_source(args: argparse.Namespace) -> None:
    """A paced C37.118 source; starts streaming when a line arrives on stdin."""
    from gridbind.c37118.layout import DataLayout
    from gridbind.c37118.server import PmuServer

    config = _config(args.pmus, args.phasors)
    config.data_rate = args.rate
    layout = DataLayout(config)
    frames = [_frame(layout, config, n, args.rate, 1_700_000_000) for n in range(args.rate * 10)]

    async def run() -> None:
        server = PmuServer(config, port=args.port)
        await server.start()
        print("listening", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        total = int(args.seconds * args.rate)
        start = time.monotonic()
        late = 0
        for number in range(total):
            due = start + number / args.rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -1 / args.rate:
                late += 1
            cycle, position = divmod(number, len(frames))
            raw = frames[position]
            if cycle:  # advance SOC by whole cycles of 10 s so timestamps keep increasing
                raw = _frame(layout, config, number, args.rate, 1_700_000_000)
            server.send_data(raw)
        await asyncio.sleep(1.0)
        print(json.dumps({"sent": total, "late": late}), flush=True)
        await server.stop()

    asyncio.run(run())


def role_subscriber(args: argparse.Namespace) -> None:
    from gridbind.sttp.ieee2664 import Subscriber

    async def run() -> None:
        received = 0
        stamps: set[int] = set()
        subscriber = Subscriber(
            "127.0.0.1",
            args.port,
            filter_expression="FILTER ActiveMeasurements WHERE SignalType <> 'NONE'",
        )
        last = time.monotonic()

        def take(batch) -> None:
            nonlocal received, last
            received += len(batch)
            stamps.update(m.timestamp for m in batch)
            last = time.monotonic()

        subscriber.on_measurements = take
        await subscriber.start()
        await subscriber.wait_subscribed(30)
        # ready once subscribed to the device's signals (not to the bridge's empty metadata)
        while not (subscriber.cache and len(subscriber.cache.signal_ids) > 1):
            await asyncio.sleep(0.05)
        print("ready", flush=True)
        first = None
        while True:
            await asyncio.sleep(0.2)
            if received and first is None:
                first = time.monotonic()
            if received and time.monotonic() - last > 2.0:
                break
        elapsed = last - (first or last) or 1e-9
        await subscriber.stop()
        print(
            json.dumps({"received": received, "frames": len(stamps), "seconds": elapsed}),
            flush=True,
        )

    asyncio.run(run())


def bridge_bench(args: argparse.Namespace) -> None:
    import psutil

    c37_port, sttp_port = _free_port(), _free_port()
    me = [
        sys.executable,
        os.path.abspath(__file__),
        "--pmus",
        str(args.pmus),
        "--phasors",
        str(args.phasors),
        "--rate",
        str(args.rate),
        "--seconds",
        str(args.seconds),
    ]
    source = subprocess.Popen(
        [*me, "--role", "source", "--port", str(c37_port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert source.stdout.readline().strip() == "listening"
    bridge = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gridbind",
            "c37118",
            "bridge",
            "--pmu",
            f"127.0.0.1:{c37_port}",
            "--id",
            "1",
            "--sttp-port",
            str(sttp_port),
            "--seconds",
            str(args.seconds + 8),
            "--stats",
            "1",
            *(["--cfg3"] if args.pmus > 120 else []),  # CFG-2 frames end at 65,535 bytes
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.5)
    subscriber = subprocess.Popen(
        [*me, "--role", "subscriber", "--port", str(sttp_port)], stdout=subprocess.PIPE, text=True
    )
    assert subscriber.stdout.readline().strip() == "ready"
    process = psutil.Process(bridge.pid)
    before = process.cpu_times()
    started = time.monotonic()
    source.stdin.write("go\n")
    source.stdin.flush()
    sent = json.loads(source.stdout.readline())
    after = process.cpu_times()
    elapsed = time.monotonic() - started
    got = json.loads(subscriber.stdout.readline())
    bridge.terminate()
    _, err = bridge.communicate(timeout=20)
    source.wait(10)
    subscriber.wait(10)
    stats = [line for line in err.splitlines() if "frames lost" in line]
    stats.sort(key=lambda line: float(line.split(" frames/s")[0].replace(",", "")))
    cpu = (after.user - before.user) + (after.system - before.system)
    per_frame = got["received"] / got["frames"] if got["frames"] else 0
    print(f"source: {sent['sent']} frames at {args.rate}/s ({sent['late']} sent late)")
    print(
        f"subscriber: {got['received']:,} measurements in {got['frames']} frames "
        f"({per_frame:.0f}/frame), {got['received'] / got['seconds']:,.0f} measurements/s"
    )
    print(f"frames missing at the subscriber: {sent['sent'] - got['frames']}")
    print(f"bridge, busiest second: {stats[-1] if stats else '(no statistics line)'}")
    print(
        f"bridge CPU: {cpu / elapsed * 100:.0f}% of one core, "
        f"{cpu / max(got['received'], 1) * 1e6:.2f} us per measurement, "
        f"{cpu / max(sent['sent'], 1) * 1e3:.2f} ms per frame"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pmus", type=int, default=100)
    parser.add_argument("--phasors", type=int, default=10)
    parser.add_argument("--rate", type=int, default=60)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--role", choices=("source", "subscriber"))
    parser.add_argument("--port", type=int)
    parser.add_argument("--skip-bridge", action="store_true")
    args = parser.parse_args()
    if args.role == "source":
        role_source(args)
    elif args.role == "subscriber":
        role_subscriber(args)
    else:
        parse_bench(args)
        if not args.skip_bridge:
            bridge_bench(args)


if __name__ == "__main__":
    main()
