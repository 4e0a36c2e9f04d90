"""The slixmpp adapter against a real Prosody: TLS/SASL, iq/message payloads, errors, presence,
link loss and XEP-0198 resumption."""

from __future__ import annotations

import asyncio
import itertools
import xml.etree.ElementTree as ET

import pytest

from gridbind.generated.iec61850_8_2 import scsm_8_2 as m
from gridbind.iec61850 import codec
from gridbind.iec61850.envelope import ClearContext, EnvelopeError
from gridbind.iec61850.prosody import make_test_pki
from gridbind.iec61850.stanza import Received, decode_payload, payload_element, unwrap
from gridbind.iec61850.xmpp import (
    PAYLOAD_NS,
    IecXmpp,
    StanzaError,
    XmppConnectError,
    XmppSettings,
    parse_address,
    stanza_for_pdu,
)

from iec_testkit import settings as account_settings
from iec_testkit import until

#: cancel-RequestPDU values the echo treats specially.
REFUSE, BOOM = 13, 666


def settings(prosody, account, **kw) -> XmppSettings:
    return account_settings(prosody, account, **{"request_timeout": 5, **kw})


def cancel(n: int) -> m.Mmspdu:
    """A small typed payload that carries a number (cancel-RequestPDU)."""
    return m.Mmspdu(choice=m.Mmspdu.CancelRequestPdu(value=n))


def echoed(answer: Received) -> int:
    return answer.payload.choice.value


class Echo:
    """An endpoint that answers cancel-RequestPDU n with cancel-ResponsePDU n (+1000 for iq set)
    and records messages."""

    def __init__(self) -> None:
        self.messages: asyncio.Queue[Received] = asyncio.Queue()
        self.unavailable: asyncio.Queue[str] = asyncio.Queue()
        self.link_lost = asyncio.Event()
        self.xmpp: IecXmpp | None = None

    def on_inbound(self, item: Received) -> None:
        if item.kind == "message":
            self.messages.put_nowait(item)
            return
        if item.error is not None:
            self.xmpp.reply_error(item, "bad-request", str(item.error))
            return
        payload = item.payload
        if not isinstance(payload, m.Mmspdu):  # an AssociationContext: answered in it
            layer = ClearContext(item.sender, payload.asso_id)
            layer.open(payload, 0.0)
            answer = m.Mmspdu(choice=m.Mmspdu.ConcludeResponsePdu())
            self.xmpp.reply(item, layer.seal(answer, 0.0))
            return
        n = payload.choice.value
        if n == BOOM:
            raise RuntimeError("handler bug")
        if n == REFUSE:
            self.xmpp.reply_error(item, "bad-request", "refused")
            return
        value = n + (1000 if item.type == "set" else 0)
        self.xmpp.reply(item, m.Mmspdu(choice=m.Mmspdu.CancelResponsePdu(value=value)))

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


_EJABBERD_USERS = itertools.count(1)


@pytest.fixture(scope="module")
def ejabberd_node():
    """One private ejabberd node for the server-independent transport tests."""
    from test_ejabberd import require

    from ejabberd_nodes import Ejabberd, ejabberd_available

    require(ejabberd_available(), "ejabberd (apt-get install ejabberd)")
    with Ejabberd(domain="test.local") as node:
        yield node


@pytest.fixture(params=["prosody", pytest.param("ejabberd", marks=pytest.mark.ejabberd)])
def xmpp_server(request):
    """(server, account factory) for Prosody and for ejabberd: the same transport behaviour."""
    if request.param == "prosody":
        return request.getfixturevalue("prosody"), request.getfixturevalue("xmpp_account")
    from test_ejabberd import PASSWORD, Account

    node = request.getfixturevalue("ejabberd_node")

    def make(prefix: str = "user") -> Account:
        return Account(node.register(f"{prefix}-{next(_EJABBERD_USERS)}", PASSWORD), PASSWORD)

    return node, make


def run(coro, timeout=30):
    return asyncio.run(asyncio.wait_for(coro, timeout))


