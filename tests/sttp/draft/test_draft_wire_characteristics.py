"""Data point characteristics through the asyncio Publisher / Subscriber over real TCP sockets:
priority ordering on the wire, the publisher refusing and proposing (SubscriptionRefused), and
down-sampling (latest / closest / best quality) and zero-deadband checked numerically against
an independent computation."""

from __future__ import annotations

import asyncio
import random
import uuid

import pytest

from gridbind.generated.sttp import draft_0_8 as wire
from gridbind.sttp import Measurement
from gridbind.sttp.draft import (
    Policy,
    Publisher,
    Subscriber,
    SubscriptionRefused,
    ValueType,
)

SECOND = 10_000_000
T0 = 638_000_000_000_000_000 - 638_000_000_000_000_000 % SECOND  # aligned to a second
SM = wire.SubscriptionMode


def run(coro, timeout=15):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def stamp(frame: int) -> int:
    """30 frames/s from T0, as a PMU would stamp them."""
    return T0 + round(frame * SECOND / 30)


async def connected(publisher: Publisher, **options) -> Subscriber:
    await publisher.start()
    subscriber = Subscriber(port=publisher.port, **options)
    await subscriber.start(timeout=5)
    return subscriber


@pytest.mark.timeout(20)
@pytest.mark.parametrize("stateful", ["TSSC", "DEFLATE", "NONE"])
def test_priority_orders_data_points_on_the_wire(stateful):
    # Singles are TSSC-coded, the other types basic-encoded: priority must win over that split
    points = {
        "p0": (uuid.uuid4(), ValueType.SINGLE, 0),
        "p2": (uuid.uuid4(), ValueType.INT64, 2),
        "p4": (uuid.uuid4(), ValueType.SINGLE, 4),
        "p5v": (uuid.uuid4(), ValueType.SINGLE, 5),  # verified: sent by its own encoder
        "p6": (uuid.uuid4(), ValueType.DOUBLE, 6),
        "p6s": (uuid.uuid4(), ValueType.SINGLE, 6),
    }
    priority = {signal: level for signal, _, level in points.values()}
    order: list[uuid.UUID] = []

    async def main():
        publisher = Publisher(
            port=0,
            points={signal: kind for signal, kind, _ in points.values()},
            stateful=[stateful],
            udp=False,
            policy=Policy(verified_points=frozenset({points["p5v"][0]})),
        )
        subscriber = await connected(publisher)
        subscriber.on_measurements = lambda batch: order.extend(m.signal_id for m in batch)
        try:
            for n, (signal, _, level) in enumerate(points.values()):
                await subscriber.subscribe(
                    [signal],
                    mode=SM.Replace if n == 0 else SM.Append,
                    options={"priority": str(level)} if level else None,
                )
            flags = {key[0]: key[2] for key in subscriber.session.mapping.values()}
            frames = 5
            for k in range(frames):
                # lowest priority first in every batch the application publishes
                batch = [
                    Measurement(signal, k + 1, stamp(k))
                    for signal, _, _ in sorted(points.values(), key=lambda p: p[2])
                ]
                publisher.publish(batch)
            got = await subscriber.collect(frames * len(points), 5)
            [link] = publisher.connections
            await publisher.wait_for(
                lambda: sum(type(e).__name__ == "Verified" for _, e in publisher.events) == 5
            )
            return got, flags, link.session.published_by_priority
        finally:
            await subscriber.stop()
            await publisher.stop()

    got, flags, by_priority = run(main())
    assert len(got) == 5 * len(points)
    for signal, level in priority.items():  # the grant travels in the mapping's flags
        assert (flags[signal] & wire.StateFlags.PriorityMask) >> 5 == level
    for k in range(5):  # within each published batch: non-increasing priority
        levels = [priority[s] for s in order[k * len(points) : (k + 1) * len(points)]]
        assert levels == sorted(levels, reverse=True), (k, levels)
        assert {m.timestamp for m in got[k * len(points) : (k + 1) * len(points)]} == {stamp(k)}
    assert by_priority[6] == 10 and by_priority[4] == by_priority[2] == by_priority[0] == 5
    assert by_priority[5] == 5 and flags[points["p5v"][0]] & wire.StateFlags.Verification


