"""The in-memory transport: routing, answers, timeouts, presence and link loss (abort semantics),
server-initiated informationReports, and hostile stanzas, all without an XMPP server."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET

import pytest
from test_hostile import BAD_ENVELOPES, HOSTILE, req

from gridbind.generated.iec61850_8_2 import scsm_8_2 as m
from gridbind.iec61850 import mms
from gridbind.iec61850 import mmsdata as d
from gridbind.iec61850.client import AssociationAborted
from gridbind.iec61850.memory import MemoryNetwork
from gridbind.iec61850.stanza import LinkLost, RequestTimeout, StanzaError, XmppError

from iec_testkit import memory_served, run, until

CANCEL = m.Mmspdu(choice=m.Mmspdu.CancelRequestPdu(value=1))


@pytest.mark.timeout(10)
def test_routing_answers_timeouts_and_presence() -> None:
    async def main():
        net = MemoryNetwork()
        seen: list = []
        a = net.endpoint("a@memory.test", request_timeout=0.2)
        b = net.endpoint("b@memory.test")
        unavailable: list[str] = []
        lost: list[bool] = []
        a.set_handlers(seen.append, on_peer_unavailable=unavailable.append)
        b.set_handlers(seen.append, on_link_lost=lambda: lost.append(True))
        await a.start()
        await b.start()
        assert a.full_jid == "a@memory.test/IEC" and a.connected
        with pytest.raises(XmppError, match="conflict"):
            await net.endpoint("b@memory.test").start()
        # nobody answers: the request times out; an unknown JID is service-unavailable
        with pytest.raises(RequestTimeout):
            await a.request(b.full_jid, "get", CANCEL)
        assert seen and seen[-1].payload == CANCEL and seen[-1].type == "get"
        with pytest.raises(StanzaError) as err:
            await a.request("nobody@memory.test/IEC", "get", CANCEL)
        assert err.value.condition == "service-unavailable"
        with pytest.raises(ValueError):
            await a.request(b.full_jid, "result", CANCEL)
        # an answer and an error answer
        b.on_inbound = lambda item: b.reply(item, CANCEL)
        answer = await a.request(b.full_jid, "set", CANCEL)
        assert answer.payload == CANCEL and answer.sender == b.full_jid
        b.on_inbound = lambda item: b.reply_error(item, "bad-request", "no", "modify")
        with pytest.raises(StanzaError) as err:
            await a.request(b.full_jid, "set", CANCEL)
        assert (err.value.condition, err.value.text, err.value.etype) == (
            "bad-request",
            "no",
            "modify",
        )
        # a handler that raises: internal-server-error, and the endpoint keeps going
        b.on_inbound = lambda item: 1 / 0
        with pytest.raises(StanzaError) as err:
            await a.request(b.full_jid, "get", CANCEL)
        assert err.value.condition == "internal-server-error"
        # directed presence: b's link drops, a learns it; a waiting request fails at once
        b.track_peer(a.full_jid)
        b.on_inbound = lambda item: None
        waiting = asyncio.get_running_loop().create_task(b.request(a.full_jid, "get", CANCEL))
        await asyncio.sleep(0)
        b.drop_link("cable cut")
        with pytest.raises(LinkLost, match="cable cut"):
            await waiting
        await until(lambda: unavailable == [b.full_jid], 2, "presence unavailable")
        assert lost == [True] and not b.connected and b.lost_reason == "cable cut"
        with pytest.raises(LinkLost):
            await b.request(a.full_jid, "get", CANCEL)
        await a.close()
        assert net.online == {}

    run(main(), 10)


@pytest.mark.timeout(10)
def test_link_loss_and_presence_abort_associations() -> None:
    async def main():
        async with memory_served(clients=2) as (server, (one, two), net):
            events: list = []
            server.on_event = events.append
            ied1 = await one.associate(server.jid)
            ied2 = await two.associate(server.jid)
            assert len(server.core.associations) == 2
            # a client vanishes: its association aborts at the server, and at the client
            two.transport.drop_link()
            await until(lambda: len(server.core.associations) == 1, 2, "server-side abort")
            aborted = [e for e in events if getattr(e, "how", "") == "aborted"]
            assert aborted[0].association.id == ied2.id and not ied2.open
            with pytest.raises(AssociationAborted, match="link lost"):
                await ied2.get_server_directory()
            # the server vanishes: the other client's association aborts as well
            assert await ied1.get_data_values("FDR1LD0/GGIO1.IntIn1.stVal", "ST") == 42
            await server.transport.close()
            await until(lambda: not ied1.open, 2, "client-side abort")
            with pytest.raises(AssociationAborted, match="unavailable"):
                await ied1.get_server_directory()

    run(main(), 10)


@pytest.mark.timeout(10)
def test_information_reports_reach_the_client_as_typed_events() -> None:
    async def main():
        async with memory_served() as (server, (client,), _):
            ied = await client.associate(server.jid)
            (assoc,) = server.associations
            results = [m.AccessResult(choice=d.integer(n)) for n in range(3)]
            for n in range(3):
                report = mms.information_report(mms.vmd("RPT"), results[: n + 1])
                server.send_information_report(assoc, report)
            got = []
            async for report in ied.reports():
                got.append(report)
                if len(got) == 3:
                    break
            assert [len(r.list_of_access_result.access_result) for r in got] == [1, 2, 3]
            assert got[2].variable_access_specification.choice == mms.vmd("RPT")
            assert ied.dropped_reports == 0
            # the stream ends with the association
            server.send_information_report(assoc, mms.information_report(mms.vmd("X"), []))
            await ied.conclude()
            rest = [r async for r in ied.reports()]
            assert len(rest) <= 1

    run(main(), 10)


@pytest.mark.timeout(20)
def test_hostile_stanzas_are_answered_in_memory() -> None:
    """The stanzas of test_hostile (sent there through Prosody), delivered in memory."""

    async def main():
        async with memory_served() as (server, (client,), net):
            ied = await client.associate(server.jid)
            raw = client.transport
            for n, (iq_type, body) in enumerate(HOSTILE):
                body = body.replace("<assoID>A</assoID>", f"<assoID>{ied.id}</assoID>")
                stanza = ET.fromstring(f'<x xmlns="jabber:client">{body}</x>')
                sid = net.next_id()
                fut = asyncio.get_running_loop().create_future()
                raw._pending[sid] = (server.jid, fut)
                iq = raw._stanza("iq", server.jid, iq_type, sid, *list(stanza))
                assert net.deliver(raw, server.jid, iq)
                try:
                    await asyncio.wait_for(fut, 5)
                    answered = "result"
                except StanzaError as exc:
                    answered = exc.condition
                if n >= len(HOSTILE) - len(BAD_ENVELOPES):
                    assert answered == "bad-request", (n, body[:80])
            for body in (
                req("<rejectPDU><rejectReason><bogus/></rejectReason></rejectPDU>"),
                req("<unconfirmed-PDU/>"),
            ):
                raw.send_message(server.jid, ET.fromstring(body))
            assert await ied.get_server_directory() == ["FDR1LD0", "FDR1MEAS", "FDR1PROT"]

    run(main(), 20)


@pytest.mark.timeout(10)
def test_an_answer_from_another_jid_is_dropped() -> None:
    async def main():
        net = MemoryNetwork()
        a = net.endpoint("a@memory.test", request_timeout=0.3)
        b = net.endpoint("b@memory.test")
        mallory = net.endpoint("mallory@memory.test")
        asked: list = []
        a.set_handlers(lambda item: None)
        b.set_handlers(asked.append)
        mallory.set_handlers(lambda item: None)
        for ep in (a, b, mallory):
            await ep.start()
        task = asyncio.get_running_loop().create_task(a.request(b.full_jid, "get", CANCEL))
        await until(lambda: asked, 2, "the request reached b")
        # mallory knows (or guesses) the iq id and answers first, as result and as error
        spoof = mallory._stanza("iq", a.full_jid, "result", asked[0].id)
        net.deliver(mallory, a.full_jid, spoof)
        spoof = mallory._stanza("iq", a.full_jid, "error", asked[0].id)
        ET.SubElement(spoof, "{jabber:client}error", {"type": "cancel"})
        net.deliver(mallory, a.full_jid, spoof)
        await asyncio.sleep(0.05)
        assert not task.done()
        b.reply(asked[0], CANCEL)  # the real answer still gets through
        answer = await task
        assert answer.sender == b.full_jid and answer.payload == CANCEL

    run(main())


@pytest.mark.timeout(10)
def test_answers_to_requests_given_up_still_reach_on_answer(monkeypatch) -> None:
    """As with the slixmpp adapter: an answer to a request whose requester was cancelled, or
    that timed out shortly before, reaches on_answer (E2E opens it), not the requester; such a
    request is forgotten at its time limit, or the grace after it."""
    from gridbind.iec61850 import memory

    monkeypatch.setattr(memory, "LATE_ANSWER_GRACE", 0.5)

    async def main():
        net = MemoryNetwork()
        a = net.endpoint("a@memory.test", request_timeout=1.0)
        b = net.endpoint("b@memory.test")
        held: list = []
        answers: list = []
        a.set_handlers(lambda item: None)
        a.on_answer = answers.append
        b.set_handlers(held.append)
        await a.start()
        await b.start()
        loop = asyncio.get_running_loop()
        given_up = loop.create_task(a.request(b.full_jid, "get", CANCEL))
        await until(lambda: len(held) == 1, 2, "the first request arrives")
        given_up.cancel()
        with pytest.raises(asyncio.CancelledError):
            await given_up
        with pytest.raises(RequestTimeout):
            await a.request(b.full_jid, "get", CANCEL, timeout=0.2)
        assert len(held) == 2 and len(a._pending) == 2
        for item in held:
            b.reply(item, m.Mmspdu(choice=m.Mmspdu.CancelResponsePdu(value=int(item.id[1:]))))
        await until(lambda: len(answers) == 2, 2, "both late answers")
        assert [x.id for x in answers] == [x.id for x in held] and not a._pending
        assert [x.payload.choice.value for x in answers] == [int(x.id[1:]) for x in held]
        # never answered: forgotten at the time limit, or at the end of the grace
        given_up = loop.create_task(a.request(b.full_jid, "get", CANCEL))
        await until(lambda: len(held) == 3, 2, "the third request arrives")
        given_up.cancel()
        with pytest.raises(RequestTimeout):
            await a.request(b.full_jid, "get", CANCEL, timeout=0.2)
        assert len(a._pending) == 2
        await until(lambda: not a._pending, 3, "both are forgotten")
        b.on_inbound = lambda item: b.reply(item, CANCEL)
        assert (await a.request(b.full_jid, "get", CANCEL)).payload == CANCEL
        assert len(answers) == 3
        await asyncio.gather(a.close(), b.close())

    run(main())


@pytest.mark.timeout(10)
def test_error_text_is_sanitised_in_memory() -> None:
    async def main():
        net = MemoryNetwork()
        a = net.endpoint("a@memory.test")
        b = net.endpoint("b@memory.test")
        a.set_handlers(lambda item: None)
        b.set_handlers(
            lambda item: b.reply_error(item, "bad-request", "x\x00\x1b\r\ud800\ufffey" * 100)
        )
        await a.start()
        await b.start()
        with pytest.raises(StanzaError) as err:
            await a.request(b.full_jid, "get", CANCEL)
        assert err.value.text.startswith("x?????yx") and len(err.value.text) == 500

    run(main())
