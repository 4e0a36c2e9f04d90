"""The IED's per-association bound on what waits for a transport without room: a client that
does not read (held in the in-memory network) never makes the IED hold more than its bound,
loses its oldest unbuffered reports (or its association, for buffered ones and by policy), and
never slows down another association."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridbind.iec61850 import mms
from gridbind.iec61850.client_protocol import ServiceFailed
from gridbind.iec61850.e2e import E2EConfig, Mode
from gridbind.iec61850.e2e_certs import make_ca, make_e2e_certificate
from gridbind.iec61850.errors import InvalidArgument
from gridbind.iec61850.mmsdata import OptFlds
from gridbind.iec61850.mmsdata import TriggerConditions as T
from gridbind.iec61850.outbox import Outbox, OutboxLimits

from iec_testkit import memory_served, run, until

URCB = "FDR1LD0/LLN0.urcbStatus01"
URCB2 = "FDR1LD0/LLN0.urcbStatus02"
BRCB = "FDR1LD0/LLN0.brcbMeas"
IND1 = "FDR1LD0/GGIO1.Ind1.stVal"
TOTW = "FDR1MEAS/MMXU1.TotW.mag.f"
OPT = OptFlds.SEQUENCE_NUMBER | OptFlds.DATA_REFERENCE
BUF_OPT = OptFlds.SEQUENCE_NUMBER | OptFlds.ENTRY_ID | OptFlds.DATA_REFERENCE
STALLED = "ops0@memory.test/IEC"


# ------------------------------------------------------------------ the sans-IO bound
def test_outbox_drops_the_oldest_unbuffered_report_whole() -> None:
    box = Outbox(OutboxLimits(max_pdus=3, max_bytes=1000))
    a, b = object(), object()
    assert not box.put("k", "a1", 100, a, droppable=True).dropped
    box.put("k", "a2", 100, a, droppable=True)  # a second segment of the same report
    box.put("k", "answer", 100)
    verdict = box.put("k", "b1", 100, b, droppable=True)
    assert [q.item for q in verdict.dropped] == ["a1", "a2"] and not verdict.abort
    assert box.waiting("k") == (2, 200) and box.dropped_reports == 1
    # only answers (and b, too big to help) left: a new item that does not fit aborts
    verdict = box.put("k", "huge", 950)
    assert verdict.abort and [q.item for q in verdict.dropped] == ["b1"]
    assert [q.item for q in box.discard("k")] == ["answer"] and not box
    assert box.pop("k") is None


def test_outbox_keeps_buffered_reports_and_the_abort_policy() -> None:
    box = Outbox(OutboxLimits(max_pdus=2))
    box.put("k", "e1", 10, object())  # a BRCB entry: never dropped alone
    box.put("k", "e2", 10, object())
    assert box.put("k", "e3", 10, object()).abort
    strict = Outbox(OutboxLimits(max_pdus=1, policy="abort"))
    strict.put("k", "u1", 10, object(), droppable=True)
    assert strict.put("k", "u2", 10, object(), droppable=True).abort
    # queues are per key, in order
    strict.put("other", "x", 10)
    assert strict.pop("other").item == "x" and strict.pop("k").item == "u1"
    with pytest.raises(InvalidArgument):
        OutboxLimits(policy="block")


def test_outbox_drops_a_report_whole_even_its_segment_being_put() -> None:
    box = Outbox(OutboxLimits(max_pdus=2))
    a = object()
    box.put("k", "a1", 10, a, droppable=True)
    box.put("k", "a2", 10, a, droppable=True)
    verdict = box.put("k", "a3", 10, a, droppable=True)  # a's third segment: a goes whole
    assert [q.item for q in verdict.dropped] == ["a1", "a2"] and not verdict.abort
    assert not box


# ------------------------------------------------------------------ on the in-memory transport
def limits(**kw) -> dict:
    return {"outbox": OutboxLimits(high_water=1500, max_pdus=10, **kw)}


async def reports_of(ied, n: int, timeout: float = 3.0) -> list:
    out = []

    async def collect():
        async for r in ied.report_stream():
            out.append(r)
            if len(out) == n:
                return

    await asyncio.wait_for(collect(), timeout)
    return out


@pytest.mark.timeout(15)
def test_a_client_that_does_not_read_loses_old_urcb_reports_not_the_others() -> None:
    async def main():
        async with memory_served(clients=2, server_kw=limits()) as (server, (c0, c1), net):
            slow = await c0.associate(server.jid)
            fast = await c1.associate(server.jid)
            for ied, rcb in ((slow, URCB), (fast, URCB2)):
                await ied.enable_reporting(
                    rcb, buffered=False, TrgOps=T.DATA_CHANGE, OptFlds=OPT, BufTm=0
                )
            net.hold(STALLED)
            key = (STALLED, slow.id)
            most = 0
            for n in range(60):
                server.model.update(IND1, n % 2 == 0)
                await asyncio.sleep(0)  # the reports go out as the application runs
                most = max(most, server.outbox.waiting(key)[0])
            # the other association got every report, in order, while one stalled
            got = await reports_of(fast, 59)
            assert [r.seq_num for r in got] == list(range(59))
            assert most == 10 and server.outbox.waiting(key)[0] == 10  # the bound held
            assert server.outbox.dropped_reports > 0 and server.reports.unsendable == 0
            assert not server.outbox.holds((c1.transport.full_jid, fast.id))
            net.release(STALLED)
            await until(lambda: not server.outbox, 2, "the queue drained")
            # what the client gets: the first reports (in the network), then the newest ten
            seen = await reports_of(slow, 59 - server.outbox.dropped_reports)
            seqs = [r.seq_num for r in seen]
            assert seqs == sorted(seqs) and seqs[-10:] == list(range(49, 59))
            assert seqs[0] == 0 and len(seqs) < 59  # a gap in SqNum shows the loss
            assert server.core.get(*key) is not None  # the association lives on

    run(main(), 15)


@pytest.mark.timeout(15)
def test_buffered_reports_abort_the_stalled_association_and_resync_without_a_gap() -> None:
    async def main():
        from gridbind.iec61850.client import Client

        async with memory_served(clients=2, server_kw=limits()) as (server, (c0, c1), net):
            slow = await c0.associate(server.jid)
            fast = await c1.associate(server.jid)
            await slow.enable_reporting(BRCB, buffered=True, TrgOps=T.DATA_CHANGE, OptFlds=BUF_OPT)
            await fast.enable_reporting(
                URCB2, buffered=False, TrgOps=T.DATA_CHANGE, OptFlds=OPT, BufTm=0
            )
            net.hold(STALLED)
            for n in range(40):
                server.model.update(TOTW, float(n))
                server.model.update(IND1, n % 2 == 0)
                await asyncio.sleep(0)
            await until(lambda: server.core.get(STALLED, slow.id) is None, 2, "the abort")
            assert server.outbox.aborted == 1 and not server.outbox.holds((STALLED, slow.id))
            assert len(await reports_of(fast, 39)) == 39  # not touched
            # the client reads again: what had reached the network arrives, then it resyncs
            net.release(STALLED)
            got = await reports_of(slow, 1)
            await asyncio.sleep(0.1)
            while not slow._reports.empty():
                got.append(slow._reports.get_nowait())
            last = got[-1].entry_id
            await c0.close()
            again = Client(transport=net.endpoint("ops0@memory.test"))
            await again.connect()
            try:
                ied = await again.associate(server.jid)
                res = await ied.enable_reporting(BRCB, buffered=True, EntryID=last)
                assert res == {"EntryID": None, "RptEna": None}
                rest = await reports_of(ied, 40 - len(got))
                values = [r.values[0].value[0][0] for r in got + rest]
                assert values == [float(n) for n in range(40)]  # every entry, once, in order
            finally:
                await again.close()

    run(main(), 15)


@pytest.mark.timeout(15)
def test_under_e2e_a_stalled_association_is_aborted_cleanly_not_left_with_a_gap(caplog) -> None:
    """Sealed E2E reports carry their sequence (ClearToken2): dropping one would make the
    client's E2E layer refuse the next (OUT_OF_SEQUENCE, DtSecAbort); the bound aborts instead."""
    ca = make_ca()

    def e2e_of(jid: str) -> E2EConfig:
        leaf = make_e2e_certificate(ca, jid)
        return E2EConfig(
            Mode.ENCRYPTED,
            certificate=leaf.certificate,
            private_key=leaf.key,
            trust_anchors=(ca.certificate,),
        )

    async def main():
        kw = {"e2e": e2e_of("ied@memory.test"), **limits()}
        async with memory_served(
            clients=1, server_kw=kw, client_kw=lambda i: {"e2e": e2e_of(f"ops{i}@memory.test")}
        ) as (server, (c0,), net):
            slow = await c0.associate(server.jid)
            await slow.enable_reporting(
                URCB, buffered=False, TrgOps=T.DATA_CHANGE, OptFlds=OPT, BufTm=0
            )
            net.hold(STALLED)
            for n in range(60):
                server.model.update(IND1, n % 2 == 0)
                if n % 3 == 0:  # bursts within one millisecond (same E2E time, next seq)
                    await asyncio.sleep(0)
            await until(lambda: server.core.get(STALLED, slow.id) is None, 2, "the abort")
            assert server.outbox.dropped_reports == 0 and server.outbox.aborted == 1
            assert not server.outbox
            net.release(STALLED)
            # what had reached the network arrives, in sequence: the E2E layer sees no gap
            got = await reports_of(slow, 1)
            await asyncio.sleep(0.2)
            while not slow._reports.empty():
                got.append(slow._reports.get_nowait())
            assert [r.seq_num for r in got] == list(range(len(got)))
            assert "out_of_sequence" not in caplog.text and "DtSecAbort" not in caplog.text

    run(main(), 15)


