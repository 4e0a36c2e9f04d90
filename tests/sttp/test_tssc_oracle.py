"""TSSC interop with the deployed implementation (sttpapi), both directions, deployed code table.

For each synthetic stream: gridbind's blocks decode exactly in sttpapi's decoder, sttpapi's
encoder output decodes exactly in gridbind's decoder (both implementations), and the two encoders
produce the same bytes.

sttpapi encoder defects worked around (see shared/reference/sttp-profiles.md):

* flags are passed as ``numpy.uint32`` (Python ints >= 0x100 make it raise midway);
* timestamps are passed as ``numpy.int64``: Python ints fail on negative ticks (it converts them
  to ``numpy.uint64``) and ``numpy.uint64`` ticks are mis-encoded;
* its encoder keeps points in a list indexed by id, so the sttpapi -> gridbind direction uses ids
  below 2**18 (ids up to 2**32-1 are covered gridbind -> sttpapi, where its decoder uses a dict,
  and by gridbind's own round trips);
* it converts each float32 value through a Python float, which quiets signalling NaNs, so the
  streams fed to its encoder carry quiet NaNs only (signalling NaN bit patterns are covered
  gridbind -> sttpapi, and by gridbind's own round trips).
"""

from __future__ import annotations

import math
import random
import struct
import warnings
from array import array

import pytest

from gridbind.sttp import tssc
from gridbind.sttp.tssc import DEPLOYED, TsscDecoder, TsscEncoder

from conftest import require

try:
    import numpy as np
    from sttp.transport.tssc.decoder import Decoder as SttpDecoder
    from sttp.transport.tssc.encoder import Encoder as SttpEncoder
except ImportError:  # reported per test through require()
    SttpEncoder = None

Row = tuple[int, int, int, int]  # id, ticks, flags, float32 bits
PAYLOAD_CAPACITY = 32768  # sttpapi's publisher buffer


@pytest.fixture(autouse=True)
def _sttpapi() -> None:
    require(SttpEncoder is not None, "sttpapi (test peer)")
    warnings.simplefilter("ignore", RuntimeWarning)  # numpy int64 wrap-around in sttpapi


def bits(value: float) -> int:
    return struct.unpack("<I", struct.pack("<f", value))[0]


def quiet(value_bits: int) -> int:
    """The bit pattern with a signalling NaN made quiet (what a Python float round trip does)."""
    is_nan = (value_bits & 0x7F800000) == 0x7F800000 and value_bits & 0x7FFFFF
    return value_bits | 0x400000 if is_nan else value_bits


# ---------------------------------------------------------------------------------------------
# Synthetic streams: lists of frames, each a list of rows


def pmu_frames(signals: int = 2000, frames: int = 8, seed: int = 1) -> list[list[Row]]:
    """PMU-like: frequency, dF/dt, magnitudes, wrapping angles; 30 frames/s; shuffled id order
    per frame; rare flag changes (some >= 0x100)."""
    rng = random.Random(seed)
    t0 = 638_000_000_000_000_000
    state = [rng.uniform(-180, 180) for _ in range(signals)]
    flags = [0] * signals
    out = []
    for k in range(frames):
        ts = t0 + k * 10_000_000 // 30
        order = list(range(signals))
        rng.shuffle(order)
        rows = []
        for sid in order:
            kind = sid % 10
            if kind == 0:
                value = 60.0 + rng.gauss(0, 0.005)
            elif kind == 1:
                value = rng.gauss(0, 0.01)
            elif kind < 6:
                value = (199_186.0 if kind < 5 else 812.0) * (1 + rng.gauss(0, 5e-4))
            else:
                state[sid] = (state[sid] + 0.36 * rng.uniform(-1, 1) + 180.0) % 360.0 - 180.0
                value = state[sid]
            if rng.random() < 0.003:
                flags[sid] ^= rng.choice([0x2, 0x100, 0x8000_0000])
            rows.append((sid, ts, flags[sid], bits(value)))
        out.append(rows)
    return out


