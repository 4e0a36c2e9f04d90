"""The fast path agrees with xsdata on every lexical form and falls back where it must."""

from __future__ import annotations

import pytest
from lxml import etree

from gridbind.iec61850 import codec, fastxer, references

pytestmark = pytest.mark.timeout(60)

NS = codec.SCSM_NS
SLOW = codec.Codec(fast=False)


def response(value: str) -> bytes:
    return (
        f'<MMSpdu xmlns="{NS}"><confirmed-ResponsePDU><invokeID> 7 </invokeID><service><read>'
        f"<listOfAccessResult><AccessResult><success>{value}</success></AccessResult>"
        "</listOfAccessResult></read></service></confirmed-ResponsePDU></MMSpdu>"
    ).encode()


def outcome(c: codec.Codec, data: bytes):
    try:
        return c.decode(data)
    except codec.CodecError as exc:
        return type(exc)


@pytest.mark.parametrize(
    "value",
    [
        "<integer> +5 </integer>",
        "<integer>-0</integer>",
        "<unsigned>007</unsigned>",
        "<boolean>1</boolean>",
        "<boolean> false </boolean>",
        "<octet-string> abcd </octet-string>",
        "<octet-string>ab cd</octet-string>",
        "<octet-string></octet-string>",
        "<floating-point>0842f60000</floating-point>",
        "<visible-string>  a  b </visible-string>",
        "<visible-string/>",
        "<mMSString><![CDATA[x<y]]></mMSString>",
        "<mMSString>&#x1F600;&amp;</mMSString>",
        "<bit-string> 01 </bit-string>",
        "<structure/>",
        "<array><Data><array/></Data></array>",
        "<utc-time>0011223344556677</utc-time>",
        "<binary-time>00112233</binary-time>",
    ],
)
def test_lexical_forms_decode_like_xsdata(value):
    data = response(value)
    assert outcome(codec.default_codec(), data) == outcome(SLOW, data)


def test_pdus_outside_the_fast_path_fall_back():
    entry = references.to_variable("IED1LD0/MHAI1.HA.phsAHar(3)", "MX")
    data = (
        f'<MMSpdu xmlns="{NS}"><confirmed-RequestPDU><invokeID>1</invokeID><service><read>'
        "<variableAccessSpecification><listOfVariable><SEQUENCE><variableSpecification><name>"
        "<vmd-specific>x</vmd-specific></name></variableSpecification><alternateAccess><CHOICE>"
        "<unnamed><selectAccess><index>3</index></selectAccess></unnamed></CHOICE>"
        "</alternateAccess></SEQUENCE></listOfVariable></variableAccessSpecification></read>"
        "</service></confirmed-RequestPDU></MMSpdu>"
    ).encode()
    root = etree.fromstring(data)
    assert fastxer.decode_mmspdu(root) is fastxer.NOT_FAST
    pdu = codec.decode_pdu(data)
    assert pdu == SLOW.decode_pdu(data)
    assert fastxer.encode_mmspdu(pdu) is None
    assert codec.encode(pdu) == data
    assert entry.alternate_access is not None


def test_fast_path_is_used_for_hot_pdus():
    data = response("<integer>5</integer>")
    root = etree.fromstring(data)
    decoded = fastxer.decode_mmspdu(root)
    assert decoded is not fastxer.NOT_FAST
    element = fastxer.encode_mmspdu(decoded)
    assert etree.tostring(element) == data.replace(b"> 7 <", b">7<")


def test_fast_path_counts_data_nesting():
    deep = response("<structure><Data>" * 40 + "<integer>1</integer>" + "</Data></structure>" * 40)
    with pytest.raises(codec.LimitExceeded):
        fastxer.decode_mmspdu(etree.fromstring(deep), max_depth=64)
    assert fastxer.decode_mmspdu(etree.fromstring(deep), max_depth=200) is not fastxer.NOT_FAST


def test_unencodable_text_is_an_encode_error():
    pdu = codec.decode_pdu(response("<visible-string>ok</visible-string>"))
    pdu.choice.service.choice.list_of_access_result.access_result[0].choice.choice.value = "\x00"
    with pytest.raises(codec.EncodeError):
        codec.encode(pdu)
