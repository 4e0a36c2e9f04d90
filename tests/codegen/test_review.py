"""Reviewing a new 8-2 schema set: type diff, DECISIONS.md probes, runtime fit (fast, synthetic)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from gridbind.codegen import decisions, review, runtime_check, xsddiff, xsdtypes
from gridbind.codegen.xsd import collect_schemas

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "specs" / "iec61850_8_2"

OLD = """\
from __future__ import annotations
from dataclasses import dataclass, field
from enum import Enum

__NAMESPACE__ = "urn:t"


@dataclass(slots=True, kw_only=True)
class Holder:
    class Meta:
        name = "Holder-PDU"

    pair: Pair = field(metadata={"name": "pair", "type": "Element"})
    count: None | int = field(default=None, metadata={"name": "count", "type": "Element"})
    names: list[str] = field(
        default_factory=list, metadata={"name": "name", "type": "Element", "max_length": 64}
    )
    old_name: None | str = field(default=None, metadata={"name": "oldName", "type": "Element"})
    choice: None | int | Holder.Text = field(
        default=None,
        metadata={
            "type": "Elements",
            "choices": (
                {"name": "number", "type": int},
                {"name": "text", "type": ForwardRef("Holder.Text")},
            ),
        },
    )

    @dataclass(slots=True, kw_only=True)
    class Text:
        value: str = field()


@dataclass(slots=True, kw_only=True)
class Pair:
    a: int = field(metadata={"type": "Element"})
    b: int = field(metadata={"type": "Element"})

    @dataclass(slots=True, kw_only=True)
    class Inner:
        c: str = field(metadata={"type": "Element"})


@dataclass(slots=True, kw_only=True)
class ListOfThing:
    thing: list[int] = field(default_factory=list, metadata={"type": "Element"})


@dataclass(slots=True, kw_only=True)
class Things(ListOfThing):
    pass


class Colour(Enum):
    RED = "red"
    GREEN = "green"
"""

NEW = (
    OLD.replace("Pair", "Couple")
    .replace("count: None | int = field(default=None, ", "count: int = field(")
    .replace('"max_length": 64', '"max_length": 32')
    .replace("old_name: None | str", "new_name: None | str")
    .replace('"name": "oldName"', '"name": "newName"')
    .replace('{"name": "number", "type": int},', '{"name": "flag", "type": bool},')
    .replace('GREEN = "green"', 'BLUE = "blue"')
)
NEW_RETYPED = NEW.replace("    b: int = field(", "    b: str = field(")


def types(source: str) -> xsdtypes.TypeSet:
    return xsdtypes.read_sources({"t.py": source, "__init__.py": "", "fastxer.py": "x = 1"})


def test_types_are_read_from_source_with_inheritance_and_enums():
    t = types(OLD)
    assert t.namespaces == {"t": "urn:t"}
    holder = t.classes["t.Holder"]
    assert holder.xml == "Holder-PDU"
    assert holder.fields["pair"].cardinality == "1" and not holder.fields["pair"].has_default
    assert holder.fields["count"].cardinality == "0..1"
    assert holder.fields["names"].cardinality == "0..n" and holder.fields["names"].many
    assert holder.fields["names"].facets == (("max_length", "64"),)
    assert holder.fields["choice"].choices == (("number", "int"), ("text", "Holder.Text"))
    assert t.classes["t.Holder.Text"].fields["value"].kind == "Text"
    assert set(t.classes["t.Things"].fields) == {"thing"}  # inherited from ListOfThing
    assert t.classes["t.Colour"].kind == "enum" and t.classes["t.Colour"].values == ("red", "green")


def test_diff_lists_what_a_maintainer_reviews():
    result = xsddiff.diff(types(OLD), types(NEW))
    assert result.renames == {"t.Pair": "t.Couple", "t.Pair.Inner": "t.Couple.Inner"}
    lines = result.lines()
    assert "t.Pair: class renamed: -> t.Couple (same fields)" in lines
    assert "t.Holder: field renamed: old_name -> new_name (<oldName> -> <newName>)" in lines
    assert "t.Holder.count: cardinality: 0..1 -> 1" in lines
    assert "t.Holder.names: restriction: max_length 64 -> 32" in lines
    assert "t.Holder.choice: alternative added: flag (bool)" in lines
    assert "t.Holder.choice: alternative removed: number (int)" in lines
    assert "t.Colour: enumeration: added 'blue'; removed 'green'" in lines
    # the rename is reported once: the field holding a Couple is not "re-typed"
    assert not [line for line in lines if "re-typed" in line]
    assert result.summary() == "0 classes added, 0 removed, 2 renamed, 2 changed"


def test_diff_reports_retyping_additions_and_removals():
    new = OLD.replace("    b: int = field(", "    b: str = field(").replace(
        "class Colour(Enum):", "class Shade(Enum):"
    )
    new = new.replace("    old_name: None | str", "    extra: list[int]").replace(
        '"oldName"', '"x"'
    )
    lines = xsddiff.diff(types(OLD), types(new)).lines()
    assert "t.Pair.b: re-typed: int -> str" in lines
    assert "t.Shade: class added: <Shade> (red, green)" not in lines  # same values: a rename
    assert "t.Colour: class renamed: -> t.Shade (same fields)" in lines
    assert "t.Holder.extra: field added: int, 0..n <x>" in lines
    assert "t.Holder.old_name: field removed: str, 0..1 <oldName>" in lines
    assert not xsddiff.diff(types(OLD), types(OLD))


RUNTIME = """\
import gridbind.generated.iec61850_8_2 as gen
from gridbind.generated.iec61850_8_2 import t as m
from gridbind.generated.iec61850_8_2 import fastxer
from gridbind.generated.iec61850_8_2.t import Holder

