"""``gridbind demo``: the main demo, both protocols on loopback in one process.

Parts (all but ``codegen`` run by default; ``--only PART`` picks some, ``--codegen`` is
``--only codegen``):

``sttp``
    An IEEE 2664 STTP publisher and subscriber (gridbind on both ends) stream a synthetic PMU
    fleet (1000 signals at 30 frames/s by default) with TSSC over 127.0.0.1 for ``--seconds``,
    printing live statistics once a second and a total that compares what was published with
    what was received (lost and mismatched measurements must both be 0).
``draft``
    The same stream for one second on the draft-0.8 profile (TSSC negotiated).
``iec61850``
    An IED served from an SCL file over XMPP (a private Prosody with its own test CA), and a
    client browsing, reading and writing it, watching a buffered report, querying a log and
    operating a control (:mod:`gridbind.iec61850.demo`). Without Prosody the part is skipped
    with how to install it, except under ``CI=true`` where that is a failure.
``codegen``
    Regenerates every STTP module from ``specs/`` into a temporary folder and round-trips every
    message each one defines; also says whether the committed ``generated/`` matches.

The exit status is 0 when every selected part passed (or was skipped), 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import importlib.util
import os
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from gridbind.sttp.encoding import SttpValue, ValueType

__all__ = ["PARTS", "DEFAULT_PARTS", "run", "register"]

#: Every part, in the order they run.
PARTS = ("sttp", "draft", "iec61850", "codegen")
#: The parts ``gridbind demo`` runs without ``--only``.
DEFAULT_PARTS = ("sttp", "draft", "iec61850")
#: Every signal of the synthetic metadata (all are active and typed).
ALL_SIGNALS = "FILTER ActiveMeasurements WHERE SignalType <> 'NONE'"

Say = Callable[[str], None]
#: What the 8-2 part says when Prosody is missing.
INSTALL_PROSODY = (
    "Install it with `sudo apt-get install prosody` (Debian) or `bash .ci/setup`; "
    "the demo then starts its own private instance on loopback"
)


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _step(text: str) -> None:
    print(f"  {text}", flush=True)


def _heading(title: str) -> None:
    print(f"\n== {title} ==", flush=True)


# ------------------------------------------------------------------------------------ STTP


class _Tally:
    """What the subscriber received, checked in order against what the publisher sent."""

    def __init__(self) -> None:
        self.expected: collections.deque[tuple[uuid.UUID, float, int, int]] = collections.deque()
        self.published = 0
        self.received = 0
        self.mismatched = 0

    def sent(self, frame: Iterable[Any]) -> None:
        for m in frame:
            self.expected.append((m.signal_id, m.value, m.timestamp, m.flags))
            self.published += 1

    def got(self, batch: Sequence[Any]) -> None:
        for m in batch:
            self.received += 1
            want = self.expected.popleft() if self.expected else None
            if want != (m.signal_id, m.value, m.timestamp, m.flags):
                self.mismatched += 1

    @property
    def lost(self) -> int:
        return self.published - self.received


class _Ticker:
    """One statistics line per interval: received, rate/s, bytes/measurement."""

    def __init__(self, tally: _Tally, data_bytes: Callable[[], int], say: Say) -> None:
        self.tally, self.data_bytes, self.say = tally, data_bytes, say
        self.started = self.last_time = time.monotonic()
        self.last_count = 0

    def line(self) -> None:
        now, count = time.monotonic(), self.tally.received
        if now - self.last_time < 0.05:
            return  # the final line right after a periodic one
        rate = (count - self.last_count) / (now - self.last_time)
        per = self.data_bytes() / count if count else 0.0
        self.say(
            f"{now - self.started:4.1f} s: {count:>9,} measurements received, "
            f"{rate:>7,.0f}/s, {per:.2f} bytes/measurement"
        )
        self.last_time, self.last_count = now, count

    async def run(self, interval: float = 1.0) -> None:
        while True:
            await asyncio.sleep(interval - (time.monotonic() - self.started) % interval)
            self.line()


async def _pace(
    frames: Callable[[], list[Any]],
    publish: Callable[[list[Any]], int],
    drain: Callable[[], Any],
    tally: _Tally,
    rate: float,
    seconds: float,
) -> int:
    """Publish ``rate * seconds`` frames of ``frames()`` at ``rate``; returns copies queued."""
    period = 1.0 / rate
    started = time.monotonic()
    queued = 0
    for number in range(max(1, round(rate * seconds))):
        delay = started + number * period - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        frame = frames()
        tally.sent(frame)
        queued += publish(frame)
        await drain()
    return queued


async def _settle(tally: _Tally, timeout: float = 10.0) -> None:
    """Wait until everything published was received (or ``timeout``)."""
    deadline = time.monotonic() + timeout
    while tally.received < tally.published and time.monotonic() < deadline:
        await asyncio.sleep(0.02)


def _total(
    profile: str, tally: _Tally, data_bytes: int, took: float, dropped: int, say: Say
) -> bool:
    per = data_bytes / tally.received if tally.received else 0.0
    ok = tally.published > 0 and tally.lost == 0 and tally.mismatched == 0 and dropped == 0
    say(
        f"total {profile}: {tally.published:,} published, {tally.received:,} received, "
        f"{tally.lost:,} lost, {tally.mismatched:,} mismatched, {dropped} dropped, "
        f"{per:.2f} bytes/measurement, {tally.received / took:,.0f}/s over {took:.1f} s"
        + ("" if ok else " - FAILED")
    )
    return ok


async def _sttp_ieee2664(signals: int, rate: float, seconds: float, say: Say) -> bool:
    from gridbind.sttp.ieee2664 import (
        PmuSource,
        Publisher,
        PublisherConfig,
        Subscriber,
        SubscriberConfig,
        synthetic_pmu_metadata,
    )
    from gridbind.sttp.measurement import ticks_now

    metadata, ids = synthetic_pmu_metadata(signals, frames_per_second=int(rate))
    source = PmuSource(ids, rate, ticks_now())
    tally = _Tally()
    config = PublisherConfig(allow_payload_compression=True)
    async with Publisher(metadata, host="127.0.0.1", port=0, config=config) as publisher:
        devices = len(metadata["DeviceDetail"].rows)
        say(
            f"publisher listening on 127.0.0.1:{publisher.port}: {signals} signals "
            f"({devices} PMUs), {rate:g} frames/s"
        )
        subscriber = Subscriber(
            "127.0.0.1",
            publisher.port,
            filter_expression=ALL_SIGNALS,
            config=SubscriberConfig(compress_payload=True),
            auto_reconnect=False,
            on_measurements=tally.got,
        )
        async with subscriber:
            cache = await subscriber.wait_subscribed(10)
            got = subscriber.metadata
            rows = len(got["MeasurementDetail"].rows) if got is not None else 0
            say(f"subscriber connected: metadata of {rows} measurements received")
            await publisher.wait_subscribed(1, timeout=10)
            session = publisher.connections[0].session
            say(
                f"subscribed to {len(cache)} signals ({ALL_SIGNALS}); "
                f"data compression: {'TSSC' if session.uses_tssc else 'compact (no TSSC)'}"
            )
            say(f"streaming for {seconds:g} s")
            queued, took = await _stream(
                tally,
                lambda: subscriber.stats.data_bytes,
                source.next_frame,
                publisher,
                (rate, seconds),
                say,
            )
            stats = subscriber.stats
        if not _all_queued(queued, tally, say):
            return False
        ok = _total("IEEE 2664", tally, stats.data_bytes, took, stats.dropped_packets, say)
        return ok and bool(session.uses_tssc)


async def _sttp_draft(signals: int, rate: float, seconds: float, say: Say) -> bool:
    from gridbind.sttp.draft.synthetic import SyntheticPmu
    from gridbind.sttp.draft.transport import Publisher, Subscriber
    from gridbind.sttp.measurement import ticks_now

    source = SyntheticPmu(signals, rate, ticks_now())
    frames = iter(source.frames(1 << 62))
    tally = _Tally()
    async with Publisher(
        host="127.0.0.1", port=0, points=source.value_types(), metadata=source.metadata()
    ) as publisher:
        say(f"publisher listening on 127.0.0.1:{publisher.port}: {signals} data points")
        subscriber = Subscriber(host="127.0.0.1", port=publisher.port, stateful=("TSSC",))

        async def consume() -> None:
            async for batch in subscriber.batches():
                tally.got(batch)

        async with subscriber:
            agreed = await subscriber.wait_negotiated()
            say(
                f"negotiated STTP {agreed.version[0]}.{agreed.version[1]}: "
                f"stateful {agreed.stateful}, stateless {agreed.stateless}"
            )
            rows = await subscriber.request_metadata("SELECT PointID FROM DataPoint")
            say(f"metadata: {len(rows.rows)} DataPoint rows")
            await subscriber.subscribe()
            await publisher.wait_subscribed()
            say(f"subscribed to all data points; streaming for {seconds:g} s")

            def data_bytes() -> int:
                return subscriber.session.stats["bytes_in"] + subscriber.bytes_received

            consuming = asyncio.create_task(consume())
            try:
                queued, took = await _stream(
                    tally, data_bytes, lambda: next(frames), publisher, (rate, seconds), say
                )
            finally:
                consuming.cancel()
            total = data_bytes()
        if not _all_queued(queued, tally, say):
            return False
        ok = _total("draft-0.8", tally, total, took, subscriber.dropped_batches, say)
        return ok and agreed.stateful == "TSSC"


async def _stream(
    tally: _Tally,
    data_bytes: Callable[[], int],
    next_frame: Callable[[], Any],
    publisher: Any,
    pacing: tuple[float, float],
    say: Say,
) -> tuple[int, float]:
    """Publish paced frames for ``pacing`` = (rate, seconds) with live statistics, wait for the
    subscriber to settle; returns (measurements queued, seconds taken)."""
    rate, seconds = pacing
    ticker = _Ticker(tally, data_bytes, say)
    ticking = asyncio.create_task(ticker.run())
    try:
        queued = await _pace(next_frame, publisher.publish, publisher.drain, tally, rate, seconds)
        await _settle(tally)
        ticker.line()
    finally:
        ticking.cancel()
    return queued, time.monotonic() - ticker.started


def _all_queued(queued: int, tally: _Tally, say: Say) -> bool:
    if queued != tally.published:
        say(f"publisher queued {queued:,} of {tally.published:,} measurements - FAILED")
        return False
    return True


def _run_async(what: str, coro: Any, limit: float) -> bool:
    try:
        return bool(asyncio.run(asyncio.wait_for(coro, limit)))
    except Exception as exc:  # noqa: BLE001 - a demo reports the failure and goes on
        _step(f"{what} FAILED: {type(exc).__name__}: {exc}")
        traceback.print_exc(file=sys.stderr)
        return False


def _part_sttp(args: argparse.Namespace) -> str:
    _heading(
        "STTP, IEEE 2664 profile: gridbind publisher -> gridbind subscriber, TSSC over loopback"
    )
    coro = _sttp_ieee2664(args.signals, args.rate, args.seconds, _step)
    return "ok" if _run_async("STTP", coro, args.seconds + 60) else "FAILED"


def _part_draft(args: argparse.Namespace) -> str:
    seconds = min(1.0, args.seconds)
    _heading("STTP, draft-0.8 profile: the same stream for a second")
    coro = _sttp_draft(args.signals, args.rate, seconds, _step)
    return "ok" if _run_async("draft-0.8", coro, seconds + 60) else "FAILED"


# -------------------------------------------------------------------------------- IEC 61850


def _part_iec61850(args: argparse.Namespace) -> str:
    from gridbind.iec61850.prosody import prosody_available

    _heading("IEC 61850-8-2: an IED from SCL over XMPP; browse, read, reports, a control")
    if not prosody_available():
        if _in_ci():
            _step("Prosody is not installed, and CI=true requires this part - FAILED")
            _step(INSTALL_PROSODY)
            return "FAILED (no Prosody)"
        _step(f"SKIPPED: Prosody is not installed. {INSTALL_PROSODY}")
        return "skipped (no Prosody)"
    from gridbind.iec61850.demo import run_demo

    try:
        status = run_demo(_step)
    except Exception as exc:  # noqa: BLE001 - report and go on to the summary
        _step(f"IEC 61850 FAILED: {type(exc).__name__}: {exc}")
        traceback.print_exc(file=sys.stderr)
        return "FAILED"
    return "ok" if status == 0 else "FAILED"


# ---------------------------------------------------------------------------------- codegen


def _import(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _samples(module: ModuleType) -> dict[str, Any]:
    """Richer-than-default examples for the draft profile's busiest messages."""
    if getattr(module, "PROFILE", "") != "draft-0.8":
        return {}
    m = module
    named = m.NamedVersions
    points = [
        m.DataPoint(
            runtime_id=i,
            timestamp=SttpValue(ValueType.STTP_TIME, 638_000_000_000_000_000 + i),
            value=SttpValue(ValueType.SINGLE, 60.0 - i / 8),  # exact in float32
            quality=0,
        )
        for i in range(3)
    ]
    points.append(
        m.DataPoint(
            runtime_id=-1,
            id=SttpValue(ValueType.STRING, "SHELBY:FREQ"),
            value=SttpValue(ValueType.DOUBLE, 60.001),
        )
    )
    return {
        "NegotiateSession": m.NegotiateSession(
            m.NegotiateSubCommand.OperationalModes,
            m.OperationalModes(
                udp_port=0,
                stateful=named([m.NamedVersion("NONE"), m.NamedVersion("TSSC", m.Version(1, 0))]),
                stateless=named([m.NamedVersion("DEFLATE", m.Version(1, 0))]),
            ),
        ),
        "Subscribe": m.Subscribe(
            [
                m.SubscribeItem(m.SubscribeSubCommand.DataPointByID, m.SubscriptionMode.Append, [
                    uuid.UUID(int=1), uuid.UUID(int=2)
                ])  # fmt: skip
            ]
        ),
        "SendDataPoints": m.SendDataPoints(points),
        "RequestFailed": m.RequestFailed(
            command=m.CommandCode.SecureDataChannel, terminate_connection=True, reason="no TLS"
        ),
    }


