"""Interop with pyc37 (the pypmu implementation of C37.118.2) in both directions.

pyc37 PMU -> ``C37118ToSttp`` -> gridbind and sttpapi STTP subscribers: every value it sent
(phasors, frequency, ROCOF, analogs, digitals, STAT) arrives exactly, with the metadata of the
deployed conventions; a configuration change in the middle of the stream loses no frame after it.
gridbind STTP publisher -> ``SttpToC37118`` -> pyc37 PDC: every published value arrives.
"""

from __future__ import annotations

import asyncio
import math
import uuid

import pytest

from gridbind.c37118.bridge import C37118ToSttp, SttpToC37118
from gridbind.sttp.ieee2664 import (
    PmuSource,
    Publisher,
    Subscriber,
    synthetic_pmu_metadata,
)
from gridbind.sttp.measurement import UNIX_EPOCH_TICKS, ticks_now

from c37118_peers import (
    ALL,
    PYC37,
    STTPAPI,
    Pyc37Pdc,
    Pyc37Pmu,
    SttpapiSubscriber,
    f32,
    wait_until,
)
from conftest import require

IDCODE = 7734
RATE = 30
SOC = 1_750_000_000
STATION = "PYC37 STATION"
DEVICE = "PYC37_STATION"
# STAT words (Table 7 of C37.118.2) and the STTP flags the mapping table gives them.
STATS = {0x0000: 0, 0x0800: 0x0100_0000, 0xE000: 0x0001_0001, 0x0200: 0x0000_1000}


def pyc37_config(phasors: int, analogs: int, cfgcnt: int = 1):
    from pyc37.frame import ConfigFrame2

    names = [("VA", "IB", "VC", "I1")[i] for i in range(phasors)]
    names += [f"AN{i + 1}" for i in range(analogs)] + [f"BRK {i}" for i in range(16)]
    units = [(915527, "v"), (45776, "i"), (915527, "v"), (45776, "i")][:phasors]
    return ConfigFrame2(
        IDCODE,
        1_000_000,
        1,
        STATION,
        IDCODE,
        (True, True, True, False),
        phasors,
        analogs,
        1,
        names,
        units,
        [(1, "pow"), (1, "rms"), (1, "peak")][:analogs],
        [(0x0000, 0xFFFF)],
        60,
        cfgcnt,
        RATE,
    )


def pyc37_frame(cfg, number: int, phasors: int, analogs: int, stat: int):
    """Data frame ``number``: float32-exact values, FRACSEC never 0 (pyc37 replaces a 0 FRACSEC
    with the current time)."""
    from pyc37.frame import DataFrame

    values = [(f32(100.0 + number + i), f32(math.sin(number / 7 + i))) for i in range(phasors)]
    analog = [f32(0.5 * number - i) for i in range(analogs)]
    soc, fraction = SOC + number // RATE, 1000 + (number % RATE) * 33333
    return DataFrame(
        IDCODE,
        stat,
        values,
        number - 15,
        3 * number - 40,
        analog,
        [0x3C00 | number],
        cfg,
        soc,
        fraction,
    )


def expected(frame, phasors: int) -> dict[str, tuple[float, int, int]]:
    """``{signal reference: (value, timestamp, flags)}`` of one pyc37 frame, from the standard:
    integer FREQ is mHz off 60 Hz, integer DFREQ 0.01 Hz/s, angles arrive in degrees."""
    stat = frame._stat
    ticks = UNIX_EPOCH_TICKS + frame._soc * 10_000_000 + (frame._frasec & 0xFFFFFF) * 10
    flags = STATS[stat]
    out = {
        f"{DEVICE}-FQ": f32(60 + frame.get_freq() * 0.001),
        f"{DEVICE}-DF": f32(frame.get_dfreq() * 0.01),
        f"{DEVICE}-DV1": float(frame.get_digital()[0]),
        f"{DEVICE}-SF": float(stat),
        f"{DEVICE}-QF": 0.0,
    }
    for index, (magnitude, angle) in enumerate(frame.get_phasors(), start=1):
        out[f"{DEVICE}-PM{index}"] = f32(magnitude)
        out[f"{DEVICE}-PA{index}"] = f32(math.degrees(angle))
    for index, value in enumerate(frame.get_analog(), start=1):
        out[f"{DEVICE}-AV{index}"] = f32(value)
    return {reference: (value, ticks, flags) for reference, value in out.items()}


