"""STTP -> C37.118: a configuration made from STTP metadata, and frames from measurements.

:class:`OutboundPlan` reads the IEEE 2664 metadata a subscription received (DeviceDetail,
MeasurementDetail, PhasorDetail, the conventions of :mod:`gridbind.c37118.mapping`) and makes
one PMU block per device: FREQ / DFDT, one phasor per PhasorDetail (magnitude + angle signals
paired by PhasorSourceIndex), ALOG, DIGI, and the FLAG (STAT) / QUAL signals when present.

:class:`FrameAssembler` collects measurements by timestamp and emits a frame when every signal
of that timestamp arrived, or, incomplete, once ``lag`` newer timestamps are pending (missing
values are NaN / -32768 and that PMU's STAT says "absent data inserted"). At most ``lag`` + 1
timestamps are pending: the memory a publisher can make it hold is bounded. ``incomplete``
counts frames sent with missing values, ``lost`` timestamps that never arrived at all,
``unservable`` frames whose time SOC cannot carry.

Like openPDC's concentrator ``LeadTime``, a measurement more than ``lead_time`` seconds ahead
of the local clock (``now``, in ticks; without one, of the newest frame sent) is refused and
counted in ``future``: a publisher's clock error cannot make every later frame "late". Should
the stream still fall behind the newest frame sent (the local clock stepped back), ``resync``
consecutive late timestamps make the assembler start again from the stream's time.

Decisions: phasors are always sent as floating point (FORMAT bit 1), polar unless ``format``
asks for rectangular; analogs and FREQ / DFREQ follow ``format`` (integer FREQ is mHz off
nominal, integer DFREQ 0.01 Hz/s, integer analogs unscaled). STAT is the FLAG signal's value
when the stream has one, otherwise :func:`~gridbind.c37118.mapping.flags_stat` of the PMU's
frequency flags; the FRACSEC quality byte is the QUAL signal's value (or 0).
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from gridbind.c37118.constants import DATA_TEST_MODE, Format, FrameType
from gridbind.c37118.errors import ConfigurationError
from gridbind.c37118.frames import (
    AnalogChannel,
    ConfigFrame,
    DigitalWord,
    PhasorChannel,
    PmuConfig,
    Stamp,
)
from gridbind.c37118.layout import DataLayout
from gridbind.c37118.mapping import COMPONENT_PHASE_CODES, flags_stat, ticks_stamp
from gridbind.sttp.measurement import TICKS_PER_SECOND, Measurement

_INDEX = re.compile(r"-[A-Z]{2}(\d{1,9})$")
_RADIANS = math.pi / 180.0
#: Measurement roles in a PMU block.
FREQ, DFDT, MAG, ANG, ANALOG, DIGITAL, FLAG, QUAL = range(8)


@dataclass(slots=True)
class Target:
    """Where one signal's value goes: PMU block, role and channel number (0-based)."""

    pmu: int
    role: int
    channel: int = 0


def _reference_index(reference: str | None, fallback: int) -> int:
    match = _INDEX.search((reference or "").upper())
    return int(match.group(1)) if match else fallback


def _as_int(value: Any) -> int:
    """A metadata cell as an int (0 when absent or not a number: metadata is a peer's input)."""
    try:
        return int(value or 0)
    except (TypeError, ValueError, OverflowError):
        return 0


def _word(value: Any, mask: int) -> int:
    """A measurement value as an unsigned word (0 when not a finite number)."""
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return 0
    return int(value) & mask


def _ascii16(text: str) -> str:
    return text.encode("ascii", "replace").decode("ascii")[:16]


