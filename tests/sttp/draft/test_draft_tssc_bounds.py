"""A TSSC data packet of the draft profile decodes at most the points its totalRawSize declares
(a 4 MiB fragment cost 1.35 GB and 10.8 s before)."""

from __future__ import annotations

import time
import tracemalloc

import pytest

from gridbind.generated.sttp import draft_0_8 as wire
from gridbind.sttp.draft.fragments import Packet
from gridbind.sttp.draft.packets import (
    FIXED_SIZE_POINT_BYTES,
    MAX_RAW_PACKET,
    DataDecoder,
    PacketError,
)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("raw_size", [MAX_RAW_PACKET // 95 * 95, 95, 1000])
def test_a_four_mebibyte_tssc_packet_is_refused_without_amplification(raw_size):
    payload = bytes([85, 0, 0]) + b"\xff" * (4 << 20)  # 8 points per byte if fully decoded
    packet = Packet(
        int(wire.CommandCode.SendDataPoints), payload, wire.CompressionMode.Tssc, raw_size
    )
    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(PacketError, match="TSSC|whole number"):
            DataDecoder(stateful=True).packet(packet)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.monotonic() - started < 1.0
    assert peak < 16 << 20
    assert FIXED_SIZE_POINT_BYTES == 95
