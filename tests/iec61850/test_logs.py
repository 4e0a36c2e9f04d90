"""Logs on the in-memory transport: LCB attributes, entries by TrgOps and IntgPd, QueryLogByTime
and QueryLogAfter with paging, the bounded store, and the log surviving a server restart."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from gridbind.iec61850.client import ServiceFailed
from gridbind.iec61850.logs import lcb as lcb_module
from gridbind.iec61850.mmsdata import ReasonForInclusion as R
from gridbind.iec61850.mmsdata import TriggerConditions as T

from iec_testkit import memory_served, run

LCB = "FDR1LD0/LLN0.logStatus"
LOG = "FDR1LD0/LLN0$Events"
IND1 = "FDR1LD0/GGIO1.Ind1.stVal"
BREAKER = Path(__file__).parent / "data" / "breaker.icd"


async def log_changes(server, ied, values) -> float:
    res = await ied.set_lcb_values(LCB, TrgOps=T.DATA_CHANGE, LogEna=True)
    assert res == {"TrgOps": None, "LogEna": None}
    start = time.time() - 1
    for v in values:
        server.model.update(IND1, v)
    return start


@pytest.mark.timeout(10)
def test_lcb_attributes_log_directory_and_services() -> None:
    async def main():
        async with memory_served() as (server, (client,), _):
            ied = await client.associate(server.jid)
            assert "readJournal" in ied.params.services
            values = await ied.get_lcb_values(LCB)
            assert list(values) == [
                "LogEna", "LogRef", "DatSet", "OldEntrTm", "NewEntrTm", "OldEnt", "NewEnt",
                "TrgOps", "IntgPd",
            ]  # fmt: skip
            assert values["LogRef"] == LOG and values["LogEna"] is False
            assert await ied.get_logical_node_directory("FDR1LD0/LLN0", "LOG") == ["Events"]
            assert await ied.get_logical_node_directory("FDR1LD0/GGIO1", "LOG") == []
            # locked while enabled; LogEna needs a data set
            await ied.set_lcb_values(LCB, LogEna=True)
            assert await ied.set_lcb_values(LCB, IntgPd=5) == {"IntgPd": "temporarily-unavailable"}
            with pytest.raises(ServiceFailed, match="object-non-existent"):
                await ied.query_log_by_time("FDR1LD0/LLN0$Nope", 0)
        async with memory_served(BREAKER) as (server, (client,), _):
            ied = await client.associate(server.jid)
            assert "readJournal" not in ied.params.services  # no logs, no readJournal

    run(main(), 10)


@pytest.mark.timeout(10)
def test_entries_by_trigger_and_queries_by_time_and_after_entry_with_paging(monkeypatch) -> None:
    monkeypatch.setattr(lcb_module, "MAX_JOURNAL_PAGE", 4)

    async def main():
        async with memory_served() as (server, (client,), _):
            ied = await client.associate(server.jid)
            flips = [n % 2 == 0 for n in range(11)]  # starts true: the first is no change
            start = await log_changes(server, ied, flips)
            entries = await ied.query_log_by_time(LOG, start)
            assert [e.values[0].value for e in entries] == flips[1:]
            assert {e.values[0].reference for e in entries} == {"FDR1LD0/GGIO1$ST$Ind1$stVal"}
            assert {e.values[0].reason for e in entries} == {R.DATA_CHANGE}
            ids = [int.from_bytes(e.entry_id, "big") for e in entries]
            assert ids == list(range(ids[0], ids[0] + 10))
            after = await ied.query_log_after(LOG, entries[3].time.to_float(), entries[3].entry_id)
            assert [e.entry_id for e in after] == [e.entry_id for e in entries[4:]]
            # by time: a window holds what was logged in it
            await asyncio.sleep(0.05)
            middle = time.time()
            server.model.update(IND1, False)  # (the last flip left it true)
            server.model.update(IND1, True)
            window = await ied.query_log_by_time(LOG, middle, time.time() + 1)
            assert [e.values[0].value for e in window] == [False, True]
            status = await ied.get_log_status_values(LCB)
            assert status["OldEnt"] == entries[0].entry_id
            assert status["NewEnt"] == window[-1].entry_id
            assert status["NewEntrTm"].to_float() == pytest.approx(window[-1].time.to_float())

    run(main(), 10)


@pytest.mark.timeout(10)
def test_integrity_period_logs_every_member(monkeypatch) -> None:
    monkeypatch.setattr(lcb_module, "MIN_LOG_INTEGRITY_MS", 100)  # (1 s by default)

    async def main():
        async with memory_served() as (server, (client,), _):
            ied = await client.associate(server.jid)
            start = time.time() - 1
            res = await ied.set_lcb_values(LCB, TrgOps=T.INTEGRITY, IntgPd=100, LogEna=True)
            assert set(res.values()) == {None}
            await asyncio.sleep(0.35)
            entries = await ied.query_log_by_time(LOG, start)
            assert 2 <= len(entries) <= 4
            for e in entries:
                assert len(e.values) == 4 and {v.reason for v in e.values} == {R.INTEGRITY}

    run(main(), 10)


@pytest.mark.timeout(10)
def test_the_log_is_bounded_and_survives_a_server_restart(tmp_path) -> None:
    db = tmp_path / "logs.sqlite"
    kw = {"log_store": db, "log_entries": 5}

    async def main():
        async with memory_served(server_kw=kw) as (server, (client,), _):
            ied = await client.associate(server.jid)
            start = await log_changes(server, ied, [n % 2 == 1 for n in range(8)])
            before = await ied.query_log_by_time(LOG, start)
            assert [e.values[0].value for e in before] == [n % 2 == 1 for n in range(3, 8)]
        async with memory_served(server_kw=kw) as (server, (client,), _):
            ied = await client.associate(server.jid)
            again = await ied.query_log_by_time(LOG, start)
            assert [(e.entry_id, e.values[0].value) for e in again] == [
                (e.entry_id, e.values[0].value) for e in before
            ]
            after = await ied.query_log_after(LOG, before[1].time.to_float(), before[1].entry_id)
            assert [e.entry_id for e in after] == [e.entry_id for e in before[2:]]
            status = await ied.get_log_status_values(LCB)
            assert (
                status["OldEnt"] == before[0].entry_id and status["NewEnt"] == before[-1].entry_id
            )
            # entry ids go on after the restart
            await log_changes(server, ied, [False])
            newest = await ied.query_log_after(LOG, before[-1].time.to_float(), before[-1].entry_id)
            assert [int.from_bytes(e.entry_id, "big") for e in newest] == [
                int.from_bytes(before[-1].entry_id, "big") + 1
            ]

    run(main(), 10)


@pytest.mark.timeout(10)
def test_hostile_read_journal_requests_are_answered_with_errors() -> None:
    from gridbind.generated.iec61850_8_2 import scsm_8_2 as m
    from gridbind.iec61850 import mms

    rjr = m.ReadJournalRequest

    async def main():
        async with memory_served() as (server, (client,), _):
            ied = await client.associate(server.jid)
            await log_changes(server, ied, [False, True, False])
            for bad, code in [
                (rjr(journal_name=mms.vmd("Events")), "object-non-existent"),
                (rjr(journal_name=mms.dom("FDR1LD0", "LLN0$Nope")), "object-non-existent"),
                (
                    rjr(
                        journal_name=mms.dom("FDR1LD0", "LLN0$Events"),
                        entry_to_start_after=rjr.EntryToStartAfter(
                            time_specification=b"\0" * 6, entry_specification=b"\1"
                        ),
                    ),
                    "other",
                ),
                (
                    rjr(
                        journal_name=mms.dom("FDR1LD0", "LLN0$Events"),
                        range_stop_specification=rjr.RangeStopSpecification(choice=0),
                    ),
                    "other",
                ),
            ]:
                with pytest.raises(ServiceFailed, match=code):
                    await ied.request(mms.request("readJournal", bad))
            # numberOfEntries bounds an answer; an unbounded one is cut to a page
            two = rjr(
                journal_name=mms.dom("FDR1LD0", "LLN0$Events"),
                range_stop_specification=rjr.RangeStopSpecification(choice=2),
            )
            answer = await ied.request(mms.request("readJournal", two))
            assert len(answer.list_of_journal_entry.journal_entry) == 2 and not answer.more_follows

    run(main(), 10)


def _engine_with_entries(tmp_path, count: int):
    from gridbind.iec61850.association import Association, InitiateParams
    from gridbind.iec61850.logs import LogEngine, LogStore
    from gridbind.iec61850.scl import load_scl

    from iec_testkit import FEEDER

    model = load_scl(FEEDER)
    logs = LogEngine(model, LogStore(tmp_path / "l.sqlite"), 100.0)
    model.add_change_listener(lambda a, o, n: logs.notify(a, o, n, 100.0))
    assoc = Association("ops@x/IEC", "a1", InitiateParams(), frozenset())
    cb = model.find(LCB, "LG")
    for name, value in (("TrgOps", T.DATA_CHANGE.to_bits()), ("LogEna", True)):
        logs.stage_write(assoc, cb, cb.children[name], value, 100.0)()
    for n in range(count):
        model.update(IND1, n % 2 == 1)  # starts true: the first is no change
    return logs


def test_number_of_entries_above_a_page_says_more_follow(tmp_path, monkeypatch) -> None:
    from gridbind.generated.iec61850_8_2 import scsm_8_2 as m
    from gridbind.iec61850 import mms

    monkeypatch.setattr(lcb_module, "MAX_JOURNAL_PAGE", 4)
    logs = _engine_with_entries(tmp_path, 11)

    def ask(n: int):
        return logs.read_journal(
            m.ReadJournalRequest(
                journal_name=mms.dom("FDR1LD0", "LLN0$Events"),
                range_stop_specification=m.ReadJournalRequest.RangeStopSpecification(choice=n),
            )
        )

    answer = ask(6)  # more than a page: the rest of the six follows
    assert len(answer.list_of_journal_entry.journal_entry) == 4 and answer.more_follows
    answer = ask(3)  # all asked for fit
    assert len(answer.list_of_journal_entry.journal_entry) == 3 and not answer.more_follows
    answer = ask(4)
    assert len(answer.list_of_journal_entry.journal_entry) == 4 and not answer.more_follows


def test_bad_journal_times_are_refused_with_a_journal_error(tmp_path) -> None:
    from gridbind.generated.iec61850_8_2 import scsm_8_2 as m
    from gridbind.iec61850 import mms

    rjr = m.ReadJournalRequest
    logs = _engine_with_entries(tmp_path, 3)
    name = mms.dom("FDR1LD0", "LLN0$Events")
    day = (100).to_bytes(2, "big")
    for raw in (b"\0\0\0\1", b"\xff\xff\xff\xff" + day, (86_400_000).to_bytes(4, "big") + day):
        for req in (
            rjr(
                journal_name=name,
                range_start_specification=rjr.RangeStartSpecification(
                    choice=rjr.RangeStartSpecification.StartingTime(value=raw)
                ),
            ),
            rjr(journal_name=name, range_stop_specification=rjr.RangeStopSpecification(choice=raw)),
        ):
            with pytest.raises(lcb_module.JournalError) as err:
                logs.read_journal(req)
            assert (err.value.error_class, err.value.code) == ("service", "other")
    # (the entries were logged at 100 s after 1970: all before the 1984 epoch of 6 zeros)
    good = rjr(
        journal_name=name, range_stop_specification=rjr.RangeStopSpecification(choice=b"\0" * 6)
    )
    assert len(logs.read_journal(good).list_of_journal_entry.journal_entry) == 3


def test_entries_of_logs_dropped_from_the_scl_go_at_startup(tmp_path) -> None:
    from gridbind.iec61850.logs import LogEngine, LogStore
    from gridbind.iec61850.scl import load_scl

    from iec_testkit import FEEDER

    store = LogStore(tmp_path / "l.sqlite")
    for log in (LOG, "FDR1LD0/LLN0$Gone"):
        store.add(log, 1.0, [])
        store.add(log, 2.0, [])
    LogEngine(load_scl(FEEDER), store, 10.0, prune=False)  # a store shared with other IEDs
    assert store.status("FDR1LD0/LLN0$Gone")[0] is not None
    LogEngine(load_scl(FEEDER), store, 10.0)
    assert store.status("FDR1LD0/LLN0$Gone") == (None, None)
    old, new = store.status(LOG)
    assert (old.entry_id, new.entry_id) == (1, 2)
    store.add("FDR1LD0/LLN0$Gone", 3.0, [])  # a log that comes back starts over
    assert store.status("FDR1LD0/LLN0$Gone")[1].entry_id == 1
