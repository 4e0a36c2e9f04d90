"""One place knows where the 8-2 schema set is: the copy codegen installs under generated/.

Codegen reads ``specs/iec61850_8_2``; everything else (runtime, tests outside tests/codegen,
benchmarks) reads the installed copy through :mod:`gridbind.iec61850.schemaset`, so a schema set
dropped in with other file names or folders is what they all see.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from gridbind.codegen.xsd import PACKAGE, XSD_SUBDIR, collect_schemas
from gridbind.iec61850 import codec, schemaset

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "specs" / "iec61850_8_2"
GENERATED = ROOT / "generated" / "iec61850_8_2"  # tests/codegen/test_codegen_xsd_command.py
# checks the code in it is what codegen makes of the specs
#: String constants that mean "an XSD of specs/ read by name".
FORBIDDEN = ("SCSM_8_2.xsd", "E2E_4.xsd", "specs/iec61850_8_2")


def test_the_one_place_is_the_installed_copy_of_the_spec():
    assert schemaset.SCHEMA_DIR == GENERATED.resolve() / XSD_SUBDIR
    assert schemaset._generated.__name__ == PACKAGE  # the package codegen writes
    assert codec.schema_dir() == schemaset.SCHEMA_DIR
    installed = {
        p.relative_to(schemaset.SCHEMA_DIR).as_posix(): p.read_bytes() for p in schemaset.files()
    }
    assert installed == collect_schemas(SPECS)
    assert schemaset.entry_point(codec.E2E_NS).name == "E2E_4.xsd"
    assert schemaset.xml_schema(codec.SCSM_NS) is schemaset.xml_schema(codec.SCSM_NS)
    with pytest.raises(KeyError, match="urn:nothing"):
        schemaset.entry_point("urn:nothing")


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def reads_of_specs_xsds(path: Path) -> list[str]:
    """Places in ``path`` that name an XSD of specs/ (prose in docstrings does not count)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docs = _docstrings(tree)
    parents = {id(c): n for n in ast.walk(tree) for c in ast.iter_child_nodes(n)}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            if any(name in node.value for name in FORBIDDEN):
                out.append(f"{path}:{node.lineno}: {node.value!r}")
        # ROOT / "specs" / "iec61850_8_2" (then anything but DECISIONS.md)
        if (
            isinstance(node, ast.BinOp)
            and isinstance(node.right, ast.Constant)
            and node.right.value == "iec61850_8_2"
            and isinstance(node.left, ast.BinOp)
            and isinstance(node.left.right, ast.Constant)
            and node.left.right.value == "specs"
        ):
            parent = parents.get(id(node))
            tail = getattr(getattr(parent, "right", None), "value", None)
            if tail != "DECISIONS.md":
                out.append(f"{path}:{node.lineno}: specs/iec61850_8_2 folder")
    return out


def test_nothing_outside_codegen_reads_specs_xsds():
    sources = [
        p
        for folder in ("runtime", "bench", "tests")
        for p in sorted((ROOT / folder).rglob("*.py"))
        if "codegen" not in p.relative_to(ROOT).parts
    ]
    assert len(sources) > 50
    found = [hit for path in sources for hit in reads_of_specs_xsds(path)]
    assert found == []


def test_the_guard_sees_both_forms(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        '"""Docs may say specs/iec61850_8_2/SCSM_8_2.xsd."""\n'
        'A = ROOT / "specs" / "iec61850_8_2"\n'
        'B = ROOT / "specs" / "iec61850_8_2" / "DECISIONS.md"\n'
        'C = "generated/x/E2E_4.xsd"\n'
    )
    assert [hit.split(":", 2)[1] for hit in reads_of_specs_xsds(sample)] == ["2", "4"]
