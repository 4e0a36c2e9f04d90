"""C37.118 configurations and data as STTP signals, metadata and measurements, and back.

Conventions (those of openPDC and the IEEE 2664 metadata its publishers serve):

- One DeviceDetail row per PMU block (Acronym from the station name, AccessID = the PMU's
  IDCODE, ProtocolName ``IEEE C37.118.2-2011``, FramesPerSecond = DATA_RATE, CFG-3 latitude and
  longitude); a stream with several PMU blocks adds a concentrator row (IsConcentrator) that the
  PMUs name as ParentAcronym.
- One PhasorDetail row per phasor channel: Label = channel name, Type ``V`` / ``I``, Phase from
  the CFG-3 component (``+ - 0 A B C``) or, for CFG-1/2, from the channel name (``VA``, ``I_B``,
  ``V1+``), positive sequence otherwise; SourceIndex counts from 1.
- One MeasurementDetail row per signal, signal types FREQ, DFDT, VPHM / VPHA, IPHM / IPHA, ALOG,
  DIGI, FLAG (the STAT word: the deployed type for "status flags"; STAT is the deployed type of a
  *statistic*) and QUAL (the FRACSEC time-quality byte); signal references
  ``ACRONYM-FQ``, ``-DF``, ``-PM1``, ``-PA1``, ``-AV1``, ``-DV1``, ``-SF``, ``-QF``; point tags
  in openPDC's classic default form (``DefaultPointTagNameExpression``
  ``{CompanyAcronym}_{DeviceAcronym}[?{SignalType.Source}=Phasor[-{SignalType.Suffix}
  {SignalIndex}]]:{VendorAcronym}{SignalType.Abbreviation}[?{SignalType.Source}!=Phasor
  [?{SignalIndex}!=-1[{SignalIndex}]]]`` with its SignalType table, no vendor acronym):
  ``CO_ACRONYM-PM1:V``, ``-PA1:VH``, ``-PM2:I``, ``-PA2:IH``, ``CO_ACRONYM:F``, ``:DF``,
  ``:AV1``, ``:DV1``, ``:S``, ``:QF``; signal IDs are UUIDv5 of the node and signal reference,
  so a restart or reconnection keeps them.

Values: phasors become magnitude and angle in degrees (rectangular ones through hypot/atan2),
integer data scaled by PHUNIT (10^-5 per bit) or the CFG-3 factor, integer FREQ is nominal +
mHz, integer DFREQ is 0.01 Hz/s, the integer "missing" code -32768 becomes NaN.

CFG-3 scaling (C37.118.2-2011 Table 10), decided as follows: the PHSCALE magnitude factor and
the ANSCALE factor convert *integer* data to engineering units, as CFG-2's PHUNIT / ANUNIT do
(floating-point data is in engineering units already, so no factor applies to it). The PHSCALE
angle adjustment and the ANSCALE offset correct the *measurement*, whatever its representation:
they apply to integer and floating-point data alike (angle + adjustment in degrees, not wrapped
to +-180; analog x factor + offset, or float analog + offset).

STAT <-> STTP state flags (every measurement of the PMU block carries them; the FLAG signal
carries the exact STAT word, so nothing is lost either way):

=========================================  ==============================================
STAT                                       STTP state flags
=========================================  ==============================================
data error 01 (PMU error, no information)  SuspectData (0x2)
data error 10 (test mode / absent data)    BadData | SuspectData (0x3)
data error 11 (PMU error, do not use)      BadData (0x1)
bit 13 PMU sync lost                       BadTime (0x10000)
bit 12 data sorted by arrival              UserDefinedFlag2 (0x2000000)
bit 11 PMU trigger                         UserDefinedFlag1 (0x1000000)
bit 10 configuration change pending        SystemWarning (0x40000000)
bit 9 data modified                        CalculatedValue (0x1000)
PMU TQ 7, unlocked time, FRACSEC TQ >= 10  SuspectTime (0x20000) (not mapped back)
FRACSEC TQ 15 (clock failure)              BadTime (0x10000)
=========================================  ==============================================

Time: ticks = Unix epoch + SOC seconds + FRACSEC / TIME_BASE (rounded to the 100 ns tick).
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from itertools import repeat
from operator import itemgetter
from typing import Any

from gridbind.c37118.constants import (
    CLOCK_FAILURE,
    COMPONENT_A,
    COMPONENT_B,
    COMPONENT_C,
    COMPONENT_NEGATIVE,
    COMPONENT_POSITIVE,
    COMPONENT_ZERO,
    DATA_GOOD,
    DATA_INVALID,
    DATA_PMU_ERROR,
    DATA_TEST_MODE,
    FRACSEC_MASK,
    PMU_TQ_WORST,
    TIME_WITHIN_1S,
    Format,
    FrameType,
    Stat,
)
from gridbind.c37118.frames import ConfigFrame, PmuConfig, Stamp
from gridbind.c37118.layout import DataLayout
from gridbind.sttp.measurement import TICKS_PER_SECOND, UNIX_EPOCH_TICKS, Measurement

# Deployed STTP MeasurementStateFlags bits used here (gridbind.sttp has no full-flags enum yet).
BAD_DATA = 0x0000_0001
SUSPECT_DATA = 0x0000_0002
CALCULATED_VALUE = 0x0000_1000
BAD_TIME = 0x0001_0000
SUSPECT_TIME = 0x0002_0000
USER_FLAG_1 = 0x0100_0000
USER_FLAG_2 = 0x0200_0000
SYSTEM_WARNING = 0x4000_0000

PROTOCOL_NAME = "IEEE C37.118.2-2011"
#: Namespace of the deterministic signal IDs (UUIDv5 of "node/signal reference").
SIGNAL_NAMESPACE = uuid.UUID("6f1b7c52-3a0e-5d1e-9c37-118201100000")
_DEGREES = 180.0 / math.pi
#: STTP flags of STAT data error DATA_GOOD, DATA_PMU_ERROR, DATA_TEST_MODE, DATA_INVALID (0..3)
_DATA_ERROR_FLAGS = (0, SUSPECT_DATA, BAD_DATA | SUSPECT_DATA, BAD_DATA)


# ----------------------------------------------------------------------------------- flags


def stat_flags(stat: int, quality: int = 0) -> int:
    """STTP state flags of a PMU block's STAT word and the frame's FRACSEC quality byte."""
    flags = _DATA_ERROR_FLAGS[(stat >> 14) & 3]
    if stat & Stat.SYNC_LOST:
        flags |= BAD_TIME
    if stat & Stat.SORTED_BY_ARRIVAL:
        flags |= USER_FLAG_2
    if stat & Stat.TRIGGER:
        flags |= USER_FLAG_1
    if stat & Stat.CONFIG_CHANGE:
        flags |= SYSTEM_WARNING
    if stat & Stat.DATA_MODIFIED:
        flags |= CALCULATED_VALUE
    code = quality & 0x0F
    if code == CLOCK_FAILURE:
        flags |= BAD_TIME
    elif (
        code >= TIME_WITHIN_1S
        or (stat & Stat.TIME_QUALITY_MASK) >> 6 == PMU_TQ_WORST
        or stat & Stat.UNLOCKED_MASK
    ):
        flags |= SUSPECT_TIME
    return flags


def flags_stat(flags: int) -> int:
    """The STAT word standing for STTP state flags (the inverse of :func:`stat_flags` for every
    bit it maps back; time-quality fields stay 0)."""
    bad, suspect = bool(flags & BAD_DATA), bool(flags & SUSPECT_DATA)
    if bad:
        error = DATA_INVALID if not suspect else DATA_TEST_MODE
    else:
        error = DATA_PMU_ERROR if suspect else DATA_GOOD
    stat = error << 14
    if flags & BAD_TIME:
        stat |= Stat.SYNC_LOST
    if flags & USER_FLAG_2:
        stat |= Stat.SORTED_BY_ARRIVAL
    if flags & USER_FLAG_1:
        stat |= Stat.TRIGGER
    if flags & SYSTEM_WARNING:
        stat |= Stat.CONFIG_CHANGE
    if flags & CALCULATED_VALUE:
        stat |= Stat.DATA_MODIFIED
    return int(stat)


# ------------------------------------------------------------------------------------ time


def stamp_ticks(soc: int, fracsec: int, time_base: int) -> int:
    """STTP ticks of SOC + FRACSEC / TIME_BASE (to the nearest 100 ns)."""
    fraction = fracsec & FRACSEC_MASK
    return (
        UNIX_EPOCH_TICKS
        + soc * TICKS_PER_SECOND
        + (fraction * TICKS_PER_SECOND + time_base // 2) // time_base
    )


def ticks_stamp(ticks: int, time_base: int, quality: int = 0) -> tuple[int, int]:
    """``(SOC, FRACSEC)`` of STTP ticks (FRACSEC's top byte is ``quality``)."""
    relative = ticks - UNIX_EPOCH_TICKS
    soc, rest = divmod(relative, TICKS_PER_SECOND)
    fraction = (rest * time_base + TICKS_PER_SECOND // 2) // TICKS_PER_SECOND
    if fraction >= time_base:
        soc, fraction = soc + 1, fraction - time_base
    return soc, ((quality & 0xFF) << 24) | fraction


# --------------------------------------------------------------------------------- signals

_SUFFIX = {
    "FREQ": "FQ",
    "DFDT": "DF",
    "VPHM": "PM",
    "IPHM": "PM",
    "VPHA": "PA",
    "IPHA": "PA",
    "ALOG": "AV",
    "DIGI": "DV",
    "FLAG": "SF",
    "QUAL": "QF",
}
#: openPDC SignalType.Abbreviation (the point tag's last part).
_ABBREVIATION = {
    "FREQ": "F",
    "DFDT": "DF",
    "VPHM": "V",
    "VPHA": "VH",
    "IPHM": "I",
    "IPHA": "IH",
    "ALOG": "AV",
    "DIGI": "DV",
    "FLAG": "S",
    "QUAL": "QF",
}
_UNITS = {"FREQ": "Hz", "DFDT": "Hz/s", "VPHM": "Volts", "IPHM": "Amps"}
_COMPONENT_PHASE = {
    COMPONENT_ZERO: "0",
    COMPONENT_POSITIVE: "+",
    COMPONENT_NEGATIVE: "-",
    COMPONENT_A: "A",
    COMPONENT_B: "B",
    COMPONENT_C: "C",
}
#: PhasorDetail Phase -> CFG-3 component code (the inverse of the table above).
COMPONENT_PHASE_CODES = {phase: code for code, phase in _COMPONENT_PHASE.items()}
_PHASE_NAME = re.compile(r"(?:^[VI]|[\s_.\-]|PH)([ABC])$|^[VI]([ABC])(?:[\s_.\-]|$)")
_ACRONYM_CHARS = re.compile(r"[^A-Z0-9_!\-]+")
#: Characters XML 1.0 cannot carry (names come from the device: its metadata must still be XML).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")


def printable(name: str) -> str:
    """A device-sent name with the characters metadata XML cannot carry replaced by ``?``."""
    return _NOT_XML.sub("?", name).strip()


def phase_of(name: str, component: int | None = None) -> str:
    """Phase designation of a phasor: the CFG-3 component, else read from the channel name."""
    if component is not None and component in _COMPONENT_PHASE:
        return _COMPONENT_PHASE[component]
    upper = name.strip().upper()
    match = _PHASE_NAME.search(upper)
    if match:
        return match.group(1) or match.group(2)
    if upper.endswith(("-", "NEG", "NEGATIVE")):
        return "-"
    if upper.endswith(("0", "ZERO")):
        return "0"
    return "+"


def acronym_of(station: str, fallback: str) -> str:
    """An openPDC-style device acronym (upper case, ``A-Z 0-9 _ ! -``) from a station name."""
    text = _ACRONYM_CHARS.sub("_", station.strip().upper()).strip("_")
    return text or fallback


@dataclass(slots=True)
class Signal:
    """One STTP signal of the stream: where its value comes from and how it is described."""

    signal_id: uuid.UUID
    kind: str  # SignalAcronym: FREQ, DFDT, VPHM, VPHA, IPHM, IPHA, ALOG, DIGI, FLAG, QUAL
    device: str
    index: int  # 1-based channel index (0 for FREQ / DFDT / FLAG / QUAL)
    reference: str
    point_tag: str
    channel: str = ""
    phase: str = ""
    pmu: int = 0  # position of the PMU block


@dataclass(slots=True)
class Device:
    """One PMU block as an STTP device: its acronym, configuration and concentrator."""

    acronym: str
    pmu: PmuConfig
    parent: str = ""


class StreamMapping:
    """The STTP view of one C37.118 configuration: signals, metadata and a fast converter.

    Args:
        config: the stream's CFG-2 or CFG-3.
        company: company acronym of point tags and DeviceDetail.
        source: the measurement-key source (``SOURCE:n``; openPDC's default is ``PPA``).
        node_id: the publishing node (DeviceDetail.NodeID, part of signal IDs).
        concentrator: acronym of the stream itself when it carries several PMU blocks.
        updated_on: the UpdatedOn of every row (defaults to now, whole seconds).
    """

    def __init__(
        self,
        config: ConfigFrame,
        *,
        company: str = "GB",
        source: str = "PPA",
        node_id: uuid.UUID | None = None,
        concentrator: str = "",
        updated_on: datetime | None = None,
    ) -> None:
        self.config = config
        self.company = company
        self.source = source
        self.node_id = node_id or uuid.UUID(int=0)
        self.updated_on = updated_on or datetime.now(UTC).replace(microsecond=0)
        self.layout = DataLayout(config)
        self.concentrator = ""
        if len(config.pmus) > 1:
            self.concentrator = concentrator or f"PDC{config.stamp.idcode}"
        self.devices: list[Device] = []
        seen: set[str] = {self.concentrator}
        for number, pmu in enumerate(config.pmus, start=1):
            base = acronym = acronym_of(pmu.station, f"PMU{pmu.idcode}")
            if acronym in seen:  # acronyms (and so signal IDs) must be unique in the stream
                acronym = f"{base}_{pmu.idcode}"
            suffix = number
            while acronym in seen:  # another station may be named like a made-up acronym
                acronym = f"{base}_{pmu.idcode}_{suffix}"
                suffix += 1
            seen.add(acronym)
            self.devices.append(Device(acronym, pmu, self.concentrator))
        self.signals: list[Signal] = []
        self._compile()

    # -- signals and the converter
    def _signal(self, kind: str, device: Device, position: int, index: int, **extra: Any) -> Signal:
        suffix = _SUFFIX[kind]
        reference = f"{device.acronym}-{suffix}{index or ''}"
        prefix = f"{self.company}_" if self.company else ""
        if kind[1:3] == "PH":  # SignalType.Source "Phasor": the index goes before the colon
            tag = f"{prefix}{device.acronym}-{suffix}{index}:{_ABBREVIATION[kind]}"
        else:
            tag = f"{prefix}{device.acronym}:{_ABBREVIATION[kind]}{index or ''}"
        signal = Signal(
            uuid.uuid5(SIGNAL_NAMESPACE, f"{self.node_id}/{reference}"),
            kind,
            device.acronym,
            index,
            reference,
            tag,
            pmu=position,
            **extra,
        )
        self.signals.append(signal)
        return signal

    def _compile(self) -> None:
        """Per signal: which field, which scale and offset; rectangular phasors and missing
        integer values are the only non-linear cases."""
        indexes: list[int] = []
        scales: list[float] = []
        offsets: list[float] = []
        # (output position, first field, scale, integer format, angle adjustment in degrees) of
        # rectangular phasors
        self._rect: list[tuple[int, int, float, bool, float]] = []
        signed: list[int] = []  # output positions of signed integer fields (-32768: missing)
        quality_slot = self.layout.field_count  # QUAL reads the FRACSEC byte appended there
        counts = []
        for position, (device, slot) in enumerate(
            zip(self.devices, self.layout.slots, strict=True)
        ):
            pmu = device.pmu
            fmt = pmu.format
            cfg3 = self.config.kind == FrameType.CFG3
            start = len(self.signals)
            self._signal("FREQ", device, position, 0)
            self._signal("DFDT", device, position, 0)
            if fmt & Format.FREQ_FLOAT:
                indexes += [slot.freq, slot.freq + 1]
                scales += [1.0, 1.0]
                offsets += [0.0, 0.0]
            else:
                signed += [len(indexes), len(indexes) + 1]
                indexes += [slot.freq, slot.freq + 1]
                scales += [0.001, 0.01]
                offsets += [float(pmu.fnom), 0.0]
            for number, channel in enumerate(pmu.phasors, start=1):
                kind = "I" if channel.is_current else "V"
                phase = phase_of(channel.name, channel.component if cfg3 else None)
                name = printable(channel.name)
                self._signal(f"{kind}PHM", device, position, number, channel=name, phase=phase)
                self._signal(f"{kind}PHA", device, position, number, channel=name, phase=phase)
                first = slot.phasors + 2 * (number - 1)
                integer = not fmt & Format.PHASOR_FLOAT
                if not integer:
                    scale = 1.0
                else:
                    scale = channel.factor if cfg3 else channel.scale * 1e-5
                adjust = channel.angle_offset * _DEGREES if cfg3 else 0.0
                if fmt & Format.POLAR:
                    angle = 1e-4 * _DEGREES if integer else _DEGREES
                    if integer:
                        signed.append(len(indexes) + 1)  # the magnitude is unsigned
                    indexes += [first, first + 1]
                    scales += [scale, angle]
                    offsets += [0.0, adjust]
                else:
                    out = len(indexes)
                    self._rect.append((out, first, scale, integer, adjust))
                    indexes += [first, first + 1]
                    scales += [0.0, 0.0]
                    offsets += [0.0, 0.0]
            for number, analog in enumerate(pmu.analogs, start=1):
                self._signal("ALOG", device, position, number, channel=printable(analog.name))
                indexes.append(slot.analogs + number - 1)
                if fmt & Format.ANALOG_FLOAT:
                    scales.append(1.0)
                    offsets.append(analog.offset if cfg3 else 0.0)
                else:
                    signed.append(len(indexes) - 1)
                    scales.append(analog.factor if cfg3 else float(analog.scale))
                    offsets.append(analog.offset if cfg3 else 0.0)
            for number, word in enumerate(pmu.digitals, start=1):
                names = ",".join(printable(name) for name in word.names)
                self._signal("DIGI", device, position, number, channel=names)
                indexes.append(slot.digitals + number - 1)
                scales.append(1.0)
                offsets.append(0.0)
            self._signal("FLAG", device, position, 0)
            indexes.append(slot.stat)
            scales.append(1.0)
            offsets.append(0.0)
            self._signal("QUAL", device, position, 0)
            indexes.append(quality_slot)
            scales.append(1.0)
            offsets.append(0.0)
            counts.append(len(self.signals) - start)
        self._get = itemgetter(*indexes) if len(indexes) > 1 else (lambda v: (v[indexes[0]],))
        self._scales = scales
        self._int_positions = signed
        self._offsets = offsets
        self._ids = [signal.signal_id for signal in self.signals]
        self._counts = counts
        self._stat_slots = [slot.stat for slot in self.layout.slots]
        self._flags_cache: dict[tuple[int, int], int] = {}

    def measurements(self, stamp: Stamp, values: tuple) -> list[Measurement]:
        """The measurements of one parsed data frame (see :meth:`DataLayout.unpack`)."""
        quality = stamp.fracsec >> 24
        ticks = stamp_ticks(stamp.soc, stamp.fracsec, self.config.time_base)
        full = values + (quality,)
        raws = self._get(full)
        out = [r * s + o for r, s, o in zip(raws, self._scales, self._offsets, strict=True)]
        if self._int_positions and -32768 in raws:
            for position in self._int_positions:
                if raws[position] == -32768:
                    out[position] = math.nan
        for position, first, scale, integer, adjust in self._rect:
            real, imaginary = full[first], full[first + 1]
            if integer and (real == -32768 or imaginary == -32768):
                out[position] = out[position + 1] = math.nan
                continue
            real *= scale
            imaginary *= scale
            out[position] = math.hypot(real, imaginary)
            out[position + 1] = math.atan2(imaginary, real) * _DEGREES + adjust
        cache = self._flags_cache
        stats = [full[slot] for slot in self._stat_slots]
        if not any(stats) and quality == 0:
            flags_iter: Iterable[int] = repeat(0)
        else:
            flags_list: list[int] = []
            for stat, count in zip(stats, self._counts, strict=True):
                key = (stat, quality)
                flags = cache.get(key)
                if flags is None:
                    flags = stat_flags(stat, quality)
                    if len(cache) < 4096:
                        cache[key] = flags
                flags_list.extend(repeat(flags, count))
            flags_iter = flags_list
        return [
            Measurement(signal, value, ticks, flags)
            # flags_iter may be an endless repeat(0)
            for signal, value, flags in zip(self._ids, out, flags_iter, strict=False)
        ]

    # -- metadata
    def metadata(self) -> Any:
        """The IEEE 2664 publisher metadata (DeviceDetail, MeasurementDetail, PhasorDetail)."""
        from gridbind.sttp.ieee2664.metadata import empty_source_metadata

        metadata = empty_source_metadata()
        devices = metadata["DeviceDetail"]
        rate = self.config.data_rate if self.config.data_rate > 0 else 1
        moment = self.updated_on
        if self.concentrator:
            devices.add(
                NodeID=self.node_id,
                UniqueID=uuid.uuid5(SIGNAL_NAMESPACE, f"{self.node_id}/{self.concentrator}"),
                IsConcentrator=True,
                Acronym=self.concentrator,
                Name=self.concentrator,
                AccessID=self.config.stamp.idcode,
                ProtocolName=PROTOCOL_NAME,
                FramesPerSecond=rate,
                CompanyAcronym=self.company,
                Enabled=True,
                UpdatedOn=moment,
            )
        for device in self.devices:
            pmu = device.pmu
            devices.add(
                NodeID=self.node_id,
                UniqueID=uuid.uuid5(SIGNAL_NAMESPACE, f"{self.node_id}/{device.acronym}"),
                OriginalSource=None,
                IsConcentrator=False,
                Acronym=device.acronym,
                Name=printable(pmu.station) or device.acronym,
                AccessID=pmu.idcode,
                ParentAcronym=device.parent or None,
                ProtocolName=PROTOCOL_NAME,
                FramesPerSecond=rate,
                CompanyAcronym=self.company,
                Longitude=_decimal(pmu.longitude),
                Latitude=_decimal(pmu.latitude),
                Enabled=True,
                UpdatedOn=moment,
            )
        phasors = metadata["PhasorDetail"]
        measurements = metadata["MeasurementDetail"]
        phasor_id = 0
        for number, signal in enumerate(self.signals, start=1):
            if signal.kind in ("VPHM", "IPHM"):
                phasor_id += 1
                phasors.add(
                    ID=phasor_id,
                    DeviceAcronym=signal.device,
                    Label=signal.channel,
                    Type=signal.kind[0],
                    Phase=signal.phase,
                    DestinationPhasorID=None,
                    SourceIndex=signal.index,
                    UpdatedOn=moment,
                )
            measurements.add(
                DeviceAcronym=signal.device,
                ID=f"{self.source}:{number}",
                SignalID=signal.signal_id,
                PointTag=signal.point_tag,
                SignalReference=signal.reference,
                SignalAcronym=signal.kind,
                PhasorSourceIndex=signal.index if signal.kind[1:3] == "PH" else None,
                Description=_description(signal),
                Internal=True,
                Enabled=True,
                UpdatedOn=moment,
            )
        return metadata

    def data_point_rows(self) -> list[dict[str, Any]]:
        """DataPoint rows (the draft profile's Appendix F template) of the same signals."""
        rows = []
        for position, signal in enumerate(self.signals):
            rows.append(
                {
                    "PointID": signal.signal_id,
                    "PointTag": signal.point_tag,
                    "Description": _description(signal),
                    "SignalReference": signal.reference,
                    "Signal Type": signal.kind,
                    "Phase Designation": signal.phase or None,
                    "Engineering Units": _UNITS.get(signal.kind[:1] + signal.kind[1:])
                    or ("Degrees" if signal.kind.endswith("PHA") else None),
                    "Channel Name": signal.channel or None,
                    "DataType": "SINGLE",
                    "PositionIndex": position,
                }
            )
        return rows


def _decimal(value: float) -> Decimal | None:
    if value is None or math.isnan(value) or math.isinf(value):
        return None
    return Decimal(repr(float(value)))


def _description(signal: Signal) -> str:
    text = f"{signal.device} {signal.kind}"
    if signal.index:
        text += f" {signal.index}"
    if signal.channel:
        text += f" ({signal.channel[:64]})"
    return text
