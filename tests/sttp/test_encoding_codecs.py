"""Hand-written STTP codecs: byte vectors worked out by hand from the seed's text, and properties."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridbind.sttp.encoding import (
    DATETIME_MAX_TICKS,
    STTP_VALUE,
    BitByteError,
    BitByteReader,
    BitByteWriter,
    BulkTransportRef,
    Decode15Bits,
    Encode15Bits,
    PackSign,
    SttpValue,
    UInt15,
    UnPackSign,
    ValueType,
    decode_sttp_time,
    encode_sttp_time,
)

from sttp_strategies import sttp_values

pytestmark = pytest.mark.timeout(60)
INT64 = st.integers(-(1 << 63), (1 << 63) - 1)


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        (0, "00"),
        (127, "7f"),  # <= 127: one byte
        (128, "8001"),  # (128 & 127) + 128 = 0x80, 128 >> 7 = 1
        (300, "ac02"),  # (300 & 127) + 128 = 44 + 128 = 0xAC, 300 >> 7 = 2
        (32767, "ffff"),  # 127 + 128, 32767 >> 7 = 255
    ],
)
def test_encode_15_bits_vectors(value: int, wire: str) -> None:
    assert Encode15Bits(value).hex() == wire
    assert Decode15Bits(bytes.fromhex(wire)) == value
    assert UInt15.parse(bytes.fromhex(wire)) == value
    assert UInt15.build(value).hex() == wire


@pytest.mark.parametrize("value", [32768, 65535, -1])
def test_encode_15_bits_refuses_out_of_range(value: int) -> None:
    with pytest.raises(ValueError, match="outside 0..32767"):
        Encode15Bits(value)


def test_decode_15_bits_refuses_truncated_and_empty() -> None:
    with pytest.raises(ValueError):
        Decode15Bits(b"\x80")
    with pytest.raises(ValueError):
        Decode15Bits(b"")


@given(st.integers(0, 32767))
@settings(deadline=None)
def test_15_bits_round_trip(value: int) -> None:
    data = Encode15Bits(value)
    assert len(data) == (1 if value <= 127 else 2)
    assert Decode15Bits(data) == value


@pytest.mark.parametrize(
    ("value", "packed"),
    [
        (0, 0),
        (1, 2),  # value << 1
        (-1, 1),  # (~-1 << 1) + 1 = (0 << 1) + 1
        (-2, 3),  # (~-2 << 1) + 1 = (1 << 1) + 1
        (63, 126),
        (-64, 127),
        ((1 << 63) - 1, (1 << 64) - 2),
        (-(1 << 63), (1 << 64) - 1),
    ],
)
def test_pack_sign_vectors(value: int, packed: int) -> None:
    assert PackSign(value) == packed
    assert UnPackSign(packed) == value


@given(INT64)
@settings(deadline=None)
def test_pack_sign_round_trip(value: int) -> None:
    packed = PackSign(value)
    assert 0 <= packed < 1 << 64
    # small magnitudes keep leading zeros: |v| < 2^k packs below 2^(k+1)
    assert packed < 2 * (abs(value) + 1)
    assert UnPackSign(packed) == value


def test_pack_sign_refuses_non_int64() -> None:
    with pytest.raises(ValueError):
        PackSign(1 << 63)
    with pytest.raises(ValueError):
        UnPackSign(-1)


def test_bit_byte_block_only_bytes_has_no_header() -> None:
    writer = BitByteWriter()
    writer.write_int(32, -1)
    writer.write_uint(16, 0x1234)
    assert writer.finish().hex() == "ffffffff1234"


def test_bit_byte_block_one_bit() -> None:
    # bit stream: 3-bit header (unused bits = 4) then the 1: 0b1_100 = 0x0C
    writer = BitByteWriter()
    writer.write_bool(True)
    block = writer.finish()
    assert block.hex() == "0c"
    reader = BitByteReader(block)
    assert reader.read_bool() is True
    assert reader.at_end()


def test_bit_byte_block_uint12_splits_bits_then_bytes() -> None:
    # uint{12} 0xABC: low 12 % 8 = 4 bits (0xC) to the bit stream, then 0xAB as one byte.
    # bits: header 1 (7 bits used, 1 unused) | 0xC << 3 = 0x61
    writer = BitByteWriter()
    writer.write_uint(12, 0xABC)
    block = writer.finish()
    assert block.hex() == "ab61"
    reader = BitByteReader(block)
    assert reader.read_uint(12) == 0xABC
    assert reader.at_end()


def test_sttp_value_int64_minus_one() -> None:
    # nibble 1 (Int64), PackSign(-1) = 1 -> 8-bit segments: bit 1, bit 0, then byte 0x01.
    # bits LSB first: 0001 1 0 -> 0x11 in 6 bits; +3 header = 9 bits, 7 unused:
    # stream = 7 | 0x11 << 3 = 0x08F -> bit-bytes 8F 00, stored right to left: 00 8F.
    writer = BitByteWriter()
    STTP_VALUE.write(writer, SttpValue(ValueType.INT64, -1))
    block = writer.finish()
    assert block.hex() == "01008f"
    reader = BitByteReader(block)
    assert STTP_VALUE.read(reader) == SttpValue(ValueType.INT64, -1)
    assert reader.at_end()


def test_sttp_value_guid_is_big_endian() -> None:
    guid = uuid.UUID("00112233-4455-6677-8899-aabbccddeeff")
    writer = BitByteWriter()
    STTP_VALUE.write(writer, SttpValue(ValueType.GUID, guid))
    block = writer.finish()
    # 16 bytes as RFC 4122, then nibble 6 after the 3-bit header: 1 unused | 6 << 3 = 0x31
    assert block.hex() == "00112233445566778899aabbccddeeff31"


@given(st.lists(sttp_values(), max_size=6))
@settings(max_examples=150, deadline=None)
def test_sttp_values_round_trip_in_one_block(values: list[SttpValue]) -> None:
    writer = BitByteWriter()
    for value in values:
        STTP_VALUE.write(writer, value)
    reader = BitByteReader(writer.finish())
    decoded = []
    while not reader.at_end():
        decoded.append(STTP_VALUE.read(reader))
    assert decoded == values


@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("uint"), st.integers(0, 64)).flatmap(
                lambda t: st.tuples(st.just(t[0]), st.just(t[1]), st.integers(0, (1 << t[1]) - 1))
            ),
            st.tuples(st.just("seg4"), st.just(0), st.integers(0, (1 << 64) - 1)),
            st.tuples(st.just("seg8"), st.just(0), st.integers(0, (1 << 64) - 1)),
            st.tuples(st.just("bool"), st.just(0), st.booleans()),
        ),
        max_size=12,
    )
)
@settings(deadline=None)
def test_bit_byte_block_mixed_round_trip(ops: list[tuple[str, int, object]]) -> None:
    writer = BitByteWriter()
    for op, bits, value in ops:
        if op == "uint":
            writer.write_uint(bits, value)
        elif op == "bool":
            writer.write_bool(value)
        else:
            writer.write_segments(int(op[3:]), value)
    reader = BitByteReader(writer.finish())
    for op, bits, value in ops:
        if op == "uint":
            assert reader.read_uint(bits) == value
        elif op == "bool":
            assert reader.read_bool() == value
        else:
            assert reader.read_segments(int(op[3:])) == value
    assert reader.at_end()


def test_segmented_sizes() -> None:
    # 8-bit segments: 0 -> a single 0 bit; 255 -> "1","0", one byte; 256 -> "1","1","0", two
    # bytes; 2^64-1 -> eight 1 bits and a 0 (12 bits with the header: two bit-bytes), 8 bytes
    for value, nbytes, bit_bytes in ((0, 0, 1), (255, 1, 1), (256, 2, 1), ((1 << 64) - 1, 8, 2)):
        writer = BitByteWriter()
        writer.write_segments(8, value)
        block = writer.finish()
        assert len(block) == nbytes + bit_bytes


@given(st.binary(max_size=40))
@settings(max_examples=300, deadline=None)
def test_reader_on_garbage_raises_only_bit_byte_error(data: bytes) -> None:
    reader = BitByteReader(data)
    try:
        for _ in range(50):
            if reader.at_end():
                break
            STTP_VALUE.read(reader)
    except BitByteError:
        pass


def test_reader_refuses_reading_past_the_end() -> None:
    reader = BitByteReader(b"\x01")
    reader.read_bytes_raw(1)
    with pytest.raises(BitByteError):
        reader.read_bytes_raw(1)
    one_bit = BitByteReader(b"\x0c")
    assert one_bit.read_bool() is True
    with pytest.raises(BitByteError):
        one_bit.read_bool()  # only padding is left


def test_writer_refuses_bad_values() -> None:
    writer = BitByteWriter()
    with pytest.raises(BitByteError):
        writer.write_uint(8, 256)
    with pytest.raises(BitByteError):
        writer.write_ascii("x" * 256)
    with pytest.raises(BitByteError):
        STTP_VALUE.write(writer, SttpValue(ValueType.BOOL, 1))
    with pytest.raises(BitByteError):
        STTP_VALUE.write(writer, SttpValue(11, None))
    with pytest.raises(BitByteError):
        STTP_VALUE.write(writer, SttpValue(ValueType.SINGLE, "x"))


def test_bulk_transport_value() -> None:
    ref = BulkTransportRef(ValueType.STTP_BUFFER, uuid.UUID(int=5), 1 << 40)
    writer = BitByteWriter()
    STTP_VALUE.write(writer, SttpValue(ValueType.STTP_BULK_TRANSPORT, ref))
    reader = BitByteReader(writer.finish())
    assert STTP_VALUE.read(reader) == SttpValue(ValueType.STTP_BULK_TRANSPORT, ref)
    assert reader.at_end()


def test_sttp_time_plain_and_leap_second() -> None:
    ticks = 638_000_000_000_000_000
    assert encode_sttp_time(ticks) == ticks and decode_sttp_time(ticks) == (ticks, False)
    minute_start = ticks - ticks % 600_000_000
    second_59 = minute_start + 59 * 10_000_000
    leap = encode_sttp_time(second_59 + 1234, leap_second=True)
    assert leap == DATETIME_MAX_TICKS + 1 + (minute_start // 600_000_000) * 10_000_000 + 1234
    assert decode_sttp_time(leap) == (second_59 + 1234, True)
    with pytest.raises(ValueError, match="follows second 59"):
        encode_sttp_time(minute_start, leap_second=True)
    with pytest.raises(ValueError):
        decode_sttp_time(-1)


@given(st.integers(0, DATETIME_MAX_TICKS), st.booleans())
@settings(deadline=None)
def test_sttp_time_round_trip(ticks: int, leap: bool) -> None:
    if leap:  # move into second 59 of the same minute, keeping the fraction
        ticks = ticks - ticks % 600_000_000 + 59 * 10_000_000 + ticks % 10_000_000
    if ticks > DATETIME_MAX_TICKS:
        return
    assert decode_sttp_time(encode_sttp_time(ticks, leap)) == (ticks, leap)