def _round_trip(module: ModuleType, message: Any) -> bytes:
    if hasattr(module, "build_frame"):
        frame = module.build_frame(message)
        if module.parse_frame(frame) != message:
            raise AssertionError("frame round trip changed the message")
        return frame
    data = message.build()
    if type(message).parse(data) != message:
        raise AssertionError("round trip changed the message")
    return data


def _codegen(root_arg: str | None) -> bool:
    """Regenerate into a temporary folder and round-trip every STTP message."""
    try:
        # The generator is optional at run time: only this part of the demo needs it.
        from gridbind.codegen import pipeline
    except ImportError as exc:
        print(
            f"demo: the codegen part needs the generator and its extra "
            f"(pip install 'gridbind[codegen]'): {exc}",
            file=sys.stderr,
        )
        return False

    root = Path(root_arg) if root_arg else pipeline.default_root()
    if not (root / "specs" / "sttp").is_dir():
        print(f"demo: no specs/sttp in {root}", file=sys.stderr)
        return False
    failures = 0
    total = 0
    with tempfile.TemporaryDirectory(prefix="gridbind-demo-") as tmp:
        out = Path(tmp)
        started = time.perf_counter()
        pipeline.generate_tree(root, out, xsd=False)
        took = time.perf_counter() - started
        print(f"regenerated {root / 'specs' / 'sttp'} into {out} in {took:.1f} s")
        stale = pipeline.compare(out, root / "generated", only=pipeline.STTP_DIR)
        print("committed generated/sttp matches: " + ("yes" if not stale else "NO"))
        for line in stale.lines():
            print(f"  {line}")
        for path in sorted((out / "sttp").glob("*.py")):
            if path.name.startswith("_") or path.name == "templates.py":
                continue
            module = _import(path, f"gridbind_demo_{path.stem}")
            messages = getattr(module, "MESSAGES", {})
            print(f"\nprofile {module.PROFILE} ({path.name}): {len(messages)} messages")
            samples = _samples(module)
            for code, info in sorted(messages.items()):
                message = samples.get(info.name) or info.type()
                total += 1
                try:
                    wire = _round_trip(module, message)
                except Exception as exc:  # noqa: BLE001 - report every failure, keep going
                    failures += 1
                    print(f"  {code:#04x} {info.name:<28} FAILED: {exc}")
                    continue
                preview = wire[:12].hex(" ") + (" ..." if len(wire) > 12 else "")
                print(
                    f"  {code:#04x} {info.name:<28} {info.kind:<8} {info.direction:<10} "
                    f"{info.channel:<7} {len(wire):>4} B  ok  {preview}"
                )
        templates = out / "sttp" / "templates.py"
        if templates.exists():
            module = _import(templates, "gridbind_demo_templates")
            tables = ", ".join(
                f"{name} ({len(cls.COLUMNS)} columns)" for name, cls in module.TEMPLATES.items()
            )
            print(f"\nmetadata templates: {tables}")
    print(
        f"\n{total - failures}/{total} messages round-tripped" + (" - FAILED" if failures else "")
    )
    return not (failures or stale)


