"""Language features the draft spec does not use, compiled from a fixture spec and exercised."""

from __future__ import annotations

import importlib.util
import sys
import uuid
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import HealthCheck, given, settings

from gridbind.codegen.spec import load_spec
from gridbind.codegen.sttp import generate

from sttp_strategies import Strategies

pytestmark = pytest.mark.timeout(60)

SPEC = """\
profile: fixture
byte_order: big
enums:
  Shape:
    type: u8
    values: {Dot: 1, Line: 2, Blob: 9}
flags:
  Bits:
    type: u8
    values: {Low: 0x01, High: 0x80}
    fields:
      level: {mask: 0x0E}
structs:
  Little:
    fields:
      - {name: a, type: u16, endian: little}
      - {name: b, type: i24}
      - {name: c, type: u24, endian: little}
      - {name: d, type: f32}
      - {name: e, type: f64, endian: little}
      - {name: g, type: guid, order: dotnet}
      - {name: h, type: guid}
  Texts:
    fields:
      - {name: short, type: string, prefix: u8, encoding: ascii, max_length: 10}
      - {name: latin, type: string, prefix: u32, encoding: latin-1}
      - {name: blob, type: bytes, prefix: u8}
      - {name: tag, type: ascii, size: 4, pad: "_"}
      - {name: level, type: u8, choices: [1, 5, 9]}
  Shapes:
    fields:
      - {name: shape, type: Shape}
      - name: body
        type: switch
        on: shape
        cases: {Dot: null, 2: Little}
        default_case: {type: bytes, prefix: u16}
      - {name: enabled, type: bool}
      - {name: extra, type: u15, when: {field: enabled, equals: true}}
      - {name: other, type: u8, when: {field: shape, not_equals: Dot}}
      - {name: pairs, type: array, of: Little, count: 2}
      - {name: bits, type: Bits}
messages:
  Wrapped:
    code: 0x10
    kind: command
    direction: subscriber
    response: true
    channel: command
    fields:
      - {name: n, type: u8, length_of: items}
      - {name: items, type: array, of: {type: string, prefix: u8}, count: n}
      - {name: tail, type: array, of: u16}
  Tagged:
    code: 0x11
    kind: response
    direction: publisher
    response: false
    channel: data
    fields:
      - {name: tag, type: u8}
      - {name: body, type: switch, on: tag, cases: {1: u8, 2: Little}}
"""


@pytest.fixture(scope="module")
def fixture(tmp_path_factory: pytest.TempPathFactory) -> tuple[ModuleType, Strategies]:
    root = tmp_path_factory.mktemp("language")
    spec_file = root / "fixture.yaml"
    spec_file.write_text(
        SPEC.replace("type: u15", "type: codec, codec: gridbind.sttp.encoding.UInt15, py: int")
    )
    out = generate(spec_file, root / "fixture_module.py", "fixture.yaml")
    module_spec = importlib.util.spec_from_file_location("gridbind_fixture_module", out)
    assert module_spec and module_spec.loader
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_spec.name] = module
    module_spec.loader.exec_module(module)
    return module, Strategies(load_spec(spec_file, "fixture.yaml"), module)


def test_byte_orders_widths_and_guid_orders(fixture: tuple[ModuleType, Strategies]) -> None:
    m, _ = fixture
    guid = uuid.UUID("00112233-4455-6677-8899-aabbccddeeff")
    data = m.Little(a=0x0102, b=-2, c=0x030405, d=1.5, e=0.0, g=guid, h=guid).build()
    assert data[:2] == b"\x02\x01"  # little-endian u16
    assert data[2:5] == b"\xff\xff\xfe"  # big-endian i24
    assert data[5:8] == b"\x05\x04\x03"  # little-endian u24
    assert data[8:12] == b"\x3f\xc0\x00\x00"
    assert data[12:20] == bytes(8)
    # .NET order: first three groups little-endian
    assert data[20:36].hex() == "33221100554477668899aabbccddeeff"
    assert data[36:52] == guid.bytes
    assert m.Little.parse(data).g == guid


