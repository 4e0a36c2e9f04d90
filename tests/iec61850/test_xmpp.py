"""The slixmpp adapter against a real Prosody: TLS/SASL, iq/message payloads, errors, presence,
link loss and XEP-0198 resumption."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET

import pytest

from gridbind.iec61850.prosody import make_test_pki
from gridbind.iec61850.xmpp import (
    PAYLOAD_NS,
    IecXmpp,
    Inbound,
    StanzaError,
    XmppConnectError,
    XmppSettings,
    parse_address,
    stanza_for_pdu,
)


def settings(prosody, account, **kw) -> XmppSettings:
    base = dict(
        jid=account.jid,
        password=account.password,
        ca_file=prosody.ca_cert,
        host="127.0.0.1",
        port=prosody.c2s_port,
        sasl_mechanism="PLAIN",
        connect_timeout=8,
        request_timeout=5,
    )
    base.update(kw)
    return XmppSettings(**base)


def payload(tag: str, text: str = "") -> ET.Element:
    el = ET.Element(f"{{{PAYLOAD_NS}}}{tag}")
    el.text = text
    return el


class Echo:
    """An endpoint that echoes iq payloads and records messages."""

    def __init__(self) -> None:
        self.messages: asyncio.Queue[Inbound] = asyncio.Queue()
        self.unavailable: asyncio.Queue[str] = asyncio.Queue()
        self.link_lost = asyncio.Event()
        self.xmpp: IecXmpp | None = None

    def on_inbound(self, item: Inbound) -> None:
        if item.kind == "message":
            self.messages.put_nowait(item)
            return
        if item.payload.tag.endswith("boom"):
            raise RuntimeError("handler bug")
        if item.payload.tag.endswith("refuse"):
            self.xmpp.reply_error(item, "bad-request", "refused")
            return
        self.xmpp.reply(item, payload("echo", f"{item.type}:{item.payload.text}"))

    def build(self, s: XmppSettings) -> IecXmpp:
        self.xmpp = IecXmpp(
            s,
            self.on_inbound,
            on_peer_unavailable=self.unavailable.put_nowait,
            on_link_lost=self.link_lost.set,
        )
        return self.xmpp


def test_table_d1_mapping() -> None:
    assert stanza_for_pdu("confirmed-RequestPDU", "read") == ("iq", "get")
    assert stanza_for_pdu("confirmed-RequestPDU", "getNameList") == ("iq", "get")
    assert stanza_for_pdu("confirmed-RequestPDU", "write") == ("iq", "set")
    assert stanza_for_pdu("confirmed-RequestPDU", "fileDelete") == ("iq", "set")
    assert stanza_for_pdu("confirmed-ErrorPDU") == ("iq", "result")
    assert stanza_for_pdu("conclude-RequestPDU") == ("iq", "set")
    assert stanza_for_pdu("unconfirmed-PDU") == ("message", "normal")
    assert stanza_for_pdu("rejectPDU") == ("message", "normal")
    with pytest.raises(ValueError):
        stanza_for_pdu("confirmed-RequestPDU", "status")
    with pytest.raises(ValueError):
        stanza_for_pdu("nonsense")
    assert parse_address("127.0.0.1:5222") == ("127.0.0.1", 5222)
    assert parse_address("[::1]:5223") == ("::1", 5223)
    with pytest.raises(ValueError):
        parse_address("localhost")


async def _pair(prosody, xmpp_account, **kw):
    a, b = Echo(), Echo()
    xa = a.build(settings(prosody, xmpp_account("a"), **kw))
    xb = b.build(settings(prosody, xmpp_account("b"), **kw))
    await asyncio.gather(xa.start(), xb.start())
    return a, b


def run(coro, timeout=30):
    return asyncio.run(asyncio.wait_for(coro, timeout))


@pytest.mark.timeout(40)
@pytest.mark.parametrize("direct_tls,mech", [(False, "PLAIN"), (True, "SCRAM-SHA-1")])
def test_iq_and_message_roundtrip(prosody, xmpp_account, direct_tls, mech) -> None:
    async def main() -> None:
        port = prosody.c2s_tls_port if direct_tls else prosody.c2s_port
        a, b = await _pair(
            prosody, xmpp_account, port=port, direct_tls=direct_tls, sasl_mechanism=mech
        )
        try:
            assert a.xmpp.full_jid.endswith("/IEC")
            answer = await a.xmpp.request(b.xmpp.full_jid, "get", payload("hello", "1"))
            assert answer.tag == f"{{{PAYLOAD_NS}}}echo" and answer.text == "get:1"
            answer = await a.xmpp.request(b.xmpp.full_jid, "set", payload("hello", "2"))
            assert answer.text == "set:2"
            with pytest.raises(StanzaError) as err:
                await a.xmpp.request(b.xmpp.full_jid, "get", payload("refuse"))
            assert err.value.condition == "bad-request"
            # A handler that raises still answers (internal-server-error), and keeps serving.
            with pytest.raises(StanzaError) as err:
                await a.xmpp.request(b.xmpp.full_jid, "get", payload("boom"))
            assert err.value.condition == "internal-server-error"
            assert (await a.xmpp.request(b.xmpp.full_jid, "get", payload("x", "3"))).text == "get:3"
            a.xmpp.send_message(b.xmpp.full_jid, payload("report", "r"))
            msg = await asyncio.wait_for(b.messages.get(), 5)
            assert msg.type == "normal" and msg.sender == a.xmpp.full_jid
            # To the bare JID, Prosody answers itself (service-unavailable): mapped to StanzaError.
            with pytest.raises(StanzaError):
                await a.xmpp.request(b.xmpp.jid.bare, "get", payload("hello"))
            assert await a.xmpp.ping() < 5
        finally:
            await asyncio.gather(a.xmpp.close(), b.xmpp.close())

    run(main())


@pytest.mark.timeout(30)
def test_untrusted_ca_is_an_error_not_a_hang(prosody, xmpp_account, tmp_path) -> None:
    other = make_test_pki(tmp_path, prosody.domain)
    account = xmpp_account("ca")

    async def main() -> None:
        for direct, port in ((False, prosody.c2s_port), (True, prosody.c2s_tls_port)):
            s = settings(prosody, account, ca_file=other.ca_cert, port=port, direct_tls=direct)
            with pytest.raises(XmppConnectError, match="TLS"):
                await IecXmpp(s, lambda item: None).start()

    run(main(), 25)


@pytest.mark.timeout(30)
def test_wrong_password_and_missing_ca(prosody, xmpp_account, tmp_path) -> None:
    account = xmpp_account("pw")

    async def main() -> None:
        s = settings(prosody, account, password="wrong")
        with pytest.raises(XmppConnectError, match="authentication"):
            await IecXmpp(s, lambda item: None).start()
        s = settings(prosody, account, sasl_mechanism="EXTERNAL")
        with pytest.raises(XmppConnectError, match="authentication"):
            await IecXmpp(s, lambda item: None).start()

    run(main(), 25)
    with pytest.raises(XmppConnectError, match="CA"):
        IecXmpp(settings(prosody, account, ca_file=tmp_path / "none.pem"), lambda item: None)
    with pytest.raises(XmppConnectError, match="CA"):
        IecXmpp(settings(prosody, account, ca_file=None), lambda item: None)


@pytest.mark.timeout(30)
def test_connection_refused_is_an_error(prosody, xmpp_account) -> None:
    account = xmpp_account("refused")

    async def main() -> None:
        s = settings(prosody, account, port=1, connect_timeout=3)
        with pytest.raises(XmppConnectError):
            await IecXmpp(s, lambda item: None).start()

    run(main(), 20)


@pytest.mark.timeout(40)
def test_presence_unavailable_reaches_tracked_peer(prosody, xmpp_account) -> None:
    async def main() -> None:
        a, b = await _pair(prosody, xmpp_account, stream_management=False)
        try:
            a.xmpp.track_peer(b.xmpp.full_jid)
            b.xmpp.track_peer(a.xmpp.full_jid)
            await a.xmpp.request(b.xmpp.full_jid, "get", payload("sync"))
            b_jid = b.xmpp.full_jid
            b.xmpp.drop_link()  # no XEP-0198: Prosody tells a at once
            assert await asyncio.wait_for(a.unavailable.get(), 5) == b_jid
            await asyncio.wait_for(b.link_lost.wait(), 5)
        finally:
            await asyncio.gather(a.xmpp.close(), b.xmpp.close())

    run(main())


@pytest.mark.timeout(40)
def test_xep0198_resumption_keeps_the_session(prosody, xmpp_account) -> None:
    async def main() -> None:
        a, b = await _pair(prosody, xmpp_account)
        try:
            a.xmpp.track_peer(b.xmpp.full_jid)
            b.xmpp.track_peer(a.xmpp.full_jid)
            await a.xmpp.request(b.xmpp.full_jid, "get", payload("sync"))
            resumed = asyncio.Event()
            b.xmpp._on_resumed = resumed.set
            b.xmpp.drop_link()
            await asyncio.wait_for(resumed.wait(), 10)
            answer = await a.xmpp.request(b.xmpp.full_jid, "get", payload("after", "r"))
            assert answer.text == "get:r"
            assert not b.link_lost.is_set()
            assert a.unavailable.empty()
        finally:
            await asyncio.gather(a.xmpp.close(), b.xmpp.close())

    run(main())


def test_stanza_plugins_wrap_the_payload() -> None:
    from slixmpp.stanza import Iq

    from gridbind.iec61850.xmpp import ASSOC_NS, _association_of, _attach, _first_payload

    iq = Iq()
    _attach(iq, ET.Element(f"{{{PAYLOAD_NS}}}MMSpdu"), "42")
    assert iq["iec_association"]["id"] == "42"
    assert iq.xml.find(f"{{{ASSOC_NS}}}association/{{{PAYLOAD_NS}}}MMSpdu") is not None
    assert len(iq.xml) == 1  # RFC 6120: one child per iq
    assert _association_of(iq.xml) == "42"
    assert _first_payload(iq.xml).tag == f"{{{PAYLOAD_NS}}}MMSpdu"
    bare = Iq()
    _attach(bare, ET.Element(f"{{{PAYLOAD_NS}}}MMSpdu"), None)
    assert _association_of(bare.xml) is None and _first_payload(bare.xml) is not None


@pytest.mark.timeout(30)
def test_xep0199_keepalive_pings(prosody, xmpp_account) -> None:
    async def main() -> None:
        a = Echo()
        xa = a.build(settings(prosody, xmpp_account("ping"), ping_interval=0.2))
        plugin_pings = []
        await xa.start()
        try:
            plugin = xa._client.plugin["xep_0199"]
            original = plugin.ping

            async def counting(*args, **kw):
                plugin_pings.append(kw.get("jid") or (args[0] if args else None))
                return await original(*args, **kw)

            plugin.ping = counting
            await asyncio.sleep(1.0)
            assert len(plugin_pings) >= 2 and xa.connected
        finally:
            await xa.close()

    run(main())


@pytest.mark.timeout(30)
def test_srv_lookup_without_records_is_a_clear_error(prosody, xmpp_account) -> None:
    account = xmpp_account("srv")

    async def main() -> None:
        # No host/port: slixmpp looks up _xmpp-client._tcp.test.local (and the A record);
        # neither exists here, which must end in an error, not a retry loop.
        s = settings(prosody, account, host=None, port=None, connect_timeout=5)
        with pytest.raises(XmppConnectError, match="DNS"):
            await IecXmpp(s, lambda item: None).start()

    run(main(), 20)
