"""STTP IEEE 2664 publisher -> subscriber throughput: sttpapi and gridbind, all four pairs.

Usage::

    .venv/bin/python bench/sttp_pubsub.py [--signals 1000] [--seconds 8] [--pairs all]

Each pair runs as two processes on 127.0.0.1 (publisher, subscriber) carrying the same synthetic
1000-signal PMU stream (frequency, df/dt, phasor magnitudes/angles as float32, rare flags) with
TSSC. The publisher sends as fast as the subscriber takes it: sttpapi's publisher blocks in
``sendall`` and gridbind's waits in ``drain()`` (256 KiB high-water), so the backlog is bounded
by the socket buffers and the subscriber's steady receive rate is the highest sustained rate
without backlog. After one second of warm-up the subscriber measures for ``--seconds`` seconds:
rate, its CPU time per measurement, STTP payload bytes per measurement (every byte of data
packets on the wire, framing included); the publisher reports its CPU time per measurement
over the same run. ``in flight`` is what the publisher had sent but the subscriber had not read
when the subscriber stopped: socket buffers' worth, bounded (it does not grow with run time).

Measured figures, with the peer's from the same run: README.md, section Benchmarks.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FRAMES = 600  # 20 s of 30 frames/s, cycled with advancing timestamps


def _frames(signals: int):
    from gridbind.sttp.ieee2664 import PmuSource, synthetic_pmu_metadata
    from gridbind.sttp.measurement import ticks_now

    metadata, ids = synthetic_pmu_metadata(signals)
    source = PmuSource(ids, start_ticks=ticks_now())
    return metadata, ids, list(source.frames(FRAMES))


# ------------------------------------------------------------------------------------ publishers


def _loopback_sttpapi_publisher():
    import numpy as np
    from sttp.transport.datapublisher import DataPublisher
    from sttp.transport.subscriberconnection import SubscriberConnection

    class LoopbackDataPublisher(DataPublisher):
        """sttpapi's publisher bound to 127.0.0.1 (its own start binds 0.0.0.0)."""

        def start(self, port: int = 0, ipv6: bool = False) -> None:
            server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            server.bind(("127.0.0.1", port))
            server.listen(10)
            server.settimeout(0.5)
            self._server_socket = server
            self._port = np.uint16(server.getsockname()[1])
            self._started, self._stopped, self._shuttingdown = True, False, False
            threading.Thread(target=self._accept_loop, daemon=True).start()

        def _accept_loop(self) -> None:
            while self._started and not self._shuttingdown:
                try:
                    client, address = self._server_socket.accept()
                except TimeoutError:
                    continue
                except OSError:
                    return
                client.settimeout(None)
                connection = SubscriberConnection(self, client, address)
                with self._subscriber_connections_lock:
                    self._subscriber_connections.add(connection)
                connection.start()

    return LoopbackDataPublisher()


