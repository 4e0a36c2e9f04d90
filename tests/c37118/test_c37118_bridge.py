"""The client, server and bridges against each other: CFG-3 in continuation frames, UDP data,
configuration changes through the CFG change bit, hostile PMUs, the draft profile, the CLI."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest

from gridbind.c37118.bridge import C37118ToSttp
from gridbind.c37118.client import ConfigurationChanged, DataReceived, PdcClient
from gridbind.c37118.constants import Command, FrameType
from gridbind.c37118.crc import crc_ccitt
from gridbind.c37118.frames import (
    AnalogChannel,
    CommandFrame,
    ConfigFrame,
    DataFrame,
    DigitalWord,
    PhasorChannel,
    PmuConfig,
    PmuData,
    Stamp,
    build_command,
    build_config,
)
from gridbind.c37118.layout import DataLayout
from gridbind.c37118.server import PmuServer
from gridbind.sttp.ieee2664 import Subscriber

from c37118_peers import ALL, f32, free_port, wait_until

ID = 60


def config(phasors: int = 2, station: str = "SUB A") -> ConfigFrame:
    pmu = PmuConfig(
        station,
        61,
        0xF,
        [PhasorChannel(f"V{i + 1}") for i in range(phasors)],
        [AnalogChannel("MW")],
        [DigitalWord()],
        60,
        phasors,
    )
    return ConfigFrame(
        Stamp(ID), [pmu, PmuConfig("SUB B", 62, 0x0, [PhasorChannel("I1", True)])], 1_000_000, 30
    )


def frame(cfg: ConfigFrame, number: int, stat: int = 0) -> DataFrame:
    phasors = len(cfg.pmus[0].phasors)
    return DataFrame(
        Stamp(ID, 1_700_000_000 + number // 30, (number % 30) * 33333),
        [
            PmuData(stat, [(100.0 + number, 0.25)] * phasors, 60.0, 0.0, [float(number)], [number]),
            PmuData(0, [(number, -number)], number, 0, [], []),
        ],
    )


@pytest.mark.timeout(20)
def test_cfg3_continuation_udp_data_and_config_change_bit():
    first, second = config(2), config(3)

    async def run() -> None:
        events: list = []
        client = PdcClient("127.0.0.1", 0, ID, on_event=events.append, prefer_cfg3=True, udp_port=0)
        await client.start()  # UDP socket first: the server needs its port
        await client.stop()
        udp = client.udp_port
        server = PmuServer(first, port=0, max_frame=80, udp_target=("127.0.0.1", udp))
        await server.start()
        client = PdcClient(
            "127.0.0.1",
            server.port,
            ID,
            on_event=events.append,
            prefer_cfg3=True,
            udp_port=udp,
            config_retry=0.3,
        )
        await client.start()
        try:
            await wait_until(lambda: server.streaming == 1, 5)
            assert client.config.kind == FrameType.CFG3 and client.config.pmus[0].cfgcnt == 2
            layout = server.layout
            for number in range(10):
                server.send_data(layout.build(frame(first, number, 0x0400 if number > 6 else 0)))
                await asyncio.sleep(0.01)
            await wait_until(lambda: client.stats.frames == 10, 5)
            # The PMU announced a change (STAT bit 10): the client asks again and gets CFG-3 #2.
            server.state.set_config(second)  # not sent in-band: the client must ask
            layout = server.layout
            for number in range(10, 20):
                server.send_data(layout.build(frame(second, number)))
                await asyncio.sleep(0.01)
            await wait_until(lambda: client.stats.frames == 20, 5)
            assert client.config.pmus[0].cfgcnt == 3
        finally:
            await client.stop()
            await server.stop()
        changes = [e for e in events if isinstance(e, ConfigurationChanged)]
        assert len(changes) == 2 and changes[1].config.kind == FrameType.CFG3
        data = [e for e in events if isinstance(e, DataReceived)]
        assert [e.layout.to_frame(e.stamp, e.values) for e in data] == [
            frame(first, n, 0x0400 if n > 6 else 0) for n in range(10)
        ] + [frame(second, n) for n in range(10, 20)]
        assert client.stats.frames_lost == 0 and client.stats.rejected == 0

    asyncio.run(run())


class HostilePmu(asyncio.Protocol):
    """A PMU that answers SEND CFG-2 and then streams ``script`` (valid and hostile frames)."""

    script: list[bytes] = []

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        if build_command(CommandFrame(Stamp(ID), Command.SEND_CFG2)) in data:
            self.transport.write(build_config(config()))
        if build_command(CommandFrame(Stamp(ID), Command.DATA_ON)) in data:
            for chunk in self.script:
                self.transport.write(chunk)


def _reseal(raw: bytes) -> bytes:
    return raw[:-2] + crc_ccitt(raw[:-2]).to_bytes(2, "big")


@pytest.mark.timeout(20)
def test_hostile_frames_never_stop_the_bridge():
    cfg = config()
    layout = DataLayout(cfg)
    good = [layout.build(frame(cfg, n)) for n in range(6)]
    bad_crc = good[0][:-1] + bytes([good[0][-1] ^ 0xFF])
    absurd = bytearray(build_config(cfg))
    absurd[18:20] = b"\xff\xfe"  # NUM_PMU 65534
    short = _reseal(good[1][:20] + good[1][-2:])
    short = short[:2] + len(short).to_bytes(2, "big") + short[4:]
    HostilePmu.script = [
        good[0],
        bad_crc,
        good[1],
        _reseal(bytes(absurd)),
        b"\x00garbage\xaa\x77",
        _reseal(short),
        good[2],
        b"\xaa\x01\x00\x05",
        good[3],
        b"\xaa\x51\x00\x10" + bytes(12),
        good[4],
        good[5],
    ]

    async def run() -> None:
        loop = asyncio.get_running_loop()
        pmu = await loop.create_server(HostilePmu, "127.0.0.1", 0)
        bridge = C37118ToSttp("127.0.0.1", pmu.sockets[0].getsockname()[1], ID, sttp_port=0)
        try:
            await bridge.start()
            await bridge.wait_configured()
            await wait_until(lambda: bridge.frames == 6, 5)
            assert bridge.rates().rejected >= 5
            reasons = " | ".join(bridge.client.stats.reasons)
            for words in ("CRC", "NUM_PMU", "SYNC", "below"):
                assert words in reasons
            assert bridge.measurements == 6 * len(bridge.mapping.signals)
        finally:
            await bridge.stop()
            pmu.close()

    asyncio.run(run())


@pytest.mark.timeout(20)
def test_draft_profile_bridge():
    from gridbind.sttp.draft import Subscriber as DraftSubscriber

    cfg = config()

    async def run() -> None:
        server = PmuServer(cfg, port=0)
        await server.start()
        bridge = C37118ToSttp("127.0.0.1", server.port, ID, sttp_port=0, profile="draft-0.8")
        subscriber = None
        try:
            await bridge.start()
            mapping = await bridge.wait_configured()
            subscriber = DraftSubscriber(port=bridge.port)
            await subscriber.start()
            await subscriber.subscribe()
            await wait_until(lambda: server.streaming == 1, 5)
            for number in range(3):
                server.send_data(server.layout.build(frame(cfg, number)))
            got = await subscriber.collect(3 * len(mapping.signals), 5)
            stamp, values = mapping.layout.unpack(mapping.layout.build(frame(cfg, 2)))
            sent = mapping.measurements(stamp, values)
            assert [(m.signal_id, m.value, m.timestamp) for m in got[-len(sent) :]] == [
                (m.signal_id, f32(m.value), m.timestamp) for m in sent  # draft SINGLE points
            ]
            result = await subscriber.request_metadata("DataPoint")
            assert result is not None
        finally:
            if subscriber is not None:
                await subscriber.stop()
            await bridge.stop()
            await server.stop()

    asyncio.run(run())


def _gridbind(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "gridbind", *args],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


@pytest.mark.timeout(30)
def test_cli_bridge_and_serve():
    cfg = config()
    sttp_port, c37_port = free_port(), free_port()

    async def run() -> tuple[str, str, list]:
        server = PmuServer(cfg, port=0)
        await server.start()
        bridge = _gridbind(
            "c37118",
            "bridge",
            "--pmu",
            f"127.0.0.1:{server.port}",
            "--id",
            str(ID),
            "--sttp-port",
            str(sttp_port),
            "--seconds",
            "4",
            "--stats",
            "0.5",
        )
        serve = None
        events: list = []
        try:
            await wait_until(lambda: server.streaming == 1, 10)
            subscriber = Subscriber("127.0.0.1", sttp_port, filter_expression=ALL)
            await subscriber.start()
            await subscriber.wait_subscribed()
            serve = _gridbind(
                "c37118",
                "serve",
                "--sttp",
                f"127.0.0.1:{sttp_port}",
                "--port",
                str(c37_port),
                "--id",
                "5",
                "--seconds",
                "2.5",
                "--stats",
                "0.5",
            )
            client = PdcClient("127.0.0.1", c37_port, 5, on_event=events.append)
            await client.start()
            number = 0
            while serve.poll() is None and number < 200:
                server.send_data(server.layout.build(frame(cfg, number)))
                number += 1
                await asyncio.sleep(1 / 30)
            await client.stop()
            await subscriber.stop()
        finally:
            await server.stop()
        _, bridge_err = await asyncio.to_thread(bridge.communicate, timeout=15)
        _, serve_err = await asyncio.to_thread(serve.communicate, timeout=15)
        return bridge_err, serve_err, events

    bridge_err, serve_err, events = asyncio.run(run())
    assert "frames/s" in bridge_err and "frames lost" in bridge_err, bridge_err
    assert "configuration changes" in bridge_err and "1 configuration changes" in bridge_err
    assert "measurements/s" in serve_err, serve_err
    frames = [e for e in events if isinstance(e, DataReceived)]
    assert len(frames) > 5
    assert frames[-1].layout.to_frame(frames[-1].stamp, frames[-1].values).blocks[0].phasors


@pytest.mark.timeout(30)
def test_serve_follows_a_metadata_change():
    """The STTP publisher's metadata changes (a PMU gains a phasor): the served configuration
    changes, CFGCNT counts it, and the PDC gets it in-band and reads the frames after it."""
    from gridbind.c37118.bridge import SttpToC37118
    from gridbind.c37118.mapping import StreamMapping
    from gridbind.sttp.ieee2664 import Publisher

    old, new = StreamMapping(config(2)), StreamMapping(config(3))

    async def run() -> list:
        events: list = []
        publisher = Publisher(old.metadata(), port=0)
        await publisher.start()
        bridge = SttpToC37118("127.0.0.1", publisher.port, port=0, idcode=3)
        client = None
        try:
            await bridge.start()
            server = await bridge.wait_ready()
            client = PdcClient("127.0.0.1", server.port, 3, on_event=events.append)
            await client.start()
            await wait_until(lambda: server.streaming == 1, 5)
            stamp, values = old.layout.unpack(old.layout.build(frame(config(2), 1)))
            publisher.publish(old.measurements(stamp, values))
            await wait_until(lambda: client.stats.frames == 1, 5)
            publisher.define_metadata(new.metadata())
            await wait_until(lambda: client.stats.config_changes == 2, 10)
            await wait_until(
                lambda: bridge.subscriber.subscribed and bridge.plan.expected == len(new.signals),
                10,
            )
            await asyncio.sleep(0.3)  # the renewed subscription is in force
            stamp, values = new.layout.unpack(new.layout.build(frame(config(3), 2)))
            publisher.publish(new.measurements(stamp, values))
            await wait_until(lambda: client.stats.frames == 2, 10)
        finally:
            if client is not None:
                await client.stop()
            await bridge.stop()
            await publisher.stop()
        return events

    events = asyncio.run(run())
    changes = [e.config for e in events if isinstance(e, ConfigurationChanged)]
    assert [len(c.pmus[0].phasors) for c in changes] == [2, 3]
    assert [c.pmus[0].cfgcnt for c in changes] == [0, 1]
    data = [e for e in events if isinstance(e, DataReceived)]
    last = data[-1].layout.to_frame(data[-1].stamp, data[-1].values)
    assert last.blocks[0].phasors == [(102.0, 0.25)] * 3


@pytest.mark.timeout(30)
def test_bridge_reconnects_and_counts_the_frames_missed_meanwhile():
    cfg = config()
    port = free_port()

    async def run() -> C37118ToSttp:
        server = PmuServer(cfg, port=port)
        await server.start()
        bridge = C37118ToSttp("127.0.0.1", port, ID, sttp_port=0)
        await bridge.start()
        try:
            await wait_until(lambda: server.streaming == 1, 5)
            server.send_data(server.layout.build(frame(cfg, 0)))
            await wait_until(lambda: bridge.frames == 1, 5)
            await server.stop()  # the PMU goes away ...
            await asyncio.sleep(0.3)
            server = PmuServer(cfg, port=port)  # ... and comes back
            await server.start()
            await wait_until(lambda: server.streaming == 1, 10)
            server.send_data(server.layout.build(frame(cfg, 30)))  # 29 frames were missed
            await wait_until(lambda: bridge.frames == 2, 5)
            await server.stop()
        finally:
            await bridge.stop()
        return bridge

    bridge = asyncio.run(run())
    rates = bridge.rates()
    assert bridge.client.connections == 2
    assert rates.config_changes == 1 and rates.frames_lost == 29


@pytest.mark.timeout(30)
def test_draft_profile_both_ways():
    """C37.118 -> draft-0.8 STTP -> C37.118: the served configuration is the device's (names,
    phasor types, counts) and the frames carry the same values."""
    from gridbind.c37118.bridge import SttpToC37118

    cfg = config()

    async def run() -> list:
        events: list = []
        server = PmuServer(cfg, port=0)
        await server.start()
        inbound = C37118ToSttp("127.0.0.1", server.port, ID, sttp_port=0, profile="draft-0.8")
        outbound = client = None
        try:
            await inbound.start()
            await inbound.wait_configured()
            outbound = SttpToC37118(
                "127.0.0.1", inbound.port, port=0, idcode=8, profile="draft-0.8", format=0x0F
            )
            await outbound.start()
            served = await outbound.wait_ready()
            client = PdcClient("127.0.0.1", served.port, 8, on_event=events.append)
            await client.start()
            await wait_until(lambda: served.streaming == 1 and server.streaming == 1, 5)
            for number in range(4):
                server.send_data(server.layout.build(frame(cfg, number)))
                await asyncio.sleep(0.02)
            await wait_until(lambda: client.stats.frames >= 3, 5)
        finally:
            if client is not None:
                await client.stop()
            if outbound is not None:
                await outbound.stop()
            await inbound.stop()
            await server.stop()
        return events

    events = asyncio.run(run())
    config_out = next(e.config for e in events if isinstance(e, ConfigurationChanged))
    assert [p.station for p in config_out.pmus] == ["SUB_A", "SUB_B"]
    assert [c.name for c in config_out.pmus[0].phasors] == ["V1", "V2"]
    assert config_out.pmus[1].phasors[0].is_current
    data = [e for e in events if isinstance(e, DataReceived)]
    got = data[0].layout.to_frame(data[0].stamp, data[0].values)
    assert got.blocks[0].phasors == [(100.0, 0.25)] * 2 and got.blocks[0].digitals == [0]
    assert got.blocks[1].phasors[0] == (pytest.approx(0.0, abs=1e-6), pytest.approx(0.0, abs=1e-6))


@pytest.mark.timeout(20)
def test_draft_profile_follows_a_configuration_change():
    """The device drops a phasor: the DataPoint table loses its two rows and gains nothing."""
    from gridbind.sttp.draft import Subscriber as DraftSubscriber

    async def run() -> tuple[int, int, int]:
        server = PmuServer(config(3), port=0)
        await server.start()
        bridge = C37118ToSttp("127.0.0.1", server.port, ID, sttp_port=0, profile="draft-0.8")
        subscriber = None
        try:
            await bridge.start()
            first = len((await bridge.wait_configured()).signals)
            await wait_until(lambda: server.streaming == 1, 5)
            server.set_config(config(2))  # in-band CFG-2
            await wait_until(lambda: bridge.definitions == 2, 5)  # after min_change_interval
            subscriber = DraftSubscriber(port=bridge.port)
            await subscriber.start()
            rows = (await subscriber.request_metadata("DataPoint")).rows
            return first, len(bridge.mapping.signals), len(rows)
        finally:
            if subscriber is not None:
                await subscriber.stop()
            await bridge.stop()
            await server.stop()

    first, second, rows = asyncio.run(run())
    assert first == second + 2 and rows == second


@pytest.mark.timeout(20)
def test_a_flapping_configuration_is_announced_at_most_once_per_interval():
    """A device that changes its configuration 20 times in a fraction of a second: the bridge
    defines metadata a bounded number of times, the last configuration wins, and the frames of
    the last configuration all reach the subscriber."""
    configs = [config(2 + number % 2, f"SUB {number}") for number in range(20)]

    async def run() -> tuple[C37118ToSttp, list]:
        server = PmuServer(configs[0], port=0)
        await server.start()
        bridge = C37118ToSttp("127.0.0.1", server.port, ID, sttp_port=0, min_change_interval=0.5)
        received: list = []
        try:
            await bridge.start()
            await bridge.wait_configured()
            subscriber = Subscriber("127.0.0.1", bridge.port, filter_expression=ALL)
            subscriber.on_measurements = received.extend
            await subscriber.start()
            await subscriber.wait_subscribed()
            await wait_until(lambda: server.streaming == 1, 5)
            for cfg in configs[1:]:
                server.set_config(cfg)
                await asyncio.sleep(0.005)
            for number in range(5):
                server.send_data(server.layout.build(frame(configs[-1], number)))
            signals = len(bridge.mapping.signals) if bridge.mapping else 0
            await wait_until(lambda: len(received) >= 5 * signals and signals > 0, 10)
            await subscriber.stop()
        finally:
            await bridge.stop()
            await server.stop()
        return bridge, received

    bridge, received = asyncio.run(run())
    assert bridge.rates().config_changes == 20
    assert bridge.definitions <= 4
    assert bridge.mapping.devices[0].pmu.station == "SUB 19"
    assert len(received) == 5 * len(bridge.mapping.signals)


@pytest.mark.timeout(10)
def test_metadata_refreshes_after_a_change_are_no_new_configuration():
    """CFGCNT goes into the plan's PMU blocks: refreshes of unchanged metadata after a first
    change used to differ from the served configuration by CFGCNT alone."""
    from gridbind.c37118.bridge import SttpToC37118
    from gridbind.c37118.mapping import StreamMapping

    async def run() -> tuple[int, list[int]]:
        bridge = SttpToC37118("127.0.0.1", 9, port=0, idcode=5)
        first, second = StreamMapping(config(2)), StreamMapping(config(3))
        try:
            for metadata in (first, second, second, second, first, first):
                plan = bridge._plan(metadata.metadata())
                assert plan is not None
                await bridge._configure(plan)
            assert bridge.server is not None and bridge.plan is not None
            return bridge.rates().config_changes, [p.cfgcnt for p in bridge.plan.config.pmus]
        finally:
            if bridge.server is not None:
                await bridge.server.stop()

    changes, cfgcnts = asyncio.run(run())
    assert changes == 2 and cfgcnts == [2, 2]
