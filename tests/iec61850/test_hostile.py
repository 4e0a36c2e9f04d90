"""Malformed and hostile stanzas from a raw XMPP client never crash the IED server: each gets an
error answer (or is dropped, for messages) and the server keeps serving."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import StanzaPath
from test_xmpp import ejabberd_node, xmpp_server  # noqa: F401 - Prosody and ejabberd

from gridbind.iec61850.client import Client
from gridbind.iec61850.scl import load_scl
from gridbind.iec61850.server import IedServer
from gridbind.iec61850.xmpp import ASSOC_NS, PAYLOAD_NS, XmppSettings

FEEDER = Path(__file__).parent / "data" / "feeder.scd"
pytestmark = pytest.mark.prosody


def settings(prosody, account, **kw) -> XmppSettings:
    return XmppSettings(
        jid=account.jid,
        password=account.password,
        ca_file=prosody.ca_cert,
        host="127.0.0.1",
        port=prosody.c2s_port,
        sasl_mechanism="PLAIN",
        request_timeout=5,
        **kw,
    )


def ctx(inner: str, ns: str = ASSOC_NS) -> str:
    return f'<AssociationContext xmlns="{ns}">{inner}</AssociationContext>'


def req(body: str, assoc: str | None = None) -> str:
    """``body`` in an MMSpdu, in the AssociationContext of ``assoc`` ("A": the test's own)."""
    inner = f'<MMSpdu xmlns="{PAYLOAD_NS}">{body}</MMSpdu>'
    if assoc is not None:
        inner = ctx(f"<pp><iec61850-8-2/></pp><assoID>{assoc}</assoID><applData>{inner}</applData>")
    return inner


NAME_LIST = (
    "<confirmed-RequestPDU><invokeID>{i}</invokeID><service><getNameList><objectClass>"
    "<basicObjectClass><domain/></basicObjectClass></objectClass><objectScope><vmdSpecific/>"
    "</objectScope></getNameList></service></confirmed-RequestPDU>"
)

#: Malformed envelopes in the association of the test: each one a bad-request, never served.
BAD_ENVELOPES = [
    ("get", ctx("<assoID>A</assoID>")),  # no applData
    ("get", ctx("<assoID>A</assoID><applData/>")),
    ("get", ctx('<assoID>A</assoID><applData><foo xmlns="urn:x"/></applData>')),
    ("get", ctx(f"<assoID>A</assoID><applData>{req(NAME_LIST.format(i=4)) * 2}</applData>")),
    ("get", ctx(f"<assoID>x7</assoID><applData>{req(NAME_LIST.format(i=5))}</applData>")),
    ("get", ctx(f"<assoID>A</assoID><applData>{req(NAME_LIST.format(i=6))}</applData>", "urn:x")),
    ("get", ctx(f"<assoID>A</assoID><applData>{req(NAME_LIST.format(i=8))}</applData>") * 2),
    ("get", ctx(f"<pp><iec60870-5-104/></pp><assoID>A</assoID><applData>"
                f"{req(NAME_LIST.format(i=9))}</applData>")),
    ("get", f'<ClearTransfer xmlns="{ASSOC_NS}"/>'),
]  # fmt: skip

HOSTILE = [
    ("get", req("<confirmed-RequestPDU><invokeID>abc</invokeID></confirmed-RequestPDU>", "A")),
    ("get", req("<confirmed-RequestPDU><invokeID>1</invokeID><service/></confirmed-RequestPDU>", "A")),
    ("get", req("<nonsense/>", "A")),
    ("get", req("", "A")),
    ("get", req("<Data>" + "<structure><Data>" * 200 + "</Data></structure>" * 200 + "</Data>", "A")),
    ("set", req("<confirmed-RequestPDU><invokeID>2</invokeID><service><write>"
                "<variableAccessSpecification><listOfVariable/></variableAccessSpecification>"
                "<listOfData><Data><floating-point>zz</floating-point></Data></listOfData></write>"
                "</service></confirmed-RequestPDU>", "A")),
    ("set", req("<initiate-RequestPDU><proposedMaxServOutstandingCalling>x"
                "</proposedMaxServOutstandingCalling></initiate-RequestPDU>", "98")),
    ("set", req("<initiate-RequestPDU/>")),
    ("get", req(NAME_LIST.format(i=1)) + "<extra/>"),
    ("get", req("<conclude-RequestPDU>junk</conclude-RequestPDU>", "A")),
    ("get", req("<confirmed-ResponsePDU><invokeID>1</invokeID><service><fileClose/></service>"
                "</confirmed-ResponsePDU>", "A")),
    ("get", req(NAME_LIST.format(i=7) * 2, "A")),
    ("get", req("<cancel-RequestPDU>5</cancel-RequestPDU>", "A")),
    ("get", req("<conclude-RequestPDU/>", "A")),  # conclude travels in iq set: bad-request
    ("set", req("<confirmed-RequestPDU><invokeID>3</invokeID><service><write>"
                "<variableAccessSpecification><listOfVariable/></variableAccessSpecification>"
                "<listOfData><Data><visible-string>" + "x" * 150_000 + "</visible-string></Data>"
                "</listOfData></write></service></confirmed-RequestPDU>", "A")),  # > codec limit
    ("get", req("<initiate-RequestPDU/>", "99")),
    # the old private wrapper is no 8-2 payload any more: slixmpp's feature-not-implemented
    ("get", (f'<association xmlns="urn:gridbind:iec61850-8-2:association" id="A">'
             f"{req(NAME_LIST.format(i=10))}</association>")),
]  # fmt: skip
HOSTILE += BAD_ENVELOPES


@contextlib.asynccontextmanager
async def pair(prosody, xmpp_account):
    server = IedServer(load_scl(FEEDER), settings(prosody, xmpp_account("ied")))
    client = Client(settings(prosody, xmpp_account("raw")))
    await asyncio.gather(server.start(), client.connect())
    try:
        yield server, client
    finally:
        await asyncio.gather(client.close(), server.close())


@pytest.mark.timeout(60)
def test_hostile_stanzas_are_answered_and_survived(xmpp_server) -> None:  # noqa: F811
    prosody, xmpp_account = xmpp_server  # Prosody and ejabberd

    async def main():
        async with pair(prosody, xmpp_account) as (server, client):
            ied = await client.associate(server.jid)
            raw = client.xmpp._client
            rejects: list[str] = []
            raw.register_handler(
                Callback(
                    "rejects",
                    StanzaPath("message"),
                    lambda m: rejects.append(str(m)) if "rejectPDU" in str(m) else None,
                )
            )
            for n, (iq_type, body) in enumerate(HOSTILE):
                body = body.replace("<assoID>A</assoID>", f"<assoID>{ied.id}</assoID>")
                waiter = asyncio.get_running_loop().create_future()
                raw.register_handler(
                    Callback(
                        f"hostile{n}",
                        StanzaPath(f"iq@id=hostile{n}"),
                        lambda s, w=waiter: w.done() or w.set_result(s),
                        once=True,
                    )
                )
                client.xmpp.send_raw(
                    f'<iq xmlns="jabber:client" type="{iq_type}" id="hostile{n}" '
                    f'to="{server.jid}">{body}</iq>'
                )
                try:
                    answer = await asyncio.wait_for(waiter, 5)
                except TimeoutError:
                    raise AssertionError(f"no answer to hostile stanza {n}") from None
                assert answer["type"] in ("error", "result"), (n, answer)
                if n >= len(HOSTILE) - len(BAD_ENVELOPES):
                    # a malformed or invalid envelope is a bad-request, never served
                    assert answer["type"] == "error", (n, answer)
                    assert answer["error"]["condition"] == "bad-request", (n, answer)
            # messages with garbage are dropped silently
            client.xmpp.send_raw(
                f'<message xmlns="jabber:client" to="{server.jid}" type="normal">'
                f"{req('<rejectPDU><rejectReason><bogus/></rejectReason></rejectPDU>')}</message>"
            )
            client.xmpp.send_raw(
                f'<message xmlns="jabber:client" to="{server.jid}" type="normal">'
                f"{req('<unconfirmed-PDU/>')}</message>"
            )
            # malformed envelopes in a known association also got their rejectPDU, in it
            assert any(
                "invalid-pdu" in r and f"<assoID>{ied.id}</assoID>" in r for r in rejects
            ), rejects
            # and the server still serves the association
            assert await ied.get_server_directory() == ["FDR1LD0", "FDR1MEAS", "FDR1PROT"]
            assert await ied.get_data_values("FDR1LD0/GGIO1.IntIn1.stVal", "ST") == 42

    asyncio.run(asyncio.wait_for(main(), 50))
