"""The committed baseline of the types the runtime fits, and field reads through getattr."""

from __future__ import annotations

from pathlib import Path

from gridbind.codegen import baseline, runtime_check, xsdtypes

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "generated" / "iec61850_8_2"

SOURCE = """\
from __future__ import annotations
from dataclasses import dataclass, field

__NAMESPACE__ = "urn:t"


@dataclass(slots=True, kw_only=True)
class Holder:
    token: None | str = field(default=None, metadata={"type": "Element"})
    asso_id: None | str = field(default=None, metadata={"type": "Element"})
"""

RUNTIME = """\
from gridbind.generated.iec61850_8_2 import t as m

_PATHS = (("asso_id",), ("token", "asso_id"))


def first(x):
    return getattr(x, "token", None)


def walk(value):
    for path in _PATHS:
        for name in path:
            value = getattr(value, name, None)
    return value
"""


def test_the_committed_baseline_is_the_generated_types():
    types = xsdtypes.read_folder(PACKAGE)
    assert baseline.load(PACKAGE) == types
    assert baseline.path(PACKAGE).read_text(encoding="utf-8") == baseline.dump(types)


def test_getattr_with_a_literal_or_a_name_table_is_a_field_read(tmp_path):
    folder = tmp_path / "runtime"
    folder.mkdir()
    (folder / "use.py").write_text(RUNTIME)
    found = runtime_check.uses(folder, {"t"}, tmp_path)
    old = xsdtypes.read_sources({"t.py": SOURCE, "__init__.py": ""})
    new = xsdtypes.read_sources(
        {"t.py": SOURCE.replace("token:", "tok:").replace("asso_id:", "aid:"), "__init__.py": ""}
    )
    assert runtime_check.check(found, old, old) == []
    lines = [p.line() for p in runtime_check.check(found, new, old)]
    assert "runtime/use.py:7: reads .token, a field of t.Holder; no generated class has it now" in (
        lines
    )
    assert (
        "runtime/use.py:3: reads .asso_id, a field of t.Holder; no generated class has it now"
        in (lines)
    )
