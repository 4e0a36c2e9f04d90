"""Reporting on the in-memory transport: every trigger option, integrity, GI, BufTm, URCB
reservation, the write rules, segmentation, and buffered reports across a lost client."""

from __future__ import annotations

import asyncio

import pytest

from gridbind.iec61850.client_protocol import DataAccessFailed
from gridbind.iec61850.mmsdata import OptFlds
from gridbind.iec61850.mmsdata import ReasonForInclusion as R
from gridbind.iec61850.mmsdata import TriggerConditions as T
from gridbind.iec61850.model import quality_bits

from iec_testkit import memory_served, run, until

URCB = "FDR1LD0/LLN0.urcbStatus01"
URCB2 = "FDR1LD0/LLN0.urcbStatus02"
BRCB = "FDR1LD0/LLN0.brcbMeas"
ALL_OPT = (
    OptFlds.SEQUENCE_NUMBER | OptFlds.REPORT_TIME_STAMP | OptFlds.REASON_FOR_INCLUSION
    | OptFlds.DATA_SET_NAME | OptFlds.DATA_REFERENCE | OptFlds.CONF_REVISION
)  # fmt: skip
IND1 = "FDR1LD0/GGIO1$ST$Ind1$stVal"


async def next_reports(ied, n: int, timeout: float = 2.0) -> list:
    out = []

    async def collect():
        async for r in ied.report_stream():
            out.append(r)
            if len(out) == n:
                return

    await asyncio.wait_for(collect(), timeout)
    return out


async def no_report(ied, wait: float = 0.15) -> None:
    with pytest.raises(asyncio.TimeoutError):
        await next_reports(ied, 1, wait)


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    "trg, expected",
    [
        (T.DATA_CHANGE, [(0, R.DATA_CHANGE, False)]),
        (T.QUALITY_CHANGE, [(1, R.QUALITY_CHANGE, quality_bits("invalid"))]),
        (
            T.DATA_UPDATE,
            [],  # Ind1.stVal and q have no dupd in the SCL: nothing is an update
        ),
        (
            T.DATA_CHANGE | T.QUALITY_CHANGE,
            [(0, R.DATA_CHANGE, False), (1, R.QUALITY_CHANGE, quality_bits("invalid"))],
        ),
    ],
)
def test_each_trigger_option_gives_exactly_its_reports(trg, expected) -> None:
    async def main():
        async with memory_served() as (server, (client,), _):
            ied = await client.associate(server.jid)
            res = await ied.enable_reporting(
                URCB, buffered=False, TrgOps=trg, OptFlds=ALL_OPT, BufTm=0, IntgPd=0
            )
            assert set(res.values()) == {None}
            server.model.update("FDR1LD0/GGIO1.Ind1.stVal", False)  # dchg on member 0
            server.model.update("FDR1LD0/GGIO1.Ind1.q", quality_bits("invalid"))  # qchg member 1
            server.model.update("FDR1LD0/GGIO1.Ind1.stVal", False)  # unchanged: no dchg
            got = await next_reports(ied, len(expected)) if expected else []
            await no_report(ied)
            assert [(r.values[0].index, r.values[0].reason, r.values[0].value) for r in got] == [
                (i, reason, value) for i, reason, value in expected
            ]
            for n, r in enumerate(got):
                assert r.rpt_id == "FDR1/Status" and r.seq_num == n and r.conf_rev == 1
                assert r.dat_set == "FDR1LD0/LLN0$Status"
                assert len(r.inclusion) == 4 and r.inclusion.count("1") == 1
                assert r.values[0].reference in (IND1, "FDR1LD0/GGIO1$ST$Ind1$q")

    run(main(), 10)