def publish_sttpapi(signals: int, port_file: str, run_seconds: float) -> dict:
    import numpy as np
    from sttp.data.dataset import DataSet as SttpDataSet
    from sttp.transport.measurement import Measurement as SttpMeasurement

    metadata, _, frames = _frames(signals)
    origin = [frame[0].timestamp for frame in frames]
    # sttpapi defects avoided: flags as numpy.uint32, timestamps as Python int
    peer_frames = [
        [
            SttpMeasurement(m.signal_id, np.float64(m.value), int(m.timestamp), np.uint32(m.flags))
            for m in f
        ]
        for f in frames
    ]
    publisher = _loopback_sttpapi_publisher()
    dataset, err = SttpDataSet.from_xml(metadata.to_xml())
    assert err is None, err
    publisher.define_metadata(dataset)
    publisher.start(0)
    with open(port_file, "w") as out:
        out.write(str(int(publisher.port)))
    while not any(c.is_subscribed for c in list(publisher._subscriber_connections)):
        time.sleep(0.01)
    step = 333_333
    sent = 0
    started, cpu0 = time.monotonic(), time.process_time()
    number = 0
    while time.monotonic() - started < run_seconds:
        frame = peer_frames[number % FRAMES]
        if number >= FRAMES:
            stamp = origin[number % FRAMES] + (number // FRAMES) * FRAMES * step
            for m in frame:
                m.timestamp = stamp
        publisher.publish_measurements(frame)
        sent += len(frame)
        number += 1
        if not any(c.is_subscribed for c in list(publisher._subscriber_connections)):
            break
    cpu = time.process_time() - cpu0
    publisher.stop()
    return {"sent": sent, "cpu_us_per_measurement": cpu / max(sent, 1) * 1e6}


def publish_gridbind(signals: int, port_file: str, run_seconds: float) -> dict:
    from gridbind.sttp.ieee2664 import Publisher

    metadata, _, frames = _frames(signals)
    origin = [frame[0].timestamp for frame in frames]

    async def run() -> dict:
        publisher = Publisher(metadata, port=0, high_water=256 * 1024, noop_interval=0)
        await publisher.start()
        with open(port_file, "w") as out:
            out.write(str(publisher.port))
        while not any(c.session and c.session.subscribed for c in publisher.connections):
            await asyncio.sleep(0.01)
        step = 333_333
        sent = 0
        started, cpu0 = time.monotonic(), time.process_time()
        number = 0
        while time.monotonic() - started < run_seconds and publisher.connections:
            frame = frames[number % FRAMES]
            if number >= FRAMES:
                stamp = origin[number % FRAMES] + (number // FRAMES) * FRAMES * step
                for m in frame:
                    m.timestamp = stamp
            sent += publisher.publish(frame)
            await publisher.drain()
            number += 1
        cpu = time.process_time() - cpu0
        await publisher.stop()
        return {"sent": sent, "cpu_us_per_measurement": cpu / max(sent, 1) * 1e6}

    return asyncio.run(run())


# ----------------------------------------------------------------------------------- subscribers


class _Window:
    """Counts measurements; measures rate and CPU over [warm-up, warm-up + seconds]."""

    def __init__(self, warmup: float, seconds: float) -> None:
        self.warmup, self.seconds = warmup, seconds
        self.total = 0
        self.first: float | None = None
        self.start_count = self.start_cpu = self.start_time = None
        self.result: dict | None = None
        self.done = threading.Event()

    def add(self, count: int, wire_bytes: int) -> None:
        now = time.monotonic()
        self.total += count
        if self.first is None:
            self.first = now
        if self.start_time is None and now - self.first >= self.warmup:
            self.start_time, self.start_count = now, self.total
            self.start_cpu, self.start_bytes = time.process_time(), wire_bytes
        if (
            self.start_time is not None
            and self.result is None
            and now - self.start_time >= self.seconds
        ):
            count = self.total - self.start_count
            elapsed = now - self.start_time
            self.result = {
                "rate": count / elapsed,
                "cpu_us_per_measurement": (time.process_time() - self.start_cpu) / count * 1e6,
                "bytes_per_measurement": (wire_bytes - self.start_bytes) / count,
                "measured": count,
            }
            self.done.set()


def subscribe_sttpapi(port: int, warmup: float, seconds: float) -> dict:
    from sttp.config import Config
    from sttp.settings import Settings
    from sttp.subscriber import Subscriber as SttpSubscriber

    window = _Window(warmup, seconds)
    subscriber = SttpSubscriber()
    subscriber.statusmessage_logger = lambda message: None
    subscriber.errormessage_logger = lambda message: None
    data = subscriber._datasubscriber

    def received(measurements) -> None:
        window.add(len(measurements), int(data.total_commandchannel_bytesreceived))

    subscriber.set_newmeasurements_receiver(received)
    subscriber.subscribe("FILTER ActiveMeasurements WHERE SignalType <> 'NONE'", Settings())
    err = subscriber.connect(f"127.0.0.1:{port}", Config(autoreconnect=False))
    assert err is None, err
    window.done.wait(warmup + seconds + 120)
    result = window.result or {"rate": 0.0}
    result["received"] = window.total
    subscriber.disconnect()
    return result


def subscribe_gridbind(port: int, warmup: float, seconds: float) -> dict:
    from gridbind.sttp.ieee2664 import Subscriber

    window = _Window(warmup, seconds)

    async def run() -> dict:
        subscriber = Subscriber(
            port=port,
            filter_expression="FILTER ActiveMeasurements WHERE SignalType <> 'NONE'",
            auto_reconnect=False,
        )
        session_stats = lambda: subscriber.session.stats  # noqa: E731 - tiny accessor
        subscriber.on_measurements = lambda batch: window.add(
            len(batch), session_stats().data_bytes
        )
        await subscriber.start()

        async def drain() -> None:
            async for _ in subscriber.batches():
                if window.done.is_set():
                    return

        await asyncio.wait_for(drain(), warmup + seconds + 120)
        await subscriber.stop()
        result = dict(window.result or {"rate": 0.0})
        result["received"] = window.total
        return result

    return asyncio.run(run())


# --------------------------------------------------------------------------------------- driver


def _child(args: argparse.Namespace) -> None:
    if args.role == "pub":
        fn = publish_sttpapi if args.impl == "sttpapi" else publish_gridbind
        result = fn(args.signals, args.port_file, args.run_seconds)
    else:
        fn = subscribe_sttpapi if args.impl == "sttpapi" else subscribe_gridbind
        result = fn(args.port, 1.0, args.seconds)
    print(json.dumps(result), flush=True)


def run_pair(publisher: str, subscriber: str, signals: int, seconds: float) -> dict:
    port_file = os.path.join("/tmp", f"sttp_bench_{os.getpid()}_{publisher}_{subscriber}.port")
    if os.path.exists(port_file):
        os.unlink(port_file)
    me = [sys.executable, "-W", "ignore", os.path.abspath(__file__), "--child"]
    pub = subprocess.Popen(
        me
        + [
            "--role",
            "pub",
            "--impl",
            publisher,
            "--signals",
            str(signals),
            "--port-file",
            port_file,
            "--run-seconds",
            str(seconds * 4 + 60),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    deadline = time.monotonic() + 60
    while not os.path.exists(port_file) or not open(port_file).read().strip():
        if time.monotonic() > deadline or pub.poll() is not None:
            pub.kill()
            raise RuntimeError(f"{publisher} publisher did not start")
        time.sleep(0.05)
    port = int(open(port_file).read())
    sub = subprocess.run(
        me
        + ["--role", "sub", "--impl", subscriber, "--port", str(port), "--seconds", str(seconds)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=seconds * 4 + 180,
    )
    pub_out, _ = pub.communicate(timeout=seconds * 4 + 120)
    os.unlink(port_file)
    sub_result = json.loads(sub.stdout.strip().splitlines()[-1])
    pub_result = json.loads(pub_out.strip().splitlines()[-1])
    return {
        "pair": f"{publisher} -> {subscriber}",
        "rate": sub_result.get("rate", 0.0),
        "sub_cpu_us": sub_result.get("cpu_us_per_measurement", float("nan")),
        "pub_cpu_us": pub_result["cpu_us_per_measurement"],
        "bytes": sub_result.get("bytes_per_measurement", float("nan")),
        "in_flight": pub_result["sent"] - sub_result.get("received", 0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--signals", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument(
        "--pairs", default="all", help="all, or e.g. gridbind:gridbind,sttpapi:gridbind"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--role", help=argparse.SUPPRESS)
    parser.add_argument("--impl", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--port-file", help=argparse.SUPPRESS)
    parser.add_argument("--run-seconds", type=float, default=60, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return
    pairs = (
        [
            ("sttpapi", "sttpapi"),
            ("gridbind", "gridbind"),
            ("sttpapi", "gridbind"),
            ("gridbind", "sttpapi"),
        ]
        if args.pairs == "all"
        else [tuple(item.split(":")) for item in args.pairs.split(",")]
    )
    print(f"{args.signals} signals, TSSC, 127.0.0.1, {args.seconds:.0f} s measured per pair")
    print(
        f"{'pair':24} {'measurements/s':>15} {'sub us/meas':>12} {'pub us/meas':>12} {'bytes/meas':>11} {'in flight':>10}"
    )
    results = []
    for publisher, subscriber in pairs:
        result = run_pair(publisher, subscriber, args.signals, args.seconds)
        results.append(result)
        print(
            f"{result['pair']:24} {result['rate']:15,.0f} {result['sub_cpu_us']:12.2f} "
            f"{result['pub_cpu_us']:12.2f} {result['bytes']:11.2f} {result['in_flight']:10d}",
            flush=True,
        )
    by_pair = {r["pair"]: r["rate"] for r in results}
    if "gridbind -> gridbind" in by_pair and by_pair.get("sttpapi -> sttpapi"):
        ratio = by_pair["gridbind -> gridbind"] / by_pair["sttpapi -> sttpapi"]
        print(f"gridbind pair / sttpapi pair: {ratio:.1f}x")


if __name__ == "__main__":
    main()
