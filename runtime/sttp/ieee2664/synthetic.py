"""A synthetic PMU source: frames of frequency, df/dt and phasor values for N signals.

Used by the CLI, the tests and the benchmark; the values are float32-exact so a TSSC or compact
round trip reproduces them bit for bit.
"""

from __future__ import annotations

import math
import struct
import uuid
from collections.abc import Iterator, Sequence

from gridbind.sttp.ieee2664.metadata import PMU_SIGNALS
from gridbind.sttp.measurement import TICKS_PER_SECOND, Measurement

_F32 = struct.Struct(">f")


def f32(value: float) -> float:
    """``value`` rounded to float32 (what TSSC and compact measurements carry)."""
    return _F32.unpack(_F32.pack(value))[0]


def _kind(position: int) -> str:
    return PMU_SIGNALS[position] if position < 2 else PMU_SIGNALS[2 + (position - 2) % 4]


class PmuSource:
    """Frames of a synthetic PMU fleet: one measurement per signal per frame.

    ``flag_every`` sets a rare quality flag (including bits >= 0x100) on every n-th measurement;
    ``jitter`` makes timestamps irregular (a per-frame offset in ticks, deterministic).
    """

    def __init__(
        self,
        signals: Sequence[uuid.UUID],
        rate: float = 30.0,
        start_ticks: int = 0,
        device_size: int = 10,
        flag_every: int = 997,
        jitter: int = 0,
    ) -> None:
        self.signals = list(signals)
        self.rate = rate
        self.start = start_ticks
        self.kinds = [_kind(i % device_size) for i in range(len(self.signals))]
        self.flag_every = flag_every
        self.jitter = jitter
        self.frame = 0
        self._sequence = 0

    def next_frame(self) -> list[Measurement]:
        """The next frame's measurements (timestamps advance by 1/rate seconds)."""
        n = self.frame
        self.frame += 1
        stamp = self.start + int(n * TICKS_PER_SECOND / self.rate)
        if self.jitter:
            stamp += (n * 7919) % self.jitter
        t = n / self.rate
        out = []
        for index, (signal, kind) in enumerate(zip(self.signals, self.kinds)):
            if kind == "FREQ":
                value = 60.0 + 0.02 * math.sin(t + index)
            elif kind == "DFDT":
                value = 0.02 * math.cos(t + index)
            elif kind == "VPHM":
                value = 132_000.0 + 250.0 * math.sin(0.5 * t + index)
            elif kind == "IPHM":
                value = 450.0 + 15.0 * math.sin(0.7 * t + index)
            else:
                value = ((t * 3.0 + index * 17.0) % 360.0) - 180.0
            self._sequence += 1
            flags = 0
            if self.flag_every and self._sequence % self.flag_every == 0:
                flags = 0x0000_0102 if self._sequence % 2 else 0x8000_1000
            out.append(Measurement(signal, f32(value), stamp, flags))
        return out

    def frames(self, count: int) -> Iterator[list[Measurement]]:
        """``count`` consecutive frames."""
        for _ in range(count):
            yield self.next_frame()
