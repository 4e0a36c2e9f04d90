"""The maintainer's view of a new 8-2 schema set: type changes, DECISIONS.md, runtime fit.

Used by ``gridbind codegen diff`` (full report, nothing written) and ``gridbind codegen all``
(a short report after regenerating, and the runtime check that fails the command when the
hand-written runtime no longer fits the regenerated classes).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from gridbind.codegen import decisions, runtime_check, xsddiff, xsdtypes
from gridbind.codegen.errors import SpecError

__all__ = ["Snapshot", "generated_snapshot", "report", "runtime_problems", "source_snapshot"]

XSD_DIR = "iec61850_8_2"
XSD_SUBDIR = "xsd"


@dataclass
class Snapshot:
    """The types of one generated package and the schema set it was made from."""

    types: xsdtypes.TypeSet
    schemas: dict[str, bytes]
    modules: dict[str, set[str]]


def _schemas(folder: Path) -> dict[str, bytes]:
    xsd = folder / XSD_SUBDIR
    if not xsd.is_dir():
        return {}
    return {p.relative_to(xsd).as_posix(): p.read_bytes() for p in sorted(xsd.rglob("*.xsd"))}


def generated_snapshot(folder: Path) -> Snapshot:
    """What the generated package in ``folder`` holds (empty when it does not exist)."""
    folder = Path(folder)
    modules = xsdtypes.module_names(folder) if folder.is_dir() else {}
    return Snapshot(xsdtypes.read_folder(folder), _schemas(folder), modules)


def source_snapshot(source: Path) -> Snapshot:
    """Generate ``source`` (XSD folder or zip) into a scratch folder and snapshot that."""
    from gridbind.codegen.xsd import generate

    with tempfile.TemporaryDirectory(prefix="gridbind-diff-") as tmp:
        generate(Path(source), Path(tmp) / XSD_DIR)
        return generated_snapshot(Path(tmp) / XSD_DIR)


def resolve(root: Path, what: str | None, default: str) -> Snapshot:
    """``--old``/``--new``: a generated package folder, an XSD folder or zip, or a git revision
    (its ``generated/iec61850_8_2``)."""
    if what is None:
        what = default
    path = Path(what)
    if not path.is_absolute() and not path.exists():
        path = root / what
    if path.is_dir() and (path / "__init__.py").is_file():
        return generated_snapshot(path)
    if path.exists():
        return source_snapshot(path)
    return Snapshot(xsdtypes.read_git(root, what, f"generated/{XSD_DIR}"), {}, {})


def runtime_problems(
    root: Path, new: Snapshot, old: Snapshot | None = None
) -> list[runtime_check.Problem]:
    """The runtime's uses (``root/runtime``) that do not fit ``new``."""
    runtime = root / "runtime"
    if not runtime.is_dir() or not new.types.classes:
        return []
    found = runtime_check.uses(runtime, set(new.modules), root)
    renames = xsddiff.diff(old.types, new.types).renames if old is not None else {}
    return runtime_check.check(found, new.types, old.types if old else None, new.modules, renames)


def report(
    old: Snapshot, new: Snapshot, decisions_md: Path | None, limit: int | None = None
) -> list[str]:
    """Lines for the maintainer: summary, one line per change, then the DECISIONS.md probes."""
    changes = xsddiff.diff(old.types, new.types)
    lines = [f"8-2 types: {changes.summary()}"]
    shown = changes.lines()
    if limit is not None and len(shown) > limit:
        rest = len(shown) - limit
        shown = shown[:limit] + [f"... {rest} more (all of them: gridbind codegen diff --old REV)"]
    lines += [f"  {line}" for line in shown]
    if new.schemas:
        outcomes = decisions.probe(new.schemas, new.types.namespaces)
        titles = decisions.titles(decisions_md) if decisions_md else {}
        count = {s: sum(o.status == s for o in outcomes) for s in ("settled", "contradicted")}
        lines.append(
            f"DECISIONS.md probes: {count['contradicted']} contradicted, {count['settled']} "
            f"settled, {len(outcomes) - sum(count.values())} open"
        )
        for outcome in sorted(outcomes, key=lambda o: (o.status != "contradicted", o.number)):
            if limit is not None and outcome.status == "settled":
                continue  # the short report lists what needs a look
            title = titles.get(outcome.number) or outcome.title
            lines.append(f"  {outcome.status}: {outcome.number}. {title} - {outcome.evidence}")
        if limit is not None and count["settled"]:
            settled = ", ".join(str(o.number) for o in outcomes if o.status == "settled")
            lines.append(f"  settled: {settled} (details: gridbind codegen diff)")
    return lines


def ensure_probes_match(decisions_md: Path) -> None:
    """Every probe names an entry that exists in DECISIONS.md (a renumbered file fails loudly)."""
    titles = decisions.titles(decisions_md)
    if not titles:
        return
    missing = sorted(set(decisions.PROBES) - set(titles))
    if missing:
        raise SpecError(
            decisions_md.name, "", f"no entry {missing[0]} for the probe of that number"
        )