def _references(metadata) -> dict[uuid.UUID, str]:
    return {r["SignalID"]: r["SignalReference"] for r in metadata["MeasurementDetail"].rows}


@pytest.mark.timeout(60)
def test_pyc37_pmu_to_sttp_subscribers():
    require(PYC37, "pyc37")
    require(STTPAPI, "sttpapi")
    cfg = pyc37_config(2, 2)
    frames = [pyc37_frame(cfg, n, 2, 2, list(STATS)[n % 4]) for n in range(24)]

    async def run() -> None:
        pmu = Pyc37Pmu(cfg, IDCODE, RATE)
        bridge = C37118ToSttp("127.0.0.1", pmu.port, IDCODE, sttp_port=0, company="TVA")
        peer = None
        try:
            await bridge.start()
            await bridge.wait_configured()
            ours: list = []
            subscriber = Subscriber("127.0.0.1", bridge.port, filter_expression=ALL)
            subscriber.on_measurements = ours.extend
            await subscriber.start()
            await subscriber.wait_subscribed()
            peer = SttpapiSubscriber()
            await peer.connect(bridge.port)
            for frame in frames:
                pmu.send(frame)
            total = 24 * 11
            await wait_until(lambda: len(ours) >= total and len(peer.received) >= total, 30)
            metadata = subscriber.metadata
            names = _references(metadata)
            want = {}
            for frame in frames:
                for reference, item in expected(frame, 2).items():
                    want[(reference, item[1])] = item
            got = {(names[m.signal_id], m.timestamp): (m.value, m.timestamp, m.flags) for m in ours}
            assert len(ours) == total and got == want
            theirs = {
                (names[m.signalid], int(m.timestamp)): (
                    float(m.value),
                    int(m.timestamp),
                    int(m.flags),
                )
                for m in peer.received
            }
            assert len(peer.received) == total and theirs == want
            assert bridge.rates().frames_lost == 0 and bridge.rates().rejected == 0
            # the metadata as the deployed peer reads it
            signal = {v: k for k, v in names.items()}
            record = peer.record(signal[f"{DEVICE}-PA2"])
            assert record.signaltypename == "IPHA" and record.pointtag == f"TVA_{DEVICE}-PA2:IH"
            assert record.phasor is not None and record.phasor.type == "I"
            assert record.phasor.phase == "B" and record.phasor.label == "IB"
            assert peer.record(signal[f"{DEVICE}-SF"]).signaltypename == "FLAG"
            assert peer.record(signal[f"{DEVICE}-DF"]).signaltypename == "DFDT"
            device = metadata["DeviceDetail"].rows[0]
            assert (device["Acronym"], device["AccessID"], device["FramesPerSecond"]) == (
                DEVICE,
                IDCODE,
                RATE,
            )
            await subscriber.stop()
        finally:
            if peer is not None:
                peer.close()
            await bridge.stop()
            pmu.stop()

    asyncio.run(run())