@pytest.mark.timeout(10)
def test_data_update_of_a_dupd_attribute_reports_unchanged_values() -> None:
    async def main():
        async with memory_served() as (server, (client,), _):
            # Ind2 is an SPS whose q has qchg; make stVal a dupd attribute for this test
            stval = server.model.find("FDR1LD0/GGIO1.Ind2.stVal", "ST")
            stval.trigger = frozenset({"dupd"})
            ied = await client.associate(server.jid)
            await ied.enable_reporting(URCB, buffered=False, TrgOps=T.DATA_UPDATE, OptFlds=ALL_OPT)
            server.model.update("FDR1LD0/GGIO1.Ind2.stVal", False)
            server.model.update("FDR1LD0/GGIO1.Ind2.stVal", False)
            got = await next_reports(ied, 2)
            await no_report(ied)
            assert [(r.values[0].index, r.values[0].reason) for r in got] == [
                (2, R.DATA_UPDATE),
                (2, R.DATA_UPDATE),
            ]
            # a whole-DO member: the value is the structure (stVal, q, t)
            assert got[0].values[0].reference == "FDR1LD0/GGIO1$ST$Ind2"
            assert got[0].values[0].value[0] is False

    run(main(), 10)


@pytest.mark.timeout(10)
def test_buffer_time_aggregates_and_a_second_change_sends_at_once() -> None:
    async def main():
        async with memory_served() as (server, (client,), _):
            ied = await client.associate(server.jid)
            await ied.enable_reporting(
                URCB, buffered=False, TrgOps=T.DATA_CHANGE | T.QUALITY_CHANGE,
                OptFlds=ALL_OPT, BufTm=200,
            )  # fmt: skip
            server.model.update("FDR1LD0/GGIO1.Ind1.stVal", False)
            server.model.update("FDR1LD0/GGIO1.Ind1.q", quality_bits("invalid"))
            await no_report(ied, 0.1)  # still within BufTm
            (r,) = await next_reports(ied, 1, 1.0)
            assert r.inclusion == "1100"
            assert [(v.index, v.reason) for v in r.values] == [
                (0, R.DATA_CHANGE),
                (1, R.QUALITY_CHANGE),
            ]
            # the same member twice within BufTm: the first report leaves at once
            server.model.update("FDR1LD0/GGIO1.Ind1.stVal", True)
            server.model.update("FDR1LD0/GGIO1.Ind1.stVal", False)
            first = await next_reports(ied, 1, 0.1)
            assert first[0].values[0].value is True
            second = await next_reports(ied, 1, 1.0)
            assert second[0].values[0].value is False
            assert [first[0].seq_num, second[0].seq_num] == [1, 2]

    run(main(), 10)


@pytest.mark.timeout(10)
def test_integrity_period_and_general_interrogation() -> None:
    async def main():
        async with memory_served() as (server, (client,), _):
            ied = await client.associate(server.jid)
            await ied.enable_reporting(
                URCB, buffered=False, TrgOps=T.INTEGRITY | T.GENERAL_INTERROGATION,
                OptFlds=ALL_OPT, IntgPd=150, gi=True,
            )  # fmt: skip
            (gi,) = await next_reports(ied, 1, 0.1)
            assert gi.inclusion == "1111"
            assert {v.reason for v in gi.values} == {R.GENERAL_INTERROGATION}
            assert gi.by_reference()[IND1] is True
            assert gi.by_reference()["MEAS/MMXU1$MX$TotW$mag$f".replace("MEAS", "FDR1MEAS")]
            assert (await ied.get_urcb_values(URCB))["GI"] is False
            # GI is answered only with general-interrogation in TrgOps
            await ied.enable_reporting(URCB2, buffered=False, TrgOps=T.INTEGRITY, IntgPd=0, gi=True)
            assert await ied.set_urcb_values(URCB2, GI=True) == {"GI": None}
            server.model.update("FDR1LD0/GGIO1.Ind1.stVal", False)  # dchg not in TrgOps
            # Integrity reports only: the change shows in the next one (on a loaded machine an
            # integrity report may already have left between enabling and the update).
            reports = []
            while not reports or reports[-1].by_reference()[IND1] is not False:
                assert len(reports) < 4, "the change never showed in an integrity report"
                reports += await next_reports(ied, 1, 1.0)
            reports += await next_reports(ied, 1, 1.0)
            for r in reports:
                assert r.inclusion == "1111" and {v.reason for v in r.values} == {R.INTEGRITY}
            first, second = reports[-2:]
            assert second.by_reference()[IND1] is False
            # one integrity period apart (never sooner; later only by the machine's load)
            assert 0.1 < second.time_of_entry.to_float() - first.time_of_entry.to_float() < 1.0

    run(main(), 10)


