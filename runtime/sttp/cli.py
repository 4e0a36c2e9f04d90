"""``gridbind sttp publish|subscribe``: run an STTP publisher or subscriber from the command line.

Both profiles share the options; ``--profile ieee2664`` (default) runs the deployed wire here,
``--profile draft-0.8`` hands the parsed arguments to ``gridbind.sttp.draft.cli``
(``run_publish(args)`` / ``run_subscribe(args)``). ``--host`` / ``--port`` default to
127.0.0.1 and 7165 (``gridbind.sttp.api``) for both profiles. TLS: ``--tls-cert`` /
``--tls-key`` (this side's certificate), ``--tls-ca`` (trust anchors; on a server, clients must
then present certificates, see ``--tls-client-cert``), ``--tls-crl``, ``--tls-server-name``,
``--tls-min``; any of them, or ``--tls``, turns TLS on, and :func:`tls_config` builds the one
:class:`~gridbind.sttp.tls.TlsConfig` both profiles take.

Examples::

    gridbind sttp publish --port 7165 --signals 1000 --rate 30
    gridbind sttp subscribe --port 7165 --filter "FILTER ActiveMeasurements WHERE SignalType='FREQ'" \\
        --output jsonl --count 1000
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import importlib
import json
import logging
import ssl
import sys
import time
import uuid
from collections.abc import Iterator
from typing import IO, Any

from gridbind.sttp.api import DEFAULT_HOST, DEFAULT_PORT
from gridbind.sttp.tls import TlsConfig

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    """Add ``sttp publish`` and ``sttp subscribe`` to the ``gridbind`` command."""
    parser = subparsers.add_parser("sttp", help="STTP publisher / subscriber")
    commands = parser.add_subparsers(dest="sttp_command", metavar="ACTION", required=True)

    publish = commands.add_parser("publish", help="serve measurements (synthetic PMUs or CSV)")
    _common(publish)
    publish.add_argument("--signals", type=int, default=1000, help="synthetic signal count")
    publish.add_argument("--rate", type=float, default=30.0, help="frames per second")
    publish.add_argument(
        "--csv", metavar="FILE", help="replay signal_id,timestamp,value,flags rows"
    )
    publish.add_argument("--udp-encrypt", action="store_true", help="AES cipher keys for UDP")
    publish.add_argument("--key-rotation", type=float, default=60.0, help="cipher key period, s")
    publish.add_argument(
        "--wait-subscribers", type=int, default=0, help="start the stream once N subscribed"
    )
    publish.add_argument(
        "--dial", metavar="HOST:PORT", help="reverse connection: dial a listening subscriber"
    )
    publish.add_argument(
        "--linger",
        type=float,
        default=1.0,
        help="seconds to keep connections open after the last frame (UDP subscribers)",
    )
    publish.set_defaults(func=run_publish)

    subscribe = commands.add_parser("subscribe", help="receive measurements")
    _common(subscribe)
    subscribe.add_argument("--filter", default="", help="filter expression selecting signals")
    subscribe.add_argument(
        "--ids", default="", help="comma-separated signal ids (GUIDs) to subscribe to"
    )
    subscribe.add_argument("--udp", action="store_true", help="receive data on a UDP channel")
    subscribe.add_argument("--udp-port", type=int, default=0, help="local UDP port (0: any)")
    subscribe.add_argument(
        "--output", choices=("csv", "jsonl", "none"), default="none", help="measurement output"
    )
    subscribe.add_argument("--out", metavar="FILE", help="write output here instead of stdout")
    subscribe.add_argument("--metadata-out", metavar="FILE", help="save the metadata XML here")
    subscribe.add_argument("--start-time", default="", help="historical replay start (e.g. *-1h)")
    subscribe.add_argument("--stop-time", default="", help="historical replay stop")
    subscribe.add_argument("--throttle", type=float, default=0.0, help="publish interval, s")
    subscribe.add_argument(
        "--listen", action="store_true", help="reverse connection: wait for the publisher to dial"
    )
    subscribe.set_defaults(func=run_subscribe)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--profile", choices=("ieee2664", "draft-0.8"), default="ieee2664", help="wire profile"
    )
    parser.add_argument(
        "--host", default=DEFAULT_HOST, help="listen (publish) / dial (subscribe) address"
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="STTP port (0: any)")
    parser.add_argument("--tls", action="store_true", help="use TLS (implied by --tls-cert/-ca)")
    parser.add_argument("--tls-cert", help="this side's PEM certificate (chain)")
    parser.add_argument("--tls-key", help="PEM private key for --tls-cert")
    parser.add_argument(
        "--tls-ca", help="trust anchors (CA bundle or pinned peer certificates) for the peer"
    )
    parser.add_argument("--tls-crl", help="PEM revocation list(s) of the CA(s)")
    parser.add_argument(
        "--tls-client-cert",
        choices=("auto", "required", "optional"),
        default="auto",
        help="server side: client certificates (auto: required when --tls-ca is given)",
    )
    parser.add_argument(
        "--compression",
        choices=("tssc", "deflate", "none"),
        default="tssc",
        help="data compression (deflate: draft-0.8 only; ieee2664 none: compact measurements)",
    )
    parser.add_argument("--no-compression", action="store_true", help="same as --compression none")
    parser.add_argument(
        "--tls-min", choices=("1.2", "1.3"), default="1.3", help="lowest TLS version accepted"
    )
    parser.add_argument(
        "--tls-server-name", help="name expected in the publisher's certificate (behind NAT)"
    )
    parser.add_argument(
        "--tls-no-hostname-check",
        action="store_true",
        help="accept a publisher certificate naming another host (warned; CA still checked)",
    )
    parser.add_argument("--count", type=int, help="stop after N measurements")
    parser.add_argument("--seconds", type=float, help="stop after S seconds")
    parser.add_argument("--stats", type=float, default=1.0, help="statistics interval, s (0: off)")


def _draft(args: argparse.Namespace, name: str) -> int:
    try:
        module = importlib.import_module("gridbind.sttp.draft.cli")
    except ImportError:
        print(
            "error: the draft-0.8 profile has no command-line runner yet "
            "(gridbind.sttp.draft.cli is missing)",
            file=sys.stderr,
        )
        return 2
    return int(getattr(module, name)(args) or 0)


def compression(args: argparse.Namespace) -> str:
    """The chosen data compression, ``tssc``, ``deflate`` or ``none``."""
    return "none" if args.no_compression else args.compression


def tls_config(args: argparse.Namespace) -> TlsConfig | None:
    """The TLS configuration of the ``--tls*`` options (``None``: plain TCP), both profiles."""
    if not (args.tls or args.tls_cert or args.tls_ca or args.tls_crl):
        return None
    return TlsConfig(
        certfile=args.tls_cert,
        keyfile=args.tls_key,
        cafile=args.tls_ca,
        crlfile=args.tls_crl,
        check_hostname=not args.tls_no_hostname_check,
        server_hostname=args.tls_server_name,
        minimum_version=ssl.TLSVersion[f"TLSv1_{args.tls_min[-1]}"],
        require_client_cert={"auto": None, "required": True, "optional": False}[
            args.tls_client_cert
        ],
    )


class _Meter:
    """Live rate and bytes/measurement on stderr."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.start = self.last = time.monotonic()
        self.last_count = 0

    def tick(self, count: int, data_bytes: int) -> None:
        now = time.monotonic()
        if not self.interval or now - self.last < self.interval:
            return
        rate = (count - self.last_count) / (now - self.last)
        per = data_bytes / count if count else 0.0
        print(f"{count} measurements, {rate:,.0f}/s, {per:.2f} bytes/measurement", file=sys.stderr)
        self.last, self.last_count = now, count