def metadata_from_data_points(rows: Iterable[dict[str, Any]]) -> Any:
    """The IEEE 2664 metadata tables of draft-0.8 DataPoint rows (Appendix F template).

    The device is the signal reference before its last ``-`` (the deployed form the bridge
    writes, ``DEVICE-PA1``); phasors pair by the reference's index; the channel name and phase
    designation become the PhasorDetail label and phase.
    """
    from gridbind.sttp.ieee2664.metadata import empty_source_metadata

    metadata = empty_source_metadata()
    devices: dict[str, None] = {}
    phasors: set[tuple[str, int]] = set()
    for number, row in enumerate(rows, start=1):
        signal = row.get("PointID")
        if not isinstance(signal, uuid.UUID):
            continue
        kind = str(row.get("Signal Type") or "").upper()
        reference = str(row.get("SignalReference") or "")
        device = reference.rpartition("-")[0] or "PMU"
        devices.setdefault(device)
        index = _reference_index(reference, 0)
        if kind in ("VPHM", "IPHM") and (device, index) not in phasors:
            phasors.add((device, index))
            metadata["PhasorDetail"].add(
                ID=len(phasors),
                DeviceAcronym=device,
                Label=row.get("Channel Name") or f"{kind[0]}{index}",
                Type=kind[0],
                Phase=row.get("Phase Designation") or "+",
                SourceIndex=index,
            )
        metadata["MeasurementDetail"].add(
            DeviceAcronym=device,
            ID=f"DP:{number}",
            SignalID=signal,
            PointTag=row.get("PointTag"),
            SignalReference=reference,
            SignalAcronym=kind,
            PhasorSourceIndex=index if kind[1:3] == "PH" else None,
            Enabled=True,
        )
    for device in devices:
        metadata["DeviceDetail"].add(Acronym=device, Name=device, Enabled=True)
    return metadata