@pytest.mark.timeout(10)
def test_two_clients_use_their_own_urcb_instances_and_reservations() -> None:
    async def main():
        async with memory_served(clients=2) as (server, (c1, c2), _):
            a = await c1.associate(server.jid)
            b = await c2.associate(server.jid)
            await a.enable_reporting(URCB, buffered=False, TrgOps=T.DATA_CHANGE, OptFlds=ALL_OPT)
            # the instance is a's: b can neither write nor enable it
            with pytest.raises(DataAccessFailed, match="temporarily-unavailable"):
                await b.enable_reporting(URCB, buffered=False)
            values = await b.get_urcb_values(URCB)
            assert values["Resv"] is True and values["RptEna"] is True
            assert values["Owner"] == c1.transport.full_jid.encode()
            await b.enable_reporting(URCB2, buffered=False, TrgOps=T.DATA_CHANGE, OptFlds=ALL_OPT)
            server.model.update("FDR1LD0/GGIO1.Ind1.stVal", False)
            (ra,) = await next_reports(a, 1)
            (rb,) = await next_reports(b, 1)
            assert ra.values[0].value is False and rb.values[0].value is False
            # locked while enabled; Resv cannot be dropped while enabled
            res = await a.set_urcb_values(URCB, DatSet="FDR1LD0/LLN0.Measurements", Resv=False)
            assert res == {"Resv": "temporarily-unavailable", "DatSet": "temporarily-unavailable"}
            # a leaves: its instance is free again (disabled, unreserved)
            await a.conclude()
            await until(lambda: not server.associations[0].peer.startswith("ops0"), 2, "ended")
            values = await b.get_urcb_values(URCB)
            assert values["Resv"] is False and values["RptEna"] is False and values["Owner"] == b""
            await b.disable_reporting(URCB2, buffered=False)
            res = await b.set_urcb_values(URCB, DatSet="FDR1LD0/LLN0.Measurements", Resv=True)
            assert res == {"Resv": None, "DatSet": None}
            values = await b.get_urcb_values(URCB)
            assert values["ConfRev"] == 2 and values["Resv"] is True

    run(main(), 10)


@pytest.mark.timeout(10)
def test_enable_needs_a_data_set_and_sqnum_restarts() -> None:
    async def main():
        async with memory_served() as (server, (client,), _):
            ied = await client.associate(server.jid)
            res = await ied.set_urcb_values(URCB, DatSet="FDR1LD0/LLN0.Nope")
            assert res == {"DatSet": "object-value-invalid"}
            await ied.enable_reporting(URCB, buffered=False, TrgOps=T.DATA_CHANGE, OptFlds=ALL_OPT)
            server.model.update("FDR1LD0/GGIO1.Ind1.stVal", False)
            server.model.update("FDR1LD0/GGIO1.Ind1.stVal", True)
            assert [r.seq_num for r in await next_reports(ied, 2)] == [0, 1]
            assert (await ied.get_urcb_values(URCB))["SqNum"] == 2
            await ied.disable_reporting(URCB, buffered=False)
            await ied.enable_reporting(URCB, buffered=False)
            server.model.update("FDR1LD0/GGIO1.Ind1.stVal", False)
            assert [r.seq_num for r in await next_reports(ied, 1)] == [0]

    run(main(), 10)


@pytest.mark.timeout(10)
def test_a_report_larger_than_the_pdu_size_is_segmented() -> None:
    async def main():
        async with memory_served(server_kw={"max_pdu_size": 1800}) as (server, (client,), _):
            ied = await client.associate(server.jid)
            await ied.enable_reporting(
                URCB, buffered=False, TrgOps=T.GENERAL_INTERROGATION,
                OptFlds=ALL_OPT | OptFlds.SEGMENTATION, gi=True,
            )  # fmt: skip
            parts = []
            async for r in ied.report_stream():
                parts.append(r)
                if not r.more_segments_follow:
                    break
            assert len(parts) > 1
            assert [p.sub_seq_num for p in parts] == list(range(len(parts)))
            assert {p.seq_num for p in parts} == {0}
            assert sorted(v.index for p in parts for v in p.values) == [0, 1, 2, 3]

    run(main(), 10)