@pytest.mark.timeout(40)
@pytest.mark.parametrize("direct_tls,mech", [(False, "PLAIN"), (True, "SCRAM-SHA-1")])
def test_iq_and_message_roundtrip(xmpp_server, direct_tls, mech) -> None:
    prosody, xmpp_account = xmpp_server

    async def main() -> None:
        port = prosody.c2s_tls_port if direct_tls else prosody.c2s_port
        a, b = await _pair(
            prosody, xmpp_account, port=port, direct_tls=direct_tls, sasl_mechanism=mech
        )
        try:
            assert a.xmpp.full_jid.endswith("/IEC")
            answer = await a.xmpp.request(b.xmpp.full_jid, "get", cancel(1))
            assert isinstance(answer.payload.choice, m.Mmspdu.CancelResponsePdu)
            assert echoed(answer) == 1 and answer.sender == b.xmpp.full_jid
            assert echoed(await a.xmpp.request(b.xmpp.full_jid, "set", cancel(2))) == 1002
            with pytest.raises(StanzaError) as err:
                await a.xmpp.request(b.xmpp.full_jid, "get", cancel(REFUSE))
            assert err.value.condition == "bad-request"
            # A handler that raises still answers (internal-server-error), and keeps serving.
            with pytest.raises(StanzaError) as err:
                await a.xmpp.request(b.xmpp.full_jid, "get", cancel(BOOM))
            assert err.value.condition == "internal-server-error"
            assert echoed(await a.xmpp.request(b.xmpp.full_jid, "get", cancel(3))) == 3
            a.xmpp.send_message(b.xmpp.full_jid, cancel(4))
            msg = await asyncio.wait_for(b.messages.get(), 5)
            assert msg.type == "normal" and msg.sender == a.xmpp.full_jid
            assert msg.payload == cancel(4) and msg.size > 0
            # To the bare JID, Prosody answers itself (service-unavailable): mapped to StanzaError.
            with pytest.raises(StanzaError):
                await a.xmpp.request(b.xmpp.jid.bare, "get", cancel(5))
            assert await a.xmpp.ping() < 5
        finally:
            await asyncio.gather(a.xmpp.close(), b.xmpp.close())

    run(main())


@pytest.mark.timeout(30)
def test_only_the_peer_asked_answers_and_silence_times_out(
    prosody, xmpp_account, monkeypatch
) -> None:
    """The adapter matches answers itself (as slixmpp's MatchIDSender does): an iq result with
    the id of a waiting request from a third party is not its answer; no answer is a
    RequestTimeout, after which nothing waits any more once the late-answer grace is over."""
    from gridbind.iec61850 import xmpp as adapter
    from gridbind.iec61850.stanza import RequestTimeout

    monkeypatch.setattr(adapter, "LATE_ANSWER_GRACE", 0.3)

    async def main() -> None:
        a, b = await _pair(prosody, xmpp_account)
        c = Echo()
        xc = c.build(settings(prosody, xmpp_account("c")))
        await xc.start()
        try:
            b.xmpp._on_inbound = lambda item: None  # b stays silent
            asked = asyncio.get_running_loop().create_task(
                a.xmpp.request(b.xmpp.full_jid, "get", cancel(1), timeout=1.5)
            )
            while not a.xmpp._waiting:
                await asyncio.sleep(0.01)
            (sid,) = a.xmpp._waiting
            xc.send_raw(
                f'<iq xmlns="jabber:client" type="result" id="{sid}" to="{a.xmpp.full_jid}">'
                f'<MMSpdu xmlns="{PAYLOAD_NS}"><cancel-ResponsePDU>1</cancel-ResponsePDU>'
                "</MMSpdu></iq>"
            )
            with pytest.raises(RequestTimeout):
                await asked
            assert not a.xmpp._pending
            await until(lambda: not a.xmpp._waiting, 2, "the grace after the timeout ends")
            b.xmpp._on_inbound = b.on_inbound  # the adapter still answers and is answered
            assert echoed(await a.xmpp.request(b.xmpp.full_jid, "get", cancel(2))) == 2
        finally:
            await asyncio.gather(a.xmpp.close(), b.xmpp.close(), xc.close())

    run(main())


