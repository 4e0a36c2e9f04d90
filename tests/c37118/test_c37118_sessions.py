"""The sans-IO cores without sockets: the PDC client session and the server's stream session,
and the asyncio server against a hostile PDC."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from gridbind.c37118.client import (
    ConfigurationChanged,
    DataReceived,
    FrameRejected,
    HeaderReceived,
    PdcSession,
    StreamStalled,
)
from gridbind.c37118.constants import Command, FrameType
from gridbind.c37118.frames import (
    CommandFrame,
    ConfigFrame,
    DataFrame,
    PhasorChannel,
    PmuConfig,
    PmuData,
    Stamp,
    build_cfg3,
    build_command,
    build_config,
    parse_command,
)
from gridbind.c37118.framing import FrameDecoder
from gridbind.c37118.layout import DataLayout
from gridbind.c37118.server import (
    BadCommand,
    CommandHandled,
    PmuServer,
    StreamSession,
    StreamState,
)

from c37118_peers import wait_until

ID = 5


def _config(phasors: int, cfgcnt: int = 0) -> ConfigFrame:
    return ConfigFrame(
        Stamp(ID),
        [PmuConfig("P", ID, 0xF, [PhasorChannel(f"V{i}") for i in range(phasors)], cfgcnt=cfgcnt)],
        1_000_000,
        10,
    )


def _data(config: ConfigFrame, number: int, stat: int = 0) -> bytes:
    phasors = [(1.0, 0.0)] * len(config.pmus[0].phasors)
    frame = DataFrame(
        Stamp(ID, 1000 + number // 10, (number % 10) * 100_000),
        [PmuData(stat, phasors, 60.0, 0.0, [], [])],
    )
    return DataLayout(config).build(frame)


def _commands(session: PdcSession) -> list[int]:
    data = session.data_to_send()
    return [parse_command(data[i : i + 18]).command for i in range(0, len(data), 18)]


def test_start_config_then_data_on():
    session = PdcSession(ID)
    session.start(0.0)
    assert _commands(session) == [Command.DATA_OFF, Command.SEND_CFG2]
    events = session.receive(build_config(_config(1)), 0.1)
    assert isinstance(events[0], ConfigurationChanged) and events[0].previous is None
    assert _commands(session) == [Command.DATA_ON]
    events = session.receive(_data(_config(1), 0) + _data(_config(1), 3), 0.2)
    assert [type(e) for e in events] == [DataReceived, DataReceived]
    assert session.stats.frames_lost == 2  # frames 1 and 2 never came


def test_frames_before_their_configuration_are_held_and_replayed():
    old, new = _config(1), _config(2, 1)
    session = PdcSession(ID, config_retry=1.0)
    session.start(0.0)
    session.receive(build_config(old), 0.0)
    session.data_to_send()
    events = session.receive(_data(new, 0) + _data(new, 1), 0.5)  # the layout changed silently
    assert events == [] and _commands(session) == [Command.SEND_CFG2]
    events = session.receive(build_config(new), 0.6)
    assert isinstance(events[0], ConfigurationChanged)
    assert [e.layout.config for e in events[1:]] == [session.config] * 2
    assert session.stats.frames_lost == 0


def test_same_configuration_again_is_no_change_and_keeps_the_object():
    session = PdcSession(ID)
    session.start(0.0)
    session.receive(build_config(_config(1)), 0.0)
    first = session.config
    assert session.receive(build_config(_config(1)), 1.0) == []
    assert session.config is first


def test_change_bit_asks_again_rate_limited_and_when_it_clears():
    config = _config(1)
    session = PdcSession(ID, config_retry=2.0)
    session.start(0.0)
    session.receive(build_config(config), 0.0)
    session.data_to_send()
    session.receive(_data(config, 0, 0x0400) + _data(config, 1, 0x0400), 0.1)
    assert _commands(session) == [Command.SEND_CFG2]  # once, not per frame
    session.receive(_data(config, 2, 0x0400), 2.5)
    assert _commands(session) == [Command.SEND_CFG2]  # the retry interval passed
    session.receive(build_config(config), 2.6)
    session.receive(_data(config, 3), 2.7)
    assert _commands(session) == [Command.SEND_CFG2]  # the bit cleared: the change happened


def test_cfg3_and_cfg2_alternate_until_answered_and_stalls_are_reported():
    session = PdcSession(ID, prefer_cfg3=True, config_retry=1.0, data_timeout=5.0)
    session.start(0.0)
    assert _commands(session) == [Command.DATA_OFF, Command.SEND_CFG3]
    assert session.next_deadline() == 1.0
    assert session.tick(1.0) == []
    assert _commands(session) == [Command.SEND_CFG2]
    session.tick(2.0)
    assert _commands(session) == [Command.SEND_CFG3]  # alternating until one is answered
    events = session.tick(5.0)
    assert isinstance(events[-1], StreamStalled)
    fragments = build_cfg3(
        ConfigFrame(Stamp(ID), _config(1).pmus, 1_000_000, 10, FrameType.CFG3), 40
    )
    events = session.receive(b"".join(fragments), 6.0)
    assert isinstance(events[0], ConfigurationChanged) and events[0].config.kind == FrameType.CFG3


def test_bad_frames_are_events_and_held_frames_are_bounded():
    from gridbind.c37118.crc import crc_ccitt

    session = PdcSession(ID, max_held=3)
    session.start(0.0)
    bad = build_config(_config(1))
    events = session.receive(bad[:-1] + bytes([bad[-1] ^ 1]), 0.0)
    assert len(events) == 1 and isinstance(events[0], FrameRejected) and "CRC" in events[0].reason
    config = _config(1)
    for number in range(5):  # no configuration yet: held, at most 3
        assert session.receive(_data(config, number), 0.1) == []
    assert session.stats.dropped_held == 2 and session.stats.frames_lost == 2
    events = session.receive(build_config(config), 0.2)
    assert [type(e) for e in events] == [ConfigurationChanged] + [DataReceived] * 3
    header = b"\xaa\x11\x00\x12" + ID.to_bytes(2, "big") + bytes(8) + b"hi"
    header += crc_ccitt(header).to_bytes(2, "big")
    (event,) = session.receive(header, 0.3)
    assert isinstance(event, HeaderReceived) and event.frame.text == "hi"


def test_stream_session_commands():
    state = StreamState(_config(2), header="hello", clock=lambda: (7, 8))
    session = StreamSession(state)
    wire = b"".join(
        build_command(CommandFrame(Stamp(idcode), command))
        for idcode, command in [
            (ID, Command.SEND_HEADER),
            (ID, Command.SEND_CFG1),
            (ID, Command.SEND_CFG2),
            (ID, Command.SEND_CFG3),
            (ID, Command.DATA_ON),
            (ID + 1, Command.DATA_OFF),
            (ID, 99),
        ]
    )
    events = session.receive(wire + b"\xaa\x41\x00\x12" + bytes(14))  # and a bad CRC
    assert events[-3:-1] == [
        CommandHandled(Command.DATA_OFF, f"IDCODE {ID + 1}"),
        CommandHandled(99, "unsupported command"),
    ]
    assert isinstance(events[-1], BadCommand) and session.streaming
    decoder = FrameDecoder(auto_layout=False)
    answers = decoder.feed(session.data_to_send())
    kinds = [type(a).__name__ for a in answers]
    assert kinds == ["HeaderReceived", "ConfigReceived", "ConfigReceived", "ConfigReceived"]
    assert answers[0].frame.text == "hello" and answers[1].config.kind == FrameType.CFG1
    assert answers[2].config.stamp == Stamp(ID, 7, 8) and answers[3].config.kind == FrameType.CFG3


@pytest.mark.timeout(20)
def test_server_survives_hostile_pdcs_and_bounds_connections():
    async def run() -> None:
        server = PmuServer(_config(1), port=0, max_connections=2)
        await server.start()
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"\x00" * 1000 + b"\xaa\x41\xff\xff" + bytes(100) + b"\xaa\x41\x00\x03")
            writer.write(bytes(70_000))  # a FRAMESIZE of 65535 that never completes
            writer.write(build_command(CommandFrame(Stamp(ID), Command.SEND_CFG2)))
            await writer.drain()
            second = await asyncio.open_connection("127.0.0.1", server.port)
            third_reader, third = await asyncio.open_connection("127.0.0.1", server.port)
            assert await asyncio.wait_for(third_reader.read(), 5) == b""  # refused
            second[1].write(build_command(CommandFrame(Stamp(ID), Command.SEND_CFG2)))
            answer = await asyncio.wait_for(second[0].readexactly(len(build_config(_config(1)))), 5)
            assert answer[1] == 0x32
            await wait_until(lambda: server.rejected >= 1, 5)
            for w in (writer, second[1], third):
                w.close()
        finally:
            await server.stop()

    asyncio.run(run())


def test_an_announced_change_delivered_in_band_is_not_asked_again():
    """A PMU that sends its new CFG-2 in-band after the STAT bit: no further request (pyc37's
    per-connection process would answer it with the old configuration)."""
    old, new = _config(1), _config(2, 1)
    session = PdcSession(ID, config_retry=5.0)
    session.start(0.0)
    session.receive(build_config(old), 0.0)
    session.data_to_send()
    session.receive(_data(old, 0, 0x0400), 0.1)
    assert _commands(session) == [Command.SEND_CFG2]
    session.receive(build_config(old), 0.2)  # the answer: still the old one
    events = session.receive(build_config(new) + _data(new, 1) + _data(new, 2), 0.3)
    assert [type(e) for e in events] == [ConfigurationChanged, DataReceived, DataReceived]
    assert _commands(session) == []


def test_a_configuration_whose_data_frames_cannot_fit_is_refused():
    """9000 float phasors: a valid CFG-3 (in continuation frames) whose data frame would need
    72 KB; the decoder and the client refuse it with a clear reason and go on."""
    pmu = PmuConfig("BIG", ID, 0xF, [PhasorChannel("V")] * 9000)
    fragments = build_cfg3(ConfigFrame(Stamp(ID), [pmu], 1_000_000, 10, FrameType.CFG3))
    assert len(fragments) > 1
    decoder = FrameDecoder()
    events = [e for f in fragments for e in decoder.feed(f)]
    assert "exceed 65535" in events[-1].reason and decoder.layout is None
    session = PdcSession(ID)
    session.start(0.0)
    events = session.receive(b"".join(fragments), 0.0)
    assert isinstance(events[-1], FrameRejected) and "65535" in events[-1].reason
    assert session.config is None
    events = session.receive(build_config(_config(1)), 0.1)
    assert isinstance(events[0], ConfigurationChanged)


def test_a_configuration_too_big_for_cfg2_is_served_as_cfg3_only():
    """150 PMUs of 10 phasors and a digital word: CFG-2 would be 147 KB (it cannot be split);
    SEND CFG-2 is answered with nothing and a reason, SEND CFG-3 with continuation frames."""
    from gridbind.c37118.frames import DigitalWord

    pmus = [
        PmuConfig(
            f"P{n}", n + 1, 0xF, [PhasorChannel(f"V{k}") for k in range(10)], [], [DigitalWord()]
        )
        for n in range(150)
    ]
    session = StreamSession(StreamState(ConfigFrame(Stamp(ID), pmus, 1_000_000, 60)))
    events = session.receive(build_command(CommandFrame(Stamp(ID), Command.SEND_CFG2)))
    assert "exceeds 65535" in events[0].ignored and session.data_to_send() == b""
    session.receive(build_command(CommandFrame(Stamp(ID), Command.SEND_CFG3)))
    client = PdcSession(ID, prefer_cfg3=True)
    client.start(0.0)
    events = client.receive(session.data_to_send(), 0.0)
    assert isinstance(events[0], ConfigurationChanged) and len(events[0].config.pmus) == 150


def test_one_read_of_repeated_configuration_requests_is_cheap():
    """100 PMUs x 10 phasors and 64 KiB of SEND CFG-2 / CFG-3: one answer per kind and read,
    built once per configuration (it used to queue 177 MiB and block the loop for seconds)."""
    import time

    pmus = [
        PmuConfig(f"P{n}", n + 1, 0xF, [PhasorChannel(f"V{k}") for k in range(10)])
        for n in range(100)
    ]
    state = StreamState(ConfigFrame(Stamp(ID), pmus, 1_000_000, 60), clock=lambda: (9, 1))
    session = StreamSession(state)
    cfg2 = build_command(CommandFrame(Stamp(ID), Command.SEND_CFG2))
    cfg3 = build_command(CommandFrame(Stamp(ID), Command.SEND_CFG3))
    read = (cfg2 + cfg3) * (65536 // 36)
    started = time.perf_counter()
    for _ in range(3):
        events = session.receive(read)
        out = session.data_to_send()
        assert len(out) < 200_000  # one CFG-2 and one CFG-3 (~44 KB each)
    assert time.perf_counter() - started < 1.0
    assert sum(1 for e in events if not e.ignored) == 2
    assert {e.ignored for e in events if e.ignored} == {"repeated in one read"}
    answers = FrameDecoder(auto_layout=False).feed(out)
    assert [a.config.kind for a in answers] == [FrameType.CFG2, FrameType.CFG3]
    assert answers[0].config.stamp == Stamp(ID, 9, 1) and len(answers[1].config.pmus) == 100


def test_requests_wait_while_the_output_backlog_is_full():
    state = StreamState(_config(1))
    session = StreamSession(state, max_out=10)
    session.send(bytes(20))  # data frames the PDC has not read yet
    events = session.receive(build_command(CommandFrame(Stamp(ID), Command.SEND_CFG2)))
    assert events == [CommandHandled(Command.SEND_CFG2, "output backlog full")]
    assert session.data_to_send() == bytes(20)
    session.receive(build_command(CommandFrame(Stamp(ID), Command.SEND_CFG2)))
    assert session.data_to_send() == build_config(replace(_config(1), stamp=Stamp(ID)))


def _reseal(raw: bytes) -> bytes:
    from gridbind.c37118.crc import crc_ccitt

    return raw[:-2] + crc_ccitt(raw[:-2]).to_bytes(2, "big")


@pytest.mark.parametrize("idcode", [0, 65535])
def test_a_configuration_with_a_reserved_pmu_idcode_is_a_bad_frame(idcode):
    """Twice the same CFG-2 whose PMU block says IDCODE 0 / 65535: refused at parse time, and
    the session goes on (the second copy used to raise out of receive)."""
    good = build_config(_config(1))
    offset = 14 + 6 + 16  # header, TIME_BASE + NUM_PMU, STN
    hostile = _reseal(good[:offset] + idcode.to_bytes(2, "big") + good[offset + 2 :])
    session = PdcSession(ID)
    session.start(0.0)
    for now in (0.0, 0.1):
        events = session.receive(hostile, now)
        assert isinstance(events[0], FrameRejected) and "IDCODE" in events[0].reason
    assert isinstance(session.receive(good, 0.2)[0], ConfigurationChanged)


def test_a_cfg3_whose_names_grow_past_255_bytes_is_the_same_configuration_twice():
    """A 255-byte station name of invalid UTF-8 decodes to 255 U+FFFD (765 bytes); the second
    copy is compared by value, not rebuilt, so it is no change and no exception."""
    cfg = ConfigFrame(Stamp(ID), [PmuConfig("S" * 255, ID, 0xF)], 1_000_000, 10, FrameType.CFG3)
    (raw,) = build_cfg3(cfg)
    start = 14 + 2 + 6 + 1  # header, CONT_IDX, TIME_BASE + NUM_PMU, name length
    hostile = _reseal(raw[:start] + b"\xff" * 255 + raw[start + 255 :])
    session = PdcSession(ID, prefer_cfg3=True)
    session.start(0.0)
    first = session.receive(hostile, 0.0)
    assert isinstance(first[0], ConfigurationChanged)
    assert first[0].config.pmus[0].station == "\ufffd" * 255
    assert session.receive(hostile, 0.1) == []


def test_udp_takes_only_data_frames_of_the_stream():
    """A configuration (or a data frame of another stream) by UDP used to be taken: anyone can
    send a datagram."""
    session = PdcSession(ID)
    session.start(0.0)
    events = session.receive_datagram(build_config(_config(2)), 0.0)
    assert isinstance(events[0], FrameRejected) and session.config is None
    session.receive(build_config(_config(1)), 0.1)
    other = bytearray(_data(_config(1), 0))
    other[4:6] = (ID + 1).to_bytes(2, "big")
    events = session.receive_datagram(_reseal(bytes(other)), 0.2)
    assert isinstance(events[0], FrameRejected) and "IDCODE" in events[0].reason
    assert isinstance(session.receive_datagram(_data(_config(1), 1), 0.3)[0], DataReceived)
    assert session.stats.rejected == 2 and session.stats.frames == 1


@pytest.mark.timeout(10)
def test_udp_data_from_another_host_is_refused():
    import socket

    from gridbind.c37118.client import PdcClient

    async def run() -> tuple[list, int]:
        events: list = []
        server = PmuServer(_config(1), port=0)
        await server.start()
        client = PdcClient("127.0.0.1", server.port, ID, on_event=events.append, udp_port=0)
        await client.start()
        try:
            await wait_until(lambda: server.streaming == 1, 5)
            await wait_until(lambda: len(events) == 1, 5)  # the configuration
            for count, source in ((2, "127.0.0.2"), (3, "127.0.0.1")):
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                    sock.bind((source, 0))
                    sock.sendto(_data(_config(1), 0), ("127.0.0.1", client.udp_port))
                await wait_until(lambda: len(events) >= count, 5)  # noqa: B023
        finally:
            await client.stop()
            await server.stop()
        return events, client.stats.rejected

    events, rejected = asyncio.run(run())
    kinds = [type(e) for e in events if not isinstance(e, ConfigurationChanged)]
    assert kinds == [FrameRejected, DataReceived] and rejected == 1
    assert "127.0.0.2" in events[1].reason


def test_negative_data_rate_is_seconds_per_frame():
    """DATA_RATE -20: one frame every 20 s. The data time-out stretches to 3 periods and lost
    frames are counted in periods of 20 s (they were never counted, and a 10 s time-out
    reconnected between every two frames)."""
    slow = replace(_config(1), data_rate=-20)
    session = PdcSession(ID, data_timeout=10.0)
    session.start(0.0)
    session.receive(build_config(slow), 0.0)
    assert session.next_deadline() == 60.0
    layout = DataLayout(slow)

    def frame(second: int) -> bytes:
        block = PmuData(0, [(1.0, 0.0)], 60.0, 0.0, [], [])
        return layout.build(DataFrame(Stamp(ID, 1000 + second, 0), [block]))

    session.receive(frame(0), 1.0)
    assert session.tick(30.0) == []
    session.receive(frame(80), 40.0)  # 20, 40 and 60 never came
    assert session.stats.frames_lost == 3
    assert [type(e) for e in session.tick(100.0)] == [StreamStalled]
