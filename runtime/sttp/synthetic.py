"""The one synthetic PMU source of both STTP profiles (CLI, tests, benchmarks, demo).

Signals are grouped in devices of ``device_size``: frequency, dF/dt, then voltage / current
magnitudes and angles. Values are float32-exact (every encoding, TSSC included, must deliver them
bit for bit) and, like the flags and timestamps, a function of (signal index, frame index) only,
so a receiver can recompute what it should have received. ``flag_every`` sets a rare quality flag
(bits >= 0x100 included) on every n-th measurement; ``jitter`` makes timestamps irregular.

Frames can be taken by number (:meth:`SyntheticPmu.frame`) or in order
(:meth:`SyntheticPmu.next_frame`, :meth:`SyntheticPmu.frames`).
"""

from __future__ import annotations

import math
import struct
import uuid
from collections.abc import Iterator, Sequence

from gridbind.sttp.measurement import TICKS_PER_SECOND, Measurement

__all__ = ["KINDS", "SyntheticPmu", "f32"]

#: Signal kinds of one device, in order (a device of more signals repeats the phasor kinds).
KINDS = ("FREQ", "DFDT", "VPHM", "VPHA", "IPHM", "IPHA")
_F32 = struct.Struct(">f")


def f32(value: float) -> float:
    """``value`` rounded to float32 (what TSSC and compact measurements carry)."""
    return _F32.unpack(_F32.pack(value))[0]


def _kind(position: int) -> str:
    return KINDS[position] if position < 2 else KINDS[2 + (position - 2) % 4]


class SyntheticPmu:
    """A fleet of synthetic PMU signals at ``rate`` frames per second from ``start`` ticks.

    ``signals`` is the signal ids, or a count (ids are then derived from ``seed``).
    """

    def __init__(
        self,
        signals: Sequence[uuid.UUID] | int,
        rate: float = 30.0,
        start: int = 0,
        *,
        seed: int = 1,
        device_size: int = 10,
        flag_every: int = 997,
        jitter: int = 0,
    ) -> None:
        if isinstance(signals, int):
            if signals < 1:
                raise ValueError("count must be >= 1")
            namespace = uuid.UUID(int=seed)
            signals = [uuid.uuid5(namespace, f"signal-{i}") for i in range(signals)]
        if rate <= 0 or device_size < 1:
            raise ValueError("rate must be > 0 and device_size >= 1")
        self.ids = list(signals)
        self.count = len(self.ids)
        self.index = {signal: i for i, signal in enumerate(self.ids)}
        self.rate = rate
        self.start = start
        self.device_size = device_size
        self.kinds = [_kind(i % device_size) for i in range(self.count)]
        self.flag_every = flag_every
        self.jitter = jitter
        #: the number of the frame :meth:`next_frame` returns next
        self.next_number = 0

    @property
    def signals(self) -> list[uuid.UUID]:
        """The signal ids, in order."""
        return self.ids

    def kind(self, signal: int) -> str:
        """Signal type of signal number ``signal``."""
        return self.kinds[signal]

    def timestamp(self, frame: int) -> int:
        """Ticks of frame number ``frame``."""
        stamp = self.start + int(frame * TICKS_PER_SECOND / self.rate)
        if self.jitter:
            stamp += (frame * 7919) % self.jitter
        return stamp

    def value(self, signal: int, frame: int) -> float:
        """The float32-exact value of ``signal`` in ``frame``."""
        kind = self.kinds[signal]
        t = frame / self.rate
        if kind == "FREQ":
            value = 60.0 + 0.02 * math.sin(t + signal)
        elif kind == "DFDT":
            value = 0.02 * math.cos(t + signal)
        elif kind == "VPHM":
            value = 132_000.0 + 250.0 * math.sin(0.5 * t + signal)
        elif kind == "IPHM":
            value = 450.0 + 15.0 * math.sin(0.7 * t + signal)
        else:
            value = ((t * 3.0 + signal * 17.0) % 360.0) - 180.0
        return f32(value)

    def flags(self, signal: int, frame: int) -> int:
        """Quality flags: rare, some with bits >= 0x100."""
        sequence = frame * self.count + signal + 1
        if self.flag_every and sequence % self.flag_every == 0:
            return 0x0000_0102 if sequence % 2 else 0x8000_1000
        return 0

    def frame(self, frame: int) -> list[Measurement]:
        """The measurements of frame number ``frame``."""
        stamp = self.timestamp(frame)
        return [
            Measurement(signal, self.value(i, frame), stamp, self.flags(i, frame))
            for i, signal in enumerate(self.ids)
        ]

    def next_frame(self) -> list[Measurement]:
        """The next frame in order (timestamps advance by 1/rate seconds)."""
        number = self.next_number
        self.next_number += 1
        return self.frame(number)

    def frames(self, count: int) -> Iterator[list[Measurement]]:
        """The next ``count`` frames in order (frames 0..count-1 of a fresh source)."""
        for _ in range(count):
            yield self.next_frame()
