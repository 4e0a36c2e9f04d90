"""Configuration -> STTP metadata and measurements, STAT <-> state flags, time, and back."""

from __future__ import annotations

import math
import struct
import uuid

import pytest

from gridbind.c37118.constants import FrameType
from gridbind.c37118.frames import (
    AnalogChannel,
    ConfigFrame,
    DataFrame,
    DigitalWord,
    PhasorChannel,
    PmuConfig,
    PmuData,
    Stamp,
)
from gridbind.c37118.mapping import (
    StreamMapping,
    flags_stat,
    phase_of,
    stamp_ticks,
    stat_flags,
    ticks_stamp,
)
from gridbind.c37118.outbound import FrameAssembler, OutboundPlan
from gridbind.sttp.ieee2664.metadata import DataSet, active_measurements
from gridbind.sttp.measurement import UNIX_EPOCH_TICKS, Measurement


def f32(value: float) -> float:
    return struct.unpack(">f", struct.pack(">f", value))[0]


# STAT words spelled from the bit table of C37.118.2-2011 (Table 7) and the flags each maps to.
STAT_CASES = [
    (0x0000, 0x00, 0x0000_0000),
    (0x4000, 0x00, 0x0000_0002),  # 01 PMU error, no information: SuspectData
    (0x8000, 0x00, 0x0000_0003),  # 10 test mode / absent data: BadData | SuspectData
    (0xC000, 0x00, 0x0000_0001),  # 11 PMU error, do not use: BadData
    (0x2000, 0x00, 0x0001_0000),  # PMU sync lost: BadTime
    (0x1000, 0x00, 0x0200_0000),  # sorted by arrival: UserDefinedFlag2
    (0x0800, 0x00, 0x0100_0000),  # trigger: UserDefinedFlag1
    (0x0400, 0x00, 0x4000_0000),  # configuration change: SystemWarning
    (0x0200, 0x00, 0x0000_1000),  # data modified: CalculatedValue
    (0x01C0, 0x00, 0x0002_0000),  # PMU time quality 7 (> 10 ms): SuspectTime
    (0x0010, 0x00, 0x0002_0000),  # unlocked 10-100 s: SuspectTime
    (0x0000, 0x0B, 0x0002_0000),  # FRACSEC quality within 10 s: SuspectTime
    (0x0000, 0x4F, 0x0001_0000),  # FRACSEC clock failure (with leap direction): BadTime
    (0x0000, 0x09, 0x0000_0000),  # within 0.1 s: fine
    (0xEE00, 0x00, 0x4101_1001),
]


@pytest.mark.parametrize("stat, quality, flags", STAT_CASES)
def test_stat_to_flags(stat, quality, flags):
    assert stat_flags(stat, quality) == flags


@pytest.mark.parametrize("stat", [s for s, q, _ in STAT_CASES if not s & 0x01FF and not q])
def test_flags_back_to_stat(stat):
    assert flags_stat(stat_flags(stat)) == stat