@pytest.mark.timeout(15)
def test_nothing_is_handed_to_a_link_that_is_down_and_a_lost_link_drops_the_queues() -> None:
    """While the IED's own link is down (resuming), items wait in the bounded queues, not in
    the XMPP library; resumed, they leave in order; lost for good, the queues go and BRCB
    entries count as not delivered."""

    async def main():
        async with memory_served(clients=1, server_kw=limits()) as (server, (c0,), _):
            ied = await c0.associate(server.jid)
            await ied.enable_reporting(
                URCB, buffered=False, TrgOps=T.DATA_CHANGE, OptFlds=OPT, BufTm=0
            )
            key = (c0.transport.full_jid, ied.id)
            server.transport.suspend()
            for n in range(30):
                server.model.update(IND1, n % 2 == 0)
                await asyncio.sleep(0)
                assert server.outbox.waiting(key)[0] <= 10  # the bound holds while down
            assert server.outbox.waiting(key)[0] == 10 and server.outbox.dropped_reports > 0
            server.transport.resume()
            await until(lambda: not server.outbox, 2, "the queue drained after resumption")
            got = await reports_of(ied, 10)
            seqs = [r.seq_num for r in got]  # the newest ten, in order
            assert seqs == list(range(seqs[0], seqs[0] + 10)) and seqs[0] > 0
            # down again, then lost for good: what waited is dropped with the association
            await ied.enable_reporting(BRCB, buffered=True, TrgOps=T.DATA_CHANGE, OptFlds=BUF_OPT)
            server.transport.suspend()
            server.model.update(TOTW, 1.0)
            await asyncio.sleep(0.05)
            assert server.outbox.holds(key)
            server.transport.drop_link("gone")
            assert not server.outbox and server.core.get(*key) is None
            (buf,) = [
                r.buffer for r in server.reports.rcbs.values() if r.buffer and r.buffer.entries
            ]
            assert buf.delivered < buf.entries[-1].entry_id  # a resync gets it again

    run(main(), 15)


