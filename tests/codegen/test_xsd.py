"""``gridbind.codegen.xsd.generate``: folder or zip in, deterministic black-formatted package out."""

from __future__ import annotations

import importlib.util
import sys
import zipfile
from pathlib import Path

import black
import pytest

from gridbind.codegen.errors import SpecError
from gridbind.codegen.xsd import collect_schemas, generate, module_name

pytestmark = pytest.mark.timeout(120)

FIXTURES = Path(__file__).resolve().parent / "fixtures"
FOLDER = FIXTURES / "xsd_small"
ZIP = FIXTURES / "xsd_small.zip"


def load_package(out: Path, name: str):
    """Import a generated package from ``out`` under a private name (it uses relative imports)."""
    spec = importlib.util.spec_from_file_location(
        name, out / "__init__.py", submodule_search_locations=[str(out)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def tree(out: Path) -> dict[str, bytes]:
    return {
        p.relative_to(out).as_posix(): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def body(data: bytes) -> bytes:
    """Generated module without its first (header) line, which names the source."""
    return data.split(b"\n", 1)[1]


def test_zip_fixture_matches_folder_fixture():
    assert collect_schemas(ZIP) == collect_schemas(FOLDER)
    with zipfile.ZipFile(ZIP) as archive:
        assert any(not n.endswith(".xsd") for n in archive.namelist())  # ignored README


def test_folder_generates_an_importable_typed_package(tmp_path):
    written = generate(FOLDER, tmp_path / "out")
    out = tmp_path / "out"
    assert written == sorted(written)
    names = sorted(p.relative_to(out).as_posix() for p in written)
    assert names == [
        "__init__.py",
        "fastxer.py",
        "main.py",
        "other.py",
        "xsd/main.xsd",
        "xsd/sub/other.xsd",
        "xsd/types.xsd",
    ]
    package = load_package(out, "gridbind_fixture_pkg")
    value = package.Value(choice=package.Value.Integer(value=5))
    message = package.Message(id=3, value=value, items=package.Message.Items(value=[value]))
    from xsdata.formats.dataclass.parsers import XmlParser
    from xsdata.formats.dataclass.serializers import XmlSerializer
    from xsdata.formats.dataclass.serializers.config import SerializerConfig

    xml = XmlSerializer(config=SerializerConfig(xml_declaration=False)).render(
        message, ns_map={None: "urn:gridbind:fixture:main"}
    )
    assert "<integer>5</integer>" in xml
    assert XmlParser().from_string(xml, package.Message) == message
    # The emitted fast path reads and writes the same XML as xsdata.
    from lxml import etree

    fast = importlib.import_module("gridbind_fixture_pkg.fastxer")
    assert fast.decode(etree.fromstring(xml.encode())) == message
    element = fast.encode(message, {None: "urn:gridbind:fixture:main"})
    assert etree.tostring(element).decode() == xml
    with pytest.raises(fast.TooDeep):
        fast.decode(etree.fromstring(xml.encode()), limit=2)


def test_compound_choice_fields(tmp_path):
    generate(FOLDER, tmp_path)
    main = (tmp_path / "main.py").read_text()
    # One tagged `choice` per CHOICE; alternatives of the same Python type get wrapper classes.
    assert "class Value:\n    choice: None | Value.Integer | Value.Unsigned | str | Empty" in main
    assert "slots=True" in main


def test_zip_and_folder_give_the_same_package(tmp_path):
    a, b = tree(generate_dir(FOLDER, tmp_path / "a")), tree(generate_dir(ZIP, tmp_path / "b"))
    assert a.keys() == b.keys()
    for rel in a:
        if rel.endswith(".py"):
            assert body(a[rel]) == body(b[rel]), rel
        else:
            assert a[rel] == b[rel], rel


def generate_dir(source: Path, out: Path) -> Path:
    generate(source, out)
    return out


def test_deterministic_black_and_free_of_local_paths(tmp_path, monkeypatch):
    first = tree(generate_dir(FOLDER, tmp_path / "one"))
    monkeypatch.chdir(FIXTURES)  # a relative source and another cwd change nothing
    second = tree(generate_dir(Path(FOLDER.name), tmp_path / "two"))
    assert first == second
    mode = black.Mode(line_length=100)
    for rel, data in first.items():
        text = data.decode()
        assert str(tmp_path) not in text and str(FIXTURES) not in text
        if rel.endswith(".py"):
            assert black.format_str(text, mode=mode) == text, rel


def test_regeneration_removes_stale_files(tmp_path):
    out = tmp_path / "out"
    generate(FOLDER, out)
    (out / "stale.py").write_text("x = 1\n")
    (out / "xsd" / "old.xsd").write_text("<x/>")
    (out / "keep.txt").write_text("not ours")
    generate(FOLDER, out)
    assert not (out / "stale.py").exists() and not (out / "xsd" / "old.xsd").exists()
    assert (out / "keep.txt").exists()


def test_module_names_for_unknown_namespaces():
    assert module_name("urn:gridbind:fixture:main") == "main"
    assert module_name("http://www.iec.ch/61850/2018/SCSM_8_2") == "scsm_8_2"
    assert module_name("http://example.com/2020/") == "ns_2020"


def write_set(folder: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text)
    return folder


HEAD = (
    '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns="urn:t" '
    'targetNamespace="urn:t" elementFormDefault="qualified">'
)


def test_broken_xml_names_file_and_line(tmp_path):
    src = write_set(tmp_path / "s", {"a.xsd": HEAD + '\n\n<xs:element name="x" type="xs:int">'})
    with pytest.raises(SpecError) as info:
        generate(src, tmp_path / "out")
    assert info.value.file.endswith("a.xsd") and info.value.location.isdigit()
    assert "\n" not in str(info.value)


def test_unresolved_type_is_a_spec_error(tmp_path):
    src = write_set(
        tmp_path / "s", {"a.xsd": HEAD + '<xs:element name="x" type="Missing"/></xs:schema>'}
    )
    with pytest.raises(SpecError, match="Missing"):
        generate(src, tmp_path / "out")


def test_missing_include_is_a_spec_error(tmp_path):
    src = write_set(
        tmp_path / "s",
        {"a.xsd": HEAD + '<xs:include schemaLocation="gone.xsd"/></xs:schema>'},
    )
    with pytest.raises(SpecError, match="not a file of the schema set"):
        generate(src, tmp_path / "out")


def test_not_a_schema(tmp_path):
    src = write_set(tmp_path / "s", {"a.xsd": "<root/>"})
    with pytest.raises(SpecError, match="xs:schema"):
        generate(src, tmp_path / "out")


def test_empty_and_wrong_sources(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SpecError, match="no .xsd"):
        generate(tmp_path / "empty", tmp_path / "out")
    with pytest.raises(SpecError):
        generate(tmp_path / "nowhere", tmp_path / "out")
    bad_zip = tmp_path / "bad.zip"
    bad_zip.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(SpecError):
        generate(bad_zip, tmp_path / "out")


def test_zip_with_escaping_path_is_refused(tmp_path):
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr("../escape.xsd", HEAD + "</xs:schema>")
    with pytest.raises(SpecError, match="unsafe"):
        generate(evil, tmp_path / "out")


def test_folder_holding_only_the_zip_uses_the_zip(tmp_path):
    spec = tmp_path / "iec61850_8_2"
    spec.mkdir()
    (spec / "DECISIONS.md").write_text("notes\n")
    (spec / ZIP.name).write_bytes(ZIP.read_bytes())
    assert collect_schemas(spec) == collect_schemas(FOLDER)


def test_remote_import_is_a_spec_error_not_a_download(tmp_path):
    src = write_set(
        tmp_path / "s",
        {
            "a.xsd": HEAD
            + '<xs:import namespace="urn:remote" schemaLocation="http://127.0.0.1:9/r.xsd"/>'
            + '<xs:element name="x" type="xs:int"/></xs:schema>'
        },
    )
    with pytest.raises(SpecError, match="not a file of the schema set"):
        generate(src, tmp_path / "out")


def test_every_generated_module_has_exactly_one_docstring(tmp_path):
    import ast

    generate(FOLDER, tmp_path / "out")
    committed = Path(__file__).resolve().parents[2] / "generated" / "iec61850_8_2"
    modules = sorted((tmp_path / "out").glob("*.py")) + sorted(committed.glob("*.py"))
    assert any(p.name == "fastxer.py" for p in modules)
    for path in modules:
        body = ast.parse(path.read_text()).body
        strings = [
            i
            for i, node in enumerate(body)
            if isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ]
        assert strings == [0], f"{path.name}: string statements at {strings}"
        assert "Never edit by hand." in ast.get_docstring(ast.parse(path.read_text()))