Alias = m.Pair


def build(x):
    pair = Alias(a=1, b=2)
    h = Holder(pair=pair, old_name="n")
    if isinstance(x, m.Holder.Text):
        return x.value
    match x:
        case m.Pair(a=1, b=b):
            return b
    fastxer.decode(x)
    return gen.Colour, h.choice, x.old_name


def names():
    return m.__name__, gen.__file__, fastxer.__doc__
"""


def runtime_uses(tmp_path: Path) -> list[runtime_check.Use]:
    folder = tmp_path / "runtime"
    folder.mkdir(exist_ok=True)
    (folder / "use.py").write_text(RUNTIME)
    (folder / "other.py").write_text("def f(x):\n    return x.old_name\n")
    return runtime_check.uses(folder, {"t", "fastxer"}, tmp_path)


def test_runtime_uses_are_found(tmp_path):
    found = {(u.kind, u.module, u.name, u.attr) for u in runtime_uses(tmp_path)}
    assert ("field", "t", "Pair", "a") in found  # through the alias Alias = m.Pair
    assert ("construct", "t", "Holder", "pair,old_name") in found
    assert ("field", "t", "Pair", "b") in found  # match class pattern
    assert ("class", "t", "Holder.Text", "") in found
    assert ("class", None, "Colour", "") in found
    assert ("module", "fastxer", "decode", "") in found
    reads = [u for u in runtime_uses(tmp_path) if u.kind == "read"]
    assert {u.file for u in reads} == {"runtime/use.py"}  # other.py imports nothing generated


def test_runtime_fit_names_line_class_and_field(tmp_path):
    found = runtime_uses(tmp_path)
    old = types(OLD)
    assert runtime_check.check(found, old, old, {"t": set(), "fastxer": {"decode"}}) == []
    new_source = OLD.replace('"oldName"', '"newName"').replace("old_name:", "new_name:")
    new_source = new_source.replace("    b: int = field(", "    b: list[int] = field(")
    new_source = new_source.replace(
        "    count: None | int = field(default=None, ", "    count: int = field("
    )
    new_source = new_source.replace("class Colour(Enum)", "class Hue(Enum)")
    new = types(new_source)
    renames = xsddiff.diff(old, new).renames
    lines = [p.line() for p in runtime_check.check(found, new, old, {"fastxer": set()}, renames)]
    assert (
        "runtime/use.py:11: generated class t.Holder has no field 'old_name' "
        "(fields: pair, count, names, new_name, choice)" in lines
    )
    assert (
        "runtime/use.py:11: builds generated class t.Holder without its required field(s) 'count'"
        in lines
    )
    assert (
        "runtime/use.py:10: generated field t.Pair.b changed: int (1) -> list[int] (0..n)" in lines
    )
    assert "runtime/use.py:18: generated class Colour no longer exists" in lines
    assert "runtime/use.py:17: fastxer.decode no longer exists in the generated package" in lines
    assert (
        "runtime/use.py:18: reads .old_name, a field of t.Holder; no generated class has it now"
        in lines
    )


def test_this_checkouts_runtime_fits_its_generated_classes():
    snapshot = review.generated_snapshot(ROOT / "generated" / "iec61850_8_2")
    assert len(snapshot.types.classes) > 300
    assert [p.line() for p in review.runtime_problems(ROOT, snapshot)] == []


def test_probes_settle_on_the_authored_set_and_see_contradictions():
    authored = collect_schemas(SPECS)
    outcomes = decisions.probe(authored)
    assert [o.status for o in outcomes] == ["settled"] * len(decisions.PROBES)
    review.ensure_probes_match(SPECS / "DECISIONS.md")
    titles = decisions.titles(SPECS / "DECISIONS.md")
    assert set(decisions.PROBES) <= set(titles)
    # each probe is about the entry of its number (a renumbered DECISIONS.md fails here)
    text = (SPECS / "DECISIONS.md").read_text()
    entries = dict(re.findall(r"^(\d+)\. (.*?)(?=^\d+\. |^#|\Z)", text, re.M | re.S))
    for number, (title, _) in decisions.PROBES.items():
        words = [w for w in re.findall(r"[\w-]{4,}", title.lower()) if w not in {"text"}]
        assert any(w in entries[str(number)].lower() for w in words), (number, title)

    scsm = authored["SCSM_8_2.xsd"].decode()
    boolean = scsm.replace(
        '<xs:element name="boolean" type="xs:boolean"/>',
        '<xs:element name="boolean"><xs:complexType><xs:choice>'
        '<xs:element name="true" type="NULL"/><xs:element name="false" type="NULL"/>'
        "</xs:choice></xs:complexType></xs:element>",
    )
    unwrapped = boolean.replace('<xs:element name="MMSpdu" type="MMSpdu"/>', "")
    changed = {**authored, "SCSM_8_2.xsd": unwrapped.encode()}
    by_number = {o.number: o for o in decisions.probe(changed)}
    assert by_number[6].status == "contradicted"
    assert (
        by_number[6].evidence == "Data/boolean is empty elements true, false, not xs:boolean text"
    )
    assert (
        by_number[1].status == "contradicted"
        and "no global element MMSpdu" in by_number[1].evidence
    )
    assert by_number[2].status == "settled"
    e2e = authored["E2E_4.xsd"].replace(
        b'<xs:maxInclusive value="15"/>', b'<xs:maxInclusive value="12"/>'
    )
    by_number = {o.number: o for o in decisions.probe({**authored, "E2E_4.xsd": e2e})}
    assert by_number[25].status == "contradicted"
    assert by_number[25].evidence == "DtDiagnostics is xs:unsignedByte up to 12, not 0..15"
    gone = {"E2E_4.xsd": authored["E2E_4.xsd"].replace(b'name="applData"', b'name="data"')}
    assert {o.number: o.status for o in decisions.probe(gone)}[21] == "open"


def gridbind(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gridbind", *args],
        capture_output=True,
        text=True,
        timeout=50,
        cwd=ROOT,
    )


def package(folder: Path, source: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text("")
    (folder / "t.py").write_text(source)
    return folder


def test_diff_command_between_packages_and_against_git(tmp_path):
    out = gridbind(
        "codegen", "diff", "--old", str(package(tmp_path / "a", OLD)),
        "--new", str(package(tmp_path / "b", NEW_RETYPED)),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "  t.Pair: class renamed: -> t.Couple (same fields)" not in out.stdout  # b re-typed
    assert "  t.Pair: class removed: <Pair>" in out.stdout
    assert "  t.Couple: class added: <Couple> (a, b)" in out.stdout
    assert "runtime fit:" in out.stdout
    same = gridbind("codegen", "diff", "--old", "HEAD", "--new", "generated/iec61850_8_2")
    assert same.returncode == 0, same.stderr
    assert (
        same.stdout.splitlines()[0] == "8-2 types: 0 classes added, 0 removed, 0 renamed, 0 changed"
    )
    assert "DECISIONS.md probes: 0 contradicted, 15 settled, 0 open" in same.stdout
    bad = gridbind("codegen", "diff", "--old", "no-such-revision")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1


def test_probes_still_report_on_a_later_edition_with_a_new_namespace_year():
    from publication import EDITION_NAMESPACES, renamed_edition

    edition = renamed_edition(collect_schemas(SPECS))
    assert not any(old.encode() in data for old in EDITION_NAMESPACES for data in edition.values())
    outcomes = decisions.probe(edition)
    assert [o.status for o in outcomes] == ["settled"] * len(decisions.PROBES), [
        o.line() for o in outcomes if o.status != "settled"
    ]
    # the namespaces of the generated modules, when given, are used as they are
    given = {"scsm_8_2": "urn:elsewhere", "e2e_4": "urn:elsewhere-too"}
    assert all(o.status != "settled" for o in decisions.probe(edition, given))