@pytest.mark.timeout(15)
def test_what_waits_is_encoded_once_and_sent_as_encoded(monkeypatch) -> None:
    """The outbox measures an item by encoding it; those bytes are what the transport sends."""
    from gridbind.iec61850 import codec

    async def main():
        async with memory_served(clients=1, server_kw=limits()) as (server, (c0,), net):
            ied = await c0.associate(server.jid)
            await ied.enable_reporting(
                URCB, buffered=False, TrgOps=T.DATA_CHANGE, OptFlds=OPT, BufTm=0
            )
            encodes = []
            real = codec.Codec.to_element

            def counted(self, obj, **kw):
                encodes.append(type(obj).__name__)
                return real(self, obj, **kw)

            monkeypatch.setattr(codec.Codec, "to_element", counted)
            net.hold(STALLED)
            for n in range(8):
                server.model.update(IND1, n % 2 == 1)
                await asyncio.sleep(0)
            waiting = server.outbox.waiting((STALLED, ied.id))[0]
            assert waiting >= 3
            before = len(encodes)
            net.release(STALLED)
            await until(lambda: not server.outbox, 2, "drained")
            assert len(encodes) == before  # sending what waited encoded nothing again
            got = await reports_of(ied, 7)
            assert [r.seq_num for r in got] == list(range(7))

    run(main(), 15)