@pytest.mark.timeout(20)
def test_publisher_refuses_characteristics_and_proposes_values_over_tcp():
    signal = uuid.uuid4()
    policy = Policy(max_priority=3, allow_filter=False, allow_lossy=False)

    async def main():
        publisher = Publisher(port=0, points={signal: ValueType.DOUBLE}, policy=policy)
        subscriber = await connected(publisher)
        try:
            requested = {
                "priority": "5",
                "resolution": "0.5",
                "resolutionType": "filter",
                "reliability": "lossy",
            }
            with pytest.raises(SubscriptionRefused) as refused:
                await subscriber.subscribe([signal], options=requested)
            # refused, not terminated: the session goes on and nothing was subscribed
            [link] = publisher.connections
            alive = not subscriber.session.closed and link.session.subscribed_points == []
            proposed = refused.value.proposed
            await subscriber.subscribe([signal], options=proposed)  # accepting the proposal
            [key] = subscriber.session.mapping.values()
            granted = link.session._points[signal].options
            # down-sampled to 0.5 s (latest): frames at 0, 0.25, ... s; windows close later
            for k in range(5):
                publisher.publish([Measurement(signal, float(k), T0 + k * SECOND // 4)])
            got = await subscriber.collect(2, 5)
            return refused.value, alive, proposed, key, granted, got
        finally:
            await subscriber.stop()
            await publisher.stop()

    error, alive, proposed, key, granted, got = run(main())
    assert error.event.command == wire.CommandCode.Subscribe and not error.event.terminate
    assert "proposed" in error.event.reason
    assert alive
    assert proposed == {"priority": "3", "resolution": "0.5", "resolutionType": "latest"}
    assert key[0] == signal and (key[2] & wire.StateFlags.PriorityMask) >> 5 == 3
    assert key[2] & wire.StateFlags.Resolution and not key[2] & wire.StateFlags.Reliability
    assert granted.priority == 3 and granted.resolution == 0.5 and granted.resolution_type == 0
    # windows [-0.25, 0.25) -> 0.0 ; [0.25, 0.75) -> samples 1, 2 -> latest 2.0
    assert [(m.value, m.timestamp) for m in got] == [
        (0.0, T0),
        (2.0, T0 + 2 * SECOND // 4),
    ]


# --- down-sampling and zero-deadband, numerically -------------------------------------------

FRAMES = 61
RESOLUTION = 0.1  # 30 samples/s down to 10/s


def samples(seed: int) -> list[tuple[int, float, int]]:
    """(timestamp, value, quality) of one point at 30 frames/s, varied qualities."""
    rng = random.Random(seed)
    return [
        (stamp(k), round(rng.uniform(-100.0, 100.0), 6), rng.choice([0, 0, 1, 2, 4, 8, 0x40]))
        for k in range(FRAMES)
    ]


def expected_downsampled(data, kind: str) -> list[tuple[int, float, int]]:
    """Independent computation: bucket by the nearest multiple of the resolution (relative to
    the epoch of the ticks), drop the still-open last bucket, pick per ``kind``."""
    period = round(RESOLUTION * SECOND)
    buckets: dict[int, list[tuple[int, float, int]]] = {}
    for t, v, q in data:
        nearest = (t + period // 2) // period  # [kT - T/2, kT + T/2)
        buckets.setdefault(nearest, []).append((t, v, q))
    out = []
    for k, items in sorted(buckets.items())[:-1]:
        target = k * period
        if kind == "latest":
            out.append(max(items, key=lambda item: item[0]))
        elif kind == "closest":
            out.append(min(items, key=lambda item: (abs(item[0] - target), item[0])))
        else:  # best quality: smallest quality word, ties nearest the target
            out.append(min(items, key=lambda item: (item[2], abs(item[0] - target))))
    return out


def noisy_zero(seed: int) -> list[tuple[int, float, int]]:
    rng = random.Random(seed)
    values = []
    for k in range(FRAMES):
        if k % 10 < 6:
            values.append(round(rng.uniform(-0.1, 0.1), 6))  # noise around zero
        else:
            values.append(round(rng.choice([-1, 1]) * rng.uniform(0.15, 3.0), 6))
    values[0] = 5.0
    return [(stamp(k), v, 0) for k, v in enumerate(values)]


def expected_exceptions(data, deadband: float, zero: float) -> list[tuple[int, float, int]]:
    out: list[tuple[int, float, int]] = []
    last = None
    for t, v, q in data:
        if abs(v) <= zero:
            v = 0.0
        if last is None or (abs(last - v) >= deadband and last != v):
            out.append((t, v, q))
            last = v
    return out


@pytest.mark.timeout(20)
@pytest.mark.parametrize("stateful", ["TSSC", "NONE"])
def test_down_sampling_and_zero_deadband_over_the_wire(stateful):
    kinds = ["latest", "closest", "bestQuality"]
    signals = {kind: uuid.uuid4() for kind in kinds + ["zero", "raw"]}
    streams = {kind: samples(n) for n, kind in enumerate(kinds)}
    streams["zero"] = noisy_zero(99)
    streams["raw"] = samples(7)

    async def main():
        publisher = Publisher(
            port=0,
            points={s: ValueType.DOUBLE for s in signals.values()},
            stateful=[stateful],
            udp=False,
        )
        subscriber = await connected(publisher)
        try:
            requests = {
                kind: {"resolution": repr(RESOLUTION), "resolutionType": kind} for kind in kinds
            }
            requests["zero"] = {"exception": "true", "deadband": "0.1", "zeroDeadband": "0.1"}
            requests["raw"] = None
            for n, (kind, options) in enumerate(requests.items()):
                await subscriber.subscribe(
                    [signals[kind]], mode=SM.Replace if n == 0 else SM.Append, options=options
                )
            await publisher.wait_subscribed()
            for k in range(FRAMES):
                batch = []
                for kind, signal in signals.items():
                    t, v, q = streams[kind][k]
                    batch.append(Measurement(signal, v, t, q))
                publisher.publish(batch)
                await asyncio.sleep(0)
            got = await subscriber.collect(10**6, 1.0)
            [link] = publisher.connections
            return got, link.session.suppressed, link.session.configured()
        finally:
            await subscriber.stop()
            await publisher.stop()

    got, suppressed, configured = run(main())
    received = {kind: [] for kind in signals}
    names = {signal: kind for kind, signal in signals.items()}
    for m in got:
        received[names[m.signal_id]].append((m.timestamp, m.value, m.flags))
    for kind in kinds:
        expected = expected_downsampled(streams[kind], kind)
        assert len(expected) == 20
        assert received[kind] == expected, kind  # Doubles travel exactly
    assert {q for _, _, q in received["bestQuality"]} != {q for _, _, q in received["latest"]}
    expected_zero = expected_exceptions(streams["zero"], 0.1, 0.1)
    assert received["zero"] == expected_zero
    assert 0.0 in [v for _, v, _ in expected_zero] and 3 < len(expected_zero) <= FRAMES - 20
    assert received["raw"] == streams["raw"]
    assert configured["downsampled"] == 3 and configured["exception"] == 1
    assert suppressed == 3 * (FRAMES - 20) + FRAMES - len(expected_zero)
