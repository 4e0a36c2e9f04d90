"""Data point characteristics, checked numerically: exception with deadband and zero-deadband,
down-sampling (latest, closest, best quality, filter with unwrapped angles), priority,
reliability, verification receipts, and the publisher's right to refuse and propose."""

from __future__ import annotations

import asyncio
import math
import uuid

import pytest
from test_draft_session import pump

from gridbind.generated.sttp import draft_0_8 as wire
from gridbind.sttp import Measurement
from gridbind.sttp.draft import (
    Options,
    Policy,
    Publisher,
    Subscriber,
    ValueType,
)
from gridbind.sttp.draft.characteristics import CharacteristicsError, PointFilter
from gridbind.sttp.draft.metadata import MetadataDatabase
from gridbind.sttp.draft.session import (
    Catalog,
    DataPointsReceived,
    MappingChanged,
    PublisherSession,
    SubscriberSession,
    VerificationTimedOut,
    Verified,
)
from gridbind.sttp.draft.synthetic import SyntheticPmu

SECOND = 10_000_000
FRAME = SECOND // 30  # 333333 ticks


def feed(options: Options, samples):
    flt = PointFilter(options)
    out = []
    for sample in samples:
        out += flt.offer(*sample)
    return out, flt.flush()


def values(items):
    return [item[1] for item in items]


def test_exception_with_deadband():
    data = [(k, v, 0) for k, v in enumerate([10.0, 10.25, 10.5, 10.25, 11.0, 11.0, 9.0])]
    out, _ = feed(Options(exception=True, deadband=0.5), data)
    assert values(out) == [10.0, 10.5, 11.0, 9.0]
    out, _ = feed(Options(exception=True), [(k, v, 0) for k, v in enumerate([1, 1, 2, 2, 1])])
    assert values(out) == [1, 2, 1]
    out, _ = feed(Options(exception=True), [(k, v, 0) for k, v in enumerate("aab")])
    assert values(out) == ["a", "b"]


def test_zero_deadband_clamps_noise_to_zero():
    samples = [5.0, 0.05, -0.03, 0.0, 0.2, 0.25]
    out, _ = feed(
        Options(exception=True, deadband=0.1, zero_deadband=0.1),
        [(k, v, 0) for k, v in enumerate(samples)],
    )
    assert values(out) == [5.0, 0.0, 0.2]


def windows(kind: str):
    # 30 samples/s down to 10/s: windows centred on multiples of 0.1 s
    stamps = [k * FRAME for k in range(7)]
    quality = [0, 4, 4, 0, 2, 1, 0]
    data = [(t, float(k), q) for k, (t, q) in enumerate(zip(stamps, quality, strict=True))]
    options = Options(resolution=0.1, resolution_type={"latest": 0, "closest": 1, "best": 2}[kind])
    return feed(options, data)


def test_down_sampling_latest_closest_best_quality():
    # windows: 0 -> samples 0,1 ; 1 -> 2,3,4 ; 2 -> 5,6
    out, rest = windows("latest")
    assert out == [(FRAME, 1.0, 4), (4 * FRAME, 4.0, 2)] and rest == [(6 * FRAME, 6.0, 0)]
    out, rest = windows("closest")  # nearest to 0, 1e6, 2e6 ticks
    assert values(out) == [0.0, 3.0] and values(rest) == [6.0]
    out, rest = windows("best")  # smallest quality word, ties nearest the target
    assert [(v, q) for _, v, q in out] == [(0.0, 0), (3.0, 0)] and values(rest) == [6.0]