def _csv_frames(path: str) -> tuple[list[uuid.UUID], Iterator[list[Any]]]:
    from gridbind.sttp.measurement import Measurement

    with open(path, newline="") as handle:
        rows = [row for row in csv.DictReader(handle)]
    signals = list(dict.fromkeys(uuid.UUID(row["signal_id"]) for row in rows))

    def frames() -> Iterator[list[Any]]:
        frame: list[Any] = []
        stamp = None
        for row in rows:
            measurement = Measurement(
                uuid.UUID(row["signal_id"]),
                float(row["value"]),
                int(row["timestamp"]),
                int(row.get("flags") or 0),
            )
            if stamp is not None and measurement.timestamp != stamp and frame:
                yield frame
                frame = []
            stamp = measurement.timestamp
            frame.append(measurement)
        if frame:
            yield frame

    return signals, frames()


def _csv_metadata(signals: list[uuid.UUID]) -> Any:
    from gridbind.sttp.ieee2664.metadata import empty_source_metadata

    metadata = empty_source_metadata()
    for number, signal in enumerate(signals, start=1):
        metadata["MeasurementDetail"].add(
            ID=f"CSV:{number}",
            SignalID=signal,
            PointTag=str(signal),
            SignalAcronym="CALC",
            Enabled=True,
            Internal=True,
        )
    return metadata


