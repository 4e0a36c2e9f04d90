"""The fast path agrees with xsdata on every lexical form and falls back where it must."""

from __future__ import annotations

import pytest
from lxml import etree

from gridbind.iec61850 import codec, fastxer

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


ARRAY_READ = (
    f'<MMSpdu xmlns="{NS}"><confirmed-RequestPDU><invokeID>1</invokeID><service><read>'
    "<variableAccessSpecification><listOfVariable><SEQUENCE><variableSpecification><name>"
    "<vmd-specific>x</vmd-specific></name></variableSpecification><alternateAccess><CHOICE>"
    "<unnamed><selectAccess><index>3</index></selectAccess></unnamed></CHOICE>"
    "</alternateAccess></SEQUENCE></listOfVariable></variableAccessSpecification></read>"
    "</service></confirmed-RequestPDU></MMSpdu>"
).encode()


def test_every_pdu_is_covered_by_the_emitted_code():
    # alternateAccess, E2E envelopes...: the emitted module has a decoder for every class.
    pdu = fastxer.decode(etree.fromstring(ARRAY_READ))
    assert pdu is not fastxer.NOT_FAST and pdu == SLOW.decode_pdu(ARRAY_READ)
    assert etree.tostring(fastxer.encode_mmspdu(pdu)) == ARRAY_READ


def test_codec_falls_back_to_xsdata_when_not_covered(monkeypatch):
    from gridbind.generated.iec61850_8_2 import fastxer as emitted

    def not_covered(*args, **kwargs):
        raise emitted.NotCovered("test")

    monkeypatch.setattr(emitted, "decode", not_covered)
    monkeypatch.setattr(emitted, "encode", not_covered)
    assert fastxer.decode(etree.fromstring(ARRAY_READ)) is fastxer.NOT_FAST
    pdu = codec.decode_pdu(ARRAY_READ)
    assert pdu == SLOW.decode_pdu(ARRAY_READ)
    assert codec.encode(pdu) == ARRAY_READ


def test_objects_the_fast_encoder_cannot_write_fall_back_and_fail_cleanly():
    pdu = codec.decode_pdu(response("<integer>1</integer>"))
    result = pdu.choice.service.choice.list_of_access_result.access_result[0]
    result.choice.choice = 1.5  # not a Data alternative
    assert fastxer.encode_mmspdu(pdu) is None
    with pytest.raises(codec.EncodeError):
        codec.encode(pdu)


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