@pytest.mark.timeout(30)
def test_answers_to_requests_given_up_still_reach_on_answer(
    prosody, xmpp_account, monkeypatch
) -> None:
    """An E2E shell opens every answer in arrival order (on_answer): the answer to a request
    whose requester was cancelled, or that timed out shortly before, still reaches it (not the
    requester); such a request is forgotten at its time limit, or the grace after it."""
    from gridbind.iec61850 import xmpp as adapter
    from gridbind.iec61850.stanza import RequestTimeout

    monkeypatch.setattr(adapter, "LATE_ANSWER_GRACE", 0.5)

    async def main() -> None:
        a, b = await _pair(prosody, xmpp_account)
        try:
            held: list[Received] = []
            b.xmpp._on_inbound = held.append  # b answers when the test says so
            answers: list[Received] = []
            a.xmpp.on_answer = answers.append
            loop = asyncio.get_running_loop()
            given_up = loop.create_task(a.xmpp.request(b.xmpp.full_jid, "get", cancel(1)))
            await until(lambda: len(held) == 1, 5, "the first request arrives")
            given_up.cancel()
            with pytest.raises(asyncio.CancelledError):
                await given_up
            with pytest.raises(RequestTimeout):
                await a.xmpp.request(b.xmpp.full_jid, "get", cancel(2), timeout=0.3)
            assert len(held) == 2 and len(a.xmpp._waiting) == 2 and not a.xmpp._pending
            for item in held:
                b.on_inbound(item)
            await until(lambda: len(answers) == 2, 5, "both late answers")
            assert [echoed(x) for x in answers] == [1, 2] and not a.xmpp._waiting
            # Never answered: a request given up is forgotten at its time limit, one timed
            # out at the end of the grace.
            given_up = loop.create_task(
                a.xmpp.request(b.xmpp.full_jid, "get", cancel(3), timeout=1.0)
            )
            await until(lambda: len(held) == 3, 5, "the third request arrives")
            given_up.cancel()
            with pytest.raises(RequestTimeout):
                await a.xmpp.request(b.xmpp.full_jid, "get", cancel(4), timeout=0.3)
            assert len(a.xmpp._waiting) == 2
            await until(lambda: not a.xmpp._waiting, 3, "both are forgotten")
            b.xmpp._on_inbound = b.on_inbound
            assert echoed(await a.xmpp.request(b.xmpp.full_jid, "get", cancel(5))) == 5
            assert len(answers) == 3
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
def test_presence_unavailable_reaches_tracked_peer(xmpp_server) -> None:
    prosody, xmpp_account = xmpp_server

    async def main() -> None:
        a, b = await _pair(prosody, xmpp_account, stream_management=False)
        try:
            a.xmpp.track_peer(b.xmpp.full_jid)
            b.xmpp.track_peer(a.xmpp.full_jid)
            await a.xmpp.request(b.xmpp.full_jid, "get", cancel(7))
            b_jid = b.xmpp.full_jid
            b.xmpp.drop_link()  # no XEP-0198: the server tells a at once
            assert await asyncio.wait_for(a.unavailable.get(), 5) == b_jid
            await asyncio.wait_for(b.link_lost.wait(), 5)
        finally:
            await asyncio.gather(a.xmpp.close(), b.xmpp.close())

    run(main())


@pytest.mark.timeout(40)
def test_association_context_through_prosody(prosody, xmpp_account) -> None:
    from slixmpp.xmlstream.handler import Callback
    from slixmpp.xmlstream.matcher import StanzaPath

    async def main() -> None:
        a, b = await _pair(prosody, xmpp_account)
        try:
            to = b.xmpp.full_jid
            layer = ClearContext(to, "12")
            # b gates strictly: a schema-valid MMSpdu in an AssociationContext is delivered with
            # its assoID; the answer comes back in the same association
            conclude = m.Mmspdu(choice=m.Mmspdu.ConcludeRequestPdu())
            got = await a.xmpp.request(to, "set", layer.seal(conclude, 0.0))
            assert got.association == "12" and got.payload.asso_id == "12"
            assert isinstance(layer.open(got.payload, 0.0).choice, m.Mmspdu.ConcludeResponsePdu)

            async def raw(stanza_id: str, body: str):
                waiter = asyncio.get_running_loop().create_future()
                a.xmpp._client.register_handler(
                    Callback(stanza_id, StanzaPath(f"iq@id={stanza_id}"), waiter.set_result,
                             once=True)
                )  # fmt: skip
                a.xmpp.send_raw(
                    f'<iq xmlns="jabber:client" type="get" id="{stanza_id}" to="{to}">{body}</iq>'
                )
                return await asyncio.wait_for(waiter, 5)

            # a payload the schema does not know is refused by b's gate (bad-request)
            answer = await raw("unknown", f'<MMSpdu xmlns="{PAYLOAD_NS}"><hello/></MMSpdu>')
            assert answer["type"] == "error" and answer["error"]["condition"] == "bad-request"
            # messages go through the gate too: a refused one arrives with its error
            a.xmpp.send_raw(
                f'<message xmlns="jabber:client" type="normal" to="{to}">'
                f'<MMSpdu xmlns="{PAYLOAD_NS}"><report/></MMSpdu></message>'
            )
            msg = await asyncio.wait_for(b.messages.get(), 5)
            assert isinstance(msg.error, codec.CodecError) and msg.payload is None
            reject = m.Mmspdu(choice=m.Mmspdu.CancelResponsePdu(value=1))
            a.xmpp.send_message(to, layer.seal(reject, 0.0))
            msg = await asyncio.wait_for(b.messages.get(), 5)
            assert msg.error is None and msg.association == "12" and msg.size > 0
            # a malformed envelope (assoID off the pattern) is refused as bad-request
            answer = await raw(
                "bad-ctx",
                f'<AssociationContext xmlns="{codec.E2E_NS}"><assoID>A-1</assoID><applData>'
                f'<MMSpdu xmlns="{PAYLOAD_NS}"><conclude-RequestPDU/></MMSpdu></applData>'
                "</AssociationContext>",
            )
            assert answer["type"] == "error" and answer["error"]["condition"] == "bad-request"
            assert "assoID" in answer["error"]["text"]
        finally:
            await asyncio.gather(a.xmpp.close(), b.xmpp.close())

    run(main())


