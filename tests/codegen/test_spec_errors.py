"""A broken STTP spec stops codegen with one line: FILE:LINE:PATH: reason."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gridbind.codegen.errors import SpecError
from gridbind.codegen.spec import load_spec

pytestmark = pytest.mark.timeout(60)

GOOD = """\
profile: test
enums:
  Kind:
    type: u8
    values: {A: 1, B: 2}
structs:
  Pair:
    fields:
      - {name: kind, type: Kind}
      - {name: size, type: u16, max: 100}
messages:
  Ping:
    code: 0x01
    kind: command
    direction: both
    response: true
    channel: command
    fields:
      - {name: pair, type: Pair}
  Pong:
    code: 0x02
    kind: response
    direction: both
    response: false
    channel: command
"""


def error_of(tmp_path: Path, text: str) -> str:
    spec = tmp_path / "broken.yaml"
    spec.write_text(text)
    with pytest.raises(SpecError) as caught:
        load_spec(spec, "specs/sttp/broken.yaml")
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_good_spec_loads(tmp_path: Path) -> None:
    spec = tmp_path / "good.yaml"
    spec.write_text(GOOD)
    loaded = load_spec(spec, "good.yaml")
    assert [m.name for m in loaded.messages] == ["Ping", "Pong"]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "      - {name: size, type: u16, max: 100}",
            "      - {name: size, type: u9}",
            "specs/sttp/broken.yaml:10:structs.Pair.fields[1].type: unknown type 'u9'",
        ),
        (
            "    code: 0x02",
            "    code: 0x01",
            "specs/sttp/broken.yaml:21:messages.Pong.code: duplicate code 0x01 (also Ping)",
        ),
        (
            "    direction: both\n    response: false",
            "    response: false",
            "specs/sttp/broken.yaml:20:messages.Pong: missing required key 'direction'",
        ),
        (
            "      - {name: pair, type: Pair}",
            "      - {name: pair}",
            "specs/sttp/broken.yaml:19:messages.Ping.fields[0]: missing required key 'type'",
        ),
        (
            "      - {name: pair, type: Pair}",
            "      - {name: n, type: array, of: Pair, count: missing}",
            "specs/sttp/broken.yaml:19:messages.Ping.fields[0].count: "
            "bad reference: no earlier field 'missing'",
        ),
        (
            "      - {name: pair, type: Pair}",
            "      - {name: flag, type: bool}\n"
            "      - {name: x, type: u8, when: {field: flag, equals: true}}\n"
            "      - {name: y, type: switch, on: kind, cases: {1: Pair}}",
            "specs/sttp/broken.yaml:21:messages.Ping.fields[2].on: "
            "bad reference: no earlier field 'kind'",
        ),
        (
            "      - {name: size, type: u16, max: 100}",
            "      - {name: size, type: u16, min: 10, max: 5}",
            "specs/sttp/broken.yaml:10:structs.Pair.fields[1].min: bad constraint: min 10 > max 5",
        ),
        (
            "      - {name: size, type: u16, max: 100}",
            "      - {name: size, type: u16, max: 70000}",
            "specs/sttp/broken.yaml:10:structs.Pair.fields[1].max: "
            "bad constraint: max 70000 is outside u16",
        ),
        (
            "      - {name: size, type: u16, max: 100}",
            "      - {name: size, type: u16, max_length: 3}",
            "specs/sttp/broken.yaml:10:structs.Pair.fields[1].max_length: "
            "bad constraint: max_length needs a sized field",
        ),
        (
            "      - {name: pair, type: Pair}",
            "      - {name: v, type: codec, codec: gridbind.sttp.encoding.NoSuchCodec, py: int}",
            "specs/sttp/broken.yaml:19:messages.Ping.fields[0].codec: "
            "bad reference: gridbind.sttp.encoding has no 'NoSuchCodec'",
        ),
        (
            "    values: {A: 1, B: 2}",
            "    values: {A: 1, B: 1}",
            "specs/sttp/broken.yaml:5:enums.Kind.values.B: duplicate value 0x1 (also A)",
        ),
        (
            "      - {name: size, type: u16, max: 100}",
            "      - {name: kind, type: u16}",
            "specs/sttp/broken.yaml:10:structs.Pair.fields[1].name: duplicate field 'kind'",
        ),
        (
            "      - {name: pair, type: Pair}",
            "      - {name: rest, type: bytes}\n      - {name: pair, type: Pair}",
            "specs/sttp/broken.yaml:19:messages.Ping.fields[0]: "
            "rest runs to the end of the payload, so it must be last",
        ),
        (
            "profile: test",
            "profile: test\nframes: {}",
            "specs/sttp/broken.yaml:2:frames: unknown key 'frames' (allowed: byte_order, codes, "
            "doc, enums, flags, frame, messages, profile, structs)",
        ),
    ],
    ids=[
        "unknown-type",
        "duplicate-code",
        "missing-key",
        "missing-field-type",
        "bad-count-reference",
        "bad-switch-reference",
        "bad-constraint-range",
        "constraint-outside-type",
        "constraint-wrong-kind",
        "bad-codec-reference",
        "duplicate-enum-value",
        "duplicate-field",
        "greedy-not-last",
        "unknown-top-key",
    ],
)
def test_broken_spec_one_line(tmp_path: Path, old: str, new: str, expected: str) -> None:
    assert old in GOOD
    assert error_of(tmp_path, GOOD.replace(old, new, 1)) == expected


def test_bad_yaml_reports_the_line(tmp_path: Path) -> None:
    text = GOOD.replace("      - {name: kind, type: Kind}", "      - {name: kind, type: Kind")
    message = error_of(tmp_path, text)
    assert message.startswith("specs/sttp/broken.yaml:10: invalid YAML: ")


def test_duplicate_yaml_key_is_refused(tmp_path: Path) -> None:
    text = GOOD.replace("    code: 0x02", "    code: 0x02\n    code: 0x03")
    assert error_of(tmp_path, text) == (
        "specs/sttp/broken.yaml:22:messages.Pong.code: duplicate key 'code'"
    )


def test_recursive_struct_is_refused(tmp_path: Path) -> None:
    text = GOOD.replace("      - {name: kind, type: Kind}", "      - {name: inner, type: Pair}")
    assert error_of(tmp_path, text) == (
        "specs/sttp/broken.yaml:7:structs.Pair: recursive struct 'Pair'"
    )


def test_command_prints_one_line_and_fails(tmp_path: Path) -> None:
    spec = tmp_path / "broken.yaml"
    spec.write_text(GOOD.replace("type: u16, max: 100", "type: u99"))
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "gridbind",
            "codegen",
            "sttp",
            str(spec),
            "--out",
            str(tmp_path / "x.py"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert lines == [f"{spec.as_posix()}:10:structs.Pair.fields[1].type: unknown type 'u99'"]
    assert not (tmp_path / "x.py").exists()


def test_array_of_possibly_empty_elements_is_refused(tmp_path: Path) -> None:
    text = GOOD.replace(
        "      - {name: pair, type: Pair}",
        "      - {name: items, type: array, of: Pong, prefix: u32}",
    )
    assert error_of(tmp_path, text) == (
        "specs/sttp/broken.yaml:19:messages.Ping.fields[0].of: array elements of type 'Pong' "
        "can be empty; an element must take at least one byte"
    )


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("uuid", "'uuid' is reserved in the generated module"),
        ("Messages", "'Messages' makes the constant MESSAGES, reserved in the module"),
        ("PAIR", "'PAIR' and 'Pair' both make the constant PAIR"),
    ],
)
def test_names_that_would_clash_in_the_module(tmp_path: Path, name: str, reason: str) -> None:
    text = GOOD.replace(
        "messages:\n", f"  {name}:\n    fields: [{{name: x, type: u8}}]\nmessages:\n"
    )
    assert error_of(tmp_path, text) == f"specs/sttp/broken.yaml:11:structs.{name}: {reason}"


@pytest.mark.parametrize(
    ("field", "reason"),
    [
        ("{name: x, type: u8, default: 300}", "300 does not fit u8"),
        ("{name: x, type: i8, default: -129}", "-129 does not fit i8"),
        ("{name: x, type: u16, default: '7'}", "'7' is not an integer (u16)"),
        ("{name: x, type: u8, default: true}", "True is not an integer (u8)"),
        ("{name: x, type: u8, default: null}", "None is not an integer (u8)"),
        ("{name: x, type: u8, max: 9, default: 10}", "10 is above the maximum 9"),
        ("{name: x, type: u8, choices: [1, 2], default: 3}", "3 is not one of the choices [1, 2]"),
        ("{name: x, type: f32, default: 1.0e+39}", "1e+39 does not fit f32"),
        ("{name: x, type: bool, default: 1}", "1 is not true or false"),
        ("{name: x, type: guid, default: nope}", "'nope' is not a GUID in text form"),
        ("{name: x, type: ascii, size: 2, default: abc}", "'abc' is longer than size 2"),
        ("{name: x, type: string, prefix: u8, default: 5}", "5 is not text (string)"),
        ("{name: x, type: string, encoding: ascii, default: é}", "'é' cannot be encoded as ascii"),
        (
            "{name: x, type: bytes, prefix: u8, default: abc}",
            "'abc' is not bytes (write !!binary BASE64)",
        ),
        ("{name: x, type: Kind, default: C}", "'C' is not a Kind member"),
        ("{name: x, type: Kind, default: 3}", "3 is not a Kind value"),
        (
            "{name: x, type: Kind, default: Off}",
            "False is not a Kind member (YAML reads Off/No as false: quote it)",
        ),
        (
            "{name: x, type: switch, on: kind, cases: {A: Pair}, default: Pair}",
            "a switch takes no default; its fallback case is default_case: TYPE",
        ),
        ("{name: x, type: Pair, default: {}}", "struct field 'x' takes no default"),
        ("{name: x, type: array, of: u8, default: []}", "array field 'x' takes no default"),
        (
            "{name: x, type: u8, when: {field: kind, equals: A}, default: 1}",
            "conditional field 'x' defaults to None",
        ),
    ],
    ids=[
        "int-range",
        "signed-range",
        "string-on-int",
        "bool-on-int",
        "null-on-int",
        "above-max",
        "not-a-choice",
        "float-range",
        "int-on-bool",
        "bad-guid",
        "ascii-too-long",
        "int-on-string",
        "unencodable",
        "text-on-bytes",
        "unknown-member",
        "unknown-value",
        "yaml-boolean-member",
        "switch-default",
        "struct-default",
        "array-default",
        "conditional-default",
    ],
)
def test_default_that_does_not_fit_the_field_is_refused(
    tmp_path: Path, field: str, reason: str
) -> None:
    text = GOOD.replace(
        "      - {name: pair, type: Pair}",
        f"      - {{name: kind, type: Kind}}\n      - {field}",
    )
    assert error_of(tmp_path, text) == (
        f"specs/sttp/broken.yaml:20:messages.Ping.fields[1].default: bad default: {reason}"
    )


def test_switch_fallback_is_default_case(tmp_path: Path) -> None:
    # the README's spelling of the fallback case is the one codegen reads
    text = GOOD.replace(
        "      - {name: pair, type: Pair}",
        "      - {name: kind, type: Kind}\n"
        "      - {name: x, type: switch, on: kind, cases: {A: Pair}, default_case: u8}",
    )
    spec = tmp_path / "ok.yaml"
    spec.write_text(text)
    _, switch = load_spec(spec, "ok.yaml").structs["Ping"].fields
    assert switch.default_case is not None and switch.default_case.type == "u8"
    readme = (Path(__file__).resolve().parents[2] / "specs" / "sttp" / "README.md").read_text()
    assert "`default_case: TYPE`" in readme and "`default: TYPE`" not in readme


@pytest.mark.parametrize(
    ("names", "reason"),
    [
        (["AB"], "'AB' makes the construct constant AB, the name of its own class"),
        (["S"], "'S' makes the construct constant S, the name of its own class"),
        (["A2B", "A2b"], "'A2b' makes the construct constant A2B, already a type name"),
        (["A2b", "A2B"], "'A2B' is the construct constant of 'A2b'"),
    ],
    ids=["all-caps", "one-letter", "constant-of-later", "constant-of-earlier"],
)
def test_struct_name_that_is_a_construct_constant_is_refused(
    tmp_path: Path, names: list[str], reason: str
) -> None:
    added = "".join(f"  {name}:\n    fields: [{{name: x, type: u8}}]\n" for name in names)
    text = GOOD.replace("messages:\n", f"{added}messages:\n")
    line = 11 + 2 * (len(names) - 1)
    message = error_of(tmp_path, text)
    assert message.startswith(f"specs/sttp/broken.yaml:{line}:structs.{names[-1]}: {reason}")


CODES = GOOD.replace(
    "structs:\n", "  Code:\n    type: u8\n    values: {Ping: 1, Pong: 2}\nstructs:\n", 1
)


@pytest.mark.parametrize(
    "codes,edit,expected",
    [
        (
            "codes: Code",
            ("code: 0x02", "code: 0x03"),
            "specs/sttp/broken.yaml:24:messages.Pong.code: code 0x03 of Pong is not a member of Code",
        ),
        (
            "codes: Code",
            ("{Ping: 1, Pong: 2}", "{Ping: 2, Pong: 1}"),
            "specs/sttp/broken.yaml:16:messages.Ping.code: code 0x01 is Code.Pong, not Ping",
        ),
        (
            "codes: {command: Code, response: Kind}",
            ("", ""),
            "specs/sttp/broken.yaml:24:messages.Pong.code: code 0x02 is Kind.B, not Pong",
        ),
        ("codes: Nope", ("", ""), "specs/sttp/broken.yaml:29:codes: bad reference: no enum 'Nope'"),
        (
            "codes: {command: Code}",
            ("", ""),
            "specs/sttp/broken.yaml:29:codes: no code enum for response messages",
        ),
    ],
    ids=["not-a-member", "other-name", "per-kind", "unknown-enum", "kind-without-enum"],
)
def test_message_codes_must_be_members_of_the_code_enum(tmp_path, codes, edit, expected) -> None:
    text = CODES.replace(*edit) + codes + "\n"
    assert error_of(tmp_path, text) == expected


def test_code_enums_accepted_and_every_project_spec_declares_one(tmp_path) -> None:
    spec = tmp_path / "good.yaml"
    spec.write_text(CODES + "codes: {command: Code, response: Code}\n")
    assert [m.name for m in load_spec(spec, "good.yaml").messages] == ["Ping", "Pong"]
    root = Path(__file__).resolve().parents[2]
    for path in sorted((root / "specs" / "sttp").glob("*.yaml")):
        text = path.read_text()
        assert "\ncodes:" in text, f"{path.name} names no code enum (codes:)"
        load_spec(path, path.name)
