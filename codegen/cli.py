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
    from gridbind.codegen.pipeline import XSD_DIR, xsd_generator

    generate = xsd_generator()
    if generate is None:
        print("gridbind codegen xsd: the XSD generator is not installed", file=sys.stderr)
        return EXIT_SPEC
    out = Path(args.out) if args.out else checkout(args, "xsd") / "generated" / XSD_DIR
    written = generate(Path(args.source), out)
    print(f"wrote {len(written)} files to {out}")
    return 0


def _sttp(args: argparse.Namespace) -> int:
    from gridbind.codegen import pipeline, sttp

    spec = Path(args.spec)
    root = pipeline.find_root(spec.resolve().parent)
    if args.out:
        out = Path(args.out)
    else:
        root = checkout(args, "sttp") if root is None else root
        out = root / "generated" / "sttp" / f"{sttp.module_name(spec)}.py"
    try:
        display = spec.resolve().relative_to(root.resolve()).as_posix() if root else spec.as_posix()
    except ValueError:
        display = spec.as_posix()
    sttp.generate(spec, out, display)
    print(f"wrote {out}")
    return 0


class NotACheckout(Exception):
    """cwd is not inside a gridbind checkout and no --root was given."""


def checkout(args: argparse.Namespace, command: str) -> Path:
    """The checkout a command works on: ``--root``, else the one holding the current directory.

    Never the checkout the installed package happens to live in: running from a second checkout
    must regenerate that second checkout. When the codegen doing the work is another checkout's
    (an environment installed from elsewhere), a note on stderr says so.
    """
    from gridbind.codegen import pipeline

    if getattr(args, "root", None):
        root = Path(args.root).resolve()
        if not (root / "specs").is_dir():
            raise NotACheckout(f"gridbind codegen {command}: no specs/ folder in {root}")
    else:
        found = pipeline.find_root()
        if found is None:
            raise NotACheckout(
                f"gridbind codegen {command}: {Path.cwd()} is not inside a gridbind checkout "
                "(no pyproject.toml of gridbind with specs/ and codegen/ here or above); "
                "run it in a checkout or pass --root DIR"
            )
        root = found
    mine = Path(__file__).resolve().parent
    if (root / "codegen").is_dir() and (root / "codegen").resolve() != mine:
        print(f"note: generating {root} with the codegen installed from {mine}", file=sys.stderr)
    return root


def _all(args: argparse.Namespace) -> int:
    from gridbind.codegen import pipeline

    root = checkout(args, "all")
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
        except NotACheckout as exc:
            print(str(exc), file=sys.stderr)
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
    every.add_argument(
        "--root", help="checkout holding specs/ and generated/ (default: the one holding cwd)"
    )
    every.set_defaults(func=_guard(_all))
