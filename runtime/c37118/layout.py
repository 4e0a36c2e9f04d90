"""Data frames compiled per configuration: one ``struct`` for the whole frame.

A data frame's layout is fixed by its configuration (FORMAT, PHNMR, ANNMR, DGNMR of each PMU),
so :class:`DataLayout` builds, once per configuration, a single ``struct.Struct`` covering every
field from the first STAT to the last digital word. Parsing a frame is then the CRC (in C), one
size comparison and one ``unpack_from``: a flat tuple whose positions :class:`BlockSlots` name.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from gridbind.c37118.constants import (
    CHK_SIZE,
    HEADER_SIZE,
    MAX_FRAME,
    SYNC_BYTE,
    VERSION_2011,
    Format,
    FrameType,
)
from gridbind.c37118.crc import crc_ccitt
from gridbind.c37118.errors import ConfigurationError, FrameError
from gridbind.c37118.frames import (
    HEAD,
    ConfigFrame,
    DataFrame,
    PmuConfig,
    PmuData,
    Stamp,
    seal,
)

_CHK = struct.Struct(">H")


@dataclass(frozen=True, slots=True)
class BlockSlots:
    """Where one PMU block's fields sit in the flat tuple of a parsed frame."""

    stat: int
    phasors: int  # first of 2 * count values (magnitude/angle or real/imaginary pairs)
    phasor_count: int
    freq: int  # FREQ, then DFREQ at freq + 1
    analogs: int
    analog_count: int
    digitals: int
    digital_count: int
    format: int


def block_code(pmu: PmuConfig) -> str:
    """``struct`` codes of one PMU block of a data frame."""
    fmt = pmu.format
    if fmt & Format.PHASOR_FLOAT:
        phasor = "ff"
    else:
        phasor = "Hh" if fmt & Format.POLAR else "hh"
    freq = "ff" if fmt & Format.FREQ_FLOAT else "hh"
    analog = "f" if fmt & Format.ANALOG_FLOAT else "h"
    return (
        "H" + phasor * len(pmu.phasors) + freq + analog * len(pmu.analogs) + "H" * len(pmu.digitals)
    )


class DataLayout:
    """The compiled data-frame layout of one configuration."""

    def __init__(self, config: ConfigFrame) -> None:
        self.config = config
        self.idcode = config.stamp.idcode
        codes = []
        slots = []
        position = 0
        for pmu in config.pmus:
            codes.append(block_code(pmu))
            phasors, analogs, digitals = len(pmu.phasors), len(pmu.analogs), len(pmu.digitals)
            slots.append(
                BlockSlots(
                    position,
                    position + 1,
                    phasors,
                    position + 1 + 2 * phasors,
                    position + 3 + 2 * phasors,
                    analogs,
                    position + 3 + 2 * phasors + analogs,
                    digitals,
                    pmu.format,
                )
            )
            position += 3 + 2 * phasors + analogs + digitals
        self.body = struct.Struct(">" + "".join(codes))
        self.slots = tuple(slots)
        self.field_count = position
        self.frame_size = HEADER_SIZE + self.body.size + CHK_SIZE
        if self.frame_size > MAX_FRAME:
            raise ConfigurationError(f"data frames of {self.frame_size} bytes exceed 65535")

    def unpack(self, data: bytes | bytearray | memoryview) -> tuple[Stamp, tuple]:
        """Check and parse one whole data frame; returns its stamp and the flat field tuple."""
        size = len(data)
        if size != self.frame_size:
            raise FrameError(
                f"data frame of {size} bytes does not match the configuration "
                f"({self.frame_size} bytes)"
            )
        sync1, sync2, framesize, idcode, soc, fracsec = HEAD.unpack_from(data)
        if sync1 != SYNC_BYTE or sync2 & 0xF0 != 0:
            raise FrameError(f"not a data frame: SYNC {sync1:02X}{sync2:02X}")
        if framesize != size:
            raise FrameError(f"FRAMESIZE {framesize} does not match the {size} bytes received")
        if crc_ccitt(data[:-CHK_SIZE]) != _CHK.unpack_from(data, size - CHK_SIZE)[0]:
            raise FrameError("CRC mismatch in a data frame")
        return Stamp(idcode, soc, fracsec), self.body.unpack_from(data, HEADER_SIZE)

    def pack(self, stamp: Stamp, values: tuple | list, version: int = VERSION_2011) -> bytes:
        """A whole data frame from a flat field tuple (the inverse of :meth:`unpack`)."""
        try:
            body = self.body.pack(*values)
        except (struct.error, OverflowError) as exc:
            raise ConfigurationError(f"data values do not fit the configuration: {exc}") from None
        return seal(FrameType.DATA, version, stamp, body)

    def to_frame(self, stamp: Stamp, values: tuple) -> DataFrame:
        """A :class:`DataFrame` value of a flat field tuple."""
        blocks = []
        for slot in self.slots:
            pairs = values[slot.phasors : slot.freq]
            blocks.append(
                PmuData(
                    values[slot.stat],
                    list(zip(pairs[0::2], pairs[1::2], strict=True)),
                    values[slot.freq],
                    values[slot.freq + 1],
                    list(values[slot.analogs : slot.digitals]),
                    list(values[slot.digitals : slot.digitals + slot.digital_count]),
                )
            )
        return DataFrame(stamp, blocks)

    def flatten(self, frame: DataFrame) -> list:
        """The flat field list of a :class:`DataFrame` (checked against the configuration)."""
        if len(frame.blocks) != len(self.slots):
            raise ConfigurationError(
                f"data frame has {len(frame.blocks)} PMU blocks, the configuration "
                f"{len(self.slots)}"
            )
        values: list = []
        for block, slot in zip(frame.blocks, self.slots, strict=True):
            if (
                len(block.phasors) != slot.phasor_count
                or len(block.analogs) != slot.analog_count
                or len(block.digitals) != slot.digital_count
            ):
                raise ConfigurationError("a PMU block's channel counts differ from its config")
            values.append(block.stat)
            for a, b in block.phasors:
                values.append(a)
                values.append(b)
            values.append(block.freq)
            values.append(block.dfreq)
            values.extend(block.analogs)
            values.extend(block.digitals)
        return values

    def parse(self, data: bytes | bytearray | memoryview) -> DataFrame:
        """A :class:`DataFrame` of one whole data frame."""
        stamp, values = self.unpack(data)
        frame = self.to_frame(stamp, values)
        frame.version = data[1] & 0x0F
        return frame

    def build(self, frame: DataFrame) -> bytes:
        """Bytes of a :class:`DataFrame`."""
        return self.pack(frame.stamp, self.flatten(frame), frame.version)
