"""``gridbind codegen all``: every spec of a checkout -> ``generated/``, and the regeneration check.

Everything is first generated into a temporary tree; ``all`` then mirrors that tree into
``generated/`` (adding, replacing and deleting files), ``--check`` only compares it byte for byte.
Codegen owns every file of ``generated/``, its own ``__init__.py`` included (written from
:data:`PACKAGE_DOC`), so a hand edit anywhere fails the check.
"""

from __future__ import annotations

import importlib
import importlib.util
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from gridbind.codegen import metadata, sttp
from gridbind.codegen.errors import SpecError
from gridbind.codegen.render import header, write_python

#: Folder names under generated/ that codegen owns.
STTP_DIR = "sttp"
XSD_DIR = "iec61850_8_2"
_IGNORED = {"__pycache__", ".mypy_cache"}
#: Files of generated/ that codegen writes apart from the generated tree (see
#: :mod:`gridbind.codegen.baseline`): regeneration keeps them, the byte comparison skips them.
_KEPT = {f"{XSD_DIR}/runtime_baseline.json"}
#: Docstring of ``generated/__init__.py`` (the package that holds everything codegen writes).
PACKAGE_DOC = "gridbind.generated: code written by ``gridbind codegen all``. Never edit by hand."


def is_checkout(folder: Path) -> bool:
    """Whether ``folder`` is a gridbind checkout: pyproject.toml of the project ``gridbind``,
    ``specs/`` and ``codegen/``."""
    import tomllib

    try:
        project = tomllib.loads((folder / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False
    named = project.get("project", {}).get("name") == "gridbind"
    return named and (folder / "specs").is_dir() and (folder / "codegen").is_dir()


def find_root(start: Path | None = None) -> Path | None:
    """The checkout holding ``start`` (default: cwd): it or its nearest parent that
    :func:`is_checkout`; None outside any checkout."""
    here = Path.cwd() if start is None else Path(start)
    here = here.resolve()
    for folder in (here, *here.parents):
        if is_checkout(folder):
            return folder
    return None


def default_root() -> Path:
    """The checkout of cwd; outside one, the source tree of this package, else cwd."""
    found = find_root()
    if found is not None:
        return found
    here = Path(__file__).resolve().parent.parent
    if (here / "specs").is_dir() and (here / "generated").is_dir():
        return here
    return Path.cwd()


def xsd_generator():
    """The XSD half (``gridbind.codegen.xsd.generate``) if it is installed, else None."""
    if importlib.util.find_spec("gridbind.codegen.xsd") is None:
        return None
    return importlib.import_module("gridbind.codegen.xsd").generate


def generate_tree(root: Path, out: Path, xsd: bool = True) -> list[Path]:
    """Generate everything ``root/specs`` describes into ``out`` (a generated/ look-alike).

    ``xsd=False`` leaves out the XSD set (the demo needs only the STTP modules).
    """
    written = [write_python(out / "__init__.py", f'{header("specs")}\n"""{PACKAGE_DOC}"""\n')]
    specs = root / "specs"
    sttp_specs = sorted((specs / "sttp").glob("*.yaml"))
    templates = sorted((specs / "sttp" / "templates").glob("*.yaml"))
    if sttp_specs or templates:
        package = out / STTP_DIR
        package.mkdir(parents=True, exist_ok=True)
        init = package / "__init__.py"
        written.append(
            write_python(
                init,
                f"{header('specs/sttp')}\n"
                '"""Modules compiled from specs/sttp/*.yaml, one per STTP wire profile."""\n',
            )
        )
        for spec in sttp_specs:
            display = spec.relative_to(root).as_posix()
            target = package / f"{sttp.module_name(spec)}.py"
            written.append(sttp.generate(spec, target, display))
        if templates:
            written.append(metadata.generate(templates, package / "templates.py", root))
    xsd_source = specs / XSD_DIR
    generate = xsd_generator() if xsd else None
    if xsd_source.is_dir() and generate is not None:
        written += list(generate(xsd_source, out / XSD_DIR))
    return written


def _files(tree: Path) -> dict[str, Path]:
    """Generated files of ``tree`` by relative path (caches and byte code excluded)."""
    out: dict[str, Path] = {}
    if not tree.is_dir():
        return out
    for path in sorted(tree.rglob("*")):
        rel = path.relative_to(tree)
        if not path.is_file() or _IGNORED & set(rel.parts):
            continue
        if path.suffix == ".pyc" or rel.as_posix() in _KEPT:
            continue
        out[rel.as_posix()] = path
    return out


@dataclass
class Difference:
    """How generated/ differs from what the specs give."""

    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.missing or self.extra or self.changed)

    def lines(self) -> list[str]:
        """One line per file: ``missing|extra|changed: generated/PATH``."""
        return [
            f"{kind}: generated/{path}"
            for kind, paths in (
                ("missing", self.missing),
                ("extra", self.extra),
                ("changed", self.changed),
            )
            for path in paths
        ]


def compare(expected: Path, actual: Path, only: str | None = None) -> Difference:
    """Byte-for-byte comparison of two generated trees (``only``: one top folder, e.g. sttp)."""
    want, have = _files(expected), _files(actual)
    if only is not None:
        want = {rel: p for rel, p in want.items() if rel.startswith(only + "/")}
        have = {rel: p for rel, p in have.items() if rel.startswith(only + "/")}
    diff = Difference()
    diff.missing = sorted(set(want) - set(have))
    diff.extra = sorted(set(have) - set(want))
    diff.changed = sorted(
        rel for rel in set(want) & set(have) if want[rel].read_bytes() != have[rel].read_bytes()
    )
    return diff


def regenerate(root: Path) -> Difference:
    """Regenerate ``root/generated`` from ``root/specs``; returns what changed."""
    target = root / "generated"
    with tempfile.TemporaryDirectory(prefix="gridbind-codegen-") as tmp:
        fresh = Path(tmp)
        generate_tree(root, fresh)
        diff = compare(fresh, target)
        for rel in diff.extra:
            (target / rel).unlink()
        for rel in diff.missing + diff.changed:
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(fresh / rel, target / rel)
        for folder in sorted(target.rglob("*"), reverse=True):
            if folder.is_dir() and folder.name not in _IGNORED and not any(folder.iterdir()):
                folder.rmdir()
    return diff


def check(root: Path) -> Difference:
    """Whether ``root/generated`` is exactly what regeneration gives (nothing is written)."""
    with tempfile.TemporaryDirectory(prefix="gridbind-codegen-check-") as tmp:
        fresh = Path(tmp)
        generate_tree(root, fresh)
        return compare(fresh, root / "generated")


__all__ = [
    "Difference",
    "SpecError",
    "check",
    "compare",
    "default_root",
    "find_root",
    "generate_tree",
    "is_checkout",
    "regenerate",
]