def test_strings_prefixes_encodings_and_choices(fixture: tuple[ModuleType, Strategies]) -> None:
    m, _ = fixture
    texts = m.Texts(short="hi", latin="é", blob=b"\x00\x01", tag="AB", level=5)
    assert (
        texts.build() == b"\x02hi" + b"\x00\x00\x00\x01\xe9" + b"\x02\x00\x01" + b"AB__" + b"\x05"
    )
    with pytest.raises(m.ConstraintError, match="is not one of"):
        m.Texts(level=2).build()
    with pytest.raises(m.ConstraintError, match="more than 10"):
        m.Texts(short="x" * 11).build()
    with pytest.raises(m.WireError):
        m.Texts(short="é").build()  # not ASCII
    with pytest.raises(m.ConstraintError, match="is not one of"):
        m.Texts.parse(b"\x00" + b"\x00" * 4 + b"\x00" + b"____" + b"\x02")


def test_switch_default_case_conditions_and_codec(fixture: tuple[ModuleType, Strategies]) -> None:
    m, _ = fixture
    dot = m.Shapes(shape=m.Shape.Dot, body=None, enabled=True, extra=200, other=None)
    data = dot.build()
    assert data[:1] == b"\x01" and data[1:4] == b"\x01\xc8\x01"  # bool, UInt15(200) = C8 01
    assert m.Shapes.parse(data) == dot
    blob = m.Shapes(shape=m.Shape.Blob, body=b"xyz", enabled=False, extra=None, other=7)
    assert blob.build()[:7] == b"\x09\x00\x03xyz\x00"
    assert m.Shapes.parse(blob.build()) == blob
    with pytest.raises(m.WireError):
        m.Shapes(shape=m.Shape.Dot, enabled=True, extra=40000, other=None).build()
    assert m.Bits(0x0F).level == 7 and m.Bits(0).with_level(3) == m.Bits(0x06)


def test_count_field_and_array_to_the_end(fixture: tuple[ModuleType, Strategies]) -> None:
    m, _ = fixture
    message = m.Wrapped(items=["a", "bc"], tail=[1, 0xFFFF])
    assert message.build() == b"\x02\x01a\x02bc\x00\x01\xff\xff"
    assert m.parse_payload(0x10, message.build()) == message
    with pytest.raises(m.WireError, match="left over"):
        m.Wrapped.parse(b"\x00\x01")  # odd byte after the u16 array


def test_switch_without_default_refuses_unknown_codes(
    fixture: tuple[ModuleType, Strategies],
) -> None:
    m, _ = fixture
    assert m.Tagged.parse(b"\x01\x07") == m.Tagged(1, 7)
    with pytest.raises(m.ConstraintError, match="no case for tag = 3"):
        m.Tagged.parse(b"\x03\x07")
    with pytest.raises(m.ConstraintError, match="no case for tag = 5"):
        m.Tagged(5, 1).build()
    assert m.message_info(0x11).channel == "data"


@pytest.mark.parametrize("name", ["Little", "Texts", "Shapes", "Wrapped", "Tagged"])
def test_fixture_round_trips(fixture: tuple[ModuleType, Strategies], name: str) -> None:
    m, strategies = fixture
    cls = getattr(m, name)

    @given(strategies.for_struct(name))
    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    def round_trip(obj: object) -> None:
        assert cls.parse(obj.build()) == obj

    round_trip()


FAST_SPEC = """\
profile: fast
enums:
  Mode:
    type: u16
    values: {On: 1, Off: 2}
structs:
  Fixed:
    fields:
      - {name: a, type: u8}
      - {name: b, type: i32, min: -5}
      - {name: mode, type: Mode}
      - {name: ok, type: bool}
      - {name: g, type: guid, order: dotnet}
      - {name: samples, type: array, of: u16, count: 3}
      - {name: x, type: f64}
  Outer:
    fields:
      - {name: fixed, type: Fixed}
      - {name: tail, type: bytes}
"""