class OutboundPlan:
    """The C37.118 stream ``idcode`` made of an STTP metadata data set."""

    def __init__(
        self,
        metadata: Any,
        idcode: int,
        *,
        format: int = 0xF,
        time_base: int = 1_000_000,
        data_rate: int | None = None,
        fnom: int = 60,
        cfgcnt: int = 0,
    ) -> None:
        self.idcode = idcode
        self.format = (format | Format.PHASOR_FLOAT) & 0xF
        self.time_base = time_base
        self.fnom = fnom
        self.cfgcnt = cfgcnt
        devices = metadata.table("DeviceDetail")
        measurements = metadata.table("MeasurementDetail")
        phasor_table = metadata.table("PhasorDetail")
        device_rows = {
            row["Acronym"]: row
            for row in (devices.rows if devices else [])
            if row.get("Acronym") and not row.get("IsConcentrator")
        }
        phasor_rows = {
            (row.get("DeviceAcronym"), _as_int(row.get("SourceIndex"))): row
            for row in (phasor_table.rows if phasor_table else [])
        }
        by_device: dict[str, list[dict[str, Any]]] = {}
        for row in measurements.rows if measurements else []:
            if row.get("Enabled") is False or not row.get("DeviceAcronym"):
                continue
            by_device.setdefault(row["DeviceAcronym"], []).append(row)
        order = [name for name in device_rows if name in by_device]
        order += [name for name in by_device if name not in device_rows]
        if not order:
            raise ConfigurationError("the STTP metadata names no device with measurements")
        if len(order) > 6000:  # a data frame has >= 10 bytes per PMU block and <= 65535 bytes
            raise ConfigurationError(f"{len(order)} devices do not fit one C37.118 data frame")
        self.targets: dict[uuid.UUID, Target] = {}
        pmus: list[PmuConfig] = []
        # A device's IDCODE is its AccessID (the first device claiming one keeps it); devices
        # without a usable one get the next free IDCODE after the stream's own.
        claimed: dict[str, int] = {}
        used_ids: set[int] = set()
        for acronym in order:
            access = _as_int(device_rows.get(acronym, {}).get("AccessID"))
            if 1 <= access <= 65534 and access not in used_ids:
                claimed[acronym] = access
                used_ids.add(access)
        rate = data_rate
        for position, acronym in enumerate(order):
            device = device_rows.get(acronym, {})
            rows = by_device[acronym]
            pmu_id = claimed.get(acronym, 0)
            if not pmu_id:
                pmu_id = (idcode + position) % 65534 + 1
                while pmu_id in used_ids:  # at most 6000 devices: bounded
                    pmu_id = pmu_id % 65534 + 1
                used_ids.add(pmu_id)
            if rate is None and 0 < _as_int(device.get("FramesPerSecond")) <= 32767:
                rate = _as_int(device["FramesPerSecond"])
            pmus.append(self._pmu(position, acronym, device, pmu_id, rows, phasor_rows))
        self.config = ConfigFrame(Stamp(idcode), pmus, time_base, rate or 30, FrameType.CFG2)
        self.layout = DataLayout(self.config)
        self.expected = len(self.targets)
        #: per PMU, the (holder slot, channel) of every value a signal feeds: only those can be
        #: missing (a subscription of some of a device's signals leaves the others NaN for good)
        self.fed: list[list[tuple[int, int | None]]] = [[] for _ in pmus]
        for target in self.targets.values():
            slot = _ROLE_SLOT[target.role]
            if slot in (FREQ_SLOT, DFDT_SLOT):
                self.fed[target.pmu].append((slot, None))
            elif slot in (MAG_SLOT, ANG_SLOT, ANALOG_SLOT, DIGITAL_SLOT):
                self.fed[target.pmu].append((slot, target.channel))

    def _pmu(
        self,
        position: int,
        acronym: str,
        device: dict[str, Any],
        pmu_id: int,
        rows: list[dict[str, Any]],
        phasor_rows: dict[tuple[str, int], dict[str, Any]],
    ) -> PmuConfig:
        phasors: dict[int, dict[str, Any]] = {}
        analogs: list[tuple[int, dict[str, Any]]] = []
        digitals: list[tuple[int, dict[str, Any]]] = []
        for number, row in enumerate(rows, start=1):
            kind = (row.get("SignalAcronym") or "").upper()
            signal = row.get("SignalID")
            if not isinstance(signal, uuid.UUID):
                continue
            if kind == "FREQ":
                self.targets[signal] = Target(position, FREQ)
            elif kind == "DFDT":
                self.targets[signal] = Target(position, DFDT)
            elif kind in ("VPHM", "IPHM", "VPHA", "IPHA"):
                index = _as_int(row.get("PhasorSourceIndex")) or _reference_index(
                    row.get("SignalReference"), number
                )
                entry = phasors.setdefault(index, {"kind": kind[0]})
                entry["mag" if kind.endswith("M") else "ang"] = signal
            elif kind == "ALOG":
                analogs.append((_reference_index(row.get("SignalReference"), number), row))
            elif kind == "DIGI":
                digitals.append((_reference_index(row.get("SignalReference"), number), row))
            elif kind == "FLAG":
                self.targets[signal] = Target(position, FLAG)
            elif kind == "QUAL":
                self.targets[signal] = Target(position, QUAL)
        channels = []
        for channel, index in enumerate(sorted(phasors)):
            entry = phasors[index]
            detail = phasor_rows.get((acronym, index), {})
            label = detail.get("Label") or f"{entry['kind']}{index}"
            kind = (detail.get("Type") or entry["kind"]).upper()
            phase = detail.get("Phase") or "+"
            channels.append(
                PhasorChannel(_ascii16(label), kind == "I", 1, COMPONENT_PHASE_CODES.get(phase, 1))
            )
            for role, key in ((MAG, "mag"), (ANG, "ang")):
                if key in entry:
                    self.targets[entry[key]] = Target(position, role, channel)
        analog_channels = []
        for channel, (_, row) in enumerate(sorted(analogs, key=lambda item: item[0])):
            self.targets[row["SignalID"]] = Target(position, ANALOG, channel)
            name = (row.get("PointTag") or "").rpartition(":")[2] or f"A{channel + 1}"
            analog_channels.append(AnalogChannel(_ascii16(name), 0, 1))
        words = []
        for channel, (_, row) in enumerate(sorted(digitals, key=lambda item: item[0])):
            self.targets[row["SignalID"]] = Target(position, DIGITAL, channel)
            words.append(DigitalWord(tuple(f"D{channel + 1}_{bit}" for bit in range(16))))
        station = _ascii16(str(device.get("Name") or acronym))
        return PmuConfig(
            station,
            pmu_id,
            self.format,
            channels,
            analog_channels,
            words,
            self.fnom,
            self.cfgcnt & 0xFFFF,
        )

    # -- engineering values -> wire fields
    def frame_values(self, values: list[list[Any]], flags: list[int], missing: list[bool]) -> list:
        """Flat field list of one frame from per-PMU engineering values (see :class:`FrameAssembler`)."""
        out: list = []
        fmt = self.format
        for position, (pmu, slot) in enumerate(
            zip(self.config.pmus, self.layout.slots, strict=True)
        ):
            v = values[position]
            stat = v[FLAG_SLOT]
            if stat is None or (isinstance(stat, float) and math.isnan(stat)):
                stat = flags_stat(flags[position])
            stat = _word(stat, 0xFFFF)
            if missing[position]:
                stat = (stat & 0x3FFF) | (DATA_TEST_MODE << 14)
            out.append(stat)
            mags, angs = v[MAG_SLOT], v[ANG_SLOT]
            for channel in range(slot.phasor_count):
                mag, ang = mags[channel], angs[channel]
                if fmt & Format.POLAR:
                    out.append(mag)
                    out.append(ang * _RADIANS)
                else:
                    out.append(mag * math.cos(ang * _RADIANS))
                    out.append(mag * math.sin(ang * _RADIANS))
            freq, dfdt = v[FREQ_SLOT], v[DFDT_SLOT]
            if fmt & Format.FREQ_FLOAT:
                out.append(freq)
                out.append(dfdt)
            else:
                out.append(_int16((freq - pmu.fnom) * 1000.0))
                out.append(_int16(dfdt * 100.0))
            for value in v[ANALOG_SLOT]:
                out.append(value if fmt & Format.ANALOG_FLOAT else _int16(value))
            for value in v[DIGITAL_SLOT]:
                out.append(_word(value, 0xFFFF))
        return out

    def blank(self) -> list[list[Any]]:
        """Per-PMU value holders, every value missing."""
        nan = math.nan
        return [
            [
                nan,
                nan,
                [nan] * len(p.phasors),
                [nan] * len(p.phasors),
                [nan] * len(p.analogs),
                [nan] * len(p.digitals),
                None,
                None,
            ]
            for p in self.config.pmus
        ]