def test_the_xmpp_adapter_reports_its_stream_backlog(tmp_path) -> None:
    """One stream for every peer: its write buffer and the stanzas slixmpp has not written."""
    from types import SimpleNamespace

    from gridbind.iec61850.xmpp import IecXmpp, XmppSettings

    ca = tmp_path / "ca.pem"
    ca.write_text("")  # never read: nothing connects
    xmpp = IecXmpp(XmppSettings(jid="ied@example.test", ca_file=ca))
    assert xmpp.backlog("ops@example.test/IEC") == 0 and not xmpp.connected  # no room
    stream = SimpleNamespace(get_write_buffer_size=lambda: 700)
    xmpp._client = SimpleNamespace(transport=stream, waiting_queue=asyncio.Queue())  # type: ignore[assignment]
    xmpp._client.waiting_queue.put_nowait("stanza")
    assert xmpp.backlog("ops@example.test/IEC") == 700 + 512
    assert xmpp.backlog("other@example.test/IEC") == 700 + 512


def test_the_xmpp_adapter_sends_an_encoded_payload_as_is(tmp_path) -> None:
    """The outbox's bytes go on the wire as they are, in a message or an iq result."""
    import xml.etree.ElementTree as ET

    from cryptography.hazmat.primitives.serialization import Encoding

    from gridbind.iec61850 import xmppwire
    from gridbind.iec61850.e2e_certs import make_ca
    from gridbind.iec61850.envelope import ClearContext
    from gridbind.iec61850.stanza import Received, payload_bytes
    from gridbind.iec61850.xmpp import IecXmpp, XmppSettings

    ca = tmp_path / "ca.pem"
    ca.write_bytes(make_ca().certificate.public_bytes(Encoding.PEM))
    xmpp = IecXmpp(XmppSettings(jid="ied@example.test", ca_file=ca), lambda item: None)
    client = xmpp._build()
    sent = []
    client.send = lambda stanza, use_filters=True: sent.append(xmppwire.serialise(stanza))
    xmpp._client = client
    payload = ClearContext("ops@example.test/IEC", "1").seal(
        mms.confirmed_request(1, mms.get_name_list("domain", "vmdSpecific")), 0.0
    )
    data = payload_bytes(payload, xmpp._gate)
    xmpp.send_encoded("ops@example.test/IEC", data)
    xmpp.reply_encoded(Received("iq", "get", "ops@example.test/IEC", "q1"), data)
    for wire, tag, kind in zip(sent, (b"<message ", b"<iq "), ("normal", "result"), strict=True):
        stanza = ET.fromstring(wire.replace(tag, tag + b'xmlns="jabber:client" ', 1))
        assert stanza.get("to") == "ops@example.test/IEC" and stanza.get("type") == kind
        assert ET.tostring(stanza[0]) == ET.tostring(ET.fromstring(data))


