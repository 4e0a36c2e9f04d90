"""``gridbind demo``: the interim main demo of the foundation.

Regenerates every STTP module from ``specs/`` into a temporary folder, imports the fresh modules,
and round-trips every message each one defines (build, frame, parse, compare), printing one line
per message and a summary; it also says whether the committed ``generated/`` matches. Later
issues replace this with the protocol demo.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

from gridbind.sttp.encoding import SttpValue, ValueType


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


def run(args: argparse.Namespace) -> int:
    """Regenerate into a temporary folder and round-trip every STTP message."""
    from gridbind.codegen import pipeline

    root = Path(args.root) if args.root else pipeline.default_root()
    if not (root / "specs" / "sttp").is_dir():
        print(f"demo: no specs/sttp in {root}", file=sys.stderr)
        return 2
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
    return 1 if failures or stale else 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``demo`` to the ``gridbind`` command."""
    parser = subparsers.add_parser(
        "demo", help="regenerate the STTP bindings and round-trip every message"
    )
    parser.add_argument("--root", help="checkout holding specs/ and generated/ (default: this one)")
    parser.set_defaults(func=run)