def irregular_frames(seed: int = 2, full_range: bool = False) -> list[list[Row]]:
    """One timestamp per measurement: jitter, steps back, repeats (Timestamp2), big jumps;
    optionally anywhere in the int64 range (negative ticks and wrap-around deltas included)."""
    rng = random.Random(seed)
    t = 638_000_000_000_000_000
    out = []
    for _ in range(5):
        rows = []
        for _ in range(1500):
            r = rng.random()
            if r < 0.3:
                t += 333_333 + rng.randrange(-3, 4)
            elif r < 0.45:
                t -= rng.choice([1, 333_333, rng.randrange(1, 1 << 30)])
            elif r < 0.55:
                t += rng.randrange(1 << rng.randrange(1, 62))
            elif r < 0.65 and full_range:
                t = rng.choice([-(2**63), 2**63 - 1, 0, -1, rng.randrange(-(2**63), 2**63)])
            t = max(-(2**63), min(2**63 - 1, t))
            rows.append((rng.randrange(300), t, 0, bits(rng.uniform(-1, 1))))
        out.append(rows)
    return out


QUIET_SPECIALS = [
    0x7FC00000,  # quiet NaN
    0xFFC00000,  # negative quiet NaN
    0x7FC12345,  # quiet NaN with payload
    0x7F800000,  # +inf
    0xFF800000,  # -inf
    0x80000000,  # -0.0
    0x00000000,  # +0.0
    0x00000001,  # smallest subnormal
    0x807FFFFF,  # largest negative subnormal
    0x7F7FFFFF,  # float32 max
    0x00800000,  # smallest normal
]
SIGNALLING_NANS = [0x7F800001, 0xFFA00000, 0x7FBFFFFF]


def special_frames(signalling: bool, seed: int = 3) -> list[list[Row]]:
    rng = random.Random(seed)
    specials = QUIET_SPECIALS + (SIGNALLING_NANS if signalling else [])
    out = []
    for k in range(4):
        rows = []
        for sid in range(1000):
            value = rng.choice(specials) if rng.random() < 0.5 else bits(rng.gauss(0, 100))
            rows.append((sid, 638_000_000_000_000_000 + k, 0, value))
        out.append(rows)
    return out


def id_flag_range_frames(max_id: int, seed: int = 4) -> list[list[Row]]:
    """Ids spread over 0..max_id (every PointIDXOR width up to max_id's), flags over uint32."""
    rng = random.Random(seed)
    pool = [0, 1, max_id, max_id - 1, 0x10, 0x100, 0x1000, 0x10000]
    pool += [p for p in (0x100000, 0x1000000, 0x7FFFFFFF, 0x80000000) if p <= max_id]
    pool += [rng.randrange(max_id + 1) for _ in range(3000)]
    out = []
    for k in range(4):
        rows = []
        for _ in range(2500):
            flags = rng.choice([0, 0xFFFFFFFF, 0x7F, 0x80, 0x3FFF, 0x4000, rng.randrange(2**32)])
            rows.append(
                (rng.choice(pool), 638_000_000_000_000_000 + k, flags, rng.randrange(2**30))
            )
        out.append(rows)
    return out


# ---------------------------------------------------------------------------------------------
# Both sides


def sttpapi_encode(frames: list[list[Row]]) -> list[tuple[int, bytes]]:
    """Blocks as sttpapi's publisher makes them: one per frame, a new one when the buffer fills."""
    enc = SttpEncoder()
    buffer = bytearray(PAYLOAD_CAPACITY)
    blocks: list[tuple[int, bytes]] = []
    for rows in frames:
        enc.set_buffer(buffer, np.uint32(0), np.uint32(len(buffer)))
        count = 0
        for pid, ts, flags, value_bits in rows:
            args = (np.int32(pid), np.int64(ts), np.uint32(flags))
            value = np.array([value_bits], dtype=np.uint32).view(np.float32)[0]
            if not enc.try_add_measurement(*args, value):
                blocks.append((count, bytes(buffer[: enc.finish_block()])))
                enc.set_buffer(buffer, np.uint32(0), np.uint32(len(buffer)))
                count = 0
                assert enc.try_add_measurement(*args, value)
            count += 1
        blocks.append((count, bytes(buffer[: enc.finish_block()])))
    return blocks


def sttpapi_decode(payloads: list[bytes]) -> list[Row]:
    dec = SttpDecoder()
    rows: list[Row] = []
    for payload in payloads:
        dec.set_buffer(payload)
        while True:
            pid, ts, flags, value, ok, err = dec.try_get_measurement()
            assert err is None, err
            if not ok:
                break
            value_bits = int(np.float32(value).view(np.uint32))
            rows.append((int(pid) & 0xFFFFFFFF, int(ts), int(flags), value_bits))
    return rows