BUF_OPT = (
    OptFlds.SEQUENCE_NUMBER | OptFlds.ENTRY_ID | OptFlds.BUFFER_OVERFLOW | OptFlds.DATA_REFERENCE
)
TOTW = "FDR1MEAS/MMXU1.TotW.mag.f"


async def lose_client(server, client) -> None:
    """Cut the client's link: the server learns it from presence and aborts."""
    client.transport.drop_link("cable cut")
    await until(lambda: not server.associations, 2, "server-side abort")


async def resume(server, net, entry_id: bytes):
    from gridbind.iec61850.client import Client

    again = Client(transport=net.endpoint("ops0@memory.test"))
    await again.connect()
    ied = await again.associate(server.jid)
    res = await ied.enable_reporting(BRCB, buffered=True, EntryID=entry_id)
    assert res == {"EntryID": None, "RptEna": None}
    return again, ied


@pytest.mark.timeout(10)
def test_buffered_reports_survive_a_lost_client_and_resume_after_its_entry_id() -> None:
    async def main():
        async with memory_served(clients=2) as (server, (c1, c2), net):
            ied = await c1.associate(server.jid)
            await ied.enable_reporting(
                BRCB, buffered=True, TrgOps=T.DATA_CHANGE, OptFlds=BUF_OPT, ResvTms=5
            )
            for n in range(3):
                server.model.update(TOTW, 100.0 + n)
            got = await next_reports(ied, 3)
            assert [r.values[0].value[0][0] for r in got] == [100.0, 101.0, 102.0]
            last = got[-1].entry_id
            values = await ied.get_brcb_values(BRCB)
            assert values["EntryID"] == last and values["Owner"] == c1.transport.full_jid.encode()
            await lose_client(server, c1)
            for n in range(4):
                server.model.update(TOTW, 200.0 + n)
            await asyncio.sleep(0.05)
            # reserved for its client (ResvTms): another one cannot take it
            other = await c2.associate(server.jid)
            with pytest.raises(DataAccessFailed, match="temporarily-unavailable"):
                await other.enable_reporting(BRCB, buffered=True)
            again, ied = await resume(server, net, last)
            try:
                got = await next_reports(ied, 4)
                await no_report(ied)
                assert [r.values[0].value[0][0] for r in got] == [200.0, 201.0, 202.0, 203.0]
                assert [r.buf_ovfl for r in got] == [False] * 4
                ids = [int.from_bytes(r.entry_id, "big") for r in got]
                assert ids == list(range(ids[0], ids[0] + 4)) and ids[0] > int.from_bytes(
                    last, "big"
                )
                assert got[0].values[0].reference == "FDR1MEAS/MMXU1$MX$TotW"
            finally:
                await again.close()

    run(main(), 10)


@pytest.mark.timeout(10)
def test_overflow_while_away_sets_bufovfl_and_keeps_what_fit() -> None:
    async def main():
        async with memory_served(server_kw={"report_buffer_entries": 3}) as (server, (c1,), net):
            ied = await c1.associate(server.jid)
            await ied.enable_reporting(BRCB, buffered=True, TrgOps=T.DATA_CHANGE, OptFlds=BUF_OPT)
            server.model.update(TOTW, 1.0)
            (first,) = await next_reports(ied, 1)
            await lose_client(server, c1)
            for n in range(5):
                server.model.update(TOTW, 10.0 + n)
            await asyncio.sleep(0.05)
            again, ied = await resume(server, net, first.entry_id)
            try:
                got = await next_reports(ied, 3)
                await no_report(ied)
                assert [r.values[0].value[0][0] for r in got] == [12.0, 13.0, 14.0]
                assert [r.buf_ovfl for r in got] == [True, False, False]
            finally:
                await again.close()

    run(main(), 10)


