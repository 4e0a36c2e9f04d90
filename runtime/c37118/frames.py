"""C37.118.2-2011 frames as values: parse from bytes, build to bytes (sans-IO).

Every ``parse_*`` takes one whole frame (SYNC to CHK) and checks, before it allocates anything a
peer sized, that FRAMESIZE equals the bytes given, that the CRC matches, and that every count
(NUM_PMU, PHNMR, ANNMR, DGNMR, name lengths) fits the bytes that are left; a violation raises
:class:`~gridbind.c37118.errors.FrameError` naming the field. Data frames need the configuration
that describes them; their fast path is :class:`gridbind.c37118.layout.DataLayout`.

Values stay as the wire carries them (integer formats keep integers, PHUNIT keeps its 24-bit
scale); conversion to engineering units is :mod:`gridbind.c37118.mapping`'s job.
"""

from __future__ import annotations

import math
import struct
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

from gridbind.c37118.constants import (
    CHK_SIZE,
    COMPONENT_POSITIVE,
    HEADER_SIZE,
    MAX_EXTENDED,
    MAX_FRAME,
    MIN_FRAME,
    SYNC_BYTE,
    VERSION_2011,
    Command,
    FrameType,
)
from gridbind.c37118.crc import crc_ccitt
from gridbind.c37118.errors import ConfigurationError, FrameError

#: SYNC (2 bytes), FRAMESIZE, IDCODE, SOC, FRACSEC: the common frame header.
HEAD = struct.Struct(">BBHHII")
_U16 = struct.Struct(">H")
_I16 = struct.Struct(">h")
_U32 = struct.Struct(">I")
_PMU_HEAD = struct.Struct(">HHHHH")  # IDCODE FORMAT PHNMR ANNMR DGNMR
_TAIL = struct.Struct(">HH")  # FNOM CFGCNT
_DIGUNIT = struct.Struct(">HH")  # normal-state mask, valid-inputs mask
_PHSCALE = struct.Struct(">HBBff")
_ANSCALE = struct.Struct(">ff")
_CFG3_PMU_TAIL = struct.Struct(">fffciiHH")  # LAT LON ELEV SVC_CLASS WINDOW GRP_DLY FNOM CFGCNT


@dataclass(slots=True)
class Stamp:
    """IDCODE and time of a frame (SOC seconds since 1970, FRACSEC with its quality byte)."""

    idcode: int
    soc: int = 0
    fracsec: int = 0


@dataclass(slots=True)
class PhasorChannel:
    """One phasor channel: name, voltage or current, and its scaling.

    ``scale`` is the CFG-1/2 PHUNIT (10^-5 V or A per bit of integer data); CFG-3 adds the
    PHSCALE flags, component, float ``factor`` and ``angle_offset`` (radians).
    """

    name: str
    is_current: bool = False
    scale: int = 1
    component: int = COMPONENT_POSITIVE
    modification: int = 0
    user: int = 0
    factor: float = 1.0
    angle_offset: float = 0.0


@dataclass(slots=True)
class AnalogChannel:
    """One analog channel: name, ANUNIT kind (0 point-on-wave, 1 RMS, 2 peak, others user) and
    24-bit signed scale; CFG-3 ANSCALE gives a float ``factor`` and ``offset``."""

    name: str
    kind: int = 0
    scale: int = 1
    factor: float = 1.0
    offset: float = 0.0


@dataclass(slots=True)
class DigitalWord:
    """One 16-bit digital status word: 16 channel names, normal-state and valid-input masks."""

    names: tuple[str, ...] = ("",) * 16
    normal: int = 0
    valid: int = 0xFFFF


@dataclass(slots=True)
class PmuConfig:
    """One PMU block of a configuration frame."""

    station: str
    idcode: int
    format: int = 0
    phasors: list[PhasorChannel] = field(default_factory=list)
    analogs: list[AnalogChannel] = field(default_factory=list)
    digitals: list[DigitalWord] = field(default_factory=list)
    fnom: int = 60
    cfgcnt: int = 0
    # CFG-3 only
    global_id: uuid.UUID = uuid.UUID(int=0)
    latitude: float = math.nan
    longitude: float = math.nan
    elevation: float = math.nan
    service_class: str = "P"
    window: int = 0
    group_delay: int = 0


