"""The compact measurement format and the signal index cache of IEEE 2664.

A compact measurement is ``flags (u8), runtime index (u32), value (f32)`` then, when the
subscription includes time, either a full ``u64`` tick timestamp or, with the BASE_TIME_OFFSET bit,
an offset from one of the two base times (``u32`` ticks, or ``u16`` milliseconds when the
subscriber asked for millisecond resolution). The one-byte flags are a lossy summary of the 32-bit
state flags: each compact bit stands for a group of full flags, so the full flags a receiver
reconstructs are the group masks (this is the protocol's definition, not a defect).
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from gridbind.generated.sttp import ieee2664 as spec
from gridbind.generated.sttp.ieee2664 import CompactStateFlags
from gridbind.sttp.codecsupport import WireError
from gridbind.sttp.ieee2664.wire import ProtocolError
from gridbind.sttp.measurement import Measurement

# full-flag group masks behind each compact bit (deployed definition)
DATA_RANGE_MASK = 0x000000FC
DATA_QUALITY_MASK = 0x0000EF03
TIME_QUALITY_MASK = 0x00BF0000
SYSTEM_ISSUE_MASK = 0xE0000000
CALCULATED_VALUE_MASK = 0x00001000
ALARM_VALUE_MASK = 0x00400000
_GROUPS = (
    (CompactStateFlags.DataRange, DATA_RANGE_MASK),
    (CompactStateFlags.DataQuality, DATA_QUALITY_MASK),
    (CompactStateFlags.TimeQuality, TIME_QUALITY_MASK),
    (CompactStateFlags.SystemIssue, SYSTEM_ISSUE_MASK),
    (CompactStateFlags.CalculatedValue, CALCULATED_VALUE_MASK),
    (CompactStateFlags.AlarmValue, ALARM_VALUE_MASK),
)
_TO_FULL = [0] * 64
for _bits in range(64):
    for _compact, _mask in _GROUPS:
        if _bits & _compact:
            _TO_FULL[_bits] |= _mask

TICKS_PER_MILLISECOND = 10_000
_HEAD = struct.Struct(">BIf")
_HEAD_TS64 = struct.Struct(">BIfQ")
_HEAD_TS32 = struct.Struct(">BIfI")
_HEAD_TS16 = struct.Struct(">BIfH")


def compact_flags(full: int) -> int:
    """The compact flag byte (without time bits) summarising 32-bit state flags."""
    out = 0
    for compact, mask in _GROUPS:
        if full & mask:
            out |= compact
    return out


def full_flags(compact: int) -> int:
    """The 32-bit state flags a compact flag byte stands for."""
    return _TO_FULL[compact & 0x3F]


def expected_compact_roundtrip(full: int) -> int:
    """What 32-bit flags survive a compact round trip (for tests and statistics)."""
    return full_flags(compact_flags(full))


@dataclass
class CompactCodec:
    """Encode/decode compact measurements for one subscription's time options and base times."""

    include_time: bool = True
    millisecond_resolution: bool = False
    base_times: tuple[int, int] = (0, 0)
    time_index: int = 0

    def encode(self, index: int, measurement: Measurement) -> bytes:
        """One compact measurement (runtime ``index`` from the signal index cache)."""
        flags = compact_flags(measurement.flags)
        value = measurement.value
        if not self.include_time:
            return _HEAD.pack(flags, index, value)
        stamp = measurement.timestamp
        base = self.base_times[self.time_index]
        if base > 0 and stamp > base:
            delta = stamp - base
            if self.millisecond_resolution:
                millis = delta // TICKS_PER_MILLISECOND
                if millis < 0xFFFF:
                    flags |= CompactStateFlags.BaseTimeOffset | self._index_bit()
                    return _HEAD_TS16.pack(flags, index, value, millis)
            elif delta < 0xFFFFFFFF:
                flags |= CompactStateFlags.BaseTimeOffset | self._index_bit()
                return _HEAD_TS32.pack(flags, index, value, delta)
        return _HEAD_TS64.pack(flags | self._index_bit(), index, value, stamp)

    def _index_bit(self) -> int:
        return CompactStateFlags.TimeIndex if self.time_index else 0

    def decode(self, data: bytes, count: int | None, lookup: SignalIndexCache) -> list[Measurement]:
        """``count`` measurements from ``data`` (``None``: as many as the data holds); refuses
        truncation, trailing bytes and runtime indexes missing from the cache."""
        out: list[Measurement] = []
        offset = 0
        size = len(data)
        signals = lookup.by_index
        include_time = self.include_time
        ms = self.millisecond_resolution
        bases = self.base_times
        remaining = count if count is not None else -1
        while remaining and (count is not None or offset < size):
            remaining -= 1
            if size - offset < 9:
                raise ProtocolError("compact measurement truncated")
            flags, index, value = _HEAD.unpack_from(data, offset)
            offset += 9
            stamp = 0
            if include_time:
                if flags & CompactStateFlags.BaseTimeOffset:
                    base = bases[1 if flags & CompactStateFlags.TimeIndex else 0]
                    if ms:
                        if size - offset < 2:
                            raise ProtocolError("compact timestamp truncated")
                        stamp = base + struct.unpack_from(">H", data, offset)[0] * 10_000
                        offset += 2
                    else:
                        if size - offset < 4:
                            raise ProtocolError("compact timestamp truncated")
                        stamp = base + struct.unpack_from(">I", data, offset)[0]
                        offset += 4
                else:
                    if size - offset < 8:
                        raise ProtocolError("compact timestamp truncated")
                    stamp = struct.unpack_from(">Q", data, offset)[0]
                    offset += 8
            signal = signals.get(index)
            if signal is None:
                raise ProtocolError(f"runtime index {index} is not in the signal index cache")
            out.append(Measurement(signal, value, stamp, _TO_FULL[flags & 0x3F]))
        if offset != size:
            raise ProtocolError(f"{size - offset} bytes left after {count} compact measurements")
        return out


