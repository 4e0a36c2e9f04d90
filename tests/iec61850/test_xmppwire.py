"""Payload stanzas carry the codec's bytes (xmppwire): what goes on the wire is the stanza
slixmpp would have written, XEP-0198 still counts it, and a resend (no filters) carries the
payload too. No server needed."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
import slixmpp
from slixmpp.xmlstream.tostring import tostring

from gridbind.generated.iec61850_8_2 import scsm_8_2 as m
from gridbind.iec61850 import codec, xmppwire
from gridbind.iec61850.e2e_certs import make_ca
from gridbind.iec61850.envelope import ClearContext
from gridbind.iec61850.xmpp import IecXmpp, XmppSettings


def _same(a: ET.Element, b: ET.Element) -> bool:
    return (
        a.tag == b.tag
        and a.attrib == b.attrib
        and (a.text or "") == (b.text or "")
        and len(a) == len(b)
        and all(_same(x, y) for x, y in zip(a, b, strict=True))
    )


@pytest.fixture()
def client(tmp_path):
    from cryptography.hazmat.primitives.serialization import Encoding

    ca = tmp_path / "ca.pem"
    ca.write_bytes(make_ca().certificate.public_bytes(Encoding.PEM))
    xmpp = IecXmpp(XmppSettings(jid="a@example.test", ca_file=ca), lambda item: None)
    return xmpp._build()


def test_wire_iq_is_the_stanza_with_its_payload(client) -> None:
    pdu = m.Mmspdu(choice=m.Mmspdu.ConcludeRequestPdu())
    payload = codec.encode(ClearContext("b@x/IEC", "7").seal(pdu, 0.0))
    to = 'b@x/I"E<C>&'
    stanza = xmppwire.iq(client, "get", to, "id1", payload)
    assert isinstance(stanza, slixmpp.Iq)  # XEP-0198 counts it
    assert xmppwire.serialise(stanza) == stanza.wire
    sent = ET.fromstring(stanza.wire.replace(b"<iq ", b'<iq xmlns="jabber:client" ', 1))
    assert sent.attrib == {"type": "get", "to": to, "id": "id1"}
    assert _same(sent[0], ET.fromstring(payload)) and len(sent) == 1
    # a resend goes around the filters: the element then holds the payload, once
    client.send(stanza, use_filters=False)
    client.send(stanza, use_filters=False)
    assert _same(stanza.xml, sent)
    assert _same(ET.fromstring(tostring(stanza.xml)), sent)
    # other stanzas pass the filter untouched
    plain = client.make_iq_get(ito="b@x/IEC")
    assert xmppwire.serialise(plain) is plain


def test_wire_message_and_empty_result(client) -> None:
    report = codec.encode(m.Mmspdu(choice=m.Mmspdu.ConcludeRequestPdu()))
    msg = xmppwire.message(client, "b@x/IEC", report)
    assert isinstance(msg, slixmpp.Message)
    assert msg.wire == b'<message type="normal" to="b@x/IEC">' + report + b"</message>"
    # a carriage return never travels raw (the receiver would read a line feed)
    assert b"\r" not in xmppwire.iq(client, "result", "b@x/I\rEC", "1", None).wire
    # nor does a tab, line feed or carriage return in an attribute (XML attribute-value
    # normalisation would turn it raw into a space): an echoed id comes back as it was sent
    odd_id = 'a\tb\nc\rd"e<f>&g'
    echoed = xmppwire.iq(client, "result", "b@x/I\tEC", odd_id, None).wire
    assert not {b"\t", b"\n", b"\r"} & {bytes([c]) for c in echoed}
    back = ET.fromstring(echoed)
    assert back.get("id") == odd_id and back.get("to") == "b@x/I\tEC"
    empty = xmppwire.iq(client, "result", "b@x/IEC", "", None)
    assert empty.wire == b'<iq type="result" to="b@x/IEC"/>'
    xmppwire.materialise(empty)
    assert len(empty.xml) == 0


def test_payload_bytes_of_an_association_context_are_the_codec_s() -> None:
    from gridbind.iec61850.envelope import PP_8_2
    from gridbind.iec61850.stanza import payload_bytes

    gate = codec.default_codec()
    cancel = m.Mmspdu(choice=m.Mmspdu.CancelRequestPdu(value=7))
    for pp in (PP_8_2, None):
        for asso in ("3", "3:4", "3"):  # the second "3" comes from the cache
            env = ClearContext("b@x/IEC", asso).seal(cancel, 0.0)
            env.pp = pp
            data = payload_bytes(env, gate)
            assert data == gate.encode(env)  # the gate's bytes, namespace prefix and all
            assert gate.decode(data) == env
    # what the schema refuses is refused as before: a bad assoID, a bad PDU inside
    with pytest.raises(codec.EncodeError):
        payload_bytes(ClearContext("b@x/IEC", "x1").seal(cancel, 0.0), gate)
    bad = m.Mmspdu(choice=m.Mmspdu.ConcludeRequestPdu())
    bad.choice = m.Mmspdu.CancelRequestPdu(value=-1)
    with pytest.raises(codec.EncodeError):
        payload_bytes(ClearContext("b@x/IEC", "3").seal(bad, 0.0), gate)
    # a bare MMSpdu is the codec's encoding
    assert payload_bytes(cancel, gate) == gate.encode(cancel)