def gridbind_encode(frames: list[list[Row]], impl: str) -> list[tssc.TsscBlock]:
    enc = TsscEncoder(DEPLOYED, max_block_size=PAYLOAD_CAPACITY + 3, implementation=impl)
    blocks = []
    for rows in frames:
        values = array("f")
        values.frombytes(array("I", [r[3] for r in rows]).tobytes())
        blocks += enc.encode(
            [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], values
        )
    return blocks


def gridbind_decode(payloads: list[tuple[int, bytes]], impl: str) -> list[Row]:
    dec = TsscDecoder(DEPLOYED, implementation=impl)
    rows: list[Row] = []
    for sequence, (count, payload) in enumerate(payloads):
        header = bytes((85, sequence >> 8, sequence & 0xFF))
        cols = dec.decode(header + payload, expected_count=count)
        rows += zip(cols.ids, cols.timestamps, cols.flags, cols.value_bits(), strict=True)
    return rows


def implementations() -> list[str]:
    impls = tssc.available_implementations()
    require("c" in impls, "compiled TSSC core gridbind.sttp._tssc")
    return list(impls)


def check_both_directions(frames: list[list[Row]], sttpapi_can_encode: bool = True) -> None:
    expected = [row for rows in frames for row in rows]
    for impl in implementations():
        ours = gridbind_encode(frames, impl)
        assert sttpapi_decode([b.data[3:] for b in ours]) == expected
    if not sttpapi_can_encode:
        return
    theirs = sttpapi_encode(frames)
    assert [(b.count, b.data[3:]) for b in ours] == theirs  # identical bytes
    for impl in implementations():
        assert gridbind_decode(theirs, impl) == expected


@pytest.mark.timeout(60)
def test_pmu_stream_thousands_of_signals_shuffled() -> None:
    check_both_directions(pmu_frames())


@pytest.mark.timeout(60)
def test_irregular_and_backwards_timestamps() -> None:
    check_both_directions(irregular_frames())


@pytest.mark.timeout(60)
def test_full_int64_timestamp_range() -> None:
    check_both_directions(irregular_frames(seed=5, full_range=True))


@pytest.mark.timeout(60)
def test_special_float_values() -> None:
    check_both_directions(special_frames(signalling=False))


@pytest.mark.timeout(60)
def test_signalling_nans_gridbind_to_sttpapi() -> None:
    """sttpapi's encoder quiets signalling NaNs (Python float round trip): one direction only."""
    check_both_directions(special_frames(signalling=True), sttpapi_can_encode=False)


@pytest.mark.timeout(60)
def test_id_and_flag_ranges_both_directions() -> None:
    """Ids below 2**18: sttpapi's encoder allocates a list slot per id up to the largest."""
    check_both_directions(id_flag_range_frames(2**18 - 1))


@pytest.mark.timeout(60)
def test_full_32bit_ids_gridbind_to_sttpapi() -> None:
    """PointIDXOR24/32 and ids >= 2**31 (which sttpapi's decoder returns as negative int32)."""
    check_both_directions(id_flag_range_frames(2**32 - 1), sttpapi_can_encode=False)


@pytest.mark.timeout(60)
def test_blocks_split_like_sttpapi_publisher() -> None:
    """A frame too large for one 32 KiB block is split at the same measurement by both."""
    rng = random.Random(8)
    rows = [
        (
            rng.randrange(2**18),
            rng.randrange(2**62),
            rng.randrange(2**32),
            quiet(rng.randrange(2**32)),
        )
        for _ in range(4000)
    ]
    frames = [rows]
    theirs = sttpapi_encode(frames)
    assert len(theirs) > 1
    check_both_directions(frames)


def test_hand_checked_block_matches_sttpapi() -> None:
    """The hand-derived bytes of test_tssc.py's deployed example are what sttpapi writes."""
    payload = bytes.fromhex("01 51 11 E8 07 31 03 F0 00 00 80 3F 00")
    assert sttpapi_encode([[(5, 1000, 3, bits(1.0))]]) == [(1, payload)]
    assert math.isclose(1.0, struct.unpack("<f", struct.pack("<I", bits(1.0)))[0])
