"""Defects found against independent data and the deployed peers, over real sockets."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from gridbind.sttp.ieee2664 import PmuSource, Publisher, Subscriber, synthetic_pmu_metadata
from gridbind.sttp.measurement import ticks_now

from conftest import require
from sttpapi_peer import AVAILABLE


@pytest.mark.timeout(30)
def test_a_disabled_signal_is_never_delivered_even_when_named_by_id():
    metadata, signals = synthetic_pmu_metadata(10)
    disabled = signals[0]
    for row in metadata["MeasurementDetail"].rows:
        if row["SignalID"] == disabled:
            row["Enabled"] = False
    frames = list(PmuSource(signals, start_ticks=ticks_now()).frames(5))

    async def run() -> None:
        async with Publisher(metadata, port=0) as publisher:
            for expression in (
                str(disabled),
                f"{disabled}; FILTER ActiveMeasurements WHERE SignalType <> 'NONE'",
            ):
                async with Subscriber(
                    port=publisher.port, filter_expression=expression, auto_reconnect=False
                ) as subscriber:
                    cache = await subscriber.wait_subscribed(5)
                    assert disabled not in cache.by_signal
                    received: list = []

                    async def gather(into: list, source: Subscriber) -> None:
                        async for batch in source.batches():
                            into.extend(batch)

                    task = asyncio.create_task(gather(received, subscriber))
                    for frame in frames:
                        publisher.publish(frame)
                        await publisher.drain()
                    await asyncio.sleep(0.3)
                    task.cancel()
                    assert all(m.signal_id != disabled for m in received)
                    wanted = 0 if expression == str(disabled) else len(frames) * 9
                    assert len(received) == wanted

    asyncio.run(run())


def _publisher(*extra: str) -> tuple[subprocess.Popen, int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "gridbind", "sttp", "publish", "--port", str(port)]
        + ["--stats", "0", *extra],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    assert "publishing" in process.stderr.readline()
    return process, port


SIGNALS = [uuid.UUID(int=i + 1) for i in range(3)]
STAMPS = [638_000_000_000_000_000 + k * 333_333 for k in range(6)]


def _csv_publisher(tmp_path: Path) -> tuple[subprocess.Popen, int]:
    rows = ["signal_id,timestamp,value,flags"]
    for stamp in STAMPS:
        rows += [f"{signal},{stamp},{index + 0.5},0" for index, signal in enumerate(SIGNALS)]
    path = tmp_path / "frames.csv"
    path.write_text("\n".join(rows) + "\n")
    return _publisher(
        "--csv", str(path), "--rate", "30", "--compression", "none", "--wait-subscribers", "1"
    )


@pytest.mark.timeout(30)
def test_csv_replay_to_a_udp_subscriber_delivers_the_first_and_the_last_frame(tmp_path: Path):
    """--wait-subscribers started before the UDP subscriber confirmed its cache (frame 0 lost);
    --csv closed right after the last frame (the UDP subscriber lost it)."""
    signals, stamps = SIGNALS, STAMPS
    process, port = _csv_publisher(tmp_path)

    async def run() -> list:
        received: list = []
        subscriber = Subscriber(port=port, udp=True, auto_reconnect=False)
        await subscriber.start()

        async def gather() -> None:
            async for batch in subscriber.batches():
                received.extend(batch)

        try:
            await asyncio.wait_for(gather(), 10)  # ends when the publisher closes
        finally:
            await subscriber.stop()
        return received

    try:
        received = asyncio.run(run())
    finally:
        process.wait(10)
    assert sorted({m.timestamp for m in received}) == stamps
    assert len(received) == len(stamps) * len(signals)


@pytest.mark.timeout(30)
def test_subscribe_exits_non_zero_when_the_subscription_is_refused(capsys):
    from gridbind.cli import main

    process, port = _publisher("--signals", "10", "--rate", "10", "--seconds", "20")
    try:
        status = main(
            ["sttp", "subscribe", "--port", str(port), "--seconds", "15", "--stats", "0"]
            + ["--filter", "FILTER NoSuchTable WHERE ID = 1"]
        )
    finally:
        process.terminate()
        process.wait(10)
    assert status == 1
    assert "refused the subscription" in capsys.readouterr().err


@pytest.mark.timeout(40)
def test_csv_replay_to_sttpapi_udp_subscriber_delivers_every_frame(tmp_path: Path):
    """The deployed peer's UDP subscriber lost frame 0 (--wait-subscribers counted it before it
    confirmed its signal index cache) and the last frame (--csv closed right after it)."""
    require(AVAILABLE, "sttpapi")
    from sttp.config import Config
    from sttp.settings import Settings
    from sttp.subscriber import Subscriber as SttpSubscriber

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        udp_port = probe.getsockname()[1]
    process, port = _csv_publisher(tmp_path)
    received: list = []
    subscribed = threading.Event()
    peer = SttpSubscriber()
    peer.statusmessage_logger = lambda message: None
    peer.errormessage_logger = lambda message: None
    peer.set_newmeasurements_receiver(received.extend)
    peer.set_subscriptionupdated_receiver(lambda cache: subscribed.set())
    filter_all = "FILTER ActiveMeasurements WHERE SignalType <> 'NONE'"
    peer.subscribe(filter_all, Settings(udpport=udp_port, udpinterface="127.0.0.1"))
    try:
        assert peer.connect(f"127.0.0.1:{port}", Config(autoreconnect=False)) is None
        assert subscribed.wait(15)
        process.wait(15)  # the publisher ends after the last frame and its linger
        deadline = time.monotonic() + 3
        while len(received) < len(STAMPS) * len(SIGNALS) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        peer.disconnect()
        peer.dispose()
        if process.poll() is None:
            process.terminate()
            process.wait(10)
    stamps = sorted({int(m.timestamp) for m in received})
    assert len(received) == len(STAMPS) * len(SIGNALS), stamps


@pytest.mark.timeout(30)
def test_wait_subscribers_waits_for_the_udp_signal_index_cache_confirmation(tmp_path: Path):
    """A UDP subscriber that confirms its cache late still receives frame 0 (the stream started
    at SUBSCRIBE and the frames before the confirmation were lost), and the command channel
    stays open after the last frame (it closed at once: the UDP subscriber lost it)."""
    from gridbind.sttp.ieee2664 import SubscriptionSettings
    from gridbind.sttp.ieee2664.events import MeasurementsReceived, SubscriptionUpdated
    from gridbind.sttp.ieee2664.subscriber_session import SubscriberConfig, SubscriberSession

    process, port = _csv_publisher(tmp_path)

    async def run() -> list:
        loop = asyncio.get_running_loop()
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("127.0.0.1", 0))
        udp.setblocking(False)
        session = SubscriberSession(SubscriberConfig(compress_payload=False))
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        settings = SubscriptionSettings(udp_port=udp.getsockname()[1])
        session.start(udp=True)
        session.subscribe(settings)
        writer.write(session.data_to_send())
        while True:  # until the signal index cache arrived; its confirmation is held back
            events = session.receive(await asyncio.wait_for(reader.read(65536), 5))
            if any(isinstance(e, SubscriptionUpdated) for e in events):
                break
        held = session.data_to_send()
        await asyncio.sleep(1.0)
        writer.write(held)
        received: list = []
        while len(received) < len(STAMPS) * len(SIGNALS):
            datagram = await asyncio.wait_for(loop.sock_recv(udp, 65536), 5)
            for event in session.receive_datagram(datagram):
                if isinstance(event, MeasurementsReceived):
                    received.extend(event.measurements)
        last_frame = loop.time()
        while await asyncio.wait_for(reader.read(65536), 5):
            pass
        # --linger (1 s): the command channel stays open after the last frame, so a UDP
        # subscriber that closes on disconnect has read its last datagrams
        assert loop.time() - last_frame > 0.5
        writer.close()
        udp.close()
        return received

    try:
        received = asyncio.run(run())
    finally:
        process.wait(10)
    assert sorted({m.timestamp for m in received}) == STAMPS