FREQ_SLOT, DFDT_SLOT, MAG_SLOT, ANG_SLOT, ANALOG_SLOT, DIGITAL_SLOT, FLAG_SLOT, QUAL_SLOT = range(8)
_ROLE_SLOT = {
    FREQ: FREQ_SLOT,
    DFDT: DFDT_SLOT,
    MAG: MAG_SLOT,
    ANG: ANG_SLOT,
    ANALOG: ANALOG_SLOT,
    DIGITAL: DIGITAL_SLOT,
    FLAG: FLAG_SLOT,
    QUAL: QUAL_SLOT,
}


def _int16(value: float) -> int:
    if math.isnan(value):
        return -32768
    if math.isinf(value):
        return 32767 if value > 0 else -32767
    return max(-32767, min(32767, round(value)))


class _Pending:
    __slots__ = ("filled", "flags", "seen", "values")

    def __init__(self, plan: OutboundPlan) -> None:
        self.values = plan.blank()
        self.flags = [0] * len(plan.config.pmus)
        self.filled = 0
        self.seen: set[uuid.UUID] = set()


class FrameAssembler:
    """Measurements in, whole C37.118 data frames (bytes) out, by timestamp."""

    def __init__(
        self, plan: OutboundPlan, lag: int = 2, lead_time: float = 5.0, resync: int = 30
    ) -> None:
        self.plan = plan
        self.lag = lag
        self.lead_ticks = round(lead_time * TICKS_PER_SECOND)
        self.resync = resync
        self.pending: dict[int, _Pending] = {}
        self.incomplete = 0
        self.late = 0
        self.future = 0
        self.resyncs = 0
        self.lost = 0
        self.unservable = 0
        self._last_emitted = -1
        self._late_stamps: set[int] = set()

    def add(self, measurements: Iterable[Measurement], now: int | None = None) -> list[bytes]:
        """Take measurements (``now``: the local clock in ticks); returns the frames they
        completed, oldest first."""
        plan = self.plan
        targets = plan.targets
        done: list[int] = []
        reference = now if now is not None else self._last_emitted
        horizon = reference + self.lead_ticks if reference >= 0 else None
        for m in measurements:
            target = targets.get(m.signal_id)
            if target is None:
                continue
            if horizon is not None and m.timestamp > horizon:
                self.future += 1
                continue
            if m.timestamp <= self._last_emitted:
                self.late += 1
                self._late_stamps.add(m.timestamp)
                if len(self._late_stamps) >= self.resync:
                    # The stream is consistently behind the newest frame sent: follow it.
                    self.resyncs += 1
                    self._last_emitted = -1
                    self._late_stamps.clear()
                continue
            self._late_stamps.clear()
            entry = self.pending.get(m.timestamp)
            if entry is None:
                entry = self.pending[m.timestamp] = _Pending(plan)
            if m.signal_id in entry.seen:
                continue
            entry.seen.add(m.signal_id)
            holder = entry.values[target.pmu]
            slot = _ROLE_SLOT[target.role]
            if slot in (MAG_SLOT, ANG_SLOT, ANALOG_SLOT, DIGITAL_SLOT):
                holder[slot][target.channel] = m.value
            else:
                holder[slot] = m.value
            if target.role == FREQ or (target.role != FLAG and not entry.flags[target.pmu]):
                entry.flags[target.pmu] = m.flags
            entry.filled += 1
            if entry.filled == plan.expected:
                done.append(m.timestamp)
        frames = []
        for stamp in sorted(done):
            # C37.118 frames go out in time order: older incomplete ones first.
            for older in sorted(t for t in self.pending if t < stamp):
                frames.append(self._emit(older))
            if stamp in self.pending:
                frames.append(self._emit(stamp))
        while len(self.pending) > self.lag:
            frames.append(self._emit(min(self.pending)))
        return [frame for frame in frames if frame is not None]

    def flush(self) -> list[bytes]:
        """Emit everything pending (incomplete frames included)."""
        frames = [self._emit(stamp) for stamp in sorted(self.pending)]
        return [frame for frame in frames if frame is not None]

    def _emit(self, ticks: int) -> bytes | None:
        entry = self.pending.pop(ticks)
        plan = self.plan
        missing = [
            any(_missing(v[slot] if channel is None else v[slot][channel]) for slot, channel in fed)
            for v, fed in zip(entry.values, plan.fed, strict=True)
        ]
        if entry.filled < plan.expected:
            self.incomplete += 1
        quality = entry.values[0][QUAL_SLOT]
        quality = 0 if quality is None else _word(quality, 0xFF)
        soc, fracsec = ticks_stamp(ticks, plan.time_base, quality)
        rate = plan.config.data_rate
        if self._last_emitted >= 0 and rate > 0:
            # frames that never came (whole timestamps missing from the STTP stream)
            self.lost += max(round((ticks - self._last_emitted) * rate / 10_000_000) - 1, 0)
        self._last_emitted = max(self._last_emitted, ticks)
        fields = plan.frame_values(entry.values, entry.flags, missing)
        try:
            return plan.layout.pack(Stamp(plan.idcode, soc, fracsec), fields)
        except ConfigurationError:  # a time C37.118 cannot carry (before 1970, after 2106)
            self.unservable += 1
            return None


def _missing(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)
