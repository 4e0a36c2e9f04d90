"""``gridbind codegen {xsd,sttp,all}``: the Python API of codegen behind a command line.

A broken spec prints exactly one line (``FILE:LINE:PATH: reason``) on stderr and exits 2;
``all --check`` exits 1 and lists the files that differ when generated/ is stale.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gridbind.codegen.errors import SpecError

EXIT_STALE = 1
EXIT_SPEC = 2


def _xsd(args: argparse.Namespace) -> int:
    from gridbind.codegen.pipeline import XSD_DIR, default_root, xsd_generator

    generate = xsd_generator()
    if generate is None:
        print("gridbind codegen xsd: the XSD generator is not installed", file=sys.stderr)
        return EXIT_SPEC
    out = Path(args.out) if args.out else default_root() / "generated" / XSD_DIR
    written = generate(Path(args.source), out)
    print(f"wrote {len(written)} files to {out}")
    return 0


def _sttp(args: argparse.Namespace) -> int:
    from gridbind.codegen import sttp
    from gridbind.codegen.pipeline import default_root

    spec = Path(args.spec)
    out = (
        Path(args.out)
        if args.out
        else default_root() / "generated" / "sttp" / f"{sttp.module_name(spec)}.py"
    )
    try:
        display = spec.resolve().relative_to(default_root().resolve()).as_posix()
    except ValueError:
        display = spec.as_posix()
    sttp.generate(spec, out, display)
    print(f"wrote {out}")
    return 0


def _all(args: argparse.Namespace) -> int:
    from gridbind.codegen import pipeline

    root = Path(args.root) if args.root else pipeline.default_root()
    if not (root / "specs").is_dir():
        print(f"gridbind codegen all: no specs/ folder in {root}", file=sys.stderr)
        return EXIT_SPEC
    if args.check:
        diff = pipeline.check(root)
        if diff:
            print("generated/ is out of date with specs/ (run `gridbind codegen all`):")
            for line in diff.lines():
                print(f"  {line}")
            return EXIT_STALE
        print("generated/ is up to date")
        return 0
    diff = pipeline.regenerate(root)
    for line in diff.lines():
        print(line.replace("missing:", "added:").replace("extra:", "removed:"))
    print(f"generated/ regenerated ({len(diff.lines())} files changed)")
    return 0


def _guard(func):
    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except SpecError as exc:
            print(str(exc).splitlines()[0] if str(exc) else "spec error", file=sys.stderr)
            return EXIT_SPEC

    return run


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``codegen`` and its sub-commands to the ``gridbind`` command."""
    parser = subparsers.add_parser("codegen", help="generate code from specs/ into generated/")
    sub = parser.add_subparsers(dest="codegen_command", metavar="WHAT", required=True)

    xsd = sub.add_parser("xsd", help="XSD folder or .zip -> xsdata dataclasses")
    xsd.add_argument("source", help="folder or .zip of XSD files")
    xsd.add_argument("--out", help="output package folder (default generated/iec61850_8_2)")
    xsd.set_defaults(func=_guard(_xsd))

    spec = sub.add_parser("sttp", help="one STTP spec (YAML) -> one Python module")
    spec.add_argument("spec", help="specs/sttp/NAME.yaml")
    spec.add_argument("--out", help="output file (default generated/sttp/NAME.py)")
    spec.set_defaults(func=_guard(_sttp))

    every = sub.add_parser("all", help="regenerate everything from specs/ into generated/")
    every.add_argument(
        "--check", action="store_true", help="only check generated/ is up to date (exit 1 if not)"
    )
    every.add_argument("--root", help="checkout holding specs/ and generated/ (default: this one)")
    every.set_defaults(func=_guard(_all))