@pytest.mark.timeout(10)
def test_serve_exposes_the_association_caps_and_the_outbox_bound() -> None:
    from gridbind.cli import build_parser
    from gridbind.iec61850.cli import server_limits

    base = ["iec61850", "serve", "--scl", "x.scd", "--ca", "ca.pem"]
    args = build_parser().parse_args(
        [*base, "--max-associations-per-peer", "1", "--outbox-max-pdus", "5",
         "--outbox-max-bytes", "9000", "--outbox-policy", "abort"]
    )  # fmt: skip
    kw = server_limits(args)
    assert kw["outbox"] == OutboxLimits(max_pdus=5, max_bytes=9000, policy="abort")
    assert server_limits(build_parser().parse_args(base))["max_associations_per_peer"] == 8
    for bad in (["--max-associations-per-peer", "0"], ["--outbox-policy", "block"]):
        with pytest.raises(SystemExit):
            build_parser().parse_args([*base, *bad])

    async def main():
        async with memory_served(server_kw=kw) as (server, (client,), _):
            await client.associate(server.jid)
            with pytest.raises(ServiceFailed, match="at most 1 per peer"):
                await client.associate(server.jid)
            assert server.outbox.limits.policy == "abort"

    run(main(), 10)


@settings(max_examples=200, deadline=None)
@given(
    ops=st.lists(
        st.one_of(
            st.tuples(st.just("put"), st.integers(1, 400), st.sampled_from(["answer", "u", "b"])),
            st.tuples(st.just("pop"), st.just(0), st.just("")),
        ),
        max_size=60,
    )
)
def test_outbox_invariants(ops) -> None:
    """Never above the bound; order kept; only unbuffered reports ever dropped (else abort)."""
    limits = OutboxLimits(max_pdus=6, max_bytes=1000)
    box = Outbox(limits)
    model: list[tuple[int, str]] = []  # what should wait, in order
    for n, (op, size, kind) in enumerate(ops):
        if op == "pop":
            head = box.pop("k")
            assert (head.item if head else None) == (model.pop(0)[0] if model else None)
            continue
        verdict = box.put("k", n, size, object() if kind != "answer" else None, kind == "u")
        dropped = {q.item for q in verdict.dropped}
        assert all(kind == "u" for item, kind in model if item in dropped)
        model = [(i, k) for i, k in model if i not in dropped]
        if verdict.abort:
            box.discard("k")
            model = []
        else:
            model.append((n, kind))
        count, octets = box.waiting("k")
        assert count == len(model) <= limits.max_pdus and octets <= limits.max_bytes


@pytest.mark.timeout(15)
def test_a_concluded_association_keeps_only_its_answers_and_counts_against_the_peer() -> None:
    """Associate, flood, conclude: the queue keeps the conclude's answer only (its reports
    go), and until it drains it takes one of the peer's association slots."""

    async def main():
        kw = {"max_associations_per_peer": 1, **limits()}
        async with memory_served(clients=1, server_kw=kw) as (server, (c0,), _):
            ied = await c0.associate(server.jid)
            await ied.enable_reporting(
                URCB, buffered=False, TrgOps=T.DATA_CHANGE, OptFlds=OPT, BufTm=0
            )
            key = (c0.transport.full_jid, ied.id)
            server.transport.backlog = lambda to: 1 << 30  # the IED's stream is backed up
            for n in range(15):
                server.model.update(IND1, n % 2 == 0)
                await asyncio.sleep(0)
            assert server.outbox.waiting(key)[0] == 10
            conclude = asyncio.create_task(ied.conclude())
            await until(lambda: server.core.get(*key) is None, 2, "the conclude")
            assert server.outbox.waiting(key)[0] == 1  # the conclude's answer, nothing else
            # the lingering queue holds the peer's one slot: a new association is refused
            with pytest.raises(ServiceFailed, match="at most 1 per peer"):
                await c0.associate(server.jid)
            del server.transport.backlog
            await asyncio.wait_for(conclude, 2)
            assert not server.outbox
            again = await c0.associate(server.jid)  # drained: the slot is free
            assert again.open

    run(main(), 15)


