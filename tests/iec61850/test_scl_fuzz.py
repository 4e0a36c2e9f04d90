"""Fuzzing the SCL loader: any attribute value or element text of a valid CID replaced by
arbitrary text either loads or fails with an :class:`SclError` naming the origin (never a bare
ValueError, KeyError, ...)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from lxml import etree

from gridbind.iec61850.scl import SclError, load_scl

FIDELITY = Path(__file__).parent / "data" / "fidelity.cid"
_ROOT = etree.fromstring(FIDELITY.read_bytes())
#: Every place a value can go: (element index, attribute name or None for the text).
_SLOTS = [
    (i, attr)
    for i, el in enumerate(_ROOT.iter())
    if isinstance(el.tag, str)
    for attr in [*el.attrib, None]
]
_XML_TEXT = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\ufffe\uffff"),
    max_size=12,
).map(lambda t: "".join(c for c in t if c in "\t\n\r" or ord(c) >= 0x20))
_INTERESTING = st.sampled_from(
    ["", " ", "0", "-1", "99999999999", "1e400", "NaN", "INF", "on", "x" * 70, "a.b", "$", "1:2"]
)


def _slot(tag: str, attr: str | None) -> int:
    """The first slot of ``attr`` (None: the text) of a ``tag`` element."""
    elements = list(_ROOT.iter())
    return next(
        i
        for i, (index, a) in enumerate(_SLOTS)
        if a == attr and etree.QName(elements[index]).localname == tag
    )


def _mutated(slot: int, value: str) -> bytes:
    root = etree.fromstring(FIDELITY.read_bytes())
    index, attr = _SLOTS[slot]
    el = list(root.iter())[index]
    if attr is None:
        el.text = value
    else:
        el.set(attr, value)
    return etree.tostring(root)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(slot=st.integers(0, len(_SLOTS) - 1), value=st.one_of(_INTERESTING, _XML_TEXT))
@example(slot=_slot("SDO", "count"), value="99999999")
@example(slot=_slot("Val", "sGroup"), value="0")
# found: RptEnabled max was unbounded (one control block per instance, memory exhausted)
@example(slot=_slot("RptEnabled", "max"), value="99999999999")
def test_any_single_mutation_loads_or_is_an_scl_error(slot, value) -> None:
    try:
        load_scl(_mutated(slot, value))
    except SclError as exc:
        assert type(exc) is SclError
        assert re.match(r"<scl>:\d+: ", str(exc)), str(exc)


def _nested_types(fan_out: int, depth: int, count: str = "") -> bytes:
    """A DAType tree of ``depth`` levels, each with ``fan_out`` members of the next level."""
    types = (
        "".join(
            f'<DAType id="T{d}">'
            + "".join(
                f'<BDA name="m{i}" bType="Struct" type="T{d + 1}"{count}/>' for i in range(fan_out)
            )
            + "</DAType>"
            for d in range(depth)
        )
        + f'<DAType id="T{depth}"><BDA name="f" bType="FLOAT32"/></DAType>'
    )
    return (
        '<SCL xmlns="http://www.iec.ch/61850/2003/SCL"><IED name="X"><AccessPoint name="A">'
        '<Server><LDevice inst="L"><LN0 lnClass="LLN0" lnType="N" inst=""/></LDevice></Server>'
        '</AccessPoint></IED><DataTypeTemplates><LNodeType id="N" lnClass="LLN0">'
        '<DO name="Big" type="D"/></LNodeType><DOType id="D" cdc="X">'
        '<DA name="v" bType="Struct" type="T0" fc="MX"/></DOType>'
        + types
        + "</DataTypeTemplates></SCL>"
    ).encode()


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    "scl",
    [
        _nested_types(10, 9),  # 10**9 attributes through nesting alone
        _nested_types(2, 9, ' count="1000"'),  # arrays multiplying
    ],
)
def test_template_blowup_is_bounded(scl) -> None:
    with pytest.raises(SclError, match=r"<scl>:\d+: the model would exceed"):
        load_scl(scl)
    assert load_scl(_nested_types(2, 4)).read("XL/LLN0.Big.v.m1.m0.m1.m0.f", "MX") == 0.0