def run_publish(args: argparse.Namespace) -> int:
    """``gridbind sttp publish``."""
    if args.profile != "ieee2664":
        return _draft(args, "run_publish")
    if compression(args) == "deflate":
        return _ieee2664_deflate()
    return asyncio.run(_publish(args))


def _ieee2664_deflate() -> int:
    print(
        "error: ieee2664 compresses data with TSSC (--compression tssc) or sends compact "
        "measurements (--compression none); DEFLATE is a draft-0.8 data compression",
        file=sys.stderr,
    )
    return 2


async def _publish(args: argparse.Namespace) -> int:
    from gridbind.sttp.ieee2664 import PmuSource, Publisher, PublisherConfig
    from gridbind.sttp.ieee2664.metadata import synthetic_pmu_metadata
    from gridbind.sttp.measurement import ticks_now

    config = PublisherConfig(
        allow_payload_compression=compression(args) == "tssc", encrypt_udp=args.udp_encrypt
    )
    if args.csv:
        signals, frames = _csv_frames(args.csv)
        metadata = _csv_metadata(signals)
    else:
        metadata, signals = synthetic_pmu_metadata(args.signals, frames_per_second=int(args.rate))
        source = PmuSource(signals, args.rate, ticks_now())
        frames = iter(source.next_frame, None)
    publisher = Publisher(
        metadata,
        host=args.host,
        port=args.port,
        config=config,
        tls=tls_config(args),
        cipher_rotation_interval=args.key_rotation,
    )
    if args.dial:
        host, _, port = args.dial.rpartition(":")
        await publisher.start(listen=False)
        await publisher.connect(host or "127.0.0.1", int(port))
        print(f"publishing {len(signals)} signals to {args.dial}", file=sys.stderr)
    else:
        await publisher.start()
        print(f"publishing {len(signals)} signals on {args.host}:{publisher.port}", file=sys.stderr)
    # "Subscribed" means ready for data: a UDP subscriber has confirmed its signal index cache
    # (data before that is not sent) and its data channel is open, so frame 0 is not lost.
    if args.wait_subscribers:
        await publisher.wait_subscribed(args.wait_subscribers, timeout=3600)
    meter = _Meter(args.stats)
    period = 1.0 / args.rate
    started = time.monotonic()
    sent = 0
    try:
        for number, frame in enumerate(frames):
            due = started + number * period
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            sent += publisher.publish(frame)
            # A live source keeps its rate: a subscriber that cannot keep up is handled by the
            # publisher's slow-subscriber policy, it must not hold the stream for the others.
            await asyncio.sleep(0)
            data = sum(c.session.stats.data_bytes for c in publisher.connections if c.session)
            meter.tick(sent, data)
            if args.count is not None and sent >= args.count:
                break
            if args.seconds is not None and time.monotonic() - started >= args.seconds:
                break
        await _linger(publisher, args.linger)
    except (KeyboardInterrupt, asyncio.CancelledError):
        pass
    finally:
        await publisher.stop()
    return 0


async def _linger(publisher: Any, seconds: float) -> None:
    """After the last frame: let every subscriber's queue drain, then wait ``seconds`` more, so
    a UDP subscriber reads the last datagrams before the command channel closes."""
    if seconds <= 0:
        return
    try:
        await asyncio.wait_for(publisher.drain(), seconds)
    except TimeoutError:
        return
    await asyncio.sleep(seconds)