@pytest.mark.timeout(60)
def test_configuration_change_mid_stream_loses_no_frame():
    """The PMU flags a configuration change (STAT bit 10), sends its new CFG-2 in-band and goes
    on with a third phasor and a third analog; both subscribers (gridbind, and sttpapi, which
    subscribes again when told the configuration changed) get every frame before and after, the
    new signals included, and the old signals keep their IDs."""
    require(PYC37, "pyc37")
    require(STTPAPI, "sttpapi")
    old, new = pyc37_config(2, 2, 1), pyc37_config(3, 3, 2)
    before = [pyc37_frame(old, n, 2, 2, 0x0400 if n >= 7 else 0) for n in range(10)]
    after = [pyc37_frame(new, n, 3, 3, 0) for n in range(10, 22)]

    async def run() -> None:
        pmu = Pyc37Pmu(old, IDCODE, RATE)
        bridge = C37118ToSttp("127.0.0.1", pmu.port, IDCODE, sttp_port=0)
        peer = None
        try:
            await bridge.start()
            await bridge.wait_configured()
            ours: list = []
            subscriber = Subscriber("127.0.0.1", bridge.port, filter_expression=ALL)
            subscriber.on_measurements = ours.extend
            await subscriber.start()
            await subscriber.wait_subscribed()
            peer = SttpapiSubscriber()
            peer.follow_changes()
            await peer.connect(bridge.port)
            first_ids = set(subscriber.cache.signal_ids)
            for frame in before:
                pmu.send(frame)
            pmu.send(new)
            for frame in after:
                pmu.send(frame)
            total = 10 * 11 + 12 * 14
            await wait_until(lambda: len(ours) >= total and len(peer.received) >= total, 40)
            await asyncio.sleep(0.2)
            assert len(ours) == total and len(peer.received) == total
            assert bridge.rates().config_changes == 2 and bridge.rates().frames_lost == 0
            names = _references(subscriber.metadata)
            assert first_ids < set(names)
            want = {}
            for frame in after:
                for reference, item in expected(frame, 3).items():
                    want[(reference, item[1])] = item
            got = {(names[m.signal_id], m.timestamp): (m.value, m.timestamp, m.flags) for m in ours}
            theirs = {
                (names[m.signalid], int(m.timestamp)): (
                    float(m.value),
                    int(m.timestamp),
                    int(m.flags),
                )
                for m in peer.received
            }
            for received in (got, theirs):
                assert len({stamp for _, stamp in received}) == 22
                assert {key: received[key] for key in want} == want
            flagged = [
                m for m in ours if names[m.signal_id] == f"{DEVICE}-SF" and m.value == 0x0400
            ]
            assert len(flagged) == 3 and all(m.flags == 0x4000_0000 for m in flagged)
            await subscriber.stop()
        finally:
            if peer is not None:
                peer.close()
            await bridge.stop()
            pmu.stop()

    asyncio.run(run())


@pytest.mark.timeout(60)
def test_sttp_publisher_to_pyc37_pdc():
    """Synthetic PMU metadata (the deployed conventions) published over STTP, served as
    C37.118 with integer FREQ / DFREQ (pyc37 cannot read a float FREQ of 60 Hz), read by pyc37."""
    require(PYC37, "pyc37")
    metadata, signals = synthetic_pmu_metadata(10, device_size=10, frames_per_second=RATE)
    source = PmuSource(signals, RATE, ticks_now(), flag_every=0)
    frames = list(source.frames(20))
    for number, frame in enumerate(frames):
        if number % 5 == 1:
            frame[0].flags = 0x0100_0000  # UserDefinedFlag1: the PMU trigger bit

    async def run() -> None:
        publisher = Publisher(metadata, port=0)
        await publisher.start()
        bridge = SttpToC37118("127.0.0.1", publisher.port, port=0, idcode=41, format=0x7)
        pdc = None
        try:
            await bridge.start()
            server = await bridge.wait_ready()
            pdc = Pyc37Pdc(server.port, 41)
            await asyncio.to_thread(pdc.connect)
            await wait_until(lambda: server.streaming == 1, 10)
            reader = asyncio.create_task(asyncio.to_thread(pdc.read, len(frames)))
            for frame in frames:
                publisher.publish(frame)
                await asyncio.sleep(1 / RATE)
            await asyncio.wait_for(reader, 20)
        finally:
            if pdc is not None:
                pdc.close()
            await bridge.stop()
            await publisher.stop()
        assert pdc.config.get_station_name().strip() == "Synthetic PMU 0"
        assert pdc.config.get_phasor_num() == 4 and pdc.config.get_data_rate() == RATE
        assert [name.strip() for name in pdc.config.get_channel_names()] == ["V1", "I2", "V3", "I4"]
        assert pdc.config.get_ph_units() == [(1, "v"), (1, "i"), (1, "v"), (1, "i")]
        for number, (sent, got) in enumerate(zip(frames, pdc.frames, strict=True)):
            values = [m.value for m in sent]
            relative = sent[0].timestamp - UNIX_EPOCH_TICKS
            assert got.get_soc() == relative // 10_000_000
            assert got.get_frasec()[0] == (relative % 10_000_000 + 5) // 10
            assert got.get_freq() == round((values[0] - 60) * 1000)
            assert got.get_dfreq() == round(values[1] * 100)
            pairs = list(zip(values[2::2], values[3::2], strict=True))
            assert got.get_phasors() == [(f32(m), f32(math.radians(a))) for m, a in pairs]
            assert got.get_stat()[3] == (number % 5 == 1)  # trigger

    asyncio.run(run())


