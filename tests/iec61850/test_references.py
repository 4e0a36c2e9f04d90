"""ObjectReference <-> ObjectName: `$` flattening in the 8-1 FC order, limits, arrays."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridbind.generated.iec61850_8_2 import scsm_8_2 as m
from gridbind.iec61850 import codec
from gridbind.iec61850 import references as r

pytestmark = pytest.mark.timeout(60)


def dom(name: m.ObjectName) -> tuple[str, str]:
    return name.choice.domain_id, name.choice.item_id


def test_fcda_fcd_and_ln():
    assert dom(r.to_object_name("IED1LD0/XCBR1.Pos.stVal", "ST")) == (
        "IED1LD0",
        "XCBR1$ST$Pos$stVal",
    )
    assert dom(r.to_object_name("IED1LD0/XCBR1.Pos", "ST")) == ("IED1LD0", "XCBR1$ST$Pos")
    assert dom(r.to_object_name("IED1LD0/LLN0")) == ("IED1LD0", "LLN0")
    assert dom(r.to_object_name("IED1LD0/LLN0", "BR")) == ("IED1LD0", "LLN0$BR")
    assert r.from_object_name(r.to_object_name("IED1LD0/CSWI1.Pos.Oper.ctlVal", "CO")) == (
        "IED1LD0/CSWI1.Pos.Oper.ctlVal",
        "CO",
    )
    assert r.from_object_name(r.to_object_name("IED1LD0/LLN0")) == ("IED1LD0/LLN0", None)
    assert r.from_object_name(r.to_object_name("IED1LD0/LLN0", "SP")) == ("IED1LD0/LLN0", "SP")


def test_fc_order_and_unmapped_fc():
    assert r.FC_ORDER[:11] == ("MX", "ST", "CO", "CF", "DC", "SP", "SG", "RP", "LG", "BR", "GO")
    assert sorted(["ST", "BR", "MX", "CF"], key=r.fc_sort_key) == ["MX", "ST", "CF", "BR"]
    with pytest.raises(r.ReferenceError_, match="XX"):
        r.to_object_name("LD/LN0.Mod", "XX")
    with pytest.raises(r.ReferenceError_):
        r.to_object_name("LD/LN0.Mod", "ZZ")
    with pytest.raises(r.ReferenceError_, match="XX"):
        r.from_object_name(
            m.ObjectName(choice=m.ObjectName.DomainSpecific(domain_id="LD", item_id="LN0$XX$a"))
        )


def test_limits():
    r.to_object_name("L" * 64 + "/LLN0")
    with pytest.raises(r.ReferenceError_, match="64"):
        r.to_object_name("L" * 65 + "/LLN0")
    # itemId over 64 characters although the reference is short enough.
    long_da = "LD/MMXU1." + ".".join(["abcdefghij"] * 6)
    with pytest.raises(r.ReferenceError_, match="itemId"):
        r.to_object_name(long_da, "MX")
    with pytest.raises(r.ReferenceError_, match="129"):
        r.parse_reference("LD/" + "a" * 127)
    r.parse_reference("LD/" + "a" * 126)  # exactly 129


@pytest.mark.parametrize(
    "bad", ["", "LLN0", "/LLN0", "LD/", "LD/LN0..x", "LD/LN0.$x", "L D/LN0", "LD/LN0.x(a)"]
)
def test_syntax_errors(bad):
    with pytest.raises(r.ReferenceError_):
        r.parse_reference(bad)


def test_fc_required_below_ln_and_no_index_in_object_name():
    with pytest.raises(r.ReferenceError_, match="functional constraint"):
        r.to_object_name("LD/XCBR1.Pos")
    with pytest.raises(r.ReferenceError_, match="to_variable"):
        r.to_object_name("LD/MHAI1.HA.phsAHar(3)", "MX")


def test_array_element_uses_alternate_access_and_survives_the_wire():
    entry = r.to_variable("IED1LD0/MHAI1.HA.phsAHar(3).cVal.mag", "MX")
    assert dom(entry.variable_specification.name) == ("IED1LD0", "MHAI1$MX$HA$phsAHar")
    assert "$" not in repr(entry.alternate_access)
    pdu = m.Mmspdu(
        choice=m.ConfirmedRequestPdu(
            invoke_id=3,
            service=m.ConfirmedServiceRequest(
                choice=m.ReadRequest(
                    variable_access_specification=m.VariableAccessSpecification(
                        choice=m.VariableDefs(sequence=[entry])
                    )
                )
            ),
        )
    )
    data = codec.encode(pdu)
    assert b"<index>3</index>" in data and b"<component>cVal</component>" in data
    back = codec.decode_pdu(data).choice.service.choice.variable_access_specification
    assert r.from_variable(back.choice.sequence[0]) == (
        "IED1LD0/MHAI1.HA.phsAHar(3).cVal.mag",
        "MX",
    )
    plain = r.to_variable("IED1LD0/XCBR1.Pos", "ST")
    assert plain.alternate_access is None
    assert r.from_variable(plain) == ("IED1LD0/XCBR1.Pos", "ST")


def test_data_sets_and_logs():
    assert dom(r.list_name("IED1LD0/LLN0.DS1")) == ("IED1LD0", "LLN0$DS1")
    assert r.list_reference(r.list_name("IED1LD0/LLN0.Log1")) == "IED1LD0/LLN0.Log1"
    assert isinstance(r.list_name("@temp").choice, m.ObjectName.AaSpecific)
    assert r.list_reference(r.list_name("@temp")) == "@temp"
    with pytest.raises(r.ReferenceError_):
        r.list_name("IED1LD0/LLN0.DS1.x")
    with pytest.raises(r.ReferenceError_):
        r.list_reference(m.ObjectName(choice=m.ObjectName.VmdSpecific(value="RPT")))


names = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,7}", fullmatch=True)


@settings(max_examples=150, deadline=None)
@given(
    st.from_regex(r"[A-Za-z0-9_]{1,20}", fullmatch=True),
    names,
    st.lists(names, max_size=4),
    st.sampled_from(r.FC_ORDER),
)
def test_round_trip(ld, ln, path, fc):
    reference = "/".join([ld, ".".join([ln, *path])])
    name = r.to_object_name(reference, fc)
    assert r.from_object_name(name) == (reference, fc)


def test_fc_suffix_syntax():
    assert r.split_fc("IED1LD0/XCBR1.Pos.stVal[ST]") == ("IED1LD0/XCBR1.Pos.stVal", "ST")
    assert r.split_fc("IED1LD0/XCBR1") == ("IED1LD0/XCBR1", None)
    name = r.to_object_name("IED1LD0/XCBR1.Pos.stVal[ST]")
    assert dom(name) == ("IED1LD0", "XCBR1$ST$Pos$stVal")
    assert r.with_fc(*r.from_object_name(name)) == "IED1LD0/XCBR1.Pos.stVal[ST]"
    entry = r.to_variable("IED1LD0/MHAI1.HA.phsAHar(1)[MX]")
    assert r.with_fc(*r.from_variable(entry)) == "IED1LD0/MHAI1.HA.phsAHar(1)[MX]"
    with pytest.raises(r.ReferenceError_, match="XX"):
        r.to_object_name("IED1LD0/XCBR1.Pos[XX]")
    with pytest.raises(r.ReferenceError_, match="functional constraint"):
        r.to_variable("IED1LD0/XCBR1.Pos")
