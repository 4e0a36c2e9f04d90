"""A deterministic synthetic PMU source for tests, benchmarks and ``gridbind sttp publish``.

Signals cycle through frequency, dF/dt, voltage magnitude, voltage angle, current magnitude and
current angle; angles rotate and wrap at +-180 degrees. Values are float32-exact (so every
encoding, TSSC included, must deliver them bit for bit) and a function of (signal index, frame
index) only, so a receiver can recompute what it should have received.
"""

from __future__ import annotations

import math
import struct
import uuid
from collections.abc import Iterator

from gridbind.generated.sttp.templates import DataPointRecord
from gridbind.sttp.draft.metadata import MetadataDatabase
from gridbind.sttp.encoding import ValueType
from gridbind.sttp.measurement import TICKS_PER_SECOND, Measurement

__all__ = ["SyntheticPmu"]

_F32 = struct.Struct("<f")
KINDS = ("FREQ", "DFDT", "VPHM", "VPHA", "IPHM", "IPHA")


def _f32(value: float) -> float:
    return _F32.unpack(_F32.pack(value))[0]


class SyntheticPmu:
    """``count`` signals at ``rate`` frames per second starting at ``start`` ticks."""

    def __init__(self, count: int, rate: float = 30.0, start: int = 0, seed: int = 1) -> None:
        if count < 1 or rate <= 0:
            raise ValueError("count must be >= 1 and rate > 0")
        self.count = count
        self.rate = rate
        self.start = start
        namespace = uuid.UUID(int=seed)
        self.ids = [uuid.uuid5(namespace, f"signal-{i}") for i in range(count)]
        self.index = {signal: i for i, signal in enumerate(self.ids)}

    def kind(self, signal: int) -> str:
        """Signal type of signal number ``signal``."""
        return KINDS[signal % len(KINDS)]

    def timestamp(self, frame: int) -> int:
        """Ticks of frame number ``frame``."""
        return self.start + round(frame * TICKS_PER_SECOND / self.rate)

    def value(self, signal: int, frame: int) -> float:
        """The float32-exact value of ``signal`` in ``frame``."""
        kind = self.kind(signal)
        t = frame / self.rate
        phase = signal * 0.37
        if kind == "FREQ":
            v = 60.0 + 0.02 * math.sin(0.5 * t + phase)
        elif kind == "DFDT":
            v = 0.01 * math.cos(0.5 * t + phase)
        elif kind in ("VPHM", "IPHM"):
            base = 230_000.0 if kind == "VPHM" else 1_200.0
            v = base * (1 + 0.001 * math.sin(0.2 * t + phase))
        else:
            v = math.fmod(signal * 7.0 + t * 36.0 + 180.0, 360.0) - 180.0
        return _f32(v)

    def flags(self, signal: int, frame: int) -> int:
        """Quality flags: rare changes."""
        return 0x4 if (frame + signal) % 97 == 0 else 0

    def frame(self, frame: int) -> list[Measurement]:
        """The measurements of frame number ``frame``."""
        stamp = self.timestamp(frame)
        return [
            Measurement(signal, self.value(i, frame), stamp, self.flags(i, frame))
            for i, signal in enumerate(self.ids)
        ]

    def frames(self, count: int) -> Iterator[list[Measurement]]:
        """Frames 0..count-1."""
        for frame in range(count):
            yield self.frame(frame)

    def value_types(self) -> dict[uuid.UUID, int]:
        """Every signal is a Single."""
        return {signal: ValueType.SINGLE for signal in self.ids}

    def metadata(self, database: MetadataDatabase | None = None) -> MetadataDatabase:
        """A DataPoint table (Appendix F template + DataType) describing the signals."""
        database = database or MetadataDatabase()
        database.define_template(DataPointRecord, extra=[("DataType", 0x01)])
        database.upsert_many(
            "DataPoint",
            [
                {
                    "PointID": signal,
                    "PointTag": f"PMU{i // 6}:{self.kind(i)}",
                    "Signal Type": self.kind(i),
                    "DataType": "SINGLE",
                    "PositionIndex": i,
                }
                for i, signal in enumerate(self.ids)
            ],
        )
        return database
