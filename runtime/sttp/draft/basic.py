"""A fast path for the common SendDataPoints payload, byte-identical to the generated codec.

Most data points carry a runtime ID, an SttpTime timestamp, a Single/Double/Int64/Bool value,
small quality bits and no extended data. The generated ``SendDataPoints`` codec handles every
case one bit group at a time; here such packets are built and read with whole-packet string
and integer operations instead. Anything else (ids sent in place of runtime IDs, other value
types, extended data, anything malformed) returns ``None`` and the caller uses the generated
codec, so the fast path never accepts or produces what the generated one would not (tested
differentially).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

from gridbind.sttp.encoding import PackSign, UnPackSign, ValueType

__all__ = ["decode_points", "encode_points"]

_IQ = struct.Struct(">iq")
_F = struct.Struct(">f")
_D = struct.Struct(">d")
_U64 = (1 << 64) - 1
_INT64 = ValueType.INT64
_SINGLE = ValueType.SINGLE
_DOUBLE = ValueType.DOUBLE
_BOOL = ValueType.BOOL
_CODE_BITS = {code: format(code, "04b") for code in (_INT64, _SINGLE, _DOUBLE, _BOOL)}
_TIME_CODE = format(ValueType.STTP_TIME, "04b")
_ONES = ["1" * n for n in range(9)]


def encode_points(points: Sequence[Any]) -> bytes | None:
    """The SendDataPoints payload of ``points`` (objects with runtime_id, value_type,
    timestamp, value, quality), or ``None`` when one needs the general codec."""
    out = bytearray()
    chunks: list[str] = []
    pack_iq, pack_f, pack_d = _IQ.pack, _F.pack, _D.pack
    try:
        for p in points:
            kind = p.value_type
            value = p.value
            quality = p.quality
            if p.runtime_id < 0 or not 0 <= quality <= _U64:
                return None
            out += pack_iq(p.runtime_id, p.timestamp)
            if kind == _SINGLE and type(value) is float:
                out += pack_f(value)
                value_bits = ""
            elif kind == _DOUBLE and type(value) is float:
                out += pack_d(value)
                value_bits = ""
            elif kind == _INT64 and type(value) is int:
                packed = PackSign(value)
                size = (packed.bit_length() + 7) >> 3
                if size:
                    out += packed.to_bytes(size, "big")
                value_bits = "0" + _ONES[size]
            elif kind == _BOOL and type(value) is bool:
                value_bits = "1" if value else "0"
            else:
                return None
            size = (quality.bit_length() + 7) >> 3
            if size:
                out += quality.to_bytes(size, "big")
            # later bits to the left: ext code, quality segments, value bits, value code, time code
            chunks.append("00000" + _ONES[size] + value_bits + _CODE_BITS[kind] + _TIME_CODE)
    except (struct.error, OverflowError, ValueError, TypeError, AttributeError):
        return None
    if not chunks:
        return bytes(out)
    stream = "".join(reversed(chunks))
    total = len(stream) + 3
    unused = -total % 8
    bits = unused | (int(stream, 2) << 3)
    return bytes(out) + bits.to_bytes((total + unused) >> 3, "little")[::-1]


def decode_points(payload: bytes) -> list[tuple[int, int, int, Any, int]] | None:
    """``(runtime_id, value_type, timestamp, value, quality)`` of each point of a payload made
    only of common points, or ``None`` (use the generated codec)."""
    size = len(payload)
    if not size:
        return []
    number = int.from_bytes(payload, "big")  # bit i of the stream is bit i + 3 of this number
    bits = format(number, "b")[::-1]
    bits += "0" * (size * 8 - len(bits))
    unused = number & 7
    pos = 3
    at = 0
    out: list[tuple[int, int, int, Any, int]] = []
    unpack_f, unpack_d = _F.unpack_from, _D.unpack_from
    try:
        while True:
            opened = (pos + 7) >> 3
            left = opened * 8 - pos
            if at >= size - opened and left <= unused:  # the generated reader's end test
                # (a block with no point has no bit section: the generated codec refuses it)
                return out if out and left == unused and at == size - opened else None
            runtime_id, stamp = _IQ.unpack_from(payload, at)
            at += 12
            if runtime_id < 0 or bits[pos : pos + 4] != "0010":  # SttpTime code, LSB first
                return None
            kind = int(bits[pos + 4 : pos + 8][::-1], 2)
            pos += 8
            if kind == _SINGLE:
                value: Any = unpack_f(payload, at)[0]
                at += 4
            elif kind == _DOUBLE:
                value = unpack_d(payload, at)[0]
                at += 8
            elif kind == _INT64:
                count = bits.index("0", pos) - pos
                if count > 8:
                    return None
                pos += count + 1
                value = UnPackSign(int.from_bytes(payload[at : at + count], "big"))
                at += count
            elif kind == _BOOL:
                value = bits[pos] == "1"
                pos += 1
            else:
                return None
            count = bits.index("0", pos) - pos
            if count > 8:
                return None
            pos += count + 1
            quality = int.from_bytes(payload[at : at + count], "big")
            at += count
            if bits[pos : pos + 4] != "0000":  # extended data must be Null here
                return None
            pos += 4
            opened = (pos + 7) >> 3
            if at > size - opened or (at == size - opened and opened * 8 - pos < unused):
                return None
            out.append((runtime_id, kind, stamp, value, quality))
    except (struct.error, ValueError, IndexError):
        return None