@dataclass(slots=True)
class ConfigFrame:
    """CFG-1, CFG-2 or CFG-3 (``kind``): time base, PMU blocks and the data rate.

    ``data_rate`` > 0 is frames per second, < 0 is seconds per frame. ``time_base`` is the
    24-bit FRACSEC resolution (the TIME_BASE flag byte is kept in ``time_base_flags``).
    """

    stamp: Stamp
    pmus: list[PmuConfig]
    time_base: int = 1_000_000
    data_rate: int = 30
    kind: FrameType = FrameType.CFG2
    time_base_flags: int = 0
    version: int = VERSION_2011


@dataclass(slots=True)
class HeaderFrame:
    """Human-readable text about the stream."""

    stamp: Stamp
    text: str
    version: int = VERSION_2011


@dataclass(slots=True)
class CommandFrame:
    """A command to the stream ``stamp.idcode`` (``Command``; 8 carries ``extended`` bytes)."""

    stamp: Stamp
    command: int
    extended: bytes = b""
    version: int = VERSION_2011


@dataclass(slots=True)
class PmuData:
    """One PMU block of a data frame, as the wire carries it."""

    stat: int
    phasors: list[tuple[float, float]]
    freq: float
    dfreq: float
    analogs: list[float]
    digitals: list[int]


@dataclass(slots=True)
class DataFrame:
    """A data frame: time and one block per PMU of the configuration."""

    stamp: Stamp
    blocks: list[PmuData]
    version: int = VERSION_2011


@dataclass(slots=True)
class Cfg3Fragment:
    """One CFG-3 frame: its CONT_IDX (0 alone, 1 first, 2.. next, 0xFFFF last) and the bytes
    after CONT_IDX, to be joined with the other fragments of the set."""

    stamp: Stamp
    index: int
    body: bytes
    version: int = VERSION_2011


Frame = HeaderFrame | CommandFrame | ConfigFrame | DataFrame | Cfg3Fragment


# ------------------------------------------------------------------------------------ framing


def frame_type(data: bytes | bytearray | memoryview) -> FrameType:
    """The type of the frame starting at ``data[0]`` (SYNC must be valid)."""
    if len(data) < 2 or data[0] != SYNC_BYTE or data[1] & 0x80:
        raise FrameError(f"bad SYNC word {bytes(data[:2]).hex()}")
    code = (data[1] >> 4) & 0x7
    try:
        return FrameType(code)
    except ValueError:
        raise FrameError(f"reserved frame type {code} in SYNC") from None


def check_frame(data: bytes | bytearray | memoryview) -> tuple[FrameType, int, Stamp]:
    """Validate SYNC, FRAMESIZE and CHK of one whole frame; returns type, version and stamp."""
    size = len(data)
    if size < MIN_FRAME:
        raise FrameError(f"frame of {size} bytes is shorter than the {MIN_FRAME}-byte minimum")
    kind = frame_type(data)
    _, sync2, framesize, idcode, soc, fracsec = HEAD.unpack_from(data)
    if framesize != size:
        raise FrameError(f"FRAMESIZE {framesize} does not match the {size} bytes received")
    expected = crc_ccitt(data[:-CHK_SIZE])
    received = _U16.unpack_from(data, size - CHK_SIZE)[0]
    if expected != received:
        raise FrameError(f"CRC mismatch: CHK 0x{received:04X}, computed 0x{expected:04X}")
    return kind, sync2 & 0x0F, Stamp(idcode, soc, fracsec)


def seal(kind: FrameType, version: int, stamp: Stamp, body: bytes) -> bytes:
    """A whole frame: header, ``body`` and the CRC."""
    size = HEADER_SIZE + len(body) + CHK_SIZE
    if size > MAX_FRAME:
        raise ConfigurationError(f"{kind.name} frame of {size} bytes exceeds 65535")
    if not (0 <= stamp.soc <= 0xFFFFFFFF and 0 <= stamp.fracsec <= 0xFFFFFFFF):
        raise ConfigurationError(f"SOC {stamp.soc} / FRACSEC {stamp.fracsec} do not fit 32 bits")
    if not 0 <= stamp.idcode <= 0xFFFF:
        raise ConfigurationError(f"IDCODE {stamp.idcode} does not fit 16 bits")
    head = HEAD.pack(
        SYNC_BYTE, (int(kind) << 4) | version, size, stamp.idcode, stamp.soc, stamp.fracsec
    )
    frame = head + body
    return frame + _U16.pack(crc_ccitt(frame))


# --------------------------------------------------------------------------- header / command


def parse_header(data: bytes) -> HeaderFrame:
    """A header frame (text decoded as ASCII; other bytes become U+FFFD)."""
    kind, version, stamp = check_frame(data)
    _expect(kind, FrameType.HEADER)
    text = bytes(data[HEADER_SIZE:-CHK_SIZE]).decode("ascii", errors="replace")
    return HeaderFrame(stamp, text, version)