@pytest.mark.timeout(10)
def test_purge_buffer_and_entry_id_write_rules() -> None:
    async def main():
        async with memory_served() as (server, (c1,), _):
            ied = await c1.associate(server.jid)
            await ied.enable_reporting(BRCB, buffered=True, TrgOps=T.DATA_CHANGE, OptFlds=BUF_OPT)
            # locked while enabled
            res = await ied.set_brcb_values(BRCB, PurgeBuf=True, EntryID=b"\0" * 8)
            assert res == {
                "PurgeBuf": "temporarily-unavailable",
                "EntryID": "temporarily-unavailable",
            }
            await ied.disable_reporting(BRCB, buffered=True)
            assert (await ied.get_brcb_values(BRCB))["Owner"] == b""  # ResvTms 0: free again
            server.model.update(TOTW, 5.0)  # buffered while disabled
            await asyncio.sleep(0.05)
            # an EntryID the server never issued is refused (one of an earlier run of the
            # server is below the current ones: a resume from the oldest, with BufOvfl)
            res = await ied.set_brcb_values(BRCB, EntryID=(1 << 62).to_bytes(8, "big"))
            assert res == {"EntryID": "object-value-invalid"}
            assert await ied.set_brcb_values(BRCB, PurgeBuf=True) == {"PurgeBuf": None}
            assert (await ied.get_brcb_values(BRCB))["PurgeBuf"] is False
            await ied.enable_reporting(BRCB, buffered=True, EntryID=b"\0" * 8)
            await no_report(ied)  # the purged entry is gone
            server.model.update(TOTW, 6.0)
            (r,) = await next_reports(ied, 1)
            assert r.values[0].value[0][0] == 6.0

    run(main(), 10)


@pytest.mark.timeout(10)
def test_a_brcb_reservation_ends_after_resvtms() -> None:
    async def main():
        async with memory_served(clients=2) as (server, (c1, c2), _):
            ied = await c1.associate(server.jid)
            await ied.enable_reporting(BRCB, buffered=True, TrgOps=T.DATA_CHANGE, ResvTms=1)
            await lose_client(server, c1)
            other = await c2.associate(server.jid)
            with pytest.raises(DataAccessFailed, match="temporarily-unavailable"):
                await other.enable_reporting(BRCB, buffered=True)
            assert (await other.get_brcb_values(BRCB))["Owner"] == c1.transport.full_jid.encode()
            await asyncio.sleep(1.1)  # the server's timer ends the reservation
            assert (await other.get_brcb_values(BRCB))["Owner"] == b""
            await other.enable_reporting(BRCB, buffered=True, OptFlds=BUF_OPT)
            assert (await other.get_brcb_values(BRCB))["Owner"] == c2.transport.full_jid.encode()

    run(main(), 10)


def test_rptid_defaults_to_the_rcb_reference_and_owner_exists() -> None:
    from gridbind.iec61850.scl import load_scl

    from iec_testkit import FEEDER

    model = load_scl(FEEDER)
    assert model.read(f"{BRCB}.RptID", "BR") == "FDR1LD0/LLN0$BR$brcbMeas"  # rptID left empty
    assert model.read(f"{URCB}.RptID", "RP") == "FDR1/Status"
    assert model.read(f"{URCB}.Owner", "RP") == b"" and model.read(f"{BRCB}.Owner", "BR") == b""


@pytest.mark.timeout(10)
def test_references_come_from_the_data_set_directory_without_data_ref() -> None:
    async def main():
        async with memory_served() as (server, (client,), _):
            ied = await client.associate(server.jid)
            await ied.enable_reporting(
                URCB, buffered=False, TrgOps=T.DATA_CHANGE, OptFlds=OptFlds.DATA_SET_NAME, BufTm=0
            )
            server.model.update("FDR1LD0/GGIO1.Ind1.stVal", False)
            server.model.update(TOTW, 7.5)
            first, second = await next_reports(ied, 2)
            assert first.by_reference() == {IND1: False}
            assert second.by_reference() == {"FDR1MEAS/MMXU1$MX$TotW$mag$f": 7.5}

    run(main(), 10)


@pytest.mark.timeout(10)
def test_unknown_control_block_attributes_are_refused_locally() -> None:
    from gridbind.iec61850 import InvalidArgument

    async def main():
        async with memory_served() as (server, (client,), _):
            ied = await client.associate(server.jid)
            with pytest.raises(InvalidArgument, match="SqNum"):
                await ied.set_urcb_values(URCB, SqNum=3)
            with pytest.raises(InvalidArgument, match="LogRef"):
                await ied.set_lcb_values("FDR1LD0/LLN0.logStatus", LogRef="x")
            # nothing was written before the refusal
            assert (await ied.get_urcb_values(URCB))["SqNum"] == 0

    run(main(), 10)