@pytest.mark.timeout(15)
def test_with_the_ieds_own_stream_backed_up_the_busiest_association_pays() -> None:
    """XMPP's signal is the IED's one stream, the same for every peer: when it backs up every
    association waits; the busy one loses its oldest reports, the quiet one keeps its answer."""

    async def main():
        async with memory_served(clients=2, server_kw=limits()) as (server, (c0, c1), net):
            busy = await c0.associate(server.jid)
            quiet = await c1.associate(server.jid)
            await busy.enable_reporting(
                URCB, buffered=False, TrgOps=T.DATA_CHANGE, OptFlds=OPT, BufTm=0
            )
            net.hold_stream(server.jid)
            for n in range(4):  # past high_water: the stream is backed up for every peer
                server.model.update(IND1, n % 2 == 0)
                await asyncio.sleep(0)
            assert server.transport.backlog(c1.transport.full_jid) >= 1500
            read = asyncio.create_task(quiet.get_data_values("FDR1LD0/GGIO1.IntIn1.stVal", "ST"))
            busy_key = (c0.transport.full_jid, busy.id)
            quiet_key = (c1.transport.full_jid, quiet.id)
            await until(lambda: server.outbox.holds(quiet_key), 2, "the answer waits too")
            for n in range(40):
                server.model.update(IND1, n % 2 == 1)
                await asyncio.sleep(0)
                assert server.outbox.waiting(busy_key)[0] <= 10
            assert server.outbox.waiting(busy_key)[0] == 10 and server.outbox.dropped_reports > 0
            assert server.outbox.waiting(quiet_key)[0] == 1  # within its bound, not dropped
            assert server.core.get(*quiet_key) is not None
            net.release_stream(server.jid)
            assert await asyncio.wait_for(read, 2) == 42
            await until(lambda: not server.outbox, 2, "both queues drained")

    run(main(), 15)


# ------------------------------------------------------------------ segmented reports
SEG_OPT = (
    OptFlds.SEQUENCE_NUMBER | OptFlds.REPORT_TIME_STAMP | OptFlds.REASON_FOR_INCLUSION
    | OptFlds.DATA_SET_NAME | OptFlds.DATA_REFERENCE | OptFlds.CONF_REVISION
    | OptFlds.SEGMENTATION
)  # fmt: skip


def stall_after_messages(server, n: int) -> None:
    """The transport has room for ``n`` more messages, then none (until ``backlog`` is reset)."""
    sent = []
    real = server.transport.send_message

    def send_message(to, payload):
        sent.append(to)
        real(to, payload)

    server.transport.send_message = send_message
    server.transport.backlog = lambda to: 0 if len(sent) < n else 1 << 30


@pytest.mark.timeout(15)
def test_a_segmented_report_leaves_whole_once_its_first_segment_left() -> None:
    async def main():
        kw = {"max_pdu_size": 1800, **limits()}
        async with memory_served(clients=1, server_kw=kw) as (server, (c0,), _):
            ied = await c0.associate(server.jid)
            await ied.enable_reporting(
                URCB, buffered=False, TrgOps=T.DATA_CHANGE | T.GENERAL_INTERROGATION,
                OptFlds=SEG_OPT, BufTm=0,
            )  # fmt: skip
            stall_after_messages(server, 1)
            gi = asyncio.create_task(ied.set_urcb_values(URCB, GI=True))
            await until(lambda: server.outbox, 2, "the rest of the GI report waits")
            for n in range(30):  # newer reports crowd the queue: they go, not the GI segments
                server.model.update(IND1, n % 2 == 0)
                await asyncio.sleep(0)
            assert server.outbox.dropped_reports > 0
            del server.transport.backlog
            await gi
            parts = []
            async for r in ied.report_stream():
                parts.append(r)
                if not r.more_segments_follow:
                    break
            assert len(parts) > 1 and [p.sub_seq_num for p in parts] == list(range(len(parts)))

    run(main(), 15)


