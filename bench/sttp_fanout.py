"""STTP IEEE 2664 fan-out: one gridbind publisher to 1, 10 and 50 gridbind subscribers.

Usage::

    .venv/bin/python bench/sttp_fanout.py [--signals 1000] [--rate 30] [--seconds 10]
                                          [--subscribers 1,10,50] [--per-process 10]

For every subscriber count the publisher runs in its own process (1000 signals x 30 frames/s,
TSSC, a live source: it publishes at its rate and never waits for a subscriber), the healthy
subscribers run in processes of ``--per-process`` subscribers each, and one extra subscriber
subscribes to everything and then stops reading its socket. The slow-subscriber policy
(``gridbind.sttp.slowpeer``) must handle that one without touching the others.

Printed per configuration: measurements lost by each healthy subscriber (target 0), what
happened to the stalled one (dropped measurements, disconnected), publisher CPU microseconds per
delivered measurement (target at 50 within 2x of 1), and the slowest healthy subscriber's p99
latency (receive time minus measurement timestamp, per data batch).

Measured figures: README.md, section Benchmarks.
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SETTLE = 3.0  # seconds the subscribers keep reading after the last frame


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# ------------------------------------------------------------------------------------- publisher


async def _publisher(args: argparse.Namespace) -> dict:
    from gridbind.sttp.ieee2664 import PmuSource, Publisher, synthetic_pmu_metadata
    from gridbind.sttp.measurement import ticks_now

    metadata, signals = synthetic_pmu_metadata(args.signals, frames_per_second=int(args.rate))
    publisher = Publisher(
        metadata,
        host="127.0.0.1",
        port=args.port,
        noop_interval=0,
        slow_timeout=args.slow_timeout,
    )
    await publisher.start()
    print("listening", flush=True)
    while sum(1 for c in publisher.connections if c.ready) < args.wait:
        await asyncio.sleep(0.02)
    print("streaming", flush=True)
    await asyncio.sleep(0.2)
    source = PmuSource(signals, args.rate, ticks_now())
    frames = int(args.seconds * args.rate)
    period = 1.0 / args.rate
    cpu0 = time.process_time()
    started = time.monotonic()
    late = 0.0
    seen = set(publisher.connections)
    for number in range(frames):
        delay = started + number * period - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            late = max(late, -delay)
            await asyncio.sleep(0)
        frame = source.next_frame()
        # fresh timestamps: latency is receive time minus the measurement's timestamp
        now = ticks_now()
        for measurement in frame:
            measurement.timestamp = now
        publisher.publish(frame)
        seen.update(publisher.connections)
    cpu = time.process_time() - cpu0
    await asyncio.sleep(SETTLE)
    stalled = [
        {"dropped": c.dropped, "closed": c.closed, "reason": c.close_reason}
        for c in seen
        if c.dropped or (c.queue is not None and c.queue.lag_episodes)
    ]
    await publisher.stop()
    return {
        "frames": frames,
        "signals": len(signals),
        "cpu": cpu,
        "late": late,
        "stalled": stalled,
    }


# ----------------------------------------------------------------------------------- subscribers


async def _subscribers(args: argparse.Namespace) -> dict:
    from gridbind.sttp.ieee2664 import Subscriber
    from gridbind.sttp.measurement import TICKS_PER_SECOND, ticks_now

    counts = [0] * args.count
    latencies: list[list[float]] = [[] for _ in range(args.count)]

    def receiver(index: int):
        def on_measurements(batch) -> None:
            counts[index] += len(batch)
            latencies[index].append((ticks_now() - batch[0].timestamp) / TICKS_PER_SECOND)

        return on_measurements

    subscribers = [
        Subscriber("127.0.0.1", args.port, on_measurements=receiver(i), auto_reconnect=False)
        for i in range(args.count)
    ]
    for subscriber in subscribers:
        await subscriber.start()
    for subscriber in subscribers:
        await subscriber.wait_subscribed(30)
    print("subscribed", flush=True)
    # Read until every subscriber has the whole stream, or nothing arrived for SETTLE seconds
    # after the stream began (a slow process must not stop counting before it caught up).
    expected = int(args.stream_seconds * args.rate) * args.signals
    loop = asyncio.get_running_loop()
    deadline = loop.time() + args.seconds
    last_total, last_change = 0, loop.time()
    while loop.time() < deadline and min(counts) < expected:
        await asyncio.sleep(0.2)
        total = sum(counts)
        if total != last_total:
            last_total, last_change = total, loop.time()
        elif total and loop.time() - last_change > SETTLE:
            break
    for subscriber in subscribers:
        await subscriber.stop()
    p99 = []
    for values in latencies:
        values.sort()
        p99.append(values[min(len(values) - 1, int(len(values) * 0.99))] if values else None)
    return {"counts": counts, "p99": p99}


async def _stalled(args: argparse.Namespace) -> None:
    """Subscribe to everything with a tiny receive buffer, ask for the metadata 600 times
    (23 KB each at 1000 signals: past the publisher's 4 MiB high-water mark even after the
    kernel's loopback buffers), then never read again."""
    from gridbind.sttp.ieee2664 import SubscriptionSettings
    from gridbind.sttp.ieee2664.events import SubscriptionUpdated
    from gridbind.sttp.ieee2664.subscriber_session import SubscriberSession

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", args.port))
    session = SubscriberSession()
    session.start()
    session.subscribe(SubscriptionSettings())
    sock.sendall(session.data_to_send())
    # The flood waits for the subscription's answer: more than 64 commands behind a filter
    # evaluation close the connection at once (ieee2664 session), which is not a slow peer.
    sock.settimeout(30)
    while True:
        data = sock.recv(1 << 16)
        if not data:
            raise ConnectionError("the publisher closed the connection before subscribing it")
        if any(isinstance(event, SubscriptionUpdated) for event in session.receive(data)):
            break
    session.data_to_send()  # its confirmations: this subscriber never reads again
    for _ in range(600):
        session.request_metadata()
    sock.sendall(session.data_to_send())
    print("subscribed", flush=True)
    await asyncio.sleep(args.seconds)
    sock.close()


# ----------------------------------------------------------------------------------- orchestrator


def _spawn(role: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--role", role, *extra],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def _expect(process: subprocess.Popen, line: str) -> None:
    assert process.stdout is not None
    got = process.stdout.readline().strip()
    if got != line:
        raise RuntimeError(f"expected {line!r} from a bench process, got {got!r}")


def _result(process: subprocess.Popen) -> dict:
    out, _ = process.communicate(timeout=600)
    return json.loads(out.strip().splitlines()[-1])


def run_configuration(args: argparse.Namespace, healthy: int) -> dict:
    port = _free_port()
    common = ["--port", str(port), "--signals", str(args.signals), "--rate", str(args.rate)]
    publisher = _spawn(
        "publisher",
        *common,
        "--seconds",
        str(args.seconds),
        "--wait",
        str(healthy + 1),
        "--slow-timeout",
        str(args.slow_timeout),
    )
    _expect(publisher, "listening")
    groups = []
    left = healthy
    while left:
        count = min(args.per_process, left)
        left -= count
        group = _spawn(
            "subscribers",
            *common,
            "--count",
            str(count),
            "--seconds",
            str(args.seconds + 120),
            "--stream-seconds",
            str(args.seconds),
        )
        groups.append(group)
    for group in groups:
        _expect(group, "subscribed")
    stall = _spawn("stalled", *common, "--seconds", str(args.seconds + 30))
    _expect(stall, "subscribed")
    _expect(publisher, "streaming")
    outcome = _result(publisher)
    counts: list[int] = []
    p99: list[float] = []
    for group in groups:
        result = _result(group)
        counts += result["counts"]
        p99 += [value for value in result["p99"] if value is not None]
    stall.wait(60)
    expected = outcome["frames"] * outcome["signals"]
    delivered = sum(counts)
    return {
        "healthy": healthy,
        "expected": expected,
        "lost": [expected - count for count in counts],
        "cpu_us": outcome["cpu"] / delivered * 1e6 if delivered else float("nan"),
        "cpu": outcome["cpu"],
        "p99_ms": max(p99) * 1000 if p99 else float("nan"),
        "late_ms": outcome["late"] * 1000,
        "stalled": outcome["stalled"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", default="bench")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--signals", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=30.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--subscribers", default="1,10,50")
    parser.add_argument("--per-process", type=int, default=10)
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--wait", type=int, default=1)
    parser.add_argument("--stream-seconds", type=float, default=10.0)
    parser.add_argument(
        "--slow-timeout", type=float, default=5.0, help="publisher: seconds a lagging one may lag"
    )
    args = parser.parse_args()
    if args.role == "publisher":
        print(json.dumps(asyncio.run(_publisher(args))), flush=True)
        return
    if args.role == "subscribers":
        print(json.dumps(asyncio.run(_subscribers(args))), flush=True)
        return
    if args.role == "stalled":
        asyncio.run(_stalled(args))
        return
    print(
        f"{args.signals} signals x {args.rate:g} frames/s x {args.seconds:g} s, TSSC, one "
        f"publisher, healthy subscribers in processes of {args.per_process}, plus one stalled"
    )
    print(
        "| healthy subscribers | lost per subscriber (max) | publisher CPU us/delivered meas "
        "| slowest healthy p99 latency ms | stalled subscriber |"
    )
    print("|---:|---:|---:|---:|---|")
    results = []
    for healthy in (int(n) for n in args.subscribers.split(",")):
        result = run_configuration(args, healthy)
        results.append(result)
        stalled = result["stalled"]
        fate = (
            "; ".join(
                f"{s['dropped']:,} dropped, {'disconnected: ' + s['reason'] if s['closed'] else 'open'}"
                for s in stalled
            )
            or "not seen lagging"
        )
        print(
            f"| {healthy} | {max(result['lost']):,} | {result['cpu_us']:.3f} "
            f"| {result['p99_ms']:.1f} | {fate} |",
            flush=True,
        )
    if len(results) > 1:
        print(
            f"CPU per delivered measurement, {results[-1]['healthy']} vs {results[0]['healthy']} "
            f"subscribers: {results[-1]['cpu_us'] / results[0]['cpu_us']:.2f}x"
        )


if __name__ == "__main__":
    main()