def run_subscribe(args: argparse.Namespace) -> int:
    """``gridbind sttp subscribe``."""
    if args.profile != "ieee2664":
        return _draft(args, "run_subscribe")
    if compression(args) == "deflate":
        return _ieee2664_deflate()
    try:
        return asyncio.run(_subscribe(args))
    except ConnectionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _writer(kind: str, handle: IO[str]) -> Any:
    if kind == "csv":
        writer = csv.writer(handle)
        writer.writerow(["signal_id", "timestamp", "value", "flags"])
        return lambda m: writer.writerow([m.signal_id, m.timestamp, repr(m.value), m.flags])
    if kind == "jsonl":
        return lambda m: handle.write(
            json.dumps(
                {
                    "signal_id": str(m.signal_id),
                    "timestamp": m.timestamp,
                    "value": m.value,
                    "flags": m.flags,
                }
            )
            + "\n"
        )
    return None


async def _subscribe(args: argparse.Namespace) -> int:
    from gridbind.sttp.ieee2664 import Subscriber, SubscriberConfig, SubscriptionSettings
    from gridbind.sttp.ieee2664.events import CommandFailed

    # A signal id is itself a filter expression statement; statements join with ';'.
    statements = [text.strip() for text in args.ids.split(",") if text.strip()]
    if args.filter:
        statements.append(args.filter)
    settings = SubscriptionSettings(
        filter_expression="; ".join(statements),
        start_time=args.start_time,
        stop_time=args.stop_time,
        throttled=args.throttle > 0,
        publish_interval=args.throttle or 1.0,
    )
    handle: IO[str] = open(args.out, "w", newline="") if args.out else sys.stdout
    write = _writer(args.output, handle)
    meter = _Meter(args.stats)
    received = 0
    subscriber = Subscriber(
        args.host,
        args.port,
        settings=settings,
        config=SubscriberConfig(compress_payload=compression(args) == "tssc"),
        udp=args.udp,
        udp_port=args.udp_port,
        tls=tls_config(args),
        listen=args.listen,
    )

    async def consume() -> None:
        nonlocal received
        async for batch in subscriber.batches():
            if args.count is not None:
                batch = batch[: args.count - received]
            if write is not None:
                for measurement in batch:
                    write(measurement)
            received += len(batch)
            meter.tick(received, subscriber.stats.data_bytes)
            if args.count is not None and received >= args.count:
                return

    refused: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def on_event(event: Any) -> None:
        # A refused SUBSCRIBE ends the command with an error (it exited 0 and waited before).
        if isinstance(event, CommandFailed) and event.command == 0x02 and not refused.done():
            refused.set_result(event.message)

    subscriber.on_event = on_event

    async def run() -> None:
        await subscriber.start()
        if args.metadata_out:
            metadata = await subscriber.wait_metadata(30)
            with open(args.metadata_out, "wb") as out:
                out.write(metadata.to_xml())
        await consume()

    async def run_unless_refused() -> None:
        work = asyncio.get_running_loop().create_task(run())
        waiting: set[asyncio.Future[Any]] = {work, refused}
        done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if work not in done:
            work.cancel()
            await asyncio.gather(work, return_exceptions=True)
        else:
            work.result()

    try:
        await asyncio.wait_for(run_unless_refused(), args.seconds)
    except (TimeoutError, KeyboardInterrupt):
        pass
    finally:
        await subscriber.stop()
        if args.out:
            handle.close()
        else:
            handle.flush()
    stats = subscriber.stats
    per = stats.data_bytes / stats.measurements if stats.measurements else 0.0
    print(
        f"received {received} measurements, {per:.2f} bytes/measurement, "
        f"{stats.dropped_packets} dropped packets",
        file=sys.stderr,
    )
    if args.udp:
        cipher = "AES-encrypted" if subscriber.session.keys is not None else "unencrypted"
        print(f"UDP data channel: {stats.data_packets} data packets, {cipher}", file=sys.stderr)
    if refused.done():
        print(f"error: the publisher refused the subscription: {refused.result()}", file=sys.stderr)
        return 1
    return 0