def build_header(frame: HeaderFrame) -> bytes:
    """Bytes of a header frame."""
    return seal(FrameType.HEADER, frame.version, frame.stamp, frame.text.encode("ascii", "replace"))


def parse_command(data: bytes) -> CommandFrame:
    """A command frame (the extended payload only for CMD 8)."""
    kind, version, stamp = check_frame(data)
    _expect(kind, FrameType.COMMAND)
    if len(data) < MIN_FRAME + 2:
        raise FrameError("command frame has no CMD word")
    command = _U16.unpack_from(data, HEADER_SIZE)[0]
    extended = bytes(data[HEADER_SIZE + 2 : -CHK_SIZE])
    return CommandFrame(stamp, command, extended, version)


def build_command(frame: CommandFrame) -> bytes:
    """Bytes of a command frame."""
    if len(frame.extended) > MAX_EXTENDED:
        raise ConfigurationError(f"extended frame of {len(frame.extended)} bytes exceeds 65518")
    if frame.extended and frame.command != Command.EXTENDED:
        raise ConfigurationError("only CMD 8 (extended frame) carries extra bytes")
    body = _U16.pack(frame.command) + frame.extended
    return seal(FrameType.COMMAND, frame.version, frame.stamp, body)


def _expect(kind: FrameType, wanted: FrameType) -> None:
    if kind != wanted:
        raise FrameError(f"expected a {wanted.name} frame, got {kind.name}")


# ----------------------------------------------------------------------------- CFG-1 / CFG-2


def _name16(raw: bytes) -> str:
    return raw.decode("ascii", errors="replace").rstrip(" \x00")


def _pack16(name: str, what: str) -> bytes:
    raw = name.encode("ascii", errors="replace")
    if len(raw) > 16:
        raise ConfigurationError(f"{what} {name!r} is longer than 16 characters")
    return raw.ljust(16, b" ")


def _need(data: bytes, offset: int, count: int, end: int, what: str) -> None:
    if offset + count > end:
        raise FrameError(f"{what} needs {count} bytes at offset {offset}; the frame ends at {end}")


def parse_config(data: bytes) -> ConfigFrame:
    """A CFG-1 or CFG-2 frame."""
    kind, version, stamp = check_frame(data)
    if kind not in (FrameType.CFG1, FrameType.CFG2):
        raise FrameError(f"expected CFG-1 or CFG-2, got {kind.name}")
    end = len(data) - CHK_SIZE
    _need(data, HEADER_SIZE, 8, end, "TIME_BASE/NUM_PMU/DATA_RATE")
    time_word, num_pmu = struct.unpack_from(">IH", data, HEADER_SIZE)
    offset = HEADER_SIZE + 6
    # A PMU block is at least 30 bytes: an absurd NUM_PMU is refused before any work.
    if num_pmu == 0 or num_pmu * 30 > end - 2 - offset:
        raise FrameError(f"NUM_PMU {num_pmu} does not fit a {len(data)}-byte frame")
    pmus = []
    for number in range(num_pmu):
        _need(data, offset, 26, end, f"PMU {number + 1} header")
        station = _name16(bytes(data[offset : offset + 16]))
        idcode, fmt, phnmr, annmr, dgnmr = _PMU_HEAD.unpack_from(data, offset + 16)
        _pmu_idcode(idcode)
        offset += 26
        names = phnmr + annmr + 16 * dgnmr
        _need(
            data,
            offset,
            16 * names + 4 * (phnmr + annmr + dgnmr) + 4,
            end,
            f"PMU {idcode} channels",
        )
        labels = [
            _name16(bytes(data[offset + 16 * i : offset + 16 * i + 16])) for i in range(names)
        ]
        offset += 16 * names
        phasors = []
        for i in range(phnmr):
            word = _U32.unpack_from(data, offset)[0]
            offset += 4
            phasors.append(PhasorChannel(labels[i], bool(word >> 24), word & 0xFFFFFF))
        analogs = []
        for i in range(annmr):
            kind_byte = data[offset]
            scale = int.from_bytes(data[offset + 1 : offset + 4], "big", signed=True)
            offset += 4
            analogs.append(AnalogChannel(labels[phnmr + i], kind_byte, scale))
        masks = [_DIGUNIT.unpack_from(data, offset + 4 * i) for i in range(dgnmr)]
        offset += 4 * dgnmr
        digitals = _digital_words(labels[phnmr + annmr :], masks)
        fnom_word, cfgcnt = _TAIL.unpack_from(data, offset)
        offset += 4
        pmus.append(
            PmuConfig(
                station,
                idcode,
                fmt & 0xF,
                phasors,
                analogs,
                digitals,
                50 if fnom_word & 1 else 60,
                cfgcnt,
            )
        )
    if offset + 2 != end:
        raise FrameError(f"configuration has {end - offset - 2} bytes beyond its PMU blocks")
    data_rate = _I16.unpack_from(data, offset)[0]
    _time_base(time_word)
    return ConfigFrame(stamp, pmus, time_word & 0xFFFFFF, data_rate, kind, time_word >> 24, version)


