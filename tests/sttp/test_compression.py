"""DEFLATE per packet and per session with the seed's limits (1024-byte growth, 16384 inflated)."""

from __future__ import annotations

import os
import random
import tracemalloc
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridbind.sttp.draft.compression import (
    MAX_EXPANSION,
    MAX_INFLATED,
    CompressionError,
    DecompressionError,
    DeflateCompressor,
    DeflateDecompressor,
    deflate,
    inflate,
)


def packets(n: int, seed: int = 1) -> list[bytes]:
    rng = random.Random(seed)
    base = b"".join(rng.randrange(4).to_bytes(1, "big") * rng.randrange(1, 9) for _ in range(300))
    return [base[: rng.randrange(100, len(base))] + rng.randbytes(20) for _ in range(n)]


def test_stateless_is_raw_rfc1951_and_round_trips() -> None:
    for packet in packets(20) + [b"", b"x", os.urandom(MAX_INFLATED)]:
        compressed = deflate(packet)
        assert zlib.decompress(compressed, -15) == packet  # raw DEFLATE, no zlib/gzip header
        assert inflate(compressed) == packet
        assert len(compressed) <= len(packet) + MAX_EXPANSION


def test_stateless_packets_are_independent() -> None:
    data = packets(5)
    compressed = [deflate(p) for p in data]
    assert [inflate(c) for c in reversed(compressed)] == list(reversed(data))


def test_stateful_session_round_trip_and_gain() -> None:
    data = packets(50, seed=2)
    comp, decomp = DeflateCompressor(), DeflateDecompressor()
    out = [comp.compress(p) for p in data]
    assert all(o.endswith(b"\x00\x00\xff\xff") for o in out)
    assert [decomp.decompress(o) for o in out] == data
    # the shared history makes later packets much cheaper than stateless ones
    assert sum(map(len, out[10:])) < sum(len(deflate(p)) for p in data[10:]) / 2


def test_incompressible_growth_is_bounded() -> None:
    data = os.urandom(MAX_INFLATED)
    assert len(deflate(data, level=9)) <= len(data) + MAX_EXPANSION
    assert len(DeflateCompressor().compress(data)) <= len(data) + MAX_EXPANSION


def test_limit_exact_and_one_over() -> None:
    assert inflate(deflate(b"a" * MAX_INFLATED)) == b"a" * MAX_INFLATED
    over = zlib.compressobj(9, zlib.DEFLATED, -15)
    bomb = over.compress(b"a" * (MAX_INFLATED + 1)) + over.flush()
    with pytest.raises(DecompressionError, match="16384-byte limit"):
        inflate(bomb)
    with pytest.raises(CompressionError, match="exceeds the 16384-byte limit"):
        deflate(b"a" * (MAX_INFLATED + 1))
    with pytest.raises(CompressionError):
        DeflateCompressor().compress(b"a" * (MAX_INFLATED + 1))
    assert inflate(deflate(b"b" * 40000, max_size=40000), max_size=40000) == b"b" * 40000


@pytest.mark.timeout(20)
def test_zip_bomb_is_refused_without_large_allocation() -> None:
    """Both bombs inflate to 50 MB; the peak memory of refusing them stays near the limit."""
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    bomb = comp.compress(bytes(50_000_000)) + comp.flush()
    stateful = zlib.compressobj(9, zlib.DEFLATED, -15)
    sbomb = stateful.compress(bytes(50_000_000)) + stateful.flush(zlib.Z_SYNC_FLUSH)
    peaks = []
    for refuse in (lambda: inflate(bomb), lambda: DeflateDecompressor().decompress(sbomb)):
        tracemalloc.start()
        try:
            with pytest.raises(DecompressionError, match="limit"):
                refuse()
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
    assert max(peaks) < 1_000_000


def test_stateless_errors() -> None:
    good = deflate(b"hello world" * 10)
    with pytest.raises(DecompressionError, match="truncated"):
        inflate(good[:-2])
    with pytest.raises(DecompressionError, match="follow the end"):
        inflate(good + b"junk")
    with pytest.raises(DecompressionError, match="invalid"):
        inflate(b"\xff\xff\xff\xff")
    with pytest.raises(ValueError):
        deflate(b"x", level=12)


def test_stateful_errors_poison_the_session() -> None:
    comp, decomp = DeflateCompressor(), DeflateDecompressor()
    first, second = comp.compress(b"abc" * 100), comp.compress(b"abd" * 100)
    assert decomp.decompress(first) == b"abc" * 100
    with pytest.raises(DecompressionError, match="truncated"):
        decomp.decompress(second[:-3])
    with pytest.raises(DecompressionError, match="unusable"):
        decomp.decompress(second)
    finished = zlib.compressobj(6, zlib.DEFLATED, -15)
    with pytest.raises(DecompressionError, match="finished"):
        DeflateDecompressor().decompress(
            finished.compress(b"x") + finished.flush(zlib.Z_FINISH) + b"\x00\x00\xff\xff"
        )


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=300), stateful=st.booleans())
def test_fuzz_inflate_never_crashes(data: bytes, stateful: bool) -> None:
    try:
        out = DeflateDecompressor().decompress(data) if stateful else inflate(data)
    except DecompressionError:
        return
    assert len(out) <= MAX_INFLATED
