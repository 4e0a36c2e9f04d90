"""Command-line runners of the draft-0.8 profile, called by ``gridbind sttp publish|subscribe
--profile draft-0.8`` (the shared parser lives in :mod:`gridbind.sttp.cli`).

Profile specifics: ``--compression`` picks the stateful algorithm offered (``tssc`` offers TSSC,
DEFLATE and NONE; ``deflate`` offers DEFLATE and NONE); ``--dial HOST:PORT`` (publisher) and
``--listen`` (subscriber) make a reverse connection; ``--ids`` subscribes to points by id;
``--filter`` on subscribe is a metadata query selecting points, e.g. ``SELECT PointID FROM
DataPoint WHERE [Signal Type]='FREQ'``. With ``--udp`` over TLS the subscriber asks for the
SecureDataChannel (AES-256 on the UDP data), so ``--udp-encrypt`` is refused here rather than
silently ignored; ``--key-rotation`` applies to the ieee2664 profile only.

Examples::

    gridbind sttp publish --profile draft-0.8 --port 7175 --signals 1000 --rate 30
    gridbind sttp subscribe --profile draft-0.8 --port 7175 --output jsonl --count 30000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import sys
import time
import uuid
from collections.abc import Iterator
from typing import IO, Any

from gridbind.sttp.cli import compression, tls_config
from gridbind.sttp.draft.metadata import MetadataDatabase
from gridbind.sttp.draft.synthetic import SyntheticPmu
from gridbind.sttp.draft.transport import Publisher, SessionError, Subscriber
from gridbind.sttp.measurement import Measurement, ticks_now

__all__ = ["run_publish", "run_subscribe"]


def _stateful(args: argparse.Namespace) -> list[str]:
    choice = compression(args)
    if choice == "none":
        return ["NONE"]
    if choice == "deflate":
        return ["DEFLATE", "NONE"]
    return ["TSSC", "DEFLATE", "NONE"]


def _csv_source(path: str) -> tuple[MetadataDatabase, Iterator[list[Measurement]]]:
    """``signal_id,timestamp,value,flags`` rows, grouped into frames by timestamp."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    signals = list(dict.fromkeys(uuid.UUID(row["signal_id"]) for row in rows))
    database = MetadataDatabase()
    database.define_table(
        "DataPoint", 0, [("PointID", 0x07), ("PointTag", 0x01), ("DataType", 0x01)]
    )
    database.upsert_many(
        "DataPoint",
        [
            {"PointID": s, "PointTag": f"CSV:{n}", "DataType": "DOUBLE"}
            for n, s in enumerate(signals)
        ],
    )

    def frames() -> Iterator[list[Measurement]]:
        frame: list[Measurement] = []
        for row in rows:
            m = Measurement(
                uuid.UUID(row["signal_id"]),
                float(row["value"]),
                int(row["timestamp"]),
                int(row.get("flags") or 0),
            )
            if frame and m.timestamp != frame[-1].timestamp:
                yield frame
                frame = []
            frame.append(m)
        if frame:
            yield frame

    return database, frames()


class _Meter:
    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.last = time.monotonic()
        self.last_count = 0

    def tick(self, count: int, data_bytes: int, what: str) -> None:
        now = time.monotonic()
        if not self.interval or now - self.last < self.interval:
            return
        rate = (count - self.last_count) / (now - self.last)
        per = data_bytes / count if count else 0.0
        print(f"{count} {what}, {rate:,.0f}/s, {per:.2f} bytes/measurement", file=sys.stderr)
        self.last, self.last_count = now, count