def _pmu_idcode(idcode: int) -> int:
    # 0 and 65535 are reserved (C37.118.2-2011, 6.2): a block carrying one could not be
    # built again, nor named apart from "all streams".
    if not 1 <= idcode <= 65534:
        raise FrameError(f"PMU IDCODE {idcode} is not in 1..65534")
    return idcode


def _digital_words(names: list[str], masks: list[tuple[int, int]]) -> list[DigitalWord]:
    """The digital status words of a PMU block: ``names`` are their channel names, sixteen a
    word in order, and ``masks`` their DIGUNIT (normal-state, valid-inputs) pairs."""
    return [
        DigitalWord(tuple(names[16 * i : 16 * i + 16]), normal, valid)
        for i, (normal, valid) in enumerate(masks)
    ]


def _channel_names(pmu: PmuConfig) -> Iterator[str]:
    """The CHNAM order of a PMU block: phasors, analogs, then the 16 names of each digital word."""
    for channel in pmu.phasors:
        yield channel.name
    for analog in pmu.analogs:
        yield analog.name
    for word in pmu.digitals:
        yield from _sixteen(word)


def _time_base(time_word: int) -> None:
    if not time_word & 0xFFFFFF:
        raise FrameError("TIME_BASE is 0: FRACSEC would mean nothing")


def build_config(frame: ConfigFrame) -> bytes:
    """Bytes of a CFG-1 or CFG-2 frame."""
    if frame.kind not in (FrameType.CFG1, FrameType.CFG2):
        raise ConfigurationError("build_config builds CFG-1/CFG-2; use build_cfg3 for CFG-3")
    parts = [struct.pack(">IH", _time_word(frame), _count(len(frame.pmus), "NUM_PMU"))]
    for pmu in frame.pmus:
        parts.append(_pack16(pmu.station, "station name"))
        parts.append(_pmu_head(pmu))
        parts.extend(_pack16(name, "channel name") for name in _channel_names(pmu))
        for channel in pmu.phasors:
            if not 0 <= channel.scale <= 0xFFFFFF:
                raise ConfigurationError(f"PHUNIT {channel.scale} is not a 24-bit value")
            parts.append(_U32.pack((int(channel.is_current) << 24) | channel.scale))
        for analog in pmu.analogs:
            parts.append(_anunit(analog))
        parts.extend(_DIGUNIT.pack(word.normal, word.valid) for word in pmu.digitals)
        parts.append(_TAIL.pack(_fnom(pmu.fnom), pmu.cfgcnt))
    parts.append(_rate(frame.data_rate))
    return seal(frame.kind, frame.version, frame.stamp, b"".join(parts))


def _time_word(frame: ConfigFrame) -> int:
    if not 0 < frame.time_base <= 0xFFFFFF:
        raise ConfigurationError(f"TIME_BASE {frame.time_base} is not in 1..16777215")
    return (frame.time_base_flags & 0xFF) << 24 | frame.time_base


def _count(value: int, what: str) -> int:
    if not 0 <= value <= 0xFFFF:
        raise ConfigurationError(f"{what} {value} does not fit 16 bits")
    return value


def _pmu_head(pmu: PmuConfig) -> bytes:
    if not 1 <= pmu.idcode <= 65534:
        raise ConfigurationError(f"IDCODE {pmu.idcode} is not in 1..65534")
    return _PMU_HEAD.pack(
        pmu.idcode,
        pmu.format & 0xF,
        _count(len(pmu.phasors), "PHNMR"),
        _count(len(pmu.analogs), "ANNMR"),
        _count(len(pmu.digitals), "DGNMR"),
    )


def _sixteen(word: DigitalWord) -> tuple[str, ...]:
    names = tuple(word.names)
    if len(names) != 16:
        raise ConfigurationError(f"a digital word has 16 channel names, not {len(names)}")
    return names