@pytest.mark.timeout(40)
def test_xep0198_resumption_keeps_the_session(xmpp_server) -> None:
    prosody, xmpp_account = xmpp_server

    async def main() -> None:
        a, b = await _pair(prosody, xmpp_account)
        try:
            a.xmpp.track_peer(b.xmpp.full_jid)
            b.xmpp.track_peer(a.xmpp.full_jid)
            await a.xmpp.request(b.xmpp.full_jid, "get", cancel(7))
            resumed = asyncio.Event()
            b.xmpp.on_resumed = resumed.set
            b.xmpp.drop_link()
            await asyncio.wait_for(resumed.wait(), 10)
            answer = await a.xmpp.request(b.xmpp.full_jid, "get", cancel(8))
            assert echoed(answer) == 8
            assert not b.link_lost.is_set()
            assert a.unavailable.empty()
        finally:
            await asyncio.gather(a.xmpp.close(), b.xmpp.close())

    run(main())


def test_envelope_in_the_stanza() -> None:
    gate = codec.default_codec()
    pdu = m.Mmspdu(choice=m.Mmspdu.ConcludeRequestPdu())
    ctx = payload_element(ClearContext("peer@x/IEC", "42").seal(pdu, 0.0), gate)
    assert ctx.tag == f"{{{codec.E2E_NS}}}AssociationContext"
    assert [c.tag.split("}")[1] for c in ctx] == ["pp", "assoID", "applData"]
    assert ctx.find(f"{{{codec.E2E_NS}}}pp/{{{codec.E2E_NS}}}iec61850-8-2") is not None
    assert ctx.find(f"{{{codec.E2E_NS}}}applData/{{{PAYLOAD_NS}}}MMSpdu") is not None
    iq = ET.Element("{jabber:client}iq")
    iq.append(ctx)
    found = unwrap(iq)
    assert found.association == "42" and found.problem is None
    item = decode_payload(found, gate, Received("iq", "get", "peer@x/IEC", "1"))
    assert item.error is None and item.association == "42" and item.payload.asso_id == "42"
    assert item.size == len(codec.encode(pdu))  # the MMSpdu's octets, not the envelope's
    bare = ET.Element("{jabber:client}iq")
    bare.append(payload_element(pdu, gate))
    item = decode_payload(unwrap(bare), gate, Received("iq", "get", "peer@x/IEC", "2"))
    assert item.association is None and item.payload == pdu
    for bad in ("", "a", "12345678901", "1:2:3", " 7"):  # the schema's AssoID pattern
        with pytest.raises(codec.EncodeError):
            payload_element(ClearContext("peer@x/IEC", bad).seal(pdu, 0.0), gate)


_E2E = "http://www.iec.ch/62351/2018/E2E_4"
_PDU = f'<MMSpdu xmlns="{PAYLOAD_NS}"><conclude-RequestPDU/></MMSpdu>'


def _ctx(inner: str, ns: str = _E2E) -> str:
    return f'<AssociationContext xmlns="{ns}">{inner}</AssociationContext>'


