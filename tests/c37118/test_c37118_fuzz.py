"""Hypothesis fuzz of the frame decoder: whatever bytes arrive, events come out, never an
exception, and the decoder holds no more than one frame's worth of bytes."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridbind.c37118.constants import MAX_FRAME, FrameType
from gridbind.c37118.frames import (
    AnalogChannel,
    ConfigFrame,
    DataFrame,
    DigitalWord,
    PhasorChannel,
    PmuConfig,
    PmuData,
    Stamp,
    build_cfg3,
    build_config,
)
from gridbind.c37118.framing import (
    ConfigPending,
    ConfigReceived,
    DataReceived,
    DataUnmatched,
    FrameDecoder,
    FrameRejected,
)
from gridbind.c37118.layout import DataLayout

PMU = PmuConfig(
    "FUZZ",
    3,
    0x5,
    [PhasorChannel("V"), PhasorChannel("I", True)],
    [AnalogChannel("A")],
    [DigitalWord()],
)
CONFIG = ConfigFrame(Stamp(3), [PMU, PMU], 1_000_000, 30)
LAYOUT = DataLayout(CONFIG)
VALID = [
    build_config(CONFIG),
    *build_cfg3(ConfigFrame(Stamp(3), [PMU], 1_000_000, 30, FrameType.CFG3), 48),
    LAYOUT.build(DataFrame(Stamp(3, 1, 2), [PmuData(0, [(1, 2), (3, 4)], 5, 6, [7.0], [8])] * 2)),
]
KNOWN = (ConfigReceived, ConfigPending, DataReceived, DataUnmatched, FrameRejected)


def _decode(chunks: list[bytes]) -> None:
    decoder = FrameDecoder()
    decoder.layout = LAYOUT
    for chunk in chunks:
        for event in decoder.feed(chunk):
            assert isinstance(event, KNOWN) or type(event).__name__.endswith("Received")
        assert len(decoder._buffer) <= MAX_FRAME + len(chunk)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(max_size=600), max_size=8))
def test_random_bytes(chunks):
    _decode(chunks)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(range(len(VALID))), min_size=1, max_size=6),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=6),
    st.integers(1, 97),
)
def test_mutated_valid_frames(order, flips, split):
    stream = bytearray(b"".join(VALID[i] for i in order))
    for position, value in flips:
        if stream:
            stream[position % len(stream)] = value
    data = bytes(stream)
    _decode([data[i : i + split] for i in range(0, len(data), split)])


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=16, max_size=400))
def test_datagrams_and_sync_prefixed_garbage(body):
    decoder = FrameDecoder()
    decoder.layout = LAYOUT
    for prefix in (b"\xaa\x01", b"\xaa\x21", b"\xaa\x31", b"\xaa\x41", b"\xaa\x51", b"\xaa\x11"):
        frame = prefix + len(body).to_bytes(2, "big") + body[4:]
        assert len(decoder.datagram(frame)) == 1
        decoder.feed(frame)


def test_found_cases():
    """Inputs hypothesis found interesting, kept as plain cases."""
    _decode([b"\xaa"])
    _decode([b"\xaa\x01\x00\x10" + bytes(12)])  # a data frame of the minimum size
    _decode([b"\xaa\x51\x00\x10" + bytes(12)])  # a CFG-3 with no CONT_IDX
    _decode([b"\xaa\x51\x00\x12" + bytes(12) + b"\xff\xff" + bytes(2)])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from(range(len(VALID))), min_size=1, max_size=6),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=4),
    st.integers(1, 200),
)
def test_pdc_session_takes_anything(order, flips, split):
    """The client core never raises, whatever the device sends; held frames stay bounded."""
    from gridbind.c37118.client import PdcSession

    session = PdcSession(3, max_held=4, max_held_bytes=4096)
    session.start(0.0)
    stream = bytearray(b"".join(VALID[i] for i in order))
    for position, value in flips:
        stream[position % len(stream)] = value
    for number, offset in enumerate(range(0, len(stream), split)):
        session.receive(bytes(stream[offset : offset + split]), number * 0.01)
        session.tick(number * 0.01)
        assert len(session._held) <= 4 and session._held_bytes <= 4096 + 65535


_CELLS = st.one_of(
    st.none(), st.integers(-(2**70), 2**70), st.text(max_size=30), st.floats(), st.booleans()
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "DeviceAcronym": st.sampled_from(["A", "B", "", None]),
                "SignalAcronym": st.sampled_from(
                    [
                        "FREQ",
                        "DFDT",
                        "VPHM",
                        "VPHA",
                        "IPHM",
                        "IPHA",
                        "ALOG",
                        "DIGI",
                        "FLAG",
                        "QUAL",
                        "X",
                    ]
                ),
                "SignalReference": st.one_of(
                    st.none(), st.text(max_size=12), st.just("A-PA99999999999")
                ),
                "PhasorSourceIndex": _CELLS,
            }
        ),
        max_size=30,
    ),
    st.lists(
        st.tuples(st.integers(0, 29), st.floats(), st.integers(-(2**63), 2**63 - 1)), max_size=60
    ),
    _CELLS,
)
def test_outbound_takes_any_metadata_and_measurements(rows, values, access):
    """Metadata and measurements are a publisher's input: the plan is built or refused with
    ConfigurationError, and the assembler never raises."""
    import uuid

    from gridbind.c37118.errors import ConfigurationError
    from gridbind.c37118.outbound import FrameAssembler, OutboundPlan
    from gridbind.sttp.ieee2664.metadata import empty_source_metadata
    from gridbind.sttp.measurement import Measurement

    metadata = empty_source_metadata()
    metadata["DeviceDetail"].add(Acronym="A", AccessID=access if isinstance(access, int) else None)
    ids = []
    for number, row in enumerate(rows):
        signal = uuid.UUID(int=number + 1)
        ids.append(signal)
        index = row["PhasorSourceIndex"]
        metadata["MeasurementDetail"].add(
            SignalID=signal,
            DeviceAcronym=row["DeviceAcronym"],
            SignalAcronym=row["SignalAcronym"],
            SignalReference=row["SignalReference"],
            PhasorSourceIndex=index if isinstance(index, int) else None,
        )
    try:
        plan = OutboundPlan(metadata, 9, format=0x7)
    except ConfigurationError:
        return
    assembler = FrameAssembler(plan)
    batch = [Measurement(ids[i % len(ids)], v, t) for i, v, t in values] if ids else []
    for frame in assembler.add(batch) + assembler.flush():
        assert plan.layout.parse(frame).stamp.idcode == 9


def test_found_outbound_cases():
    """A double beyond float32 range in a float field: the frame is unservable, not an error."""
    import uuid

    from gridbind.c37118.outbound import FrameAssembler, OutboundPlan
    from gridbind.sttp.ieee2664.metadata import empty_source_metadata
    from gridbind.sttp.measurement import Measurement

    metadata = empty_source_metadata()
    metadata["MeasurementDetail"].add(
        SignalID=uuid.UUID(int=1), DeviceAcronym="A", SignalAcronym="VPHM"
    )
    plan = OutboundPlan(metadata, 9, format=0x7)
    assembler = FrameAssembler(plan)
    stamp = 640_000_000_000_000_000
    assert assembler.add([Measurement(uuid.UUID(int=1), 1e300, stamp)]) == []
    assert assembler.unservable == 1
    assert len(assembler.add([Measurement(uuid.UUID(int=1), 1.0, stamp + 1)])) == 1


_NAMES = st.text(st.characters(codec="ascii"), max_size=16)


@st.composite
def _configs(draw):
    pmus = []
    for number in range(draw(st.integers(1, 3))):
        pmus.append(
            PmuConfig(
                draw(_NAMES),
                number + 1,
                draw(st.integers(0, 15)),
                [
                    PhasorChannel(draw(_NAMES), draw(st.booleans()), draw(st.integers(0, 0xFFFFFF)))
                    for _ in range(draw(st.integers(0, 3)))
                ],
                [
                    AnalogChannel(
                        draw(_NAMES),
                        draw(st.integers(0, 255)),
                        draw(st.integers(-(2**23), 2**23 - 1)),
                    )
                    for _ in range(draw(st.integers(0, 2)))
                ],
                [DigitalWord() for _ in range(draw(st.integers(0, 2)))],
                draw(st.sampled_from([50, 60])),
            )
        )
    return ConfigFrame(
        Stamp(3), pmus, draw(st.integers(1, 0xFFFFFF)), draw(st.integers(-32768, 32767))
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_configs(), st.binary(max_size=200), st.integers(0, 2**32 - 1))
def test_any_device_configuration_and_data_map_to_sttp(config, noise, fracsec):
    """A device's configuration and data are its input: metadata and measurements come out of
    every valid one, whatever the names, scales, formats and bit patterns."""
    import struct as _struct

    from gridbind.c37118.client import DataReceived, PdcSession
    from gridbind.c37118.mapping import StreamMapping

    session = PdcSession(3)
    session.start(0.0)
    layout = DataLayout(config)
    body = noise[: layout.body.size].ljust(layout.body.size, b"\x00")
    head = _struct.pack(">BBHHII", 0xAA, 0x02, layout.frame_size, 3, 1_800_000_000, fracsec)
    from gridbind.c37118.crc import crc_ccitt

    raw = head + body
    raw += crc_ccitt(raw).to_bytes(2, "big")
    events = session.receive(build_config(config) + raw, 0.0)
    data = [e for e in events if isinstance(e, DataReceived)]
    assert len(data) == 1
    mapping = StreamMapping(session.config)
    mapping.metadata().to_xml()
    measurements = mapping.measurements(data[0].stamp, data[0].values)
    assert len(measurements) == len(mapping.signals)


def test_found_device_cases():
    """Control characters in station and channel names (found by fuzzing): the metadata is
    still XML, with ``?`` in their place; TIME_BASE 0 is refused."""
    from gridbind.c37118.errors import FrameError
    from gridbind.c37118.frames import parse_config
    from gridbind.c37118.mapping import StreamMapping
    from gridbind.sttp.ieee2664.metadata import DataSet

    pmu = PmuConfig("\x1bST", 1, 0, [PhasorChannel("\x1f")], [AnalogChannel("a\x00")])
    mapping = StreamMapping(ConfigFrame(Stamp(3), [pmu], 1, 30))
    metadata = DataSet.from_xml(mapping.metadata().to_xml())
    assert metadata["DeviceDetail"].rows[0]["Name"] == "?ST"
    assert metadata["PhasorDetail"].rows[0]["Label"] == "?"
    raw = bytearray(build_config(ConfigFrame(Stamp(3), [pmu], 1, 30)))
    raw[14:18] = b"\x00\x00\x00\x00"
    from gridbind.c37118.crc import crc_ccitt

    raw[-2:] = crc_ccitt(bytes(raw[:-2])).to_bytes(2, "big")
    with pytest.raises(FrameError, match="TIME_BASE"):
        parse_config(bytes(raw))


# ------------------------------------------------ validly sealed hostile frames (correct CRC)


def _sealed(kind: int, idcode: int, body: bytes, stamp: bytes = bytes(8)) -> bytes:
    from gridbind.c37118.crc import crc_ccitt

    size = 14 + len(body) + 2
    frame = bytes([0xAA, (kind << 4) | 2]) + size.to_bytes(2, "big") + idcode.to_bytes(2, "big")
    frame += stamp + body
    return frame + crc_ccitt(frame).to_bytes(2, "big")


_U16 = st.integers(0, 0xFFFF)
_SMALL = st.integers(0, 3)


@st.composite
def _hostile_cfg2(draw):
    pmus = []
    for _ in range(draw(st.integers(1, 3))):
        phnmr, annmr, dgnmr = draw(_SMALL), draw(_SMALL), draw(st.integers(0, 1))
        names = phnmr + annmr + 16 * dgnmr
        block = draw(st.binary(min_size=16, max_size=16))  # STN: any bytes
        block += b"".join(
            v.to_bytes(2, "big")
            for v in (draw(st.sampled_from([0, 1, 3, 65534, 65535])), draw(_U16))
        )
        block += b"".join(v.to_bytes(2, "big") for v in (phnmr, annmr, dgnmr))
        block += draw(st.binary(min_size=16 * names, max_size=16 * names))
        block += draw(st.binary(min_size=4 * (phnmr + annmr + dgnmr) + 4, max_size=4 * 9 + 4))[
            : 4 * (phnmr + annmr + dgnmr) + 4
        ]
        pmus.append(block)
    head = draw(st.integers(0, 0xFFFFFFFF)).to_bytes(4, "big") + len(pmus).to_bytes(2, "big")
    return head + b"".join(pmus) + draw(_U16).to_bytes(2, "big")


@st.composite
def _hostile_cfg3(draw):
    pmus = []
    for _ in range(draw(st.integers(1, 2))):
        phnmr, annmr, dgnmr = draw(_SMALL), draw(_SMALL), draw(st.integers(0, 1))
        names = [draw(st.binary(max_size=255)) for _ in range(1 + phnmr + annmr + 16 * dgnmr)]
        block = bytes([len(names[0])]) + names[0]
        block += draw(st.sampled_from([0, 1, 65535])).to_bytes(2, "big") + bytes(16)
        block += b"".join(v.to_bytes(2, "big") for v in (draw(_U16), phnmr, annmr, dgnmr))
        block += b"".join(bytes([len(n)]) + n for n in names[1:])
        size = 12 * phnmr + 8 * annmr + 4 * dgnmr + 25
        block += draw(st.binary(min_size=size, max_size=size))
        pmus.append(block)
    head = draw(st.integers(0, 0xFFFFFFFF)).to_bytes(4, "big") + len(pmus).to_bytes(2, "big")
    return b"\x00\x00" + head + b"".join(pmus) + draw(_U16).to_bytes(2, "big")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.one_of(
            _hostile_cfg2().map(lambda body: (3, body)),
            _hostile_cfg3().map(lambda body: (5, body)),
            st.binary(max_size=200).map(lambda body: (0, body)),
            st.just((0, None)),  # a data frame of random values that fits the layout in force
        ),
        min_size=1,
        max_size=6,
    ),
    st.booleans(),
    st.data(),
)
def test_sealed_hostile_configurations_and_data_never_raise(frames, cfg3, data):
    """Frames with random fields and a correct CRC, each sent twice (a repeated configuration
    is compared with the one in force), over TCP and UDP: the client core and the mapping the
    bridge builds of what it accepts raise nothing but C37.118 errors the bridge catches."""
    from gridbind.c37118.client import ConfigurationChanged, DataReceived, PdcSession
    from gridbind.c37118.errors import C37118Error
    from gridbind.c37118.mapping import StreamMapping

    session = PdcSession(3, prefer_cfg3=cfg3, max_held=4, max_held_bytes=4096)
    session.start(0.0)
    mappings = {}
    for number, (kind, body) in enumerate(frames * 2):
        if body is None:  # random SOC, FRACSEC and values, the size the layout expects
            layout = session.decoder.layout
            size = layout.body.size if layout is not None else 0
            stamp = data.draw(st.binary(min_size=8, max_size=8))
            raw = _sealed(kind, 3, data.draw(st.binary(min_size=size, max_size=size)), stamp)
        else:
            raw = _sealed(kind, 3, body)
        now = number * 0.01
        events = session.receive_datagram(raw, now) if number % 2 else session.receive(raw, now)
        for event in events:
            try:
                if isinstance(event, ConfigurationChanged):
                    mapping = mappings[id(event.config)] = StreamMapping(event.config)
                    mapping.metadata()
                elif isinstance(event, DataReceived):
                    mapping = mappings.get(id(event.layout.config))
                    if mapping is not None:
                        mapping.measurements(event.stamp, event.values)
            except C37118Error:
                pass
        session.tick(now)