def test_fixed_layout_fast_path_matches_the_wire(tmp_path: Path) -> None:
    spec_file = tmp_path / "fast.yaml"
    spec_file.write_text(FAST_SPEC)
    out = generate(spec_file, tmp_path / "fast_module.py", "fast.yaml")
    assert 'struct.Struct(">BiH?16s3Hd")' in out.read_text()
    module_spec = importlib.util.spec_from_file_location("gridbind_fast_fixture", out)
    assert module_spec and module_spec.loader
    m = importlib.util.module_from_spec(module_spec)
    sys.modules[module_spec.name] = m
    module_spec.loader.exec_module(m)
    guid = uuid.UUID("00112233-4455-6677-8899-aabbccddeeff")
    fixed = m.Fixed(a=1, b=-2, mode=m.Mode.Off, ok=True, g=guid, samples=[1, 2, 3], x=0.5)
    wire = (
        b"\x01" + b"\xff\xff\xff\xfe" + b"\x00\x02" + b"\x01" + guid.bytes_le
        + b"\x00\x01\x00\x02\x00\x03" + b"\x3f\xe0" + bytes(6)
    )  # fmt: skip
    assert fixed.build() == wire
    assert m.Fixed.parse(wire) == fixed
    outer = m.Outer(fixed=fixed, tail=b"!")
    assert outer.build() == wire + b"!" and m.Outer.parse(wire + b"!") == outer
    with pytest.raises(m.ConstraintError, match="has 2 items, not 3"):
        m.Fixed(samples=[1, 2]).build()
    with pytest.raises(m.ConstraintError, match="below the minimum -5"):
        m.Fixed.parse(wire.replace(b"\xff\xff\xff\xfe", b"\xff\xff\xff\x00"))
    with pytest.raises(m.ConstraintError, match="not a Mode value"):
        m.Fixed.parse(wire.replace(b"\x00\x02\x01", b"\x00\x07\x01", 1))
    with pytest.raises(m.WireError, match="cannot parse"):
        m.Fixed.parse(wire[:-1])
    with pytest.raises(m.WireError):
        m.Outer.parse(wire[:10])


DEFAULTS_SPEC = """\
profile: defaults
enums:
  Mode:
    type: u8
    values: {On: 1, Off: 2}
flags:
  Opts:
    type: u8
    values: {A: 0x01, B: 0x02}
structs:
  Defaults:
    fields:
      - {name: a, type: u8, default: 255}
      - {name: b, type: i16, min: -10, default: -10}
      - {name: f, type: f32, default: 1}
      - {name: ok, type: bool, default: true}
      - {name: g, type: guid, default: 00112233-4455-6677-8899-aabbccddeeff}
      - {name: tag, type: ascii, size: 3, default: ab}
      - {name: text, type: string, prefix: u8, default: hé}
      - {name: raw, type: bytes, size: 2, default: !!binary AAE=}
      - {name: mode, type: Mode, default: "Off"}
      - {name: opts, type: Opts, default: 3}
"""


def test_defaults_that_fit_compile_and_build(tmp_path: Path) -> None:
    spec_file = tmp_path / "defaults.yaml"
    spec_file.write_text(DEFAULTS_SPEC)
    out = generate(spec_file, tmp_path / "defaults_module.py", "defaults.yaml")
    module_spec = importlib.util.spec_from_file_location("gridbind_defaults_fixture", out)
    assert module_spec and module_spec.loader
    m = importlib.util.module_from_spec(module_spec)
    sys.modules[module_spec.name] = m
    module_spec.loader.exec_module(m)
    record = m.Defaults()
    assert (record.a, record.b, record.f, record.ok) == (255, -10, 1, True)
    assert record.g == uuid.UUID("00112233-4455-6677-8899-aabbccddeeff")
    assert (record.tag, record.text, record.raw) == ("ab", "hé", b"\x00\x01")
    assert record.mode is m.Mode.Off and record.opts == m.Opts.A | m.Opts.B
    assert m.Defaults.parse(record.build()) == record