MALFORMED_ENVELOPES = [
    ("bad assoID pattern", _ctx(f"<assoID>abc</assoID><applData>{_PDU}</applData>")),
    ("assoID too long", _ctx(f"<assoID>12345678901</assoID><applData>{_PDU}</applData>")),
    ("assoID n:n:n", _ctx(f"<assoID>1:2:3</assoID><applData>{_PDU}</applData>")),
    ("no assoID", _ctx(f"<applData>{_PDU}</applData>")),
    ("missing applData", _ctx("<assoID>7</assoID>")),
    ("empty applData", _ctx("<assoID>7</assoID><applData/>")),
    ("two payloads in applData", _ctx(f"<assoID>7</assoID><applData>{_PDU}{_PDU}</applData>")),
    ("two envelopes", _ctx(f"<assoID>7</assoID><applData>{_PDU}</applData>") * 2),
    ("envelope and payload", _ctx(f"<assoID>7</assoID><applData>{_PDU}</applData>") + _PDU),
    ("wrong namespace", _ctx(f"<assoID>7</assoID><applData>{_PDU}</applData>", "urn:x")),
    ("old private wrapper", f'<association xmlns="urn:x" id="7">{_PDU}</association>'),
    ("children unqualified", _ctx(f'<assoID xmlns="">7</assoID><applData>{_PDU}</applData>')),
    ("payload in wrong namespace", _ctx('<assoID>7</assoID><applData><MMSpdu xmlns="urn:x">'
                                        "<conclude-RequestPDU/></MMSpdu></applData>")),
    ("pp of another protocol", _ctx(f"<pp><iec61850-8-1/></pp><assoID>7</assoID>"
                                    f"<applData>{_PDU}</applData>")),
    ("elements in the wrong order", _ctx(f"<applData>{_PDU}</applData><assoID>7</assoID>")),
    ("unknown element", _ctx(f"<assoID>7</assoID><applData>{_PDU}</applData><x/>")),
    ("invalid payload", _ctx(f'<assoID>7</assoID><applData><MMSpdu xmlns="{PAYLOAD_NS}">'
                             "<nonsense/></MMSpdu></applData>")),
    ("E2E secured envelope", f'<ClearTransfer xmlns="{_E2E}"/>'),
]  # fmt: skip


@pytest.mark.parametrize(
    "body", [b for _, b in MALFORMED_ENVELOPES], ids=[n for n, _ in MALFORMED_ENVELOPES]
)
def test_malformed_association_context_is_refused(body: str) -> None:
    stanza = ET.fromstring(f'<iq xmlns="jabber:client" type="get">{body}</iq>')
    found = unwrap(stanza)
    if found is None:  # not 8-2 traffic at all: left to slixmpp (feature-not-implemented)
        assert "urn:x" in body and "AssociationContext" not in body
        return
    item = decode_payload(found, codec.default_codec(), Received("iq", "get", "p@x/IEC", "1"))
    if item.error is None:  # schema-valid, but not what an association with E2E off accepts
        with pytest.raises(EnvelopeError):
            ClearContext("p@x/IEC", "7").open(item.payload, 0.0)
    else:
        assert isinstance(item.error, codec.CodecError), body


def test_well_formed_association_context_passes_the_gate() -> None:
    for inner, assoc in (
        (f"<assoID>7</assoID><applData>{_PDU}</applData>", "7"),  # pp is optional
        (f"<pp><iec61850-8-2/></pp><assoID>12:4</assoID><applData>{_PDU}</applData>", "12:4"),
    ):
        found = unwrap(ET.fromstring(f'<iq xmlns="jabber:client">{_ctx(inner)}</iq>'))
        assert found.problem is None and found.association == assoc
        item = decode_payload(found, codec.default_codec(), Received("iq", "get", "p@x", "1"))
        assert item.error is None and item.size == len(_PDU)
        assert ClearContext("p@x", assoc).open(item.payload, 0.0) == codec.decode(_PDU)


@pytest.mark.timeout(30)
def test_xep0199_keepalive_pings(xmpp_server) -> None:
    prosody, xmpp_account = xmpp_server

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


def test_carriage_return_leaves_as_a_character_reference(tmp_path) -> None:
    """slixmpp writes a CR in text raw (the receiver's end-of-line handling would make it LF):
    the adapter sends it as &#13;, in the stanza as serialised on the stream."""
    ca = make_test_pki(tmp_path, "example.test").ca_cert  # no connection is made
    adapter = IecXmpp(XmppSettings(jid="a@example.test", password="x", ca_file=ca))
    client = adapter._build()
    written: list[bytes] = []

    class Transport:
        def write(self, data: bytes) -> None:
            written.append(data)

    client.transport = Transport()
    message = client.make_message(mto="b@example.test/IEC", mtype="normal")
    report = m.Mmspdu(choice=m.Mmspdu.CancelRequestPdu(value=1))
    element = payload_element(report, codec.default_codec())
    element[0].tail = "\r\n"  # text with a CR in it, as a mMSString value would carry
    message.xml.append(element)
    client.send_raw(str(message))
    assert written and b"&#13;\n" in written[0] and b"\r" not in written[0]
