"""1000 signals x 30 frames/s over real TCP sockets on 127.0.0.1: 0 loss, exact values."""

from __future__ import annotations

import asyncio

import pytest

from gridbind.sttp.draft import Publisher, Subscriber
from gridbind.sttp.draft.packets import STREAM_DEFLATE_LEVEL, DataEncoder, WirePoint
from gridbind.sttp.draft.synthetic import SyntheticPmu

from draft_streaming import stream


async def run(algorithm: str, seconds: float, count: int = 1000, seen: dict | None = None):
    pmu = SyntheticPmu(count, 30.0, start=638_000_000_000_000_000)
    publisher = Publisher(port=0, points=pmu.value_types(), stateful=[algorithm])
    await publisher.start()
    subscriber = Subscriber(port=publisher.port, stateful=[algorithm])
    try:
        await subscriber.start()
        negotiated = subscriber.negotiated
        assert negotiated.stateful == algorithm
        await subscriber.subscribe()
        await publisher.wait_subscribed()
        outcome = await stream(publisher, subscriber, pmu, seconds)
        if seen is not None:
            seen["mapping"] = dict(subscriber.session.mapping)
            seen["streams"] = (
                publisher.connections[0].session._deflate_out,
                subscriber.session._deflate_in,
            )
        return outcome
    finally:
        await subscriber.stop()
        await publisher.stop()


@pytest.mark.timeout(45)
def test_tssc_1000_signals_30fps_10s_no_loss_exact():
    outcome = asyncio.run(asyncio.wait_for(run("TSSC", 10.0), 40))
    assert outcome.expected == 300_000
    assert outcome.received == outcome.distinct == outcome.expected
    assert outcome.wrong == 0
    assert outcome.bytes_per_measurement < 4.0  # TSSC: a few bytes per measurement
    print(f"TSSC: {outcome.bytes_per_measurement:.2f} bytes/measurement in {outcome.seconds:.1f}s")


def data_bytes(encoder: DataEncoder, pmu: SyntheticPmu, frames: int, ids: dict) -> int:
    """Bytes of the data frames ``encoder`` makes of the stream, one batch per frame as the
    publisher sends them."""
    types = pmu.value_types()
    total = 0
    for k in range(frames):
        points = [
            WirePoint(ids[m.signal_id], types[m.signal_id], m.timestamp, m.value, m.flags)
            for m in pmu.frame(k)
        ]
        total += sum(map(len, encoder.encode(points)))
    return total


@pytest.mark.timeout(60)
def test_deflate_1000_signals_30fps_10s_no_loss_exact():
    """Stateful DEFLATE on TCP (one stream per direction) with exact values; it compresses
    better than per-packet DEFLATE of the same data points."""
    seen: dict = {}
    outcome = asyncio.run(asyncio.wait_for(run("DEFLATE", 10.0, seen=seen), 40))
    assert outcome.received == outcome.distinct == outcome.expected == 300_000
    assert outcome.wrong == 0
    assert all(seen["streams"])  # the session ran the stateful streams
    # the same 300 frames, with the runtime ids of the session, encoded offline both ways
    pmu = SyntheticPmu(1000, 30.0, start=638_000_000_000_000_000)
    ids = {point: runtime for runtime, (point, _, _) in seen["mapping"].items()}
    frames = outcome.expected // 1000
    stream_bytes = data_bytes(DataEncoder("DEFLATE", stateful=True), pmu, frames, ids)
    per_packet = data_bytes(DataEncoder("DEFLATE", stateful=False), pmu, frames, ids)
    same_level = DataEncoder("DEFLATE", stateful=False)
    same_level._fragmenter.deflate_level = STREAM_DEFLATE_LEVEL
    per_packet_same_level = data_bytes(same_level, pmu, frames, ids)
    stream_bpm, per_packet_bpm = stream_bytes / 300_000, per_packet / 300_000
    # what crossed the socket (data plus every other frame) beats per-packet data alone
    assert outcome.bytes_per_measurement < per_packet_bpm
    assert stream_bytes < per_packet_same_level < per_packet
    assert stream_bpm < 0.97 * per_packet_bpm
    print(
        f"DEFLATE: {outcome.bytes_per_measurement:.3f} bytes/measurement on the socket; data "
        f"only: stream {stream_bpm:.3f}, per packet {per_packet_bpm:.3f} "
        f"({per_packet_same_level / 300_000:.3f} at level {STREAM_DEFLATE_LEVEL})"
    )


@pytest.mark.timeout(25)
def test_basic_encoding_1000_signals_30fps_no_loss_exact():
    outcome = asyncio.run(asyncio.wait_for(run("NONE", 1.0), 20))
    assert outcome.received == outcome.distinct == outcome.expected == 30_000
    assert outcome.wrong == 0
