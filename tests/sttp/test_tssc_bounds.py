"""TSSC decoding work and state are bounded: the declared count is checked before decoding and
caps the measurements of a block; the point states a decoder keeps are capped. Both cores agree
(the compiled one and the pure-Python fallback), found cases are kept as examples."""

from __future__ import annotations

import time
import tracemalloc

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gridbind.sttp import tssc
from gridbind.sttp.tssc import DEPLOYED, SEED, TsscDecodeError, TsscDecoder, TsscEncoder

from conftest import require

#: Every '1' bit is a measurement of a new point: 8 measurements and 8 point states per byte.
ONES = b"\xff"


@pytest.fixture(params=["c", "python"])
def impl(request: pytest.FixtureRequest) -> str:
    if request.param == "c":
        require("c" in tssc.available_implementations(), "compiled TSSC core gridbind.sttp._tssc")
    return request.param


def _block(payload: bytes) -> bytes:
    return bytes([tssc.TSSC_VERSION, 0, 0]) + payload


@pytest.mark.timeout(30)
def test_a_declared_count_the_block_cannot_hold_is_refused_before_decoding(impl):
    decoder = TsscDecoder(DEPLOYED, implementation=impl)
    with pytest.raises(TsscDecodeError, match="declares 81"):
        decoder.decode(_block(ONES * 10), 81)  # 10 bytes hold at most 80
    with pytest.raises(TsscDecodeError, match="declares"):
        decoder.decode(_block(ONES * (1 << 20)), tssc.MAX_BLOCK_MEASUREMENTS + 1)


@pytest.mark.timeout(30)
def test_a_one_mebibyte_block_decodes_no_more_than_its_declared_count(impl):
    """A 1 MiB packet cost 1-1.9 GB (8 M measurements before the count was checked)."""
    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(TsscDecodeError, match="more than 1000 measurements"):
            TsscDecoder(DEPLOYED, implementation=impl).decode(_block(ONES * (1 << 20)), 1000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.monotonic() - started < 1.0
    assert peak < 8 << 20  # the block itself (copied once) and a bounded output


@pytest.mark.timeout(60)
def test_point_state_is_bounded(impl):
    decoder = TsscDecoder(DEPLOYED, implementation=impl, max_points=500)
    with pytest.raises(TsscDecodeError, match="more than 500 distinct point ids"):
        decoder.decode(_block(ONES * 100), 800)
    # the default bound holds without any declared count
    default = TsscDecoder(DEPLOYED, implementation=impl)
    with pytest.raises(TsscDecodeError, match="more than"):
        default.decode(_block(ONES * (1 << 16)))


def test_bounds_leave_ordinary_blocks_alone(impl):
    ids = list(range(1000)) * 3
    stamps = [t for t in (10, 20, 30) for _ in range(1000)]
    blocks = TsscEncoder(DEPLOYED, implementation=impl).encode(
        ids, stamps, [0] * len(ids), [float(i % 7) for i in range(len(ids))]
    )
    decoder = TsscDecoder(DEPLOYED, implementation=impl, max_points=1000)
    assert sum(len(decoder.decode(b.data, b.count)) for b in blocks) == len(ids)


def _outcome(implementation: str, table, payload: bytes, count, max_points: int):
    decoder = TsscDecoder(table, implementation=implementation, max_points=max_points)
    try:
        return list(decoder.decode(_block(payload), count).rows())
    except TsscDecodeError as exc:
        return str(exc)


@pytest.mark.timeout(120)
@settings(max_examples=300, deadline=None)
@given(
    payload=st.binary(max_size=300),
    count=st.one_of(st.none(), st.integers(min_value=-1, max_value=3000)),
    max_points=st.integers(min_value=0, max_value=40),
    seed_table=st.booleans(),
)
@example(payload=ONES * 300, count=None, max_points=40, seed_table=False)
@example(payload=ONES * 300, count=5, max_points=40, seed_table=True)
@example(payload=ONES * 4, count=32, max_points=31, seed_table=False)
@example(payload=ONES * 4, count=32, max_points=32, seed_table=False)
def test_fuzz_bounded_decoding_is_identical_in_both_cores(payload, count, max_points, seed_table):
    table = SEED if seed_table else DEPLOYED
    outcomes = [
        _outcome(i, table, payload, count, max_points) for i in tssc.available_implementations()
    ]
    assert all(o == outcomes[0] for o in outcomes)
    if isinstance(outcomes[0], list):
        assert count is None or len(outcomes[0]) == count
        assert len({row[0] for row in outcomes[0]}) <= max_points