def _anunit(channel: AnalogChannel) -> bytes:
    if not -(1 << 23) <= channel.scale < (1 << 23) or not 0 <= channel.kind <= 0xFF:
        raise ConfigurationError(f"ANUNIT ({channel.kind}, {channel.scale}) does not fit")
    return bytes([channel.kind]) + channel.scale.to_bytes(3, "big", signed=True)


def _fnom(fnom: int) -> int:
    if fnom not in (50, 60):
        raise ConfigurationError(f"FNOM {fnom} is neither 50 nor 60 Hz")
    return 1 if fnom == 50 else 0


def _rate(data_rate: int) -> bytes:
    if not -32768 <= data_rate <= 32767:
        raise ConfigurationError(f"DATA_RATE {data_rate} does not fit 16 bits")
    return _I16.pack(data_rate)


# ------------------------------------------------------------------------------------ CFG-3


def parse_cfg3_fragment(data: bytes) -> Cfg3Fragment:
    """One CFG-3 frame: CONT_IDX and the bytes after it."""
    kind, version, stamp = check_frame(data)
    _expect(kind, FrameType.CFG3)
    end = len(data) - CHK_SIZE
    _need(data, HEADER_SIZE, 2, end, "CONT_IDX")
    index = _U16.unpack_from(data, HEADER_SIZE)[0]
    return Cfg3Fragment(stamp, index, bytes(data[HEADER_SIZE + 2 : end]), version)


class _Reader:
    """Bounds-checked reads over a CFG-3 body."""

    __slots__ = ("data", "offset")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.offset = 0

    def take(self, count: int, what: str) -> bytes:
        end = self.offset + count
        if end > len(self.data):
            raise FrameError(
                f"CFG-3 {what} needs {count} bytes at offset {self.offset}; "
                f"the configuration ends at {len(self.data)}"
            )
        chunk = self.data[self.offset : end]
        self.offset = end
        return chunk

    def unpack(self, layout: struct.Struct, what: str) -> tuple:
        return layout.unpack(self.take(layout.size, what))

    def name(self, what: str) -> str:
        length = self.take(1, what)[0]
        return self.take(length, what).decode("utf-8", errors="replace")

    def left(self) -> int:
        return len(self.data) - self.offset


def parse_cfg3_body(stamp: Stamp, body: bytes, version: int = VERSION_2011) -> ConfigFrame:
    """A CFG-3 configuration from the joined bytes after CONT_IDX of all its fragments."""
    reader = _Reader(body)
    time_word, num_pmu = reader.unpack(struct.Struct(">IH"), "TIME_BASE/NUM_PMU")
    # A CFG-3 PMU block (Table 10) is at least STN 1 + IDCODE 2 + G_PMU_ID 16 + FORMAT and the
    # three counts 8 + LAT/LON/ELEV 12 + SVC_CLASS 1 + WINDOW 4 + GRP_DLY 4 + FNOM 2 + CFGCNT 2
    # = 52 bytes.
    if num_pmu == 0 or num_pmu * 52 > reader.left():
        raise FrameError(f"NUM_PMU {num_pmu} does not fit a {len(body)}-byte CFG-3")
    pmus = []
    for number in range(num_pmu):
        station = reader.name(f"PMU {number + 1} STN")
        idcode = _pmu_idcode(_U16.unpack(reader.take(2, "IDCODE"))[0])
        global_id = uuid.UUID(bytes=reader.take(16, "G_PMU_ID"))
        fmt, phnmr, annmr, dgnmr = struct.unpack(">HHHH", reader.take(8, "FORMAT/counts"))
        # Each name is at least its length byte, each channel has 12/8/4 bytes of scaling; then
        # the 25-byte tail (LAT .. CFGCNT) and, after the last block, the 2-byte DATA_RATE.
        least = phnmr * 13 + annmr * 9 + dgnmr * 20 + _CFG3_PMU_TAIL.size + 2
        if least > reader.left():
            raise FrameError(
                f"PMU {idcode}: PHNMR {phnmr} / ANNMR {annmr} / DGNMR {dgnmr} "
                f"do not fit the {reader.left()} bytes left"
            )
        labels = [reader.name("CHNAM") for _ in range(phnmr + annmr + 16 * dgnmr)]
        phasors = []
        for i in range(phnmr):
            modification, kind_byte, user, factor, offset = reader.unpack(_PHSCALE, "PHSCALE")
            phasors.append(
                PhasorChannel(
                    labels[i],
                    bool(kind_byte & 0x08),
                    1,
                    kind_byte & 0x07,
                    modification,
                    user,
                    factor,
                    offset,
                )
            )
        analogs = []
        for i in range(annmr):
            factor, offset = reader.unpack(_ANSCALE, "ANSCALE")
            analogs.append(AnalogChannel(labels[phnmr + i], 0, 1, factor, offset))
        masks = [reader.unpack(_DIGUNIT, "DIGUNIT") for _ in range(dgnmr)]
        digitals = _digital_words(labels[phnmr + annmr :], masks)
        lat, lon, elev, svc, window, delay, fnom_word, cfgcnt = reader.unpack(
            _CFG3_PMU_TAIL, "PMU_LAT..CFGCNT"
        )
        pmus.append(
            PmuConfig(
                station,
                idcode,
                fmt & 0xF,
                phasors,
                analogs,
                digitals,
                50 if fnom_word & 1 else 60,
                cfgcnt,
                global_id,
                lat,
                lon,
                elev,
                svc.decode("ascii", errors="replace"),
                window,
                delay,
            )
        )
    data_rate = _I16.unpack(reader.take(2, "DATA_RATE"))[0]
    if reader.left():
        raise FrameError(f"CFG-3 has {reader.left()} bytes beyond DATA_RATE")
    _time_base(time_word)
    return ConfigFrame(
        stamp, pmus, time_word & 0xFFFFFF, data_rate, FrameType.CFG3, time_word >> 24, version
    )


