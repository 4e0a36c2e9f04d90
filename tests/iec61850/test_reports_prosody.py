"""Reports through a real Prosody: delivery in order, buffered reports across a real link loss
resumed by EntryID, and ``gridbind iec61850 watch`` as a real process. Every trigger option and
rule runs in memory in test_reports."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest
from test_iec_cli import served  # noqa: F401 - the CLI server fixture
from test_reports import ALL_OPT, BRCB, BUF_OPT, TOTW, URCB, next_reports, no_report

from gridbind.iec61850.client import Client
from gridbind.iec61850.mmsdata import TriggerConditions as T
from gridbind.iec61850.scl import load_scl
from gridbind.iec61850.server import IedServer

from iec_testkit import FEEDER, run, settings, until

pytestmark = pytest.mark.prosody


@pytest.mark.timeout(60)
def test_reports_are_delivered_in_order(prosody, xmpp_account) -> None:
    async def main():
        server = IedServer(load_scl(FEEDER), settings(prosody, xmpp_account("ied")))
        client = Client(settings(prosody, xmpp_account("ops")))
        await asyncio.gather(server.start(), client.connect())
        try:
            ied = await client.associate(server.jid)
            await ied.enable_reporting(URCB, buffered=False, TrgOps=T.DATA_CHANGE, OptFlds=ALL_OPT)
            for n in range(50):
                server.model.update("FDR1LD0/GGIO1.Ind1.stVal", n % 2 == 1)  # (starts true)
            got = await next_reports(ied, 50, 10)
            assert [r.seq_num for r in got] == [n % 256 for n in range(50)]
            assert [r.values[0].value for r in got] == [n % 2 == 1 for n in range(50)]
        finally:
            await asyncio.gather(client.close(), server.close())

    run(main())


@pytest.mark.timeout(60)
def test_buffered_reports_resume_after_a_real_link_loss(prosody, xmpp_account) -> None:
    async def main():
        ops = xmpp_account("ops")
        server = IedServer(load_scl(FEEDER), settings(prosody, xmpp_account("ied")))
        client = Client(settings(prosody, ops, stream_management=False))
        await asyncio.gather(server.start(), client.connect())
        again = None
        try:
            ied = await client.associate(server.jid)
            await ied.enable_reporting(
                BRCB, buffered=True, TrgOps=T.DATA_CHANGE, OptFlds=BUF_OPT, ResvTms=30
            )
            server.model.update(TOTW, 1.0)
            (first,) = await next_reports(ied, 1, 5)
            client.xmpp.drop_link()
            # changes while the IED still believes in the link: their reports go into the
            # dying link, and only the EntryID resync brings them back
            for n in range(5):
                server.model.update(TOTW, 50.0 + n)  # (the same member again: a report each)
            assert server.associations  # (no await since drop_link: the IED sends them)
            await until(lambda: not server.associations, 10, "presence unavailable at the IED")
            for n in range(20):
                server.model.update(TOTW, 100.0 + n)
            await client.close()
            again = Client(settings(prosody, ops, stream_management=False))
            await again.connect()
            ied = await again.associate(server.jid)
            await ied.enable_reporting(BRCB, buffered=True, EntryID=first.entry_id)
            got = await next_reports(ied, 25, 10)
            await no_report(ied, 0.3)
            assert [r.values[0].value[0][0] for r in got] == [50.0 + n for n in range(5)] + [
                100.0 + n for n in range(20)
            ]
            assert not any(r.buf_ovfl for r in got)
        finally:
            await asyncio.gather(*(c.close() for c in (client, again) if c), server.close())

    run(main())


def watch(client_args: list[str], *args: str, timeout: float = 30) -> list[dict]:
    proc = subprocess.run(
        [sys.executable, "-m", "gridbind", "iec61850", "watch", *client_args, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


@pytest.mark.timeout(60)
def test_cli_watch_prints_gi_and_integrity_reports(served) -> None:  # noqa: F811
    client_args, _, _ = served
    (gi,) = watch(client_args, URCB, "--trgops", "gi", "--gi", "--count", "1")
    assert gi["rptID"] == "FDR1/Status" and gi["datSet"] == "FDR1LD0/LLN0$Status"
    refs = {v["reference"]: v for v in gi["values"]}
    assert refs["FDR1LD0/GGIO1$ST$Ind1$stVal"]["value"] is True
    assert {tuple(v["reason"]) for v in gi["values"]} == {("general_interrogation",)}
    reports = watch(client_args, URCB, "--trgops", "period", "--intg-pd", "200", "--count", "2")
    assert [r["seqNum"] for r in reports] == [0, 1]
    assert all(v["reason"] == ["integrity"] for r in reports for v in r["values"])
    buffered = watch(client_args, BRCB, "--buffered", "--trgops", "gi", "--gi", "--count", "1")
    assert buffered[0]["entryID"] and buffered[0]["bufOvfl"] is False
    # the BRCB kept its buffer: a new watch from EntryID zero gets that GI report again
    (again,) = watch(client_args, BRCB, "--buffered", "--entry-id", "00" * 8, "--count", "1")
    assert again["entryID"] == buffered[0]["entryID"] and again["values"] == buffered[0]["values"]
