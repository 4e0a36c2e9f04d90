"""``gridbind codegen xsd SOURCE --out DIR``: the command over the XSD generator of codegen/xsd.py."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from gridbind.codegen import baseline

from conftest import require

ROOT = Path(__file__).resolve().parents[2]
XSDS = ROOT / "specs" / "iec61850_8_2"


def tree(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


@pytest.mark.timeout(120)
def test_xsd_command_from_a_zip(tmp_path: Path) -> None:
    require(importlib.util.find_spec("gridbind.codegen.xsd") is not None, "codegen/xsd.py")
    require(XSDS.is_dir(), "specs/iec61850_8_2")
    archive = tmp_path / "set.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for xsd in sorted(XSDS.glob("*.xsd")):
            bundle.write(xsd, xsd.name)
    out = subprocess.run(
        [sys.executable, "-m", "gridbind", "codegen", "xsd", str(archive), "--out",
         str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=100,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    produced, committed = tree(tmp_path / "out"), tree(ROOT / "generated" / "iec61850_8_2")
    # The runtime-fit baseline is written by `codegen all` once the runtime fits, not by `xsd`.
    committed.pop(baseline.NAME)
    # the zip gives the committed code (made from the folder); only the provenance line differs
    assert produced.keys() == committed.keys()
    for rel, data in committed.items():
        if rel.endswith(".py"):
            provenance = b"`gridbind codegen xsd` from set.zip."
            assert produced[rel].count(provenance) == 1, rel
            same = produced[rel].replace(provenance, b"`gridbind codegen xsd` from iec61850_8_2.")
            assert data == same, rel
        else:
            assert data == produced[rel], rel