def _part_codegen(args: argparse.Namespace) -> str:
    _heading("codegen: regenerate the STTP bindings from specs/ and round-trip every message")
    return "ok" if _codegen(args.root) else "FAILED"


# ------------------------------------------------------------------------------------- main

_RUNNERS: dict[str, Callable[[argparse.Namespace], str]] = {
    "sttp": _part_sttp,
    "draft": _part_draft,
    "iec61850": _part_iec61850,
    "codegen": _part_codegen,
}


def run(args: argparse.Namespace) -> int:
    """Run the selected demo parts and print a summary; returns 0 when none failed."""
    if args.codegen:
        selected = ["codegen"]
    elif args.only:
        selected = [part for part in PARTS if part in args.only]
    else:
        selected = list(DEFAULT_PARTS)
    if args.seconds <= 0 or args.rate <= 0 or args.signals < 1:
        print("demo: --seconds and --rate must be > 0, --signals >= 1", file=sys.stderr)
        return 2
    print(f"gridbind demo: {', '.join(selected)}", flush=True)
    results = {part: _RUNNERS[part](args) for part in selected}
    _heading("summary")
    for part, result in results.items():
        _step(f"{part:<9} {result}")
    failed = [part for part, result in results.items() if result.startswith("FAILED")]
    skipped = [part for part, result in results.items() if result.startswith("skipped")]
    if failed:
        print(f"\ndemo FAILED: {', '.join(failed)}", flush=True)
    else:
        note = f" ({', '.join(skipped)} skipped)" if skipped else ""
        print(f"\ndemo passed{note}", flush=True)
    return 1 if failed else 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``demo`` to the ``gridbind`` command."""
    parser = subparsers.add_parser(
        "demo",
        help="the main demo: STTP streaming and an IEC 61850-8-2 IED over XMPP, on loopback",
        description=__doc__.splitlines()[0].replace("``", ""),
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=PARTS,
        metavar="PART",
        help=f"run only this part (repeatable): {', '.join(PARTS)}",
    )
    parser.add_argument(
        "--codegen", action="store_true", help="run only the codegen round trip (--only codegen)"
    )
    parser.add_argument(
        "--seconds", type=float, default=5.0, help="how long the STTP stream runs (default 5)"
    )
    parser.add_argument(
        "--signals", type=int, default=1000, help="synthetic STTP signals (default 1000)"
    )
    parser.add_argument("--rate", type=float, default=30.0, help="frames per second (default 30)")
    parser.add_argument("--root", help="codegen: checkout holding specs/ and generated/")
    parser.set_defaults(func=run)
