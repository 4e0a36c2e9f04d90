"""The XMPP adapter's CR escaping applies to 8-2 payload stanzas only; ``IecXmpp.send_raw``
sends exactly what it is given (the hostile-input tests depend on it). No server needed."""

from __future__ import annotations

import slixmpp

from gridbind.iec61850.e2e_certs import make_ca
from gridbind.iec61850.stanza import PAYLOAD_NS
from gridbind.iec61850.xmpp import IecXmpp, XmppSettings


def test_cr_escaping_is_for_payload_stanzas_and_send_raw_is_raw(tmp_path, monkeypatch):
    from cryptography.hazmat.primitives.serialization import Encoding

    ca = tmp_path / "ca.pem"
    ca.write_bytes(make_ca().certificate.public_bytes(Encoding.PEM))
    sent: list[str] = []
    monkeypatch.setattr(slixmpp.ClientXMPP, "send_raw", lambda self, data: sent.append(data))
    xmpp = IecXmpp(XmppSettings(jid="a@example.test", ca_file=ca), lambda item: None)
    xmpp._client = xmpp._build()
    payload = f'<iq><MMSpdu xmlns="{PAYLOAD_NS}"><v>a\rb</v></MMSpdu></iq>'
    xmpp._client.send_raw(payload)  # the path slixmpp's send queue takes
    xmpp._client.send_raw("<message><body>a\rb</body></message>")
    xmpp.send_raw(payload)
    assert sent == [
        payload.replace("\r", "&#13;"),
        "<message><body>a\rb</body></message>",
        payload,
    ]


def test_error_text_keeps_only_xml_characters():
    from gridbind.iec61850.stanza import error_text

    assert error_text("a\x00\x1b\r\ud800\ufffe\U0001f600\tb\n") == "a?????\U0001f600\tb\n"
    assert len(error_text("x" * 900)) == 500
