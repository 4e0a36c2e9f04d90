"""C37.118.2-2011 frames against byte vectors written out from the standard's frame layouts.

The CRC here is an independent bitwise CRC-CCITT (polynomial 0x1021, initial 0xFFFF), not the
package's; every vector is spelled field by field from the layout tables.
"""

from __future__ import annotations

import math
import struct

import pytest

from gridbind.c37118.constants import Command, FrameType
from gridbind.c37118.crc import crc_ccitt
from gridbind.c37118.errors import ConfigurationError, FrameError
from gridbind.c37118.frames import (
    AnalogChannel,
    CommandFrame,
    ConfigFrame,
    DataFrame,
    DigitalWord,
    HeaderFrame,
    PhasorChannel,
    PmuConfig,
    PmuData,
    Stamp,
    build_cfg3,
    build_command,
    build_config,
    build_header,
    parse_command,
    parse_config,
    parse_header,
)
from gridbind.c37118.framing import ConfigReceived, FrameDecoder
from gridbind.c37118.layout import DataLayout


def crc_bitwise(data: bytes) -> int:
    """CRC-CCITT one bit at a time, as Annex B of C37.118.2 describes the shift register."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def sealed(hex_text: str) -> bytes:
    """Bytes of a hex vector (spaces and comments after '#' ignored) with its CHK appended."""
    body = bytes.fromhex(" ".join(line.split("#")[0] for line in hex_text.strip().splitlines()))
    return body + crc_bitwise(body).to_bytes(2, "big")


def test_crc_matches_the_bitwise_register():
    assert crc_bitwise(b"123456789") == 0x29B1  # the CRC-16/CCITT-FALSE check value
    for data in (b"", b"\x00", b"\xaa\x41\x00\x12", bytes(range(256)) * 3):
        assert crc_ccitt(data) == crc_bitwise(data)


COMMAND_ON = sealed("""
    AA 41        # SYNC: AA, frame type 100 (command), version 1
    00 12        # FRAMESIZE 18
    1E 36        # IDCODE 7734
    44 85 36 00  # SOC 1149580800
    00 00 41 B1  # FRACSEC: quality 00, fraction 16817
    00 02        # CMD 2: turn on transmission
    """)


def test_command_frame_vector():
    assert len(COMMAND_ON) == 18
    frame = parse_command(COMMAND_ON)
    assert frame == CommandFrame(Stamp(7734, 1149580800, 16817), Command.DATA_ON, b"", 1)
    assert build_command(frame) == COMMAND_ON


def test_extended_command_frame():
    frame = CommandFrame(Stamp(1, 2, 3), Command.EXTENDED, b"\x01\x02\x03")
    raw = build_command(frame)
    assert raw == sealed("AA 42 00 15 0001 00000002 00000003 0008 010203")
    assert parse_command(raw) == frame
    with pytest.raises(ConfigurationError):
        build_command(CommandFrame(Stamp(1), Command.DATA_ON, b"x"))
    with pytest.raises(ConfigurationError):
        build_command(CommandFrame(Stamp(1), Command.EXTENDED, bytes(65519)))


def test_header_frame_vector():
    raw = sealed("""
        AA 12 0013 0007 00000001 0F000000  # header frame, 2011, IDCODE 7, SOC 1, TQ F
        48 69 21                           # "Hi!"
        """)
    frame = parse_header(raw)
    assert frame == HeaderFrame(Stamp(7, 1, 0x0F000000), "Hi!")
    assert build_header(frame) == raw


NAMES = [n.ljust(16).encode() for n in ["VA", "AN1"] + [f"BRK{i}" for i in range(16)]]
CFG2 = sealed(
    """
    AA 32        # SYNC: CFG-2, version 2011
    01 62        # FRAMESIZE 354
    1E 36        # IDCODE 7734
    44 85 36 00  # SOC
    00 00 00 00  # FRACSEC
    00 0F 42 40  # TIME_BASE 1 000 000
    00 01        # NUM_PMU 1
    53 54 41 54 49 4F 4E 20 41 20 20 20 20 20 20 20  # STN "STATION A"
    1E 36        # IDCODE 7734
    00 04        # FORMAT: rectangular, int phasors, float analogs, int freq
    00 01 00 01 00 01  # PHNMR 1, ANNMR 1, DGNMR 1
    """
    + "\n".join(name.hex() for name in NAMES)
    + """
    00 0D F8 47  # PHUNIT voltage, 915 527 x 10^-5 V/bit
    01 FF FF FB  # ANUNIT RMS, scale -5
    00 00 FF FF  # DIGUNIT normal 0000, valid FFFF
    00 00        # FNOM 60 Hz
    00 16        # CFGCNT 22
    00 1E        # DATA_RATE 30
    """
)
PMU = PmuConfig(
    "STATION A",
    7734,
    0x4,
    [PhasorChannel("VA", False, 915527)],
    [AnalogChannel("AN1", 1, -5)],
    [DigitalWord(tuple(f"BRK{i}" for i in range(16)), 0, 0xFFFF)],
    60,
    22,
)
CONFIG = ConfigFrame(Stamp(7734, 0x44853600), [PMU], 1_000_000, 30)


def test_cfg2_vector():
    assert len(CFG2) == 354
    assert parse_config(CFG2) == CONFIG
    assert build_config(CONFIG) == CFG2


def test_cfg1_is_cfg2_with_another_type():
    cfg1 = bytearray(CFG2[:-2])
    cfg1[1] = 0x22
    cfg1 = bytes(cfg1) + crc_bitwise(bytes(cfg1)).to_bytes(2, "big")
    parsed = parse_config(cfg1)
    assert parsed.kind == FrameType.CFG1 and parsed.pmus == CONFIG.pmus


DATA = sealed("""
    AA 02 0020 1E36 44853600 00 0041B1  # data frame, 2011, IDCODE 7734, FRACSEC 16817
    0000                                # STAT: good data
    3917 0000                           # phasor (rect int): real 14615, imaginary 0
    09C4                                # FREQ 2500 mHz off nominal
    0000                                # DFREQ 0
    42C80000                            # analog (float) 100.0
    3C12                                # digital word
    """)


def test_data_frame_vector():
    layout = DataLayout(CONFIG)
    frame = DataFrame(
        Stamp(7734, 0x44853600, 16817), [PmuData(0, [(14615, 0)], 2500, 0, [100.0], [0x3C12])]
    )
    assert layout.parse(DATA) == frame
    assert layout.build(frame) == DATA


def _field_bytes(fmt: int, block: PmuData) -> bytes:
    """One PMU block spelled from Table 5 of the standard, independently of the layout code."""
    out = struct.pack(">H", block.stat)
    for a, b in block.phasors:
        if fmt & 2:
            out += struct.pack(">ff", a, b)
        elif fmt & 1:
            out += struct.pack(">Hh", a, b)  # magnitude unsigned, angle signed 10^-4 rad
        else:
            out += struct.pack(">hh", a, b)
    out += struct.pack(">ff" if fmt & 8 else ">hh", block.freq, block.dfreq)
    for value in block.analogs:
        out += struct.pack(">f" if fmt & 4 else ">h", value)
    for word in block.digitals:
        out += struct.pack(">H", word)
    return out


@pytest.mark.parametrize("fmt", range(16))
def test_every_format_combination(fmt):
    pmus = [
        PmuConfig(
            "A",
            10,
            fmt,
            [PhasorChannel("V1"), PhasorChannel("I1", True)],
            [AnalogChannel("X")],
            [DigitalWord()],
        ),
        PmuConfig("B", 11, fmt ^ 0xF, [PhasorChannel("V1")], [], []),
    ]
    config = ConfigFrame(Stamp(9), pmus, 1_000_000, 60)
    layout = DataLayout(config)

    def block(f: int, count: int, analogs: int, digitals: int) -> PmuData:
        if f & 2:
            phasors = [(230.5, -1.25)] * count
        elif f & 1:
            phasors = [(60000, -31416)] * count
        else:
            phasors = [(-32767, 32767)] * count
        freq = (59.875, -0.5) if f & 8 else (-125, 37)
        analog = [3.5] * analogs if f & 4 else [-7] * analogs
        return PmuData(0x8000, phasors, *freq, analog, [0xBEEF] * digitals)

    frame = DataFrame(
        Stamp(9, 1_700_000_000, 500_000), [block(fmt, 2, 1, 1), block(fmt ^ 0xF, 1, 0, 0)]
    )
    body = _field_bytes(fmt, frame.blocks[0]) + _field_bytes(fmt ^ 0xF, frame.blocks[1])
    head = bytes.fromhex("AA02") + struct.pack(">HHII", 16 + len(body), 9, 1_700_000_000, 500_000)
    expected = head + body + crc_bitwise(head + body).to_bytes(2, "big")
    assert layout.build(frame) == expected
    assert layout.parse(expected) == frame


def test_cfg3_single_and_continuation_frames():
    pmu = PmuConfig(
        "Station Ünïcode name longer than sixteen",
        7,
        0xF,
        [PhasorChannel("V phase A", False, 1, 4, 0x0100, 3, 1.5, -0.25)],
        [AnalogChannel("analog", 0, 1, 2.0, -1.0)],
        [DigitalWord(tuple(f"d{i}" for i in range(16)), 0x00FF, 0xFF00)],
        50,
        9,
        latitude=35.25,
        longitude=-85.5,
        elevation=200.0,
        service_class="M",
        window=-5,
        group_delay=1000,
    )
    config = ConfigFrame(Stamp(7, 100, 0), [pmu, pmu], 16_777_215, -5, FrameType.CFG3)
    single = build_cfg3(config)
    assert len(single) == 1 and single[0][14:16] == b"\x00\x00"  # CONT_IDX 0
    fragments = build_cfg3(config, max_frame=64)
    assert len(fragments) > 3
    indexes = [int.from_bytes(f[14:16], "big") for f in fragments]
    assert indexes == [*range(1, len(fragments)), 0xFFFF]
    for frames in (single, fragments):
        decoder = FrameDecoder()
        events = [e for f in frames for e in decoder.feed(f)]
        assert isinstance(events[-1], ConfigReceived)
        assert events[-1].config == config
        assert decoder.layout is not None and decoder.layout.config is events[-1].config


def test_cfg3_layout_by_hand():
    """CFG-3 fields in Table 10 order: CONT_IDX, TIME_BASE, NUM_PMU, STN (length-prefixed),
    IDCODE, G_PMU_ID, FORMAT, counts, names, PHSCALE, ANSCALE, DIGUNIT, LAT, LON, ELEV,
    SVC_CLASS, WINDOW, GRP_DLY, FNOM, CFGCNT, DATA_RATE."""
    pmu = PmuConfig(
        "S",
        2,
        0xF,
        [PhasorChannel("I", True, 1, 6, 0x0002, 0x7F, 2.0, 0.5)],
        fnom=60,
        cfgcnt=1,
        latitude=1.0,
        longitude=2.0,
        elevation=3.0,
        service_class="P",
        window=100,
        group_delay=-7,
    )
    raw = build_cfg3(ConfigFrame(Stamp(2, 5, 6), [pmu], 1_000_000, 60, FrameType.CFG3))[0]
    body = (
        "0000"
        "000F4240"
        "0001"  # CONT_IDX, TIME_BASE, NUM_PMU
        "0153"
        "0002" + "00" * 16 + "000F"  # STN "S", IDCODE 2, G_PMU_ID
        "0001"
        "0000"
        "0000"  # FORMAT, PHNMR, ANNMR, DGNMR
        "0149"  # CHNAM "I"
        "0002"
        "0E"
        "7F"
        "40000000"
        "3F000000"  # PHSCALE: flags, current phase C, user
        "3F800000"
        "40000000"
        "40400000"  # LAT 1.0, LON 2.0, ELEV 3.0
        "50"
        "00000064"
        "FFFFFFF9"  # SVC_CLASS P, WINDOW 100, GRP_DLY -7
        "0000"
        "0001"
        "003C"  # FNOM 60, CFGCNT 1, DATA_RATE 60
    )
    head = "AA52" + f"{14 + len(body) // 2 + 2:04X}" + "0002" "00000005" "00000006"
    assert raw == sealed(head + body)
    # ... and the same hand-written bytes parse back (a one-character channel name: the PMU
    # block is 2+25+14+12+25 = 78 bytes, the smallest a one-phasor block can be)
    decoder = FrameDecoder()
    (event,) = decoder.feed(sealed(head + body))
    assert event.config.pmus == [pmu] and event.config.data_rate == 60


def test_smallest_cfg3_pmu_block_by_hand():
    """A PMU block with no channel is 52 bytes and its station name (Table 10); with
    DATA_RATE that is all that follows NUM_PMU."""
    body = (
        "0000"
        "000F4240"
        "0001"  # CONT_IDX, TIME_BASE, NUM_PMU
        "0158"
        "0009" + "11" * 16 + "0000"
        "0000"
        "0000"
        "0000" + "7FC00000" * 3 + "4D"  # STN "X", IDCODE 9, ids
        "00000000"
        "00000000"  # LAT/LON/ELEV NaN, SVC_CLASS M
        "0001"
        "0003"  # FNOM 50, CFGCNT 3
        "FFFE"  # DATA_RATE -2 (one frame every 2 s)
    )
    assert len(body) // 2 - 8 - 2 == 52 + len("X")
    head = "AA52" + f"{14 + len(body) // 2 + 2:04X}" + "0009" "00000001" "00000000"
    (event,) = FrameDecoder().feed(sealed(head + body))
    (pmu,) = event.config.pmus
    assert (pmu.station, pmu.idcode, pmu.fnom, pmu.cfgcnt, pmu.service_class) == (
        "X",
        9,
        50,
        3,
        "M",
    )
    assert pmu.global_id.bytes == b"\x11" * 16 and event.config.data_rate == -2


# ----------------------------------------------------------------------------- hostile input


def _reseal(frame: bytes) -> bytes:
    return frame[:-2] + crc_bitwise(frame[:-2]).to_bytes(2, "big")


def test_bad_crc_wrong_size_absurd_counts_are_clear_errors():
    with pytest.raises(FrameError, match="CRC"):
        parse_config(CFG2[:-1] + bytes([CFG2[-1] ^ 1]))
    with pytest.raises(FrameError, match="FRAMESIZE"):
        parse_config(CFG2 + b"\x00")
    absurd = bytearray(CFG2)
    absurd[18:20] = b"\xff\xff"  # NUM_PMU 65535
    with pytest.raises(FrameError, match="NUM_PMU"):
        parse_config(_reseal(bytes(absurd)))
    absurd = bytearray(CFG2)
    absurd[42:44] = b"\x7f\xff"  # PHNMR 32767
    with pytest.raises(FrameError, match="channels"):
        parse_config(_reseal(bytes(absurd)))
    with pytest.raises(FrameError, match="shorter"):
        parse_command(b"\xaa\x41\x00\x05\x00")
    reserved = bytearray(COMMAND_ON)
    reserved[1] = 0x71  # frame type 7
    with pytest.raises(FrameError, match="reserved"):
        parse_command(_reseal(bytes(reserved)))
    layout = DataLayout(CONFIG)
    with pytest.raises(FrameError, match="does not match"):
        layout.unpack(DATA[:-4] + DATA[-2:])


def test_cfg3_hostile_fragments_and_lengths():
    pmu = PmuConfig("S", 2, 0xF, [PhasorChannel("I")])
    config = ConfigFrame(Stamp(2), [pmu], 1_000_000, 60, FrameType.CFG3)
    fragments = build_cfg3(config, max_frame=40)
    decoder = FrameDecoder(max_cfg3=10_000)
    events = decoder.feed(fragments[1])  # no first fragment
    assert "without its first" in events[0].reason
    events = [e for f in (fragments[0], fragments[2]) for e in decoder.feed(f)]
    assert "out of order" in events[-1].reason
    small = FrameDecoder(max_cfg3=50)
    events = [e for f in fragments for e in small.feed(f)]
    assert any("exceeds 50 bytes" in getattr(e, "reason", "") for e in events)
    single = bytearray(build_cfg3(config)[0])
    single[22] = 0xFF  # the STN length byte (after header, CONT_IDX, TIME_BASE, NUM_PMU)
    events = FrameDecoder().feed(_reseal(bytes(single)))
    assert type(events[0]).__name__ == "FrameRejected"
    assert "CFG-3" in events[0].reason or "do not fit" in events[0].reason


def test_decoder_resyncs_after_junk_and_keeps_memory_bounded():
    decoder = FrameDecoder()
    events = decoder.feed(b"\x00junk\xaa\xff" + CFG2 + b"\x01\x02" + COMMAND_ON)
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["FrameRejected", "ConfigReceived", "FrameRejected", "CommandReceived"]
    for _ in range(100):
        decoder.feed(bytes(range(0x10, 0x90)) * 100)  # never a SYNC byte
    assert len(decoder._buffer) < 4
    decoder.feed(b"\xaa\x01\xff\xff")  # a plausible header claiming 65535 bytes
    decoder.feed(bytes(70_000))
    assert len(decoder._buffer) < 70_000
    tiny = FrameDecoder()
    assert "below" in tiny.feed(b"\xaa\x01\x00\x03\x00\x00")[0].reason


def test_missing_values_and_nan():
    layout = DataLayout(CONFIG)
    frame = DataFrame(Stamp(7734), [PmuData(0, [(-32768, -32768)], -32768, 0, [math.nan], [0])])
    parsed = layout.parse(layout.build(frame))
    assert parsed.blocks[0].phasors == [(-32768, -32768)]
    assert math.isnan(parsed.blocks[0].analogs[0])


def test_builders_refuse_what_does_not_fit():
    with pytest.raises(ConfigurationError, match="16 characters"):
        build_config(ConfigFrame(Stamp(1), [PmuConfig("seventeen chars!!", 1)]))
    with pytest.raises(ConfigurationError, match="IDCODE"):
        build_config(ConfigFrame(Stamp(1), [PmuConfig("x", 0)]))
    with pytest.raises(ConfigurationError, match="FNOM"):
        build_config(ConfigFrame(Stamp(1), [PmuConfig("x", 1, fnom=55)]))
    layout = DataLayout(CONFIG)
    with pytest.raises(ConfigurationError):
        layout.build(DataFrame(Stamp(1), [PmuData(0, [(1.5, 0)], 0, 0, [1.0], [0])]))
