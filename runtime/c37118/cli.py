"""``gridbind c37118 bridge|serve``: C37.118 in -> STTP out, and STTP in -> C37.118 out.

Examples::

    gridbind c37118 bridge --pmu 127.0.0.1:4712 --id 7734 --sttp-port 7165
    gridbind c37118 serve --sttp 127.0.0.1:7165 --port 4712 --id 1

Both print, every ``--stats`` seconds, frames/s, measurements/s, frames lost, rejected frames
and configuration changes on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any


def register(subparsers: Any) -> None:
    """Add ``c37118 bridge`` and ``c37118 serve`` to the ``gridbind`` command."""
    parser = subparsers.add_parser("c37118", help="IEEE C37.118.2 <-> STTP bridges")
    commands = parser.add_subparsers(dest="c37118_command", metavar="ACTION", required=True)

    bridge = commands.add_parser("bridge", help="read a PMU / PDC, publish STTP")
    bridge.add_argument("--pmu", required=True, metavar="HOST:PORT", help="the C37.118 device")
    bridge.add_argument("--id", type=int, required=True, help="IDCODE of the C37.118 stream")
    bridge.add_argument("--sttp-port", type=int, default=7165, help="STTP publisher port")
    bridge.add_argument("--sttp-host", default="127.0.0.1", help="STTP publisher address")
    bridge.add_argument(
        "--profile", choices=("ieee2664", "draft-0.8"), default="ieee2664", help="STTP profile"
    )
    bridge.add_argument("--cfg3", action="store_true", help="ask for CFG-3 (else CFG-2)")
    bridge.add_argument("--udp-port", type=int, help="also read data frames on this UDP port")
    bridge.add_argument(
        "--udp-host",
        default="127.0.0.1",
        help="local address of the UDP port (0.0.0.0 for a PMU on another host; default "
        "127.0.0.1); only the PMU's own address is listened to",
    )
    bridge.add_argument("--company", default="GB", help="company acronym of point tags")
    bridge.add_argument("--no-compression", action="store_true", help="no TSSC (ieee2664)")
    _common(bridge)
    bridge.set_defaults(func=run_bridge)

    serve = commands.add_parser("serve", help="subscribe to STTP, serve C37.118")
    serve.add_argument("--sttp", required=True, metavar="HOST:PORT", help="the STTP publisher")
    serve.add_argument("--port", type=int, default=4712, help="C37.118 server port")
    serve.add_argument("--host", default="127.0.0.1", help="C37.118 server address")
    serve.add_argument("--id", type=int, default=1, help="IDCODE of the served stream")
    serve.add_argument(
        "--format",
        type=lambda text: int(text, 0),
        default=0xF,
        help="FORMAT bits (phasors are always float; 0x1 polar, 0x4 float analogs, 0x8 float "
        "FREQ/DFREQ); default 0xF",
    )
    serve.add_argument(
        "--udp-to", metavar="HOST:PORT", help="send data frames over UDP (commands stay on TCP)"
    )
    serve.add_argument(
        "--profile", choices=("ieee2664", "draft-0.8"), default="ieee2664", help="STTP profile"
    )
    serve.add_argument(
        "--filter",
        default="FILTER ActiveMeasurements WHERE SignalType <> 'NONE'",
        help="STTP filter expression",
    )
    _common(serve)
    serve.set_defaults(func=run_serve)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, help="stop after S seconds")
    parser.add_argument("--stats", type=float, default=1.0, help="statistics interval, s (0: off)")


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host or "127.0.0.1", int(port)


class _Meter:
    """Live rates on stderr."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.last = time.monotonic()
        self.frames = self.measurements = 0

    def report(self, rates: Any) -> None:
        now = time.monotonic()
        elapsed = now - self.last or 1e-9
        print(
            f"{(rates.frames - self.frames) / elapsed:,.1f} frames/s, "
            f"{(rates.measurements - self.measurements) / elapsed:,.0f} measurements/s, "
            f"{rates.frames_lost} frames lost, {rates.rejected} rejected, "
            f"{rates.config_changes} configuration changes",
            file=sys.stderr,
            flush=True,
        )
        self.last, self.frames, self.measurements = now, rates.frames, rates.measurements


async def _run(bridge: Any, args: argparse.Namespace, rates: Any, started: str) -> int:
    await bridge.start()
    print(started, file=sys.stderr, flush=True)
    meter = _Meter(args.stats)
    began = time.monotonic()
    try:
        while args.seconds is None or time.monotonic() - began < args.seconds:
            await asyncio.sleep(args.stats if args.stats else 0.5)
            if args.stats:
                meter.report(rates())
    except asyncio.CancelledError:
        pass
    finally:
        await bridge.stop()
    return 0


def run_bridge(args: argparse.Namespace) -> int:
    """``gridbind c37118 bridge``."""
    from gridbind.c37118.bridge import C37118ToSttp

    host, port = _address(args.pmu)

    async def main() -> int:
        bridge = C37118ToSttp(
            host,
            port,
            args.id,
            sttp_host=args.sttp_host,
            sttp_port=args.sttp_port,
            profile=args.profile,
            company=args.company,
            prefer_cfg3=args.cfg3,
            udp_port=args.udp_port,
            udp_host=args.udp_host,
            compression=not args.no_compression,
        )
        return await _run(
            bridge,
            args,
            bridge.rates,
            f"bridging C37.118 {args.pmu} (IDCODE {args.id}) to STTP {args.profile} on "
            f"{args.sttp_host}:{args.sttp_port}",
        )

    return asyncio.run(main())


def run_serve(args: argparse.Namespace) -> int:
    """``gridbind c37118 serve``."""
    from gridbind.c37118.bridge import SttpToC37118

    host, port = _address(args.sttp)

    async def main() -> int:
        bridge = SttpToC37118(
            host,
            port,
            host=args.host,
            port=args.port,
            idcode=args.id,
            format=args.format,
            filter_expression=args.filter,
            udp_target=_address(args.udp_to) if args.udp_to else None,
            profile=args.profile,
        )

        return await _run(
            bridge,
            args,
            bridge.rates,
            f"serving STTP {args.sttp} as C37.118 (IDCODE {args.id}) on {args.host}:{args.port}",
        )

    return asyncio.run(main())