def run_publish(args: argparse.Namespace) -> int:
    """``gridbind sttp publish --profile draft-0.8``."""
    if getattr(args, "udp_encrypt", False):
        print(
            "error: --udp-encrypt is an ieee2664 option; in draft-0.8 a subscriber using --udp "
            "over TLS gets AES-encrypted UDP data (SecureDataChannel)",
            file=sys.stderr,
        )
        return 2
    try:
        return asyncio.run(_publish(args))
    except (OSError, SessionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


async def _publish(args: argparse.Namespace) -> int:
    if getattr(args, "csv", None):
        metadata, frames = _csv_source(args.csv)
        rate = args.rate
    else:
        pmu = SyntheticPmu(args.signals, args.rate, start=ticks_now())
        metadata = pmu.metadata()
        frames = (pmu.frame(k) for k in range(10**12))
        rate = args.rate
    publisher = Publisher(
        host=args.host,
        port=args.port,
        metadata=metadata,
        tls=tls_config(args),
        stateful=_stateful(args),
        keepalive_interval=10.0,
    )
    connect = getattr(args, "dial", None)
    if connect:
        host, _, port = connect.rpartition(":")
        await publisher.connect(host or "127.0.0.1", int(port))
        print(f"publishing to subscriber at {connect}", file=sys.stderr)
    else:
        await publisher.start()
        print(f"publishing on {args.host}:{publisher.port} (draft-0.8)", file=sys.stderr)
    try:
        wanted = getattr(args, "wait_subscribers", 0) or 0
        if wanted:
            await publisher.wait_subscribed(wanted, timeout=3600)
        meter = _Meter(args.stats)
        started = time.monotonic()
        sent = 0
        for number, frame in enumerate(frames):
            delay = started + number / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            sent += publisher.publish(frame)
            # a live source keeps its rate; slow subscribers meet the publisher's policy
            await asyncio.sleep(0)
            data = sum(link.session.stats["bytes_out"] for link in publisher.connections)
            meter.tick(sent, data, "data points sent")
            if args.count is not None and sent >= args.count:
                break
            if args.seconds is not None and time.monotonic() - started >= args.seconds:
                break
            if connect and not publisher.connections:
                print("subscriber disconnected", file=sys.stderr)
                break
        # keep the connections open a moment so UDP subscribers read the last frame
        linger = getattr(args, "linger", 0.0) or 0.0
        if linger > 0 and publisher.connections:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(publisher.drain(), linger)
            await asyncio.sleep(linger)
    except (KeyboardInterrupt, asyncio.CancelledError):
        pass
    finally:
        await publisher.stop()
    return 0


def _writer(kind: str, handle: IO[str]) -> Any:
    if kind == "csv":
        writer = csv.writer(handle)
        writer.writerow(["signal_id", "timestamp", "value", "flags"])
        return lambda m: writer.writerow([m.signal_id, m.timestamp, repr(m.value), m.flags])
    if kind == "jsonl":

        def write(m: Measurement) -> None:
            value = m.value if isinstance(m.value, (int, float, bool, str)) else str(m.value)
            record = {
                "signal_id": str(m.signal_id),
                "timestamp": m.timestamp,
                "value": value,
                "flags": m.flags,
            }
            handle.write(json.dumps(record) + "\n")

        return write
    return None


def run_subscribe(args: argparse.Namespace) -> int:
    """``gridbind sttp subscribe --profile draft-0.8``."""
    try:
        return asyncio.run(_subscribe(args))
    except (OSError, SessionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


async def _subscribe(args: argparse.Namespace) -> int:
    tls = tls_config(args)
    subscriber = Subscriber(
        host=args.host,
        port=args.port,
        listen=bool(getattr(args, "listen", False)),
        tls=tls,
        udp=bool(getattr(args, "udp", False)),
        udp_port=getattr(args, "udp_port", 0) or 0,
        stateful=_stateful(args),
        keepalive_interval=10.0,
    )
    handle: IO[str] = open(args.out, "w", newline="") if getattr(args, "out", None) else sys.stdout
    write = _writer(getattr(args, "output", "none"), handle)
    meter = _Meter(args.stats)
    received = 0

    async def run() -> None:
        nonlocal received
        await subscriber.start()
        if subscriber.listen_mode:
            print(
                f"waiting for the publisher on {args.host}:{subscriber.port}",
                file=sys.stderr,
                flush=True,
            )
        agreed = await subscriber.wait_negotiated(3600)
        print(
            f"negotiated STTP {agreed.version[0]}.{agreed.version[1]}: stateful "
            f"{agreed.stateful}, stateless {agreed.stateless}, UDP port {agreed.udp_port or 'none'}",
            file=sys.stderr,
            flush=True,
        )
        if getattr(args, "metadata_out", None):
            result = await subscriber.request_metadata()
            with open(args.metadata_out, "w") as out:
                for row in result.rows:
                    out.write(json.dumps({k: _plain(v) for k, v in row.items()}) + "\n")
        if subscriber.udp and tls is not None:
            await subscriber.secure_data_channel()
            print("UDP data channel secured (AES-256)", file=sys.stderr, flush=True)
        ids = getattr(args, "ids", None)
        options = {"reliability": "lossy"} if subscriber.udp else None
        if ids:
            points = [uuid.UUID(text.strip()) for text in ids.split(",") if text.strip()]
            await subscriber.subscribe(points, options=options)
        elif getattr(args, "filter", ""):
            await subscriber.subscribe(query=args.filter, options=options)
        else:
            await subscriber.subscribe(options=options)
        async for batch in subscriber.batches():
            if args.count is not None:
                batch = batch[: args.count - received]
            if write is not None:
                for measurement in batch:
                    write(measurement)
            received += len(batch)
            data = subscriber.session.stats["bytes_in"] + subscriber.bytes_received
            meter.tick(received, data, "measurements")
            if args.count is not None and received >= args.count:
                return

    try:
        await asyncio.wait_for(run(), args.seconds)
    except (TimeoutError, KeyboardInterrupt):
        pass
    finally:
        data = 0
        if subscriber.link is not None and subscriber.link.session is not None:
            data = subscriber.session.stats["bytes_in"] + subscriber.bytes_received
        await subscriber.stop()
        if getattr(args, "out", None):
            handle.close()
        else:
            handle.flush()
    per = data / received if received else 0.0
    print(f"received {received} measurements, {per:.2f} bytes/measurement", file=sys.stderr)
    return 0


def _plain(value: Any) -> Any:
    if isinstance(value, (int, float, bool, str)) or value is None:
        return value
    return str(value)
