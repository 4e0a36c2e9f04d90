"""Hand-written STTP codecs the spec language cannot express, referenced by name from specs/sttp.

- ``Encode15Bits`` / ``Decode15Bits`` (seed, "15-bit Encoding Functions") and the construct
  :data:`UInt15` built on them.
- ``PackSign`` / ``UnPackSign`` (seed, "Encoding Methods / Int64") on 64-bit two's complement.
- The Bit-Byte-Block (seed appendix "Bit Byte Block"): :class:`BitByteWriter` /
  :class:`BitByteReader`.
- :class:`SttpValue` and its Bit-Byte-Block codec :data:`STTP_VALUE` (4-bit ValueTypeCode, then the
  value), and the segmented-integer codecs :data:`SEG8` / :data:`SEG4`.

Bit-Byte-Block layout decisions (the seed describes the idea, not every bit):

- Bytes grow from the left; bit-bytes grow from the right (the first bit-byte is the block's last
  byte). Within a bit-byte, bits fill from the least significant bit up ("right to left").
- A k-bit group (k < 8) is written least significant bit first.
- The bit stream starts with a 3-bit header holding the number of unused (padding) bits of the
  leftmost bit-byte; a block without bits has no bit-bytes and no header.
- ``uint{X}``: the low ``X % 8`` bits go to the bit stream first, then ``X // 8`` big-endian bytes.
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass
from typing import Any

import construct

from gridbind.errors import RemoteError
from gridbind.sttp.errors import DecodeError, InvalidArgument, SttpError

__all__ = [
    "BitByteError",
    "BitByteReader",
    "BitByteWriter",
    "Decode15Bits",
    "Encode15Bits",
    "PackSign",
    "SEG4",
    "SEG8",
    "STTP_VALUE",
    "SttpValue",
    "UInt15",
    "UnPackSign",
    "ValueType",
    "decode_sttp_time",
    "encode_sttp_time",
]

_U64 = (1 << 64) - 1
_I64_MIN = -(1 << 63)
_I64_MAX = (1 << 63) - 1


# --- 15-bit encoding -------------------------------------------------------------------------


def Encode15Bits(value: int) -> bytes:  # noqa: N802 - the seed's name
    """Encode 0..32767 as 1 byte (<= 127) or 2 bytes (low 7 bits + 128, then value >> 7).

    The seed returns null above 32767; here that is a :class:`ValueError`.
    """
    if not 0 <= value <= 32767:
        raise InvalidArgument(f"Encode15Bits: {value} is outside 0..32767")
    if value <= 127:
        return bytes((value,))
    return bytes(((value & 127) + 128, value >> 7))


def Decode15Bits(data: bytes) -> int:  # noqa: N802 - the seed's name
    """Decode the 1- or 2-byte form of :func:`Encode15Bits` from the start of ``data``."""
    if not data:
        raise DecodeError("Decode15Bits: no data")
    if data[0] <= 127:
        return data[0]
    if len(data) < 2:
        raise DecodeError("Decode15Bits: second byte missing")
    return (data[0] - 128) | (data[1] << 7)


class _UInt15(construct.Construct):
    """construct form of Encode15Bits/Decode15Bits."""

    def _parse(self, stream: Any, context: Any, path: str) -> int:
        first = construct.stream_read(stream, 1, path)
        if first[0] <= 127:
            return first[0]
        return Decode15Bits(first + construct.stream_read(stream, 1, path))

    def _build(self, obj: int, stream: Any, context: Any, path: str) -> int:
        try:
            data = Encode15Bits(obj)
            construct.stream_write(stream, data, len(data), path)
        except (ValueError, TypeError) as exc:
            raise construct.ExplicitError(str(exc), path=path) from exc
        return obj

    def _sizeof(self, context: Any, path: str) -> int:
        raise construct.SizeofError("UInt15 is 1 or 2 bytes", path=path)


#: The construct of a 15-bit encoded unsigned integer (spec: ``codec: gridbind.sttp.encoding.UInt15``).
UInt15 = _UInt15()


# --- PackSign ---------------------------------------------------------------------------------


def PackSign(value: int) -> int:  # noqa: N802 - the seed's name
    """Move the sign of an int64 to bit 0 so small magnitudes have leading zeros (result: uint64)."""
    if not _I64_MIN <= value <= _I64_MAX:
        raise InvalidArgument(f"PackSign: {value} is not an int64")
    if value >= 0:
        return (value << 1) & _U64
    return ((~value << 1) + 1) & _U64


def UnPackSign(value: int) -> int:  # noqa: N802 - the seed's name
    """Inverse of :func:`PackSign`: uint64 -> int64."""
    if not 0 <= value <= _U64:
        raise DecodeError(f"UnPackSign: {value} is not a uint64")
    if value & 1 == 0:
        return value >> 1
    return ~(value >> 1)


# --- SttpTime -------------------------------------------------------------------------------

#: .NET DateTime.MaxValue in ticks (9999-12-31 23:59:59.9999999).
DATETIME_MAX_TICKS = 3_155_378_975_999_999_999
_TICKS_PER_MINUTE = 600_000_000
_TICKS_PER_SECOND = 10_000_000


def encode_sttp_time(ticks: int, leap_second: bool = False) -> int:
    """SttpTime of a moment: plain .NET ticks, or for a 61st (leap) second the space above MaxValue.

    The seed allocates the values above DateTime.MaxValue to the 61st second of each minute.
    Decision: a leap-second moment is ``MaxValue + 1 + minute * 10^7 + fraction`` where ``minute``
    is the index of its minute since 0001-01-01 and ``fraction`` its ticks into that second; pass
    ``ticks`` of second 59 of that minute plus the fraction, with ``leap_second=True``.
    """
    if not 0 <= ticks <= DATETIME_MAX_TICKS:
        raise InvalidArgument(f"SttpTime: {ticks} ticks are outside DateTime")
    if not leap_second:
        return ticks
    minute, into = divmod(ticks, _TICKS_PER_MINUTE)
    if into < 59 * _TICKS_PER_SECOND:
        raise InvalidArgument("SttpTime: a leap second follows second 59 of its minute")
    return DATETIME_MAX_TICKS + 1 + minute * _TICKS_PER_SECOND + (into - 59 * _TICKS_PER_SECOND)


def decode_sttp_time(value: int) -> tuple[int, bool]:
    """Inverse of :func:`encode_sttp_time`: (ticks, leap_second)."""
    if value < 0 or value > _I64_MAX:
        raise DecodeError(f"SttpTime: {value} is not a valid time")
    if value <= DATETIME_MAX_TICKS:
        return value, False
    minute, fraction = divmod(value - DATETIME_MAX_TICKS - 1, _TICKS_PER_SECOND)
    ticks = minute * _TICKS_PER_MINUTE + 59 * _TICKS_PER_SECOND + fraction
    if ticks > DATETIME_MAX_TICKS:
        raise DecodeError(f"SttpTime: {value} is past the last leap second")
    return ticks, True


# --- Bit-Byte-Block ---------------------------------------------------------------------------


class BitByteError(SttpError, RemoteError, ValueError):
    """A Bit-Byte-Block that is malformed or read past its end."""


class BitByteWriter:
    """Writes one Bit-Byte-Block; :meth:`finish` returns the block."""

    __slots__ = ("_bytes", "_bits", "_nbits")

    def __init__(self) -> None:
        self._bytes = bytearray()
        self._bits = 0  # the bit stream as an integer, bit i = i-th bit written
        self._nbits = 0

    def write_bit_group(self, count: int, value: int) -> None:
        """Append ``count`` (0..7) low bits of ``value`` to the bit stream, LSB first."""
        if count:
            self._bits |= (value & ((1 << count) - 1)) << self._nbits
            self._nbits += count

    def write_bool(self, value: bool) -> None:
        """One bit."""
        self.write_bit_group(1, 1 if value else 0)

    def write_bytes_raw(self, data: bytes) -> None:
        """Bytes into the byte section, as they are."""
        self._bytes += data

    def write_uint(self, bits: int, value: int) -> None:
        """``uint{bits}`` (0..64): low ``bits % 8`` bits to the bit stream, rest big-endian bytes."""
        if not 0 <= bits <= 64:
            raise BitByteError(f"bit count {bits} is outside 0..64")
        if not 0 <= value < 1 << bits:
            raise BitByteError(f"{value} does not fit in {bits} unsigned bits")
        low = bits & 7
        self.write_bit_group(low, value)
        nbytes = bits >> 3
        if nbytes:
            self._bytes += (value >> low).to_bytes(nbytes, "big")

    def write_int(self, bits: int, value: int) -> None:
        """Signed big-endian integer of ``bits`` (8..64, multiple of 8) in the byte section."""
        try:
            self._bytes += value.to_bytes(bits // 8, "big", signed=True)
        except OverflowError as exc:
            raise BitByteError(f"{value} does not fit in int{bits}") from exc

    def write_segments(self, segment: int, value: int) -> None:
        """4- or 8-bit segmented uint64: a 1 bit per non-zero segment, a 0 bit, then uint{X}."""
        if not 0 <= value <= _U64:
            raise BitByteError(f"{value} is not a uint64")
        bits = 0
        rest = value
        while rest:
            bits += segment
            rest >>= segment
            self.write_bit_group(1, 1)
        self.write_bit_group(1, 0)
        self.write_uint(bits, value)

    def write_f32(self, value: float) -> None:
        """float: IEEE 754 single, big-endian."""
        self._bytes += struct.pack(">f", value)

    def write_f64(self, value: float) -> None:
        """double: IEEE 754 double, big-endian."""
        self._bytes += struct.pack(">d", value)

    def write_guid(self, value: uuid.UUID) -> None:
        """Guid: 16 bytes, big-endian (RFC 4122)."""
        self._bytes += value.bytes

    def write_buffer(self, data: bytes) -> None:
        """byte[]: length as 4-bit segmented uint64, then the bytes."""
        self.write_segments(4, len(data))
        self._bytes += data

    def write_string(self, text: str) -> None:
        """String: UTF-8, then the byte[] rule."""
        self.write_buffer(text.encode("utf-8"))

    def write_ascii(self, text: str) -> None:
        """ASCII: 1-byte length (at most 255), then the characters."""
        data = text.encode("ascii")
        if len(data) > 255:
            raise BitByteError(f"ASCII text of {len(data)} characters exceeds 255")
        self._bytes.append(len(data))
        self._bytes += data

    def finish(self) -> bytes:
        """The block: byte section, then the bit-bytes right to left (header first)."""
        if not self._nbits:
            return bytes(self._bytes)
        total = self._nbits + 3
        unused = -total % 8
        stream = unused | (self._bits << 3)
        nbitbytes = (total + unused) // 8
        bit_bytes = stream.to_bytes(nbitbytes, "little")
        return bytes(self._bytes) + bit_bytes[::-1]


class BitByteReader:
    """Reads a Bit-Byte-Block in the order it was written."""

    __slots__ = ("_data", "_pos", "_opened", "_end", "_cur", "_left", "_unused")

    def __init__(self, data: bytes) -> None:
        self._data = bytes(data)
        self._pos = 0  # next byte of the byte section
        self._opened = 0  # bit-bytes opened from the right
        self._end = len(self._data)  # end of the byte section: first opened bit-byte
        self._cur = 0  # remaining bits of the current bit-byte, LSB next
        self._left = 0  # how many bits remain in the current bit-byte
        self._unused = 0  # padding bits of the leftmost bit-byte (from the header)

    def position(self) -> tuple[int, int, int]:
        """Opaque read position (bytes read, bit-bytes opened, bits left): compare for progress."""
        return (self._pos, self._opened, self._left)

    def at_end(self) -> bool:
        """Whether every byte and every non-padding bit has been read."""
        if self._pos < self._end:
            return False
        return self._opened == 0 or self._left <= self._unused

    def _open_bit_byte(self) -> None:
        index = len(self._data) - 1 - self._opened
        if index < self._pos:
            raise BitByteError("bit section ran into the byte section")
        self._opened += 1
        self._end = index
        self._cur = self._data[index]
        self._left = 8
        if self._opened == 1:
            self._unused = self._cur & 7
            self._cur >>= 3
            self._left = 5

    def read_bit_group(self, count: int) -> int:
        """``count`` (0..7) bits, LSB first."""
        left = self._left
        if count <= left and (self._pos < self._end or left - count >= self._unused):
            # common case: the bits are all in the current bit-byte
            cur = self._cur
            self._cur = cur >> count
            self._left = left - count
            return cur & ((1 << count) - 1)
        value = 0
        shift = 0
        while count:
            if not self._left:
                self._open_bit_byte()
            take = min(count, self._left)
            if self._pos >= self._end:
                # the leftmost bit-byte: its top ``unused`` bits are padding
                available = self._left - self._unused
                if available <= 0:
                    raise BitByteError("read past the end of the bit section")
                take = min(take, available)
            value |= (self._cur & ((1 << take) - 1)) << shift
            self._cur >>= take
            self._left -= take
            shift += take
            count -= take
        return value

    def read_bool(self) -> bool:
        """One bit."""
        return bool(self.read_bit_group(1))

    def read_bytes_raw(self, count: int) -> bytes:
        """``count`` bytes of the byte section."""
        end = self._pos + count
        if count < 0 or end > self._end:
            raise BitByteError(f"{count} bytes requested, byte section exhausted")
        chunk = self._data[self._pos : end]
        self._pos = end
        return chunk

    def read_uint(self, bits: int) -> int:
        """Inverse of :meth:`BitByteWriter.write_uint`."""
        if not 0 <= bits <= 64:
            raise BitByteError(f"bit count {bits} is outside 0..64")
        low = bits & 7
        value = self.read_bit_group(low)
        nbytes = bits >> 3
        if nbytes:
            value |= int.from_bytes(self.read_bytes_raw(nbytes), "big") << low
        return value

    def read_int(self, bits: int) -> int:
        """Signed big-endian integer of ``bits`` (multiple of 8)."""
        return int.from_bytes(self.read_bytes_raw(bits // 8), "big", signed=True)

    def read_segments(self, segment: int) -> int:
        """Inverse of :meth:`BitByteWriter.write_segments`."""
        bits = 0
        while self.read_bit_group(1):
            bits += segment
            if bits > 64:
                raise BitByteError("segmented integer longer than 64 bits")
        return self.read_uint(bits)

    def read_f32(self) -> float:
        """float, big-endian."""
        return struct.unpack(">f", self.read_bytes_raw(4))[0]

    def read_f64(self) -> float:
        """double, big-endian."""
        return struct.unpack(">d", self.read_bytes_raw(8))[0]

    def read_guid(self) -> uuid.UUID:
        """Guid, big-endian (RFC 4122)."""
        return uuid.UUID(bytes=self.read_bytes_raw(16))

    def read_buffer(self) -> bytes:
        """byte[]: 4-bit segmented length, then the bytes."""
        return self.read_bytes_raw(self.read_segments(4))

    def read_string(self) -> str:
        """String: byte[] decoded as UTF-8."""
        try:
            return self.read_buffer().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BitByteError(f"string is not UTF-8: {exc}") from exc

    def read_ascii(self) -> str:
        """ASCII: 1-byte length, then the characters."""
        count = self.read_bytes_raw(1)[0]
        try:
            return self.read_bytes_raw(count).decode("ascii")
        except UnicodeDecodeError as exc:
            raise BitByteError(f"ASCII text is not ASCII: {exc}") from exc


# --- SttpValue --------------------------------------------------------------------------------


class ValueType:
    """ValueTypeCode numbers (the generated ``ValueTypeCode`` enum mirrors them)."""

    NULL = 0
    INT64 = 1
    SINGLE = 2
    DOUBLE = 3
    STTP_TIME = 4
    BOOL = 5
    GUID = 6
    STRING = 7
    STTP_BUFFER = 8
    STTP_MARKUP = 9
    STTP_BULK_TRANSPORT = 10


@dataclass(slots=True, frozen=True)
class BulkTransportRef:
    """SttpBulkTransport: a pointer to a large object requested separately."""

    fundamental_type: int
    bulk_transport_id: uuid.UUID
    length: int


@dataclass(slots=True, frozen=True)
class SttpValue:
    """A typed STTP value: ``type`` is a ValueTypeCode, ``value`` its Python form.

    Python forms: NULL None; INT64 int; SINGLE/DOUBLE float; STTP_TIME int (SttpTime ticks);
    BOOL bool; GUID uuid.UUID; STRING str; STTP_BUFFER/STTP_MARKUP bytes (markup kept opaque);
    STTP_BULK_TRANSPORT :class:`BulkTransportRef`.
    """

    type: int = ValueType.NULL
    value: Any = None


class _SttpValueCodec:
    """Bit-Byte-Block codec of SttpValue: 4-bit ValueTypeCode, then the value.

    Decisions: SttpTime is 8 bytes signed; the bulk-transport length is 8 bytes signed; markup is
    carried as its opaque byte[] here (its internal grammar is the markup layer's business).
    """

    def write(self, writer: BitByteWriter, item: SttpValue) -> None:
        """Append ``item`` to ``writer``."""
        kind, value = int(item.type), item.value
        writer.write_uint(4, kind)
        try:
            if kind == ValueType.NULL:
                if value is not None:
                    raise BitByteError("a Null SttpValue carries no value")
            elif kind == ValueType.INT64:
                writer.write_segments(8, PackSign(value))
            elif kind == ValueType.SINGLE:
                writer.write_f32(value)
            elif kind == ValueType.DOUBLE:
                writer.write_f64(value)
            elif kind == ValueType.STTP_TIME:
                writer.write_int(64, value)
            elif kind == ValueType.BOOL:
                if not isinstance(value, bool):
                    raise BitByteError(f"Bool SttpValue needs a bool, not {value!r}")
                writer.write_bool(value)
            elif kind == ValueType.GUID:
                writer.write_guid(value)
            elif kind == ValueType.STRING:
                writer.write_string(value)
            elif kind in (ValueType.STTP_BUFFER, ValueType.STTP_MARKUP):
                writer.write_buffer(bytes(value))
            elif kind == ValueType.STTP_BULK_TRANSPORT:
                writer.write_uint(4, value.fundamental_type)
                writer.write_guid(value.bulk_transport_id)
                writer.write_int(64, value.length)
            else:
                raise BitByteError(f"unknown ValueTypeCode {kind}")
        except (struct.error, AttributeError, TypeError, ValueError) as exc:
            if isinstance(exc, BitByteError):
                raise
            raise BitByteError(f"SttpValue of type {kind}: {exc}") from exc

    def read(self, reader: BitByteReader) -> SttpValue:
        """Read one SttpValue from ``reader``."""
        kind = reader.read_uint(4)
        if kind == ValueType.NULL:
            value: Any = None
        elif kind == ValueType.INT64:
            value = UnPackSign(reader.read_segments(8))
        elif kind == ValueType.SINGLE:
            value = reader.read_f32()
        elif kind == ValueType.DOUBLE:
            value = reader.read_f64()
        elif kind == ValueType.STTP_TIME:
            value = reader.read_int(64)
        elif kind == ValueType.BOOL:
            value = reader.read_bool()
        elif kind == ValueType.GUID:
            value = reader.read_guid()
        elif kind == ValueType.STRING:
            value = reader.read_string()
        elif kind in (ValueType.STTP_BUFFER, ValueType.STTP_MARKUP):
            value = reader.read_buffer()
        elif kind == ValueType.STTP_BULK_TRANSPORT:
            value = BulkTransportRef(reader.read_uint(4), reader.read_guid(), reader.read_int(64))
        else:
            raise BitByteError(f"unknown ValueTypeCode {kind}")
        return SttpValue(kind, value)


class _SegmentCodec:
    """Bit-Byte-Block codec of a 4- or 8-bit segmented uint64."""

    def __init__(self, segment: int) -> None:
        self.segment = segment

    def write(self, writer: BitByteWriter, value: int) -> None:
        """Append ``value``."""
        writer.write_segments(self.segment, value)

    def read(self, reader: BitByteReader) -> int:
        """Read one value."""
        return reader.read_segments(self.segment)


#: SttpValue in a Bit-Byte-Block (spec: ``codec: gridbind.sttp.encoding.STTP_VALUE``).
STTP_VALUE = _SttpValueCodec()
#: 8-bit segmented uint64 in a Bit-Byte-Block.
SEG8 = _SegmentCodec(8)
#: 4-bit segmented uint64 in a Bit-Byte-Block.
SEG4 = _SegmentCodec(4)