@pytest.mark.parametrize("time_base", [1, 1000, 1_000_000, 16_777_215, 10_000_000])
def test_time_round_trip(time_base):
    for fraction in {0, time_base // 3, time_base - 1}:
        fracsec = 0x0F << 24 | fraction
        ticks = stamp_ticks(1_700_000_000, fracsec, time_base)
        assert ticks // 10_000_000 == UNIX_EPOCH_TICKS // 10_000_000 + 1_700_000_000
        soc, back = ticks_stamp(ticks, time_base, 0x0F)
        assert soc == 1_700_000_000 and back >> 24 == 0x0F
        # exact while a tick (100 ns) is finer than a FRACSEC unit
        assert abs((back & 0xFFFFFF) - fraction) <= (1 if time_base > 10_000_000 else 0)


def test_time_of_the_standard_example():
    # SOC 0x4485_3600 = 1 149 580 800 s; FRACSEC 16817 of TIME_BASE 1 000 000 = 168 170 ticks.
    ticks = stamp_ticks(0x44853600, 16817, 1_000_000)
    assert ticks == UNIX_EPOCH_TICKS + 1_149_580_800 * 10_000_000 + 168_170


@pytest.mark.parametrize(
    "name, component, phase",
    [
        ("VA", None, "A"),
        ("I_B", None, "B"),
        ("V PH C", None, "C"),
        ("VPOS", None, "+"),
        ("V1", None, "+"),
        ("anything", 5, "B"),
        ("VA", 2, "-"),
        ("I0", None, "0"),
    ],
)
def test_phase_designation(name, component, phase):
    assert phase_of(name, component) == phase


def _config(fmt: int, kind: FrameType = FrameType.CFG2) -> ConfigFrame:
    one = PmuConfig(
        "Shelby 1",
        21,
        fmt,
        [PhasorChannel("VA", False, 100_000, 4), PhasorChannel("IB", True, 50, 5, factor=0.5)],
        [AnalogChannel("MW", 0, 10, 2.0, 1.0)],
        [DigitalWord(tuple(f"B{i}" for i in range(16)))],
        50,
        latitude=35.5,
        longitude=-85.25,
    )
    two = PmuConfig("shelby 1", 22, fmt, [PhasorChannel("V1")])  # same acronym: made unique
    return ConfigFrame(Stamp(20), [one, two], 1_000_000, 30, kind)


def test_metadata_conventions():
    mapping = StreamMapping(_config(0xF), company="TVA", node_id=uuid.UUID(int=5))
    metadata = DataSet.from_xml(mapping.metadata().to_xml())
    devices = metadata["DeviceDetail"].rows
    assert [d["Acronym"] for d in devices] == ["PDC20", "SHELBY_1", "SHELBY_1_22"]
    assert devices[0]["IsConcentrator"] and devices[1]["ParentAcronym"] == "PDC20"
    assert devices[1]["AccessID"] == 21 and devices[1]["ProtocolName"] == "IEEE C37.118.2-2011"
    assert devices[1]["FramesPerSecond"] == 30 and str(devices[1]["Latitude"]) == "35.5"
    phasors = metadata["PhasorDetail"].rows
    assert [(p["Label"], p["Type"], p["Phase"], p["SourceIndex"]) for p in phasors] == [
        ("VA", "V", "A", 1),
        ("IB", "I", "B", 2),
        ("V1", "V", "+", 1),
    ]
    rows = metadata["MeasurementDetail"].rows
    first = [(r["SignalAcronym"], r["SignalReference"], r["PointTag"]) for r in rows[:10]]
    assert first == [
        ("FREQ", "SHELBY_1-FQ", "TVA_SHELBY_1:F"),
        ("DFDT", "SHELBY_1-DF", "TVA_SHELBY_1:DF"),
        ("VPHM", "SHELBY_1-PM1", "TVA_SHELBY_1-PM1:V"),
        ("VPHA", "SHELBY_1-PA1", "TVA_SHELBY_1-PA1:VH"),
        ("IPHM", "SHELBY_1-PM2", "TVA_SHELBY_1-PM2:I"),
        ("IPHA", "SHELBY_1-PA2", "TVA_SHELBY_1-PA2:IH"),
        ("ALOG", "SHELBY_1-AV1", "TVA_SHELBY_1:AV1"),
        ("DIGI", "SHELBY_1-DV1", "TVA_SHELBY_1:DV1"),
        ("FLAG", "SHELBY_1-SF", "TVA_SHELBY_1:S"),
        ("QUAL", "SHELBY_1-QF", "TVA_SHELBY_1:QF"),
    ]
    assert [r["ID"] for r in rows[:2]] == ["PPA:1", "PPA:2"]
    assert rows[2]["PhasorSourceIndex"] == 1 and rows[0]["PhasorSourceIndex"] is None
    view = active_measurements(metadata, uuid.UUID(int=5))
    by_reference = {r["SignalReference"]: r for r in view.rows}
    assert by_reference["SHELBY_1-PA2"]["PhasorType"] == "I"
    assert by_reference["SHELBY_1-PA2"]["Phase"] == "B"
    assert by_reference["SHELBY_1-PM1"]["EngineeringUnits"] == "Volts"
    again = StreamMapping(_config(0xF), company="TVA", node_id=uuid.UUID(int=5))
    assert [s.signal_id for s in again.signals] == [s.signal_id for s in mapping.signals]


def test_cfg3_component_gives_the_phase():
    mapping = StreamMapping(_config(0xF, FrameType.CFG3))
    phases = [p["Phase"] for p in mapping.metadata()["PhasorDetail"].rows]
    assert phases == ["A", "B", "+"]


def _values(mapping: StreamMapping, frame: DataFrame) -> list[Measurement]:
    stamp, values = mapping.layout.unpack(mapping.layout.build(frame))
    return mapping.measurements(stamp, values)


def test_integer_rectangular_values_and_missing():
    mapping = StreamMapping(_config(0x0))
    frame = DataFrame(
        Stamp(20, 1_700_000_000, 250_000),
        [
            PmuData(0x0800, [(300, 400), (-32768, 0)], -125, 37, [-7], [0xBEEF]),
            PmuData(0, [(0, -10)], 0, 0, [], []),
        ],
    )
    got = {s.reference: m for s, m in zip(mapping.signals, _values(mapping, frame), strict=True)}
    assert got["SHELBY_1-FQ"].value == 50 + -125 * 0.001
    assert got["SHELBY_1-DF"].value == 37 * 0.01
    assert got["SHELBY_1-PM1"].value == pytest.approx(500 * 100_000 * 1e-5)
    assert got["SHELBY_1-PA1"].value == pytest.approx(math.degrees(math.atan2(400, 300)))
    assert math.isnan(got["SHELBY_1-PM2"].value) and math.isnan(got["SHELBY_1-PA2"].value)
    assert got["SHELBY_1-AV1"].value == -70.0
    assert got["SHELBY_1-DV1"].value == 0xBEEF and got["SHELBY_1-SF"].value == 0x0800
    assert got["SHELBY_1-FQ"].flags == 0x0100_0000 and got["SHELBY_1_22-FQ"].flags == 0
    assert got["SHELBY_1_22-PA1"].value == -90.0
    assert got["SHELBY_1-FQ"].timestamp == UNIX_EPOCH_TICKS + 17_000_000_002_500_000


def test_integer_polar_and_cfg3_factors():
    mapping = StreamMapping(_config(0x1, FrameType.CFG3))
    frame = DataFrame(
        Stamp(20, 5, 0),
        [
            PmuData(0, [(1000, 15708), (4, -31416)], 0, 0, [3], [0]),
            PmuData(0, [(1, 0)], 0, 0, [], []),
        ],
    )
    got = {
        s.reference: m.value for s, m in zip(mapping.signals, _values(mapping, frame), strict=True)
    }
    assert got["SHELBY_1-PM1"] == 1000.0  # CFG-3 factor 1.0
    assert got["SHELBY_1-PA1"] == pytest.approx(90.0, abs=1e-3)
    assert got["SHELBY_1-PM2"] == 2.0  # factor 0.5
    assert got["SHELBY_1-AV1"] == 7.0  # 3 x 2.0 + 1.0


def test_outbound_round_trip_through_metadata():
    """Bridge-made metadata -> a served configuration -> frames -> parsed -> same values."""
    source = StreamMapping(_config(0xF), node_id=uuid.UUID(int=9))
    metadata = DataSet.from_xml(source.metadata().to_xml())
    plan = OutboundPlan(metadata, 77, format=0xF)
    assert [p.station for p in plan.config.pmus] == ["Shelby 1", "shelby 1"]
    assert [p.idcode for p in plan.config.pmus] == [21, 22]
    assert [c.name for c in plan.config.pmus[0].phasors] == ["VA", "IB"]
    assert plan.config.pmus[0].phasors[1].is_current
    frame = DataFrame(
        Stamp(20, 1_700_000_000, 500_000),
        [
            PmuData(
                0x4A00,
                [(f32(230.5), f32(0.5)), (f32(10.0), f32(-1.0))],
                f32(50.01),
                f32(0.25),
                [f32(12.5)],
                [0x00F0],
            ),
            PmuData(0, [(f32(1.0), f32(0.0))], f32(49.99), 0.0, [], []),
        ],
    )
    measurements = _values(source, frame)
    assembler = FrameAssembler(plan)
    frames = assembler.add(reversed(measurements))
    assert len(frames) == 1 and assembler.incomplete == 0
    served = plan.layout.parse(frames[0])
    assert served.stamp == Stamp(77, 1_700_000_000, 500_000)
    assert served.blocks[0].stat == 0x4A00
    assert served.blocks[0].phasors[0] == (f32(230.5), 0.5)
    assert served.blocks[0].phasors[1][1] == -1.0
    assert served.blocks[0].freq == f32(50.01) and served.blocks[0].analogs == [12.5]
    assert served.blocks[0].digitals == [0x00F0]


def test_outbound_incomplete_frames_are_bounded_and_marked():
    source = StreamMapping(_config(0xF))
    plan = OutboundPlan(source.metadata(), 1, format=0x7, fnom=50)  # integer FREQ / DFREQ
    assembler = FrameAssembler(plan, lag=2)
    frames = []
    for second in range(5):
        frame = DataFrame(
            Stamp(20, 1_700_000_000 + second, 0),
            [
                PmuData(0, [(1.0, 0.0), (1.0, 0.0)], 50.125, 0.5, [1.0], [1]),
                PmuData(0, [(1.0, 0.0)], 50.0, 0.0, [], []),
            ],
        )
        frames += assembler.add(_values(source, frame)[:-3])  # the second PMU's last 3 missing
    assert len(assembler.pending) <= 2 and len(frames) == 3 and assembler.incomplete == 3
    served = plan.layout.parse(frames[0])
    assert served.blocks[0].freq == 125 and served.blocks[0].dfreq == 50
    assert served.blocks[1].stat >> 14 == 2  # absent data inserted


def test_outbound_idcodes_are_unique_whatever_the_access_ids():
    from gridbind.sttp.ieee2664.metadata import empty_source_metadata

    metadata = empty_source_metadata()
    for number, access in enumerate([5, 5, None, 0, 70000, 6, 6]):
        acronym = f"D{number}"
        metadata["DeviceDetail"].add(Acronym=acronym, AccessID=access)
        metadata["MeasurementDetail"].add(
            SignalID=uuid.UUID(int=number + 1), DeviceAcronym=acronym, SignalAcronym="FREQ"
        )
    plan = OutboundPlan(metadata, 3)
    ids = [pmu.idcode for pmu in plan.config.pmus]
    assert len(set(ids)) == 7 and ids[0] == 5 and ids[5] == 6 and all(1 <= i <= 65534 for i in ids)


def test_signal_ids_stay_unique_when_stations_and_idcodes_repeat():
    pmus = [PmuConfig("same", 4, 0, [PhasorChannel("V")]) for _ in range(3)]
    pmus.append(PmuConfig("PDC9", 5))  # the concentrator's own acronym
    mapping = StreamMapping(ConfigFrame(Stamp(9), pmus, 1_000_000, 30))
    assert [d.acronym for d in mapping.devices] == ["SAME", "SAME_4", "SAME_4_3", "PDC9_5"]
    assert len({s.signal_id for s in mapping.signals}) == len(mapping.signals)


def _second(source: StreamMapping, second: int) -> list[Measurement]:
    frame = DataFrame(
        Stamp(20, second, 0),
        [
            PmuData(0, [(1.0, 0.0), (1.0, 0.0)], 50.125, 0.5, [1.0], [1]),
            PmuData(0, [(1.0, 0.0)], 50.0, 0.0, [], []),
        ],
    )
    return _values(source, frame)


def test_far_future_timestamps_are_refused_by_the_lead_time():
    """Three frames stamped a year ahead used to be sent and make every later frame late."""
    source = StreamMapping(_config(0xF))
    plan = OutboundPlan(source.metadata(), 1)
    assembler = FrameAssembler(plan, lag=2, lead_time=5.0)
    start = 1_700_000_000
    now = UNIX_EPOCH_TICKS + start * 10_000_000
    for ahead in (1, 2, 3):
        assert assembler.add(_second(source, start + 365 * 86400 + ahead), now) == []
    frames = []
    for second in range(4):
        frames += assembler.add(_second(source, start + second), now + second * 10_000_000)
    assert len(frames) == 4 and assembler.late == 0
    assert assembler.future == 3 * len(plan.targets)
    assert [plan.layout.parse(f).stamp.soc for f in frames] == [start + s for s in range(4)]


def test_a_stream_behind_the_newest_frame_sent_is_followed_again():
    """Without a local clock, a far-future frame is sent; ``resync`` late timestamps later the
    assembler follows the stream's time again."""
    source = StreamMapping(_config(0xF))
    plan = OutboundPlan(source.metadata(), 1)
    assembler = FrameAssembler(plan, lag=2, resync=5)
    start = 1_700_000_000
    assert len(assembler.add(_second(source, start + 10**6))) == 1
    frames = []
    for second in range(8):
        frames += assembler.add(_second(source, start + second))
    # seconds 0-3 and the first measurement of second 4 are late; the rest is followed
    assert assembler.resyncs == 1 and assembler.late == 4 * len(plan.targets) + 1
    assert [plan.layout.parse(f).stamp.soc for f in frames] == [start + s for s in range(4, 8)]
    assert assembler.incomplete == 1


def test_a_partial_subscription_is_not_flagged_as_missing_data():
    """Subscribed to frequency and the first phasor's magnitude only: complete frames carry
    NaN for the rest but their STAT says good data (it used to say "absent data inserted")."""
    source = StreamMapping(_config(0xF))
    wanted = {s.signal_id for s in source.signals if s.reference.endswith(("-FQ", "-PM1"))}
    metadata = source.metadata()
    table = metadata["MeasurementDetail"]
    table.rows[:] = [row for row in table.rows if row["SignalID"] in wanted]
    plan = OutboundPlan(metadata, 1)
    assembler = FrameAssembler(plan)
    frames = assembler.add(_second(source, 1_700_000_000))
    assert len(frames) == 1 and assembler.incomplete == 0
    served = plan.layout.parse(frames[0])
    assert [block.stat >> 14 for block in served.blocks] == [0, 0]
    assert math.isnan(served.blocks[0].dfreq) and served.blocks[0].phasors[0][0] == 1.0
    # a fed value that did not come is still flagged
    partial = [m for m in _second(source, 1_700_000_001) if not m.signal_id == plan_freq(plan)]
    assembler.add(partial)
    (late,) = assembler.flush()
    assert plan.layout.parse(late).blocks[0].stat >> 14 == 2


def plan_freq(plan: OutboundPlan):
    from gridbind.c37118.outbound import FREQ

    return next(s for s, t in plan.targets.items() if t.role == FREQ and t.pmu == 0)


def test_made_up_acronyms_do_not_collide_with_station_names():
    """Stations X_1_4, X, X_1, X (IDCODE 1 last): the last one's made-up X_1 and X_1_4 are
    taken by real stations; it used to get X_1_4 twice."""
    pmus = [
        PmuConfig(name, idcode, 0, [PhasorChannel("V")])
        for name, idcode in (("X_1_4", 2), ("X", 3), ("X_1", 5), ("X", 1))
    ]
    mapping = StreamMapping(ConfigFrame(Stamp(9), pmus, 1_000_000, 30))
    acronyms = [d.acronym for d in mapping.devices]
    assert acronyms == ["X_1_4", "X", "X_1", "X_1_5"]
    assert len({s.signal_id for s in mapping.signals}) == len(mapping.signals)


@pytest.mark.parametrize("fmt", [0x0, 0x1, 0x2, 0x3, 0x4, 0x5, 0x6, 0x7])
def test_cfg3_angle_adjustment_and_analog_offset_apply_to_every_format(fmt):
    """PHSCALE's angle adjustment was parsed and never applied; ANSCALE's offset applied to
    integer analogs only. The factors stay integer-only (float data is in engineering units)."""
    phasor = PhasorChannel("V", False, 1, 1, factor=2.0, angle_offset=math.radians(10.0))
    analog = AnalogChannel("MW", 0, 1, 4.0, 0.5)
    pmu = PmuConfig("P", 7, fmt, [phasor], [analog])
    mapping = StreamMapping(ConfigFrame(Stamp(7), [pmu], 1_000_000, 30, FrameType.CFG3))
    integer_phasor, polar = not fmt & 0x2, fmt & 0x1
    if polar:
        wire = (100, 5236) if integer_phasor else (100.0, math.radians(30.0))  # 0.5236 rad
    else:
        wire = (866, 500) if integer_phasor else (86.6025, 50.0)
    raw_analog = 3 if not fmt & 0x4 else 3.0
    frame = DataFrame(Stamp(7, 5, 0), [PmuData(0, [wire], 0, 0, [raw_analog], [])])
    got = {
        s.reference: m.value for s, m in zip(mapping.signals, _values(mapping, frame), strict=True)
    }
    magnitude = 100.0 if polar else math.hypot(*wire)
    assert got["P-PM1"] == pytest.approx(magnitude * (2.0 if integer_phasor else 1.0), rel=1e-4)
    assert got["P-PA1"] == pytest.approx(40.0, abs=0.1)  # 30 degrees + 10 adjustment
    assert got["P-AV1"] == (3 * 4.0 + 0.5 if not fmt & 0x4 else 3.0 + 0.5)
