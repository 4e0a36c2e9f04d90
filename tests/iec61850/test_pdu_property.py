"""Property tests of pdu.py: random Data trees round-trip exactly and are schema-valid; random
damage to valid PDUs gives PduError (or a valid decode), never another exception."""

from __future__ import annotations

import struct
import xml.etree.ElementTree as ET

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridbind.iec61850.model import Timestamp
from gridbind.iec61850.pdu import PduError, decode, encode, to_bytes
from test_pdu import valid  # the schema check of the example-based tests

f32 = st.floats(width=32, allow_nan=False).map(
    lambda x: struct.unpack(">f", struct.pack(">f", x))[0]
)
xml_text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\ufffe\uffff\r"),
    max_size=20,
).filter(lambda s: all(c >= " " or c in "\t\n" for c in s) and s == s.strip())
leaves = st.one_of(
    st.builds(lambda v: ("boolean", v), st.booleans()),
    st.builds(lambda v: ("integer", v), st.integers(-(2**63), 2**63 - 1)),
    st.builds(lambda v: ("unsigned", v), st.integers(0, 2**64 - 1)),
    st.builds(lambda v: ("floating-point", v, 32), f32),
    st.builds(lambda v: ("floating-point", v, 64), st.floats(allow_nan=False)),
    st.builds(lambda v: ("bit-string", v), st.text("01", min_size=1, max_size=40)),
    st.builds(lambda v: ("octet-string", v), st.binary(max_size=20)),
    st.builds(
        lambda v: ("visible-string", v),
        st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=20),
    ),
    st.builds(lambda v: ("mMSString", v), xml_text),
    st.builds(
        lambda s, f, q: ("utc-time", Timestamp(s, f, q)),
        st.integers(0, 2**32 - 1),
        st.integers(0, 2**24 - 1),
        st.integers(0, 255),
    ),
)
data = st.recursive(
    leaves,
    lambda kids: st.one_of(
        st.builds(lambda items: ("structure", items), st.lists(kids, max_size=4)),
        st.builds(lambda items: ("array", items), st.lists(kids, max_size=4)),
    ),
    max_leaves=12,
)
NAME = ("domain-specific", "LD", "LN$ST$DO$da")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(data, min_size=1, max_size=3))
def test_data_roundtrip_and_valid(values) -> None:
    pdu = ("confirmed-RequestPDU", 5, "write", (("listOfVariable", [NAME] * len(values)), values))
    el = encode(pdu)
    valid(el)
    assert decode(ET.fromstring(to_bytes(el))) == pdu
    report = ("informationReport", ("listOfVariable", [("vmd-specific", "RPT")]),
              [("success", v) for v in values])  # fmt: skip
    assert decode(ET.fromstring(to_bytes(encode(report)))) == report


SAMPLE = to_bytes(
    encode(
        ("confirmed-RequestPDU", 9, "write",
         (("listOfVariable", [NAME]), [("structure", [("integer", 1), ("bit-string", "0101")])]))
    )
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(SAMPLE) - 1), st.integers(0, len(SAMPLE)), st.binary(max_size=8))
def test_damaged_pdus_never_raise_anything_but_pdu_error(start, length, junk) -> None:
    damaged = SAMPLE[:start] + junk + SAMPLE[start + length :]
    try:
        root = ET.fromstring(damaged)
    except ET.ParseError:
        return  # not XML at all: never reaches decode (the codec gate refuses it first)
    try:
        decode(root)
    except PduError:
        pass