@pytest.mark.timeout(60)
def test_bridge_metadata_with_analogs_digitals_and_stat_to_pyc37_pdc():
    """Metadata as the C37.118 -> STTP bridge makes it (ALOG, DIGI, FLAG, QUAL too), published by
    a gridbind publisher, served back as C37.118: pyc37 reads the analogs, digital words and the
    STAT bits it can decode (its decoder refuses non-zero time-quality fields)."""
    require(PYC37, "pyc37")
    from gridbind.c37118.frames import (
        AnalogChannel,
        ConfigFrame,
        DigitalWord,
        PhasorChannel,
        PmuConfig,
        Stamp,
    )
    from gridbind.c37118.mapping import StreamMapping
    from gridbind.sttp.measurement import Measurement

    pmu = PmuConfig(
        "FEEDER 9",
        9,
        0xF,
        [PhasorChannel("VA"), PhasorChannel("IA", True)],
        [AnalogChannel("MW"), AnalogChannel("MVAR")],
        [DigitalWord()],
    )
    mapping = StreamMapping(ConfigFrame(Stamp(9), [pmu], 1_000_000, RATE))
    stats = [0x0000, 0x0800, 0x1200, 0x0400, 0x0003]
    start = ticks_now()
    frames = []
    for number in range(15):
        ticks = start + number * 10_000_000 // RATE
        values = {
            "FREQ": 60.0 + number * 0.001,
            "DFDT": 0.25,
            "VPHM1": f32(7200.5 + number),
            "VPHA1": f32(10.0 * number - 70),
            "IPHM2": f32(101.25),
            "IPHA2": f32(-30.0),
            "ALOG1": f32(1.5 * number),
            "ALOG2": f32(-2.75),
            "DIGI1": float(0x8001 + number),
            "FLAG": float(stats[number % 5]),
            "QUAL": 0.0,
        }
        frames.append(
            [
                Measurement(s.signal_id, values[f"{s.kind}{s.index or ''}"], ticks)
                for s in mapping.signals
            ]
        )

    async def run() -> None:
        publisher = Publisher(mapping.metadata(), port=0)
        await publisher.start()
        bridge = SttpToC37118("127.0.0.1", publisher.port, port=0, idcode=9, format=0x7)
        pdc = None
        try:
            await bridge.start()
            server = await bridge.wait_ready()
            pdc = Pyc37Pdc(server.port, 9)
            await asyncio.to_thread(pdc.connect)
            await wait_until(lambda: server.streaming == 1, 10)
            reader = asyncio.create_task(asyncio.to_thread(pdc.read, len(frames)))
            for frame in frames:
                publisher.publish(frame)
                await asyncio.sleep(1 / RATE)
            await asyncio.wait_for(reader, 20)
        finally:
            if pdc is not None:
                pdc.close()
            await bridge.stop()
            await publisher.stop()
        assert [n.strip() for n in pdc.config.get_channel_names()[:4]] == [
            "VA",
            "IA",
            "AV1",
            "AV2",
        ]
        for number, got in enumerate(pdc.frames):
            assert got.get_analog() == [f32(1.5 * number), -2.75]
            assert got.get_digital() == [0x8001 + number]
            assert got.get_freq() == number and got.get_dfreq() == 25
            assert got.get_phasors()[1] == (101.25, f32(math.radians(-30.0)))
            _, _, sorting, trigger, change, modified, _, _, reason = got.get_stat()
            stat = stats[number % 5]
            assert (sorting == "arrival") == bool(stat & 0x1000)
            assert (trigger, change, modified) == (
                bool(stat & 0x800),
                bool(stat & 0x400),
                bool(stat & 0x200),
            )
            assert (
                reason
                == ("manual", "magnitude_low", "magnitude_high", "phase_angle_diff")[stat & 3]
            )

    asyncio.run(run())