def _name_bytes(name: str, what: str) -> bytes:
    raw = name.encode("utf-8")
    if len(raw) > 255:
        raise ConfigurationError(f"{what} {name[:20]!r}... is longer than 255 bytes")
    return bytes([len(raw)]) + raw


def cfg3_body(frame: ConfigFrame) -> bytes:
    """The CFG-3 configuration bytes (what follows CONT_IDX, joined over all fragments)."""
    parts = [struct.pack(">IH", _time_word(frame), _count(len(frame.pmus), "NUM_PMU"))]
    for pmu in frame.pmus:
        parts.append(_name_bytes(pmu.station, "station name"))
        head = _pmu_head(pmu)
        parts.append(head[:2] + pmu.global_id.bytes + head[2:])
        parts.extend(_name_bytes(name, "channel name") for name in _channel_names(pmu))
        for channel in pmu.phasors:
            kind_byte = (0x08 if channel.is_current else 0) | (channel.component & 0x07)
            parts.append(
                _PHSCALE.pack(
                    channel.modification & 0xFFFF,
                    kind_byte,
                    channel.user & 0xFF,
                    channel.factor,
                    channel.angle_offset,
                )
            )
        for analog in pmu.analogs:
            parts.append(_ANSCALE.pack(analog.factor, analog.offset))
        parts.extend(_DIGUNIT.pack(word.normal, word.valid) for word in pmu.digitals)
        svc = pmu.service_class.encode("ascii", errors="replace")[:1] or b"P"
        parts.append(
            _CFG3_PMU_TAIL.pack(
                pmu.latitude,
                pmu.longitude,
                pmu.elevation,
                svc,
                pmu.window,
                pmu.group_delay,
                _fnom(pmu.fnom),
                pmu.cfgcnt,
            )
        )
    parts.append(_rate(frame.data_rate))
    return b"".join(parts)


def build_cfg3(frame: ConfigFrame, max_frame: int = MAX_FRAME) -> list[bytes]:
    """CFG-3 frames: one (CONT_IDX 0) when it fits ``max_frame`` bytes, otherwise fragments
    numbered 1, 2, ... with the last one marked 0xFFFF."""
    body = cfg3_body(frame)
    room = max_frame - HEADER_SIZE - 2 - CHK_SIZE
    if room < 1:
        raise ConfigurationError(f"max_frame {max_frame} leaves no room for a CFG-3 fragment")
    if len(body) <= room:
        return [seal(FrameType.CFG3, frame.version, frame.stamp, _U16.pack(0) + body)]
    chunks = [body[i : i + room] for i in range(0, len(body), room)]
    if len(chunks) > 65534:
        raise ConfigurationError("CFG-3 needs more than 65534 fragments")
    frames = []
    for number, chunk in enumerate(chunks, start=1):
        index = 0xFFFF if number == len(chunks) else number
        frames.append(seal(FrameType.CFG3, frame.version, frame.stamp, _U16.pack(index) + chunk))
    return frames
