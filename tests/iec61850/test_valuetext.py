"""The CLI's value text: everything printed reads back as the same value."""

from __future__ import annotations

import math
import struct
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_xer_oracle import PDUS

from gridbind.iec61850 import codec
from gridbind.iec61850.model import Timestamp
from gridbind.iec61850.scl import load_scl
from gridbind.iec61850.valuetext import (
    ValueTextError,
    ValueType,
    format_value,
    parse_timestamp,
    parse_value,
    shortest_float32,
    timestamp_text,
    type_from_description,
    type_from_model,
)

pytestmark = pytest.mark.timeout(60)

VALUES_SCD = Path(__file__).parent / "data" / "values.scd"
F32 = ValueType("float32")


def as_float32(x: float) -> float:
    return struct.unpack(">f", struct.pack(">f", x))[0]


@settings(max_examples=500, deadline=None)
@given(bits=st.integers(0, 2**32 - 1))
def test_float32_prints_shortest_and_reads_back_the_same_float(bits):
    value = struct.unpack(">f", bits.to_bytes(4, "big"))[0]
    if math.isnan(value):
        return
    text = format_value(value, F32)
    assert struct.pack(">f", parse_value(text, F32)) == bits.to_bytes(4, "big")
    # No decimal with fewer significant digits is the same 32-bit float.
    digits = len(Decimal(text).normalize().as_tuple().digits)
    for fewer in range(1, digits):
        assert as_float32(float(f"{value:.{fewer - 1}e}")) != value


@pytest.mark.parametrize("value, text", [(0.1, "0.1"), (1500.5, "1500.5"), (-3.3, "-3.3")])
def test_float32_examples(value, text):
    assert format_value(as_float32(value), F32) == text
    assert format_value(as_float32(value), ValueType("float64")) != text or value == 1500.5
    assert shortest_float32(math.inf) == math.inf


@settings(max_examples=500, deadline=None)
@given(
    seconds=st.integers(0, 2**32 - 1),
    fraction=st.integers(0, 2**24 - 1),
    quality=st.integers(0, 255),
)
def test_timestamps_read_back_exactly(seconds, fraction, quality):
    ts = Timestamp(seconds, fraction, quality)
    text = format_value(ts, ValueType("time"))
    assert parse_value(text, ValueType("time")) == ts
    assert parse_timestamp(timestamp_text(ts)) == ts


def test_timestamp_forms():
    ts = Timestamp(1714564800, 1 << 23, 0x0A)
    assert timestamp_text(ts) == "2024-05-01T12:00:00.500000000Z quality=0A"
    assert parse_value('"2024-05-01T12:00:00.5Z"', ValueType("time")) == Timestamp(
        1714564800, 1 << 23
    )
    assert parse_value("1714564800.5", ValueType("time")) == Timestamp(1714564800, 1 << 23)
    for bad in ('"2024-05-01 12:00:00Z"', '"1969-12-31T23:59:59Z"', '"2024-13-01T00:00:00Z"'):
        with pytest.raises(ValueError):
            parse_value(bad, ValueType("time"))


def test_types_from_the_scl_print_and_read_back():
    model = load_scl(VALUES_SCD)
    node = model.find("VALLD0/GAPC1.Set", "SP")
    vt = type_from_model(node, "SP")
    kinds = {name: t.kind for name, t in vt.members}
    assert kinds == {
        "f32": "float32", "f64": "float64", "mode": "enum", "raw": "bytes", "when": "time",
        "text": "str", "name": "vstr", "count": "int", "on": "bool", "q": "bits",
    }  # fmt: skip
    value = {
        "f32": as_float32(0.1),
        "f64": 0.1,
        "mode": 5,
        "raw": b"\x00\xab",
        "when": Timestamp(1714564800, 123, 0),
        "text": "café\r\n\t€",
        "name": "plain",
        "count": 7,
        "on": True,
        "q": "0100000000000",
    }
    text = format_value(value, vt)
    assert '"f32": 0.1' in text and '"mode": "off"' in text and '"raw": "00AB"' in text
    back = parse_value(text, vt)
    assert as_float32(back.pop("f32")) == value.pop("f32") and back == value
    assert parse_value(format_value(5, dict(vt.members)["mode"]), dict(vt.members)["mode"]) == 5


def test_enums_by_name_or_ordinal():
    mode = ValueType("enum", names=((1, "on"), (5, "off")))
    assert format_value(5, mode) == '"off"'
    assert format_value(7, mode) == "7"  # an ordinal without a name stays a number
    assert parse_value('"off"', mode) == 5 == parse_value("off", mode) == parse_value("5", mode)
    with pytest.raises(ValueTextError, match="not one of"):
        parse_value('"of"', mode)


def test_octets_and_bare_words():
    raw = ValueType("bytes")
    assert parse_value('"0x00ab 10"', raw) == b"\x00\xab\x10" == parse_value("00AB10", raw)
    with pytest.raises(ValueTextError, match="hex"):
        parse_value('"xyz"', raw)
    assert parse_value("feeder 7", ValueType("vstr")) == "feeder 7"
    with pytest.raises(ValueTextError, match="JSON"):
        parse_value("feeder 7", ValueType("int"))


@pytest.mark.parametrize("text", ['"bell\\u0007"', '"nul\\u0000"', '"esc\\u001b[0m"'])
def test_unwritable_characters_are_refused_before_sending(text):
    for kind in ("str", "any"):
        with pytest.raises(ValueTextError, match="cannot be sent"):
            parse_value(text, ValueType(kind))
    with pytest.raises(ValueTextError, match="VISIBLE STRING"):
        parse_value(text, ValueType("vstr"))
    assert parse_value('"a\\r\\nb\\t"', ValueType("str")) == "a\r\nb\t"


def test_types_from_a_server_type_description():
    td = ("structure", [("mag", ("structure", [("f", ("floating-point", 32))])),
                        ("q", ("bit-string", 13)), ("t", ("utc-time",)),
                        ("raw", ("array", 2, ("octet-string", 8)))])  # fmt: skip
    vt = type_from_description(td)
    value = {
        "mag": {"f": as_float32(0.1)},
        "q": "0" * 13,
        "t": Timestamp(5, 6, 0),
        "raw": [b"\x01"],
    }
    text = format_value(value, vt)
    assert '"f": 0.1' in text and "T00:00:05.000000358Z" in text and '"01"' in text
    back = parse_value(text, vt)
    assert as_float32(back["mag"].pop("f")) == value["mag"].pop("f") and back == value


def test_types_from_a_generated_type_description():
    td = codec.decode_pdu(PDUS["getVariableAccessAttributes-response"])
    vt = type_from_description(td.choice.service.choice.type_description)
    assert vt.kind == "struct" and [n for n, _ in vt.members] == ["mag", "t", None]
    assert [t.kind for _, t in vt.members] == ["float32", "time", "array"]
    assert vt.members[2][1].element == ValueType("bits")
    assert format_value({"mag": as_float32(0.1)}, vt) == '{\n "mag": 0.1\n}'
