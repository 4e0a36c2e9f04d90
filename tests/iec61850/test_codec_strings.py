"""String fidelity, one hex case and one decoding per schema-valid form (DECISIONS.md 32, 33).

Every check runs on both decoders/encoders: the codegen fast path and xsdata.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from gridbind.generated.iec61850_8_2 import scsm_8_2 as m
from gridbind.iec61850 import codec
from gridbind.iec61850 import mmsdata as md

pytestmark = pytest.mark.timeout(60)

NS = codec.SCSM_NS
CODECS = {"fast": codec.Codec(fast=True), "xsdata": codec.Codec(fast=False)}
#: C0 controls XML 1.0 cannot carry (TAB, LF and CR it can).
FORBIDDEN_C0 = [chr(c) for c in range(32) if c not in (9, 10, 13)]


def read_response(data: md.Data) -> m.Mmspdu:
    results = m.ListOfAccessResult(access_result=[m.AccessResult(choice=data)])
    service = m.ConfirmedServiceResponse(choice=m.ReadResponse(list_of_access_result=results))
    return m.Mmspdu(choice=m.ConfirmedResponsePdu(invoke_id=1, service=service))


def first_value(pdu: m.Mmspdu):
    return pdu.choice.service.choice.list_of_access_result.access_result[0].choice


@pytest.fixture(params=sorted(CODECS))
def c(request) -> codec.Codec:
    return CODECS[request.param]


@pytest.mark.parametrize("text", ["a\rb", "\r", "line1\r\nline2\r\n", "tab\there\n", " \r \n "])
def test_carriage_return_survives_bytes_round_trip(c, text):
    data = c.encode(read_response(md.mms_string(text)))
    assert b"\r" not in data and data.count(b"&#13;") == text.count("\r")
    assert md.as_str(first_value(c.decode_pdu(data))) == text
    # An independent parser (expat) reads the same value.
    found = ET.fromstring(data).find(f".//{{{NS}}}mMSString")
    assert found is not None and found.text == text


@pytest.mark.parametrize("text", ["a\rb", "x\r\ny"])
def test_carriage_return_survives_element_trees(c, text):
    pdu = read_response(md.mms_string(text))
    assert md.as_str(first_value(c.decode_pdu(c.to_etree(pdu)))) == text
    assert md.as_str(first_value(c.decode_pdu(c.to_element(pdu)))) == text


@pytest.mark.parametrize("char", FORBIDDEN_C0 + ["\ud800", "\ufffe", "\uffff"])
def test_unwritable_characters_are_refused_before_sending(c, char):
    with pytest.raises(md.MmsDataError, match=f"U\\+{ord(char):04X}"):
        md.mms_string(f"ab{char}cd")
    raw = read_response(m.Data(choice=m.Data.MmsString(value=f"ab{char}")))
    with pytest.raises(codec.EncodeError, match=f"U\\+{ord(char):04X} at position 2") as err:
        c.encode(raw)
    assert "access_result[0]" in str(err.value)
    with pytest.raises(codec.EncodeError):
        c.to_etree(raw)


@pytest.mark.parametrize("char", ["\r", "\n", "\t", "\x07", "\x7f", "é"])
def test_visible_string_takes_graphic_ascii_only(c, char):
    with pytest.raises(md.MmsDataError, match="0x20..0x7E"):
        md.visible_string(f"a{char}")
    with pytest.raises(codec.EncodeError):
        c.encode(read_response(m.Data(choice=m.Data.VisibleString(value=f"a{char}"))))


def test_text_problem_names_the_character():
    assert codec.xml_text_problem("any\ttext\r\n\U0001f600") is None
    assert "U+001B at position 3" in codec.xml_text_problem("abc\x1b[0m")


xml_text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="".join(FORBIDDEN_C0))
).filter(lambda t: "\ufffe" not in t and "\uffff" not in t)


@settings(max_examples=150, deadline=None)
@given(text=xml_text)
def test_any_xml_text_round_trips_on_every_path(text):
    pdu = read_response(md.mms_string(text))
    for c in CODECS.values():
        for encoded in (c.encode(pdu), c.to_etree(pdu), c.to_element(pdu)):
            assert md.as_str(first_value(c.decode_pdu(encoded))) == text


# ---- one decoding of every schema-valid form -------------------------------------------------


def names_response(more: str) -> bytes:
    return (
        f'<MMSpdu xmlns="{NS}"><confirmed-ResponsePDU><invokeID>1</invokeID><service>'
        "<getNameList><listOfIdentifier><Identifier>LD0</Identifier></listOfIdentifier>"
        f"{more}</getNameList></service></confirmed-ResponsePDU></MMSpdu>"
    ).encode()


def file_read_response(more: str) -> bytes:
    return (
        f'<MMSpdu xmlns="{NS}"><confirmed-ResponsePDU><invokeID>1</invokeID><service>'
        f"<fileRead><fileData>0A</fileData>{more}</fileRead></service>"
        "</confirmed-ResponsePDU></MMSpdu>"
    ).encode()


def directory_response(more: str) -> bytes:
    return (
        f'<MMSpdu xmlns="{NS}"><confirmed-ResponsePDU><invokeID>1</invokeID><service>'
        f"<fileDirectory><listOfDirectoryEntry/>{more}</fileDirectory></service>"
        "</confirmed-ResponsePDU></MMSpdu>"
    ).encode()


@pytest.mark.parametrize("build", [names_response, file_read_response, directory_response])
@pytest.mark.parametrize(
    "more, expected",
    [
        ("", None),
        ("<moreFollows/>", None),
        ("<moreFollows></moreFollows>", None),
        ("<moreFollows>true</moreFollows>", True),
        ("<moreFollows> 1 </moreFollows>", True),
        ("<moreFollows>false</moreFollows>", False),
        ("<moreFollows>0</moreFollows>", False),
    ],
)
def test_more_follows_decodes_one_way_on_every_path(c, build, more, expected):
    data = build(more)
    for form in (data, etree.fromstring(data), ET.fromstring(data)):
        assert c.decode_pdu(form).choice.service.choice.more_follows is expected


def test_empty_boolean_is_never_written(c):
    service = m.ConfirmedServiceResponse(
        choice=m.ConfirmedServiceResponse.GetNameList(
            list_of_identifier=m.GetNameListResponse.ListOfIdentifier(identifier=["LD0"]),
            more_follows=None,
        )
    )
    data = c.encode(m.Mmspdu(choice=m.ConfirmedResponsePdu(invoke_id=1, service=service)))
    assert b"moreFollows" not in data


HEX_VALUES = [
    md.octet_string(bytes(range(0xA0, 0xB0))),
    md.float32(-1.5e-7),
    md.float64(3.0e300),
    md.utc_time(md.Timestamp.from_octets(bytes.fromhex("5fabcdef0abcde0a"))),
    md.binary_time(md.Timestamp.from_octets(bytes.fromhex("5fabcdef0abcde0a")).to_datetime()),
]


@pytest.mark.parametrize("value", HEX_VALUES, ids=lambda d: type(d.choice).__name__)
def test_hex_is_written_upper_case_and_read_in_either_case(c, value):
    data = c.encode(read_response(value))
    text = re.search(rb"<success><[^>]+>([^<]*)<", data).group(1)
    assert text == text.upper() and re.search(rb"[A-F]", text)
    lower = data.replace(text, text.lower())
    for other in CODECS.values():
        assert first_value(other.decode_pdu(lower)) == value
        assert other.encode(other.decode_pdu(lower)) == data
