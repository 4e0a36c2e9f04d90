"""Property-based round trips of arbitrary Data through both codec paths."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from gridbind.generated.iec61850_8_2 import scsm_8_2 as m
from gridbind.iec61850 import codec, mmsdata

pytestmark = pytest.mark.timeout(120)

SLOW = codec.Codec(fast=False)
SCHEMA = codec.default_codec().schema

# XML 1.0 cannot carry most control characters; XER strings are XML text.
xml_text = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), whitelist_characters="\t\n"),
    max_size=20,
)
visible = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20)
bits = st.text(st.sampled_from("01"), min_size=1, max_size=40)

leaves = st.one_of(
    st.booleans().map(mmsdata.boolean),
    st.integers().map(mmsdata.integer),
    st.integers(min_value=0).map(mmsdata.unsigned),
    st.floats(width=32).map(mmsdata.float32),
    st.floats().map(mmsdata.float64),
    bits.map(mmsdata.bit_string),
    st.binary(max_size=16).map(mmsdata.octet_string),
    visible.map(mmsdata.visible_string),
    xml_text.map(mmsdata.mms_string),
    st.binary(min_size=8, max_size=8).map(lambda b: m.Data(choice=m.Data.UtcTime(value=b))),
    st.sampled_from([4, 6]).flatmap(
        lambda n: st.binary(min_size=n, max_size=n).map(
            lambda b: m.Data(choice=m.Data.BinaryTime(value=b))
        )
    ),
)
data_values = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=5).map(mmsdata.structure),
        st.lists(children, max_size=5).map(mmsdata.array),
    ),
    max_leaves=25,
)


def report(values: list[m.Data]) -> m.Mmspdu:
    return m.Mmspdu(
        choice=m.UnconfirmedPdu(
            service=m.UnconfirmedService(
                information_report=m.InformationReport(
                    variable_access_specification=m.VariableAccessSpecification(
                        choice=m.ObjectName(choice=m.ObjectName.VmdSpecific(value="RPT"))
                    ),
                    list_of_access_result=m.ListOfAccessResult(
                        access_result=[m.AccessResult(choice=v) for v in values]
                    ),
                )
            )
        )
    )


def write(values: list[m.Data]) -> m.Mmspdu:
    name = m.ObjectName(choice=m.ObjectName.DomainSpecific(domain_id="LD0", item_id="GGIO1"))
    return m.Mmspdu(
        choice=m.ConfirmedRequestPdu(
            invoke_id=1,
            service=m.ConfirmedServiceRequest(
                choice=m.WriteRequest(
                    variable_access_specification=m.VariableAccessSpecification(
                        choice=m.VariableDefs(
                            sequence=[
                                m.VariableDefs.Sequence(
                                    variable_specification=m.VariableSpecification(name=name)
                                )
                            ]
                        )
                    ),
                    list_of_data=m.ListOfData(data=values),
                )
            ),
        )
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(data_values, min_size=1, max_size=4), st.sampled_from([report, write]))
def test_arbitrary_data_round_trips(values, build):
    pdu = build(values)
    data = codec.encode(pdu)
    assert SCHEMA.validate(etree.fromstring(data))
    # Fast and xsdata encoders agree byte for byte, and both decoders rebuild the same object.
    assert SLOW.encode(pdu) == data
    decoded = codec.decode(data)
    assert SLOW.decode(data) == decoded
    assert codec.encode(decoded) == data
    # Float NaN payloads compare by octets; every other value compares equal directly.
    assert decoded == pdu


@settings(max_examples=60, deadline=None)
@given(data_values)
def test_to_python_only_refuses_with_mms_data_error(value):
    # Schema-valid Data can still be semantically invalid (TimeAccuracy 25..30, a 5-octet float
    # with width 11): to_python says so with MmsDataError, never anything else.
    try:
        mmsdata.to_python(value)
    except mmsdata.MmsDataError:
        pass