@dataclass
class SignalIndexCache:
    """Runtime index <-> signal ID map of one subscription, plus each signal's measurement key."""

    subscriber_id: uuid.UUID = field(default_factory=lambda: uuid.UUID(int=0))
    entries: list[tuple[int, uuid.UUID, str, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.by_index: dict[int, uuid.UUID] = {entry[0]: entry[1] for entry in self.entries}
        self.by_signal: dict[uuid.UUID, int] = {entry[1]: entry[0] for entry in self.entries}

    @classmethod
    def from_signals(
        cls, subscriber_id: uuid.UUID, signals: Iterable[tuple[uuid.UUID, str, int]]
    ) -> SignalIndexCache:
        """A cache numbering ``(signal ID, source, key id)`` from 0 in the given order."""
        return cls(
            subscriber_id,
            [(index, signal, source, key) for index, (signal, source, key) in enumerate(signals)],
        )

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def signal_ids(self) -> Sequence[uuid.UUID]:
        """The signal IDs in runtime-index order."""
        return [entry[1] for entry in self.entries]

    def build(self) -> bytes:
        """Serialized cache: uint32 total length, subscriber ID, uint32 count, then entries."""
        entries = [
            spec.SignalIndexEntry(index, signal, source, key)
            for index, signal, source, key in self.entries
        ]
        total = 24 + sum(32 + len(entry.source.encode("utf-8")) for entry in entries)
        return spec.SignalIndexCache(total, self.subscriber_id, entries).build()

    @classmethod
    def parse(cls, data: bytes) -> SignalIndexCache:
        """Decode a serialized cache; refuses truncated or inconsistent data."""
        if len(data) >= 24:
            (count,) = struct.unpack_from(">I", data, 20)
            if count > (len(data) - 24) // 32:
                raise ProtocolError(
                    f"signal index cache claims {count} entries, too many for its size"
                )
        try:
            message = spec.SignalIndexCache.parse(data)
        except (WireError, UnicodeDecodeError) as exc:
            raise ProtocolError(f"bad signal index cache: {exc}") from None
        if message.binary_length > len(data):
            raise ProtocolError("signal index cache length runs past its payload")
        return cls(
            message.subscriber_id,
            [(e.index, e.signal_id, e.source, e.key_id) for e in message.entries],
        )
