"""``gridbind codegen {xsd,sttp,all,diff,check-runtime}``: codegen behind a command line.

A broken spec prints exactly one line (``FILE:LINE:PATH: reason``) on stderr and exits 2, as does
a command run outside a checkout; ``all --check`` exits 1 and lists the files that differ when
generated/ is stale. ``all`` prints a short review of the 8-2 types when they changed, and both
``all`` and ``all --check`` exit 3 (naming file, line, generated class and field) when the
hand-written runtime does not fit the generated 8-2 classes.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from gridbind.codegen.errors import CodegenError, SpecError
from gridbind.errors import LocalError

EXIT_STALE = 1
EXIT_SPEC = 2
EXIT_RUNTIME = 3

#: Top-level modules of the ``codegen`` extra: the run-time install (no extras) lacks them.
CODEGEN_EXTRA = frozenset({"jinja2", "yaml", "black", "click", "toposort"})


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


class NotACheckout(CodegenError, LocalError):
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


def _runtime_fits(root: Path, new, old=None) -> int:
    """Print the runtime's uses that do not fit the generated 8-2 classes; EXIT_RUNTIME if any."""
    from gridbind.codegen import review

    problems = review.runtime_problems(root, new, old)
    if not problems:
        return 0
    print(
        f"gridbind codegen: the hand-written runtime does not fit the generated 8-2 classes "
        f"({len(problems)} uses):",
        file=sys.stderr,
    )
    for problem in problems:
        print(f"  {problem.line()}", file=sys.stderr)
    return EXIT_RUNTIME


def _baseline(package: Path, fallback=None):
    """The snapshot the runtime fit is checked against: the committed baseline, else
    ``fallback`` (the generated package before this regeneration)."""
    from gridbind.codegen import baseline, review

    types = baseline.load(package)
    return fallback if types is None else review.Snapshot(types, {}, {})


def _all(args: argparse.Namespace) -> int:
    from gridbind.codegen import baseline, pipeline, review

    root = checkout(args, "all")
    package = root / "generated" / pipeline.XSD_DIR
    if args.check:
        diff = pipeline.check(root)
        if diff:
            print("generated/ is out of date with specs/ (run `gridbind codegen all`):")
            for line in diff.lines():
                print(f"  {line}")
            return EXIT_STALE
        new = review.generated_snapshot(package)
        status = _runtime_fits(root, new, _baseline(package))
        if status or not new.types.classes:
            return status
        if baseline.path(package).is_file() and baseline.load(package) == new.types:
            print("generated/ is up to date")
            return 0
        print(
            f"generated/{pipeline.XSD_DIR}/{baseline.NAME} is out of date "
            "(run `gridbind codegen all`)"
        )
        return EXIT_STALE
    old = review.generated_snapshot(package)
    diff = pipeline.regenerate(root)
    for line in diff.lines():
        print(line.replace("missing:", "added:").replace("extra:", "removed:"))
    print(f"generated/ regenerated ({len(diff.lines())} files changed)")
    new = review.generated_snapshot(package)
    if new.types.classes and (new.schemas != old.schemas or new.types != old.types):
        decisions_md = root / "specs" / pipeline.XSD_DIR / "DECISIONS.md"
        for line in review.report(old, new, decisions_md, limit=40):
            print(line)
    status = _runtime_fits(root, new, _baseline(package, old))
    if status == 0 and new.types.classes and baseline.write(package, new.types):
        print(
            f"recorded the types the runtime fits in generated/{pipeline.XSD_DIR}/{baseline.NAME}"
        )
    return status


def _diff(args: argparse.Namespace) -> int:
    from gridbind.codegen import pipeline, review

    root = checkout(args, "diff")
    old = review.resolve(root, args.old, f"generated/{pipeline.XSD_DIR}")
    new = review.resolve(root, args.new, f"specs/{pipeline.XSD_DIR}")
    for line in review.report(old, new, root / "specs" / pipeline.XSD_DIR / "DECISIONS.md"):
        print(line)
    problems = review.runtime_problems(root, new, old)
    print(f"runtime fit: {len(problems)} problem(s)")
    for problem in problems:
        print(f"  {problem.line()}")
    return 0


def _check_runtime(args: argparse.Namespace) -> int:
    from gridbind.codegen import pipeline, review

    root = checkout(args, "check-runtime")
    package = root / "generated" / pipeline.XSD_DIR
    new = review.generated_snapshot(package)
    status = _runtime_fits(root, new, _baseline(package))
    if status == 0:
        print("the runtime fits the generated 8-2 classes")
    return status


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
        except ModuleNotFoundError as exc:
            if exc.name not in CODEGEN_EXTRA:
                raise
            print(
                f"gridbind codegen: {exc.name} is missing; the generator needs the codegen "
                "extra (pip install 'gridbind[codegen]')",
                file=sys.stderr,
            )
            return EXIT_SPEC
        except BrokenPipeError:
            # the reader (``| head``) has gone: stop quietly, as the shell tools do
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0

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

    review = sub.add_parser(
        "diff",
        help="what a new 8-2 schema set changes: types, DECISIONS.md entries, runtime fit",
    )
    review.add_argument(
        "--old",
        help="generated package folder, XSD folder/zip or git revision "
        "(default generated/iec61850_8_2)",
    )
    review.add_argument(
        "--new", help="XSD folder/zip or generated package folder (default specs/iec61850_8_2)"
    )
    review.add_argument("--root", help="checkout (default: the one holding cwd)")
    review.set_defaults(func=_guard(_diff))

    fits = sub.add_parser(
        "check-runtime", help="check the runtime's uses of the generated 8-2 classes (exit 3)"
    )
    fits.add_argument("--root", help="checkout (default: the one holding cwd)")
    fits.set_defaults(func=_guard(_check_runtime))
