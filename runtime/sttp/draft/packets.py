"""The draft profile's data path: data points to frames and back.

Decisions this module implements (the seed leaves them open; each is tested):

- Basic encoding: ``SendDataPoints`` carries consecutive ``DataPoint`` records in one
  Bit-Byte-Block; a packet holds at most :data:`MAX_RAW_PACKET` bytes (the seed's 2^14 "maximum
  payload size"), bigger points travel in fragments.
- DEFLATE: the ``SendDataPoints`` payload is compressed (raw RFC 1951) and sent as a
  ``BeginFragment`` with ``compressionMode = Deflate`` and ``commandCode = SendDataPoints``;
  stateful (one stream per session, sync-flushed per packet) on the reliable channel, stateless
  (fresh state per packet) on UDP. Output may be at most 1024 bytes larger than the input and
  nothing inflates past 16384 bytes.
- TSSC (reliable channel only): points whose value is a Single and whose runtime ID fits the
  seed's 16-bit ids are TSSC-coded with the seed's code table, as a ``BeginFragment`` with
  ``compressionMode = Tssc``; the fragment is one framed TSSC block and ``totalRawSize`` is the
  size of the ``FixedSizeDataPoint`` records it stands for (95 bytes each), so at most 172
  points go in a block. Other points of the same batch use basic encoding.
- Packets larger than the negotiated ``max_payload`` are split into ``BeginFragment`` +
  ``NextFragment`` frames, sent back to back.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from gridbind.generated.sttp import draft_0_8 as wire
from gridbind.sttp.draft.framing import encode_frame
from gridbind.sttp.encoding import BitByteError, SttpValue, ValueType
from gridbind.sttp.tssc import SEED, TsscDecoder, TsscEncoder, TsscError

__all__ = [
    "COMPRESSION_LIMIT",
    "FIXED_SIZE_POINT_BYTES",
    "MAX_RAW_PACKET",
    "DataDecoder",
    "DataEncoder",
    "FragmentAssembler",
    "PacketError",
    "WirePoint",
]

#: Largest uncompressed data packet (seed: "the 2^14 upper limit ... is the maximum payload size").
MAX_RAW_PACKET = 16384
#: Compressed output may be at most this much larger than its input.
COMPRESSION_LIMIT = 1024
#: Serialized size of a FixedSizeDataPoint (what a TSSC point stands for in ``totalRawSize``).
FIXED_SIZE_POINT_BYTES = 95
_TSSC_MAX_POINTS = MAX_RAW_PACKET // FIXED_SIZE_POINT_BYTES
_BEGIN_OVERHEAD = 10  # totalFragmentSize, totalRawSize, commandCode, compressionMode
_SEND = int(wire.CommandCode.SendDataPoints)
_U32 = 0xFFFFFFFF


class PacketError(ValueError):
    """A data packet or fragment sequence that is malformed, oversized or out of order."""


@dataclass(slots=True)
class WirePoint:
    """One data point as the session handles it: runtime ID, time, typed value, quality."""

    runtime_id: int
    value_type: int
    timestamp: int
    value: Any
    quality: int = 0


def _estimate(point: WirePoint) -> int:
    size = 24
    value = point.value
    if isinstance(value, (str, bytes, bytearray)):
        size += len(value) * (4 if isinstance(value, str) else 1) + 10
    return size


def _to_datapoint(point: WirePoint) -> wire.DataPoint:
    return wire.DataPoint(
        runtime_id=point.runtime_id,
        timestamp=SttpValue(ValueType.STTP_TIME, point.timestamp),
        value=SttpValue(point.value_type, point.value),
        quality=point.quality,
    )


class DataEncoder:
    """Publisher side: turns batches of :class:`WirePoint` into frames for one channel.

    ``algorithm`` is the negotiated name (``"NONE"``, ``"DEFLATE"``, ``"TSSC"``); ``stateful``
    says whether the channel is reliable (state kept across packets) or lossy.
    """

    def __init__(self, algorithm: str, *, stateful: bool, max_payload: int = MAX_RAW_PACKET):
        if algorithm not in ("NONE", "DEFLATE", "TSSC"):
            raise ValueError(f"unknown compression algorithm {algorithm!r}")
        if algorithm == "TSSC" and not stateful:
            raise ValueError("TSSC is stateful and needs a reliable channel")
        if not 64 <= max_payload <= 0xFFFF - 3:
            raise ValueError("max_payload must be 64..65532")
        self.algorithm = algorithm
        self.stateful = stateful
        self.max_payload = max_payload
        self._deflate = zlib.compressobj(6, zlib.DEFLATED, -15) if stateful else None
        self._tssc = TsscEncoder(SEED, max_block_size=max_payload - _BEGIN_OVERHEAD)

    def encode(self, points: Sequence[WirePoint]) -> list[bytes]:
        """Frames carrying ``points`` in order of kind (TSSC points first, then basic ones)."""
        frames: list[bytes] = []
        basic: Iterable[WirePoint] = points
        if self.algorithm == "TSSC":
            basic = []
            tssc_points = []
            for point in points:
                if (
                    point.value_type == ValueType.SINGLE
                    and 0 <= point.runtime_id <= 0xFFFF
                    and 0 <= point.quality <= _U32
                ):
                    tssc_points.append(point)
                else:
                    basic.append(point)
            frames.extend(self._encode_tssc(tssc_points))
        for raw in self._basic_packets(basic):
            frames.extend(self._emit(raw))
        return frames

    def _encode_tssc(self, points: list[WirePoint]) -> list[bytes]:
        frames = []
        encoder = self._tssc
        for point in points:
            if encoder.count >= _TSSC_MAX_POINTS or not encoder.add(
                point.runtime_id, point.timestamp, point.quality, point.value
            ):
                frames.extend(self._finish_tssc())
                if not encoder.add(point.runtime_id, point.timestamp, point.quality, point.value):
                    raise PacketError("a TSSC point does not fit an empty block")
        frames.extend(self._finish_tssc())
        return frames

    def _finish_tssc(self) -> list[bytes]:
        count = self._tssc.count
        block = self._tssc.finish()
        if block is None:
            return []
        return self._fragments(block, count * FIXED_SIZE_POINT_BYTES, wire.CompressionMode.Tssc)

    def _basic_packets(self, points: Iterable[WirePoint]) -> list[bytes]:
        packets: list[bytes] = []
        batch: list[wire.DataPoint] = []
        size = 0
        limit = MAX_RAW_PACKET if self.algorithm == "DEFLATE" else self.max_payload
        for point in points:
            estimate = _estimate(point)
            if batch and size + estimate > limit:
                packets.append(self._build(batch))
                batch, size = [], 0
            batch.append(_to_datapoint(point))
            size += estimate
        if batch:
            packets.append(self._build(batch))
        return packets

    @staticmethod
    def _build(batch: list[wire.DataPoint]) -> bytes:
        try:
            return wire.SendDataPoints(points=batch).build()
        except (wire.WireError, wire.ConstraintError, BitByteError) as exc:
            raise PacketError(f"cannot encode data points: {exc}") from exc

    def _emit(self, raw: bytes) -> list[bytes]:
        if self.algorithm != "DEFLATE":
            if len(raw) <= self.max_payload:
                return [encode_frame(_SEND, raw)]
            return self._fragments(raw, len(raw), wire.CompressionMode.Uncompressed)
        if len(raw) > MAX_RAW_PACKET:
            # a single huge point: DEFLATE cannot carry it within the inflate limit
            return self._fragments(raw, len(raw), wire.CompressionMode.Uncompressed)
        if self._deflate is not None:
            packed = self._deflate.compress(raw) + self._deflate.flush(zlib.Z_SYNC_FLUSH)
        else:
            one = zlib.compressobj(6, zlib.DEFLATED, -15)
            packed = one.compress(raw) + one.flush(zlib.Z_FINISH)
        if len(packed) > len(raw) + COMPRESSION_LIMIT:
            raise PacketError("DEFLATE output exceeds the input by more than 1024 bytes")
        return self._fragments(packed, len(raw), wire.CompressionMode.Deflate)

    def _fragments(self, data: bytes, raw_size: int, mode: int) -> list[bytes]:
        first = self.max_payload - _BEGIN_OVERHEAD
        frames = [
            encode_frame(
                wire.CommandCode.BeginFragment,
                struct.pack(">iiBB", len(data), raw_size, _SEND, mode) + data[:first],
            )
        ]
        step = self.max_payload
        for offset in range(first, len(data), step):
            frames.append(encode_frame(wire.CommandCode.NextFragment, data[offset : offset + step]))
        return frames


class FragmentAssembler:
    """Reassembles ``BeginFragment``/``NextFragment`` sequences; bounded by ``max_total`` bytes.

    :meth:`begin` and :meth:`next` return ``(command_code, compression_mode, raw_size, data)``
    when the sequence is complete, else ``None``. Interleaving, overlong, oversized and
    out-of-order fragments raise :class:`PacketError`.
    """

    def __init__(self, max_total: int = 1 << 24) -> None:
        self.max_total = max_total
        self._active: tuple[int, int, int, int] | None = None
        self._parts = bytearray()

    @property
    def active(self) -> bool:
        """True while a fragmented packet is incomplete (no other frame may come then)."""
        return self._active is not None

    def begin(self, payload: bytes) -> tuple[int, int, int, bytes] | None:
        """Start a sequence from a BeginFragment payload."""
        if self._active is not None:
            self.abort()
            raise PacketError("BeginFragment while another fragmented packet is incomplete")
        if len(payload) < _BEGIN_OVERHEAD:
            raise PacketError("BeginFragment shorter than its 10-byte header")
        total, raw, code, mode = struct.unpack_from(">iiBB", payload)
        if total < 0 or raw < 0 or total > self.max_total:
            raise PacketError(f"fragmented packet of {total} bytes is outside 0..{self.max_total}")
        if mode not in (0, 1, 2):
            raise PacketError(f"unknown compression mode {mode}")
        if mode == wire.CompressionMode.Uncompressed and raw != total:
            raise PacketError("uncompressed fragments must have totalRawSize == totalFragmentSize")
        if mode != wire.CompressionMode.Uncompressed and raw > MAX_RAW_PACKET:
            raise PacketError(f"compressed packet would inflate to {raw} > {MAX_RAW_PACKET} bytes")
        self._active = (total, raw, code, mode)
        self._parts = bytearray()
        return self._add(payload[_BEGIN_OVERHEAD:])

    def next(self, payload: bytes) -> tuple[int, int, int, bytes] | None:
        """Continue the sequence with a NextFragment payload."""
        if self._active is None:
            raise PacketError("NextFragment without a preceding BeginFragment")
        return self._add(payload)

    def abort(self) -> None:
        """Drop an incomplete sequence."""
        self._active = None
        self._parts = bytearray()

    def _add(self, data: bytes) -> tuple[int, int, int, bytes] | None:
        assert self._active is not None
        total, raw, code, mode = self._active
        self._parts += data
        if len(self._parts) > total:
            self.abort()
            raise PacketError("fragments exceed the announced totalFragmentSize")
        if len(self._parts) < total:
            return None
        result = (code, mode, raw, bytes(self._parts))
        self.abort()
        return result


class DataDecoder:
    """Subscriber side: the inverse of :class:`DataEncoder` for one channel."""

    def __init__(self, *, stateful: bool) -> None:
        self.stateful = stateful
        self._inflate = zlib.decompressobj(-15) if stateful else None
        self._tssc = TsscDecoder(SEED)

    def basic(self, payload: bytes) -> list[WirePoint]:
        """Points of a SendDataPoints payload."""
        try:
            packet = wire.SendDataPoints.parse(payload)
        except (wire.WireError, wire.ConstraintError, BitByteError, ValueError) as exc:
            raise PacketError(f"malformed SendDataPoints: {exc}") from exc
        points = []
        for item in packet.points:
            stamp = item.timestamp.value if item.timestamp.type == ValueType.STTP_TIME else 0
            points.append(
                WirePoint(item.runtime_id, item.value.type, stamp, item.value.value, item.quality)
            )
        return points

    def assembled(self, code: int, mode: int, raw_size: int, data: bytes) -> list[WirePoint]:
        """Points of a reassembled (possibly compressed) packet."""
        if code != _SEND:
            raise PacketError(f"fragmented command {code:#04x} is not SendDataPoints")
        if mode == wire.CompressionMode.Uncompressed:
            return self.basic(data)
        if mode == wire.CompressionMode.Deflate:
            return self.basic(self._inflate_packet(data, raw_size))
        if not self.stateful:
            raise PacketError("TSSC data on a lossy channel")
        try:
            columns = self._tssc.decode(data)
        except TsscError as exc:
            raise PacketError(f"TSSC block: {exc}") from exc
        if len(columns) * FIXED_SIZE_POINT_BYTES != raw_size:
            raise PacketError(
                f"TSSC block holds {len(columns)} points but totalRawSize says {raw_size} bytes"
            )
        return [
            WirePoint(pid, ValueType.SINGLE, ts, value, flags)
            for pid, ts, flags, value in columns.rows()
        ]

    def _inflate_packet(self, data: bytes, raw_size: int) -> bytes:
        try:
            if self._inflate is not None:
                raw = self._inflate.decompress(data, MAX_RAW_PACKET + 1)
                leftover = self._inflate.unconsumed_tail
            else:
                one = zlib.decompressobj(-15)
                raw = one.decompress(data, MAX_RAW_PACKET + 1)
                leftover = one.unconsumed_tail
        except zlib.error as exc:
            raise PacketError(f"DEFLATE data is corrupt: {exc}") from exc
        if len(raw) > MAX_RAW_PACKET or leftover:
            raise PacketError(f"DEFLATE packet inflates past {MAX_RAW_PACKET} bytes")
        if len(raw) != raw_size:
            raise PacketError(f"DEFLATE packet inflated to {len(raw)} bytes, announced {raw_size}")
        return raw