def test_filter_averages_and_unwraps_angles():
    stamps = [k * FRAME for k in range(6)]
    plain = Options(resolution=0.1, resolution_type=3)
    out, rest = feed(plain, [(t, float(k), 1 << k) for k, t in enumerate(stamps)])
    assert out == [(0, 0.5, 0b11), (SECOND // 10, 3.0, 0b11100)]
    angles = [170.0, 179.0, -179.0, -177.0, 175.0, -175.0]
    out, rest = feed(
        Options(resolution=0.1, resolution_type=3, angle=True),
        [(t, a, 0) for t, a in zip(stamps, angles, strict=True)],
    )
    assert out[0][1] == pytest.approx(174.5)
    # -179, -177, 175 unwrap to -179, -177, -185: mean -180.33 wraps to 179.67
    assert out[1][1] == pytest.approx(179.0 + 2 / 3)
    assert rest == [(2 * SECOND // 10, -175.0, 0)]


def test_options_named_set_round_trip_and_errors():
    options = Options(
        priority=5,
        lossy=True,
        exception=True,
        deadband=0.5,
        resolution=0.2,
        resolution_type=2,
        angle=True,
    )
    assert Options.from_named(options.to_named()) == options
    for bad in ({"priority": "9"}, {"deadband": "-1"}, {"resolutionType": "avg"}, {"foo": "1"}):
        with pytest.raises(CharacteristicsError):
            Options.from_named(bad)


def session_pair(points, policy=None, **sub_options):
    catalog = Catalog(MetadataDatabase(), policy=policy or Policy(), value_types=points)
    pub = PublisherSession(catalog, stateful=["NONE"])
    sub = SubscriberSession(**sub_options)
    pump(pub, sub)
    return pub, sub


def subscribe(sub, pub, ids, named):
    SSC = wire.SubscribeSubCommand
    sub.subscribe(
        [
            wire.SubscribeItem(
                sub_command=SSC.ConfigureOptions,
                body=wire.SttpNamedSet(
                    items=[wire.NamedValue(name=k, value=v) for k, v in named.items()]
                ),
            ),
            wire.SubscribeItem(
                sub_command=SSC.DataPointByID, mode=wire.SubscriptionMode.Append, body=ids
            ),
        ],
        0.0,
    )
    return pump(pub, sub)


def test_priority_orders_publication_and_flags_carry_the_grant():
    low, high = uuid.uuid4(), uuid.uuid4()
    pub, sub = session_pair({low: ValueType.SINGLE, high: ValueType.SINGLE})
    subscribe(sub, pub, [low], {})
    _, events = subscribe(sub, pub, [high], {"priority": "6", "exception": "true"})
    key = next(e for e in events if isinstance(e, MappingChanged)).added[0]
    assert key.point_id == high
    assert (key.flags & wire.StateFlags.PriorityMask) >> 5 == 6
    assert key.flags & wire.StateFlags.Exception
    pub.publish([Measurement(low, 1.0, 1), Measurement(high, 2.0, 1)])
    _, events = pump(pub, sub)
    [batch] = [e for e in events if isinstance(e, DataPointsReceived)]
    assert [m.signal_id for m in batch.measurements] == [high, low]
    pub.publish([Measurement(high, 2.0, 2)])  # unchanged: held back by the exception rule
    assert pub.published_by_priority[6] == 1 and pub.published_by_priority[0] == 1
    assert pub.suppressed == 1
    configured = pub.configured()
    assert configured["by_priority"][6] == 1 and configured["exception"] == 1


def test_reliability_is_ignored_without_a_data_channel():
    point = uuid.uuid4()
    pub, sub = session_pair({point: ValueType.SINGLE})
    subscribe(sub, pub, [point], {"reliability": "lossy"})
    pub.publish([Measurement(point, 1.0, 1)])
    assert pub.datagrams_to_send() == []
    _, events = pump(pub, sub)
    assert [e.channel for e in events if isinstance(e, DataPointsReceived)] == ["tcp"]


def test_verification_receipts_and_time_out():
    point = uuid.uuid4()
    pub, sub = session_pair({point: ValueType.DOUBLE}, Policy(verified_points=frozenset({point})))
    pub.verification_timeout = 1.0
    _, events = subscribe(sub, pub, [point], {})
    key = next(e for e in events if isinstance(e, MappingChanged)).added[0]
    assert key.flags & wire.StateFlags.Verification
    pub.publish([Measurement(point, 1.5, 42)], now=0.0)
    pub_events, _ = pump(pub, sub)
    assert pub_events == [Verified(point, 42)]
    pub.publish([Measurement(point, 2.5, 43)], now=0.0)
    pub.data_to_send()  # lost: the subscriber never sees it
    assert pub.next_deadline() == 1.0
    assert pub.tick(1.0) == [VerificationTimedOut(point, 43)]


def test_publisher_refuses_and_proposes_characteristics():
    point = uuid.uuid4()
    policy = Policy(max_priority=3, allow_filter=False, allow_lossy=False)
    pub, sub = session_pair({point: ValueType.SINGLE}, policy)
    _, events = subscribe(
        sub,
        pub,
        [point],
        {"priority": "5", "resolution": "0.5", "resolutionType": "filter", "reliability": "lossy"},
    )
    refusal = next(e for e in events if type(e).__name__ == "CommandFailed")
    assert not refusal.terminate and not sub.closed
    assert refusal.proposed == {"priority": "3", "resolution": "0.5", "resolutionType": "latest"}
    assert pub.subscribed_points == []
    subscribe(sub, pub, [point], refusal.proposed)  # accepting the proposal succeeds
    assert pub.subscribed_points == [point]


async def wire_run(named: dict[str, str], seconds: float):
    pmu = SyntheticPmu(6, 30.0, start=638_000_000_000_000_000 - 638_000_000_000_000_000 % SECOND)
    publisher = Publisher(port=0, metadata=pmu.metadata(), stateful=["TSSC"])
    await publisher.start()
    subscriber = Subscriber(port=publisher.port)
    try:
        await subscriber.start()
        await subscriber.subscribe(options=named)
        frames = int(seconds * 30)
        for k in range(frames):
            publisher.publish(pmu.frame(k))
            await asyncio.sleep(0)
        got = await subscriber.collect(10**6, 0.5)
        return pmu, frames, got
    finally:
        await subscriber.stop()
        await publisher.stop()


@pytest.mark.timeout(20)
def test_filtered_down_sampling_over_the_wire_matches_independent_computation():
    pmu, frames, got = asyncio.run(
        asyncio.wait_for(wire_run({"resolution": "0.2", "resolutionType": "filter"}, 2.0), 15)
    )
    period = SECOND // 5
    expected = {}
    for i, signal in enumerate(pmu.ids):
        buckets: dict[int, list[float]] = {}
        for k in range(frames):
            t = pmu.timestamp(k)
            buckets.setdefault((t + period // 2) // period, []).append(pmu.value(i, k))
        angle = pmu.kind(i).endswith("PHA")
        for w, vals in sorted(buckets.items())[:-1]:  # the open last window is not sent
            if angle:  # unwrap relative to the previous sample, average, wrap
                un = [vals[0]]
                for v in vals[1:]:
                    d = math.remainder(v - un[-1], 360.0)
                    un.append(un[-1] + d)
                mean = math.remainder(sum(un) / len(un), 360.0)
            else:
                mean = sum(vals) / len(vals)
            expected[(signal, w * period)] = mean
    received = {(m.signal_id, m.timestamp): m.value for m in got}
    assert set(received) == set(expected)
    for key, value in expected.items():
        # TSSC carries float32: compare at float32 precision
        assert received[key] == pytest.approx(value, rel=1e-6, abs=1e-4), key


@pytest.mark.timeout(20)
def test_deadband_over_the_wire():
    pmu, frames, got = asyncio.run(
        asyncio.wait_for(wire_run({"exception": "true", "deadband": "0.005"}, 2.0), 15)
    )
    freq = pmu.ids[0]
    sent = [pmu.value(0, k) for k in range(frames)]
    expected, last = [], None
    for v in sent:
        if last is None or abs(last - v) >= 0.005:
            expected.append(v)
            last = v
    assert [m.value for m in got if m.signal_id == freq] == expected
    assert 1 < len(expected) < frames