@pytest.mark.timeout(15)
def test_no_queue_is_made_again_for_an_association_aborted_for_its_queue() -> None:
    """Items of one batch after the one that aborted the association (an operate's outputs,
    several PDUs sealed together) leave or go; they make no queue for a dead association."""
    from gridbind.generated.iec61850_8_2 import scsm_8_2 as m
    from gridbind.iec61850 import mms
    from gridbind.iec61850 import mmsdata as d

    def pdu(n: int):
        return mms.information_report(mms.vmd("RPT"), [m.AccessResult(choice=d.integer(n))])

    async def main():
        kw = {"outbox": OutboxLimits(high_water=1500, max_pdus=1, policy="abort")}
        async with memory_served(clients=1, server_kw=kw) as (server, (c0,), net):
            ied = await c0.associate(server.jid)
            (assoc,) = server.associations
            net.hold(STALLED)
            server.send_information_report(assoc, pdu(0))  # fills the network: no more room
            while net.held(STALLED) < 1500:
                server.send_information_report(assoc, pdu(0))
            now = server.wall_time()
            batch = [
                o for n in (1, 2, 3) for o in server.protocol.information_report(assoc, pdu(n), now)
            ]
            server._emit(batch)  # 1 waits, 2 passes the bound (the abort), 3 must not queue
            assert server.outbox.aborted == 1 and server.core.get(*assoc.key) is None
            assert not server.outbox
            assert ied.id == assoc.id

    run(main(), 15)


@pytest.mark.timeout(15)
def test_a_transport_that_refuses_a_held_item_does_not_stop_the_drain(caplog) -> None:
    async def main():
        async with memory_served(clients=1, server_kw=limits()) as (server, (c0,), net):
            ied = await c0.associate(server.jid)
            await ied.enable_reporting(
                URCB, buffered=False, TrgOps=T.DATA_CHANGE, OptFlds=OPT, BufTm=0
            )
            net.hold(STALLED)
            for n in range(6):
                server.model.update(IND1, n % 2 == 1)
                await asyncio.sleep(0)
            assert server.outbox.waiting((STALLED, ied.id))[0] >= 3
            real, calls = server.transport.send_encoded, []

            def refuse_first(to, data):
                calls.append(to)
                if len(calls) == 1:
                    raise RuntimeError("refused")
                real(to, data)

            server.transport.send_encoded = refuse_first
            net.release(STALLED)
            await until(lambda: not server.outbox, 2, "the rest drained")
            assert len(calls) >= 3 and "sending a held item" in caplog.text

    run(main(), 15)


@pytest.mark.prosody
@pytest.mark.timeout(30)
def test_held_reports_and_answers_leave_encoded_over_prosody(prosody, xmpp_account) -> None:
    """Over a real stream: while the IED's stream counts as backed up, reports and an answer
    wait; then they leave as the bytes the outbox encoded (send_encoded, reply_encoded)."""
    from pathlib import Path

    from gridbind.iec61850.client import Client
    from gridbind.iec61850.scl import load_scl
    from gridbind.iec61850.server import IedServer

    from iec_testkit import settings

    feeder = Path(__file__).parent / "data" / "feeder.scd"

    async def main():
        server = IedServer(load_scl(feeder), settings(prosody, xmpp_account("held")), **limits())
        client = Client(settings(prosody, xmpp_account("reader")))
        await asyncio.gather(server.start(), client.connect())
        try:
            ied = await client.associate(server.jid)
            await ied.enable_reporting(
                URCB, buffered=False, TrgOps=T.DATA_CHANGE, OptFlds=OPT, BufTm=0
            )
            encoded = []
            for name in ("send_encoded", "reply_encoded"):
                real = getattr(server.transport, name)

                def spy(*args, _real=real, _name=name):
                    encoded.append(_name)
                    _real(*args)

                setattr(server.transport, name, spy)
            server.transport.backlog = lambda to: 1 << 30
            for n in range(5):
                server.model.update(IND1, n % 2 == 1)
                await asyncio.sleep(0)
            read = asyncio.create_task(ied.get_data_values("FDR1LD0/GGIO1.IntIn1.stVal", "ST"))
            key = (client.transport.full_jid, ied.id)
            await until(lambda: server.outbox.waiting(key)[0] == 6, 3, "5 reports, 1 answer")
            del server.transport.backlog
            assert await asyncio.wait_for(read, 5) == 42
            got = await reports_of(ied, 5, 5.0)
            assert [r.seq_num for r in got] == list(range(5))
            assert encoded.count("send_encoded") == 5 and encoded.count("reply_encoded") == 1
        finally:
            await asyncio.gather(client.close(), server.close())

    run(main(), 25)
