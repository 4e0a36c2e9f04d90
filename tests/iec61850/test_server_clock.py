"""The IED server's time source: SNTP (on 127.0.0.1) feeds the time stamps the server stamps,
and their TimeQuality says when the clock is synchronised, not synchronised or failed."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from gridbind.iec61850 import sntp
from gridbind.iec61850.mmsdata import OptFlds
from gridbind.iec61850.mmsdata import TriggerConditions as TC
from gridbind.iec61850.model import Timestamp
from gridbind.iec61850.sntp import ClockSource

from iec_testkit import memory_served, run, until

MAG = "FDR1MEAS/MMXU1.TotW.mag.f"
T = "FDR1MEAS/MMXU1.TotW.t"


@pytest.mark.timeout(20)
def test_sntp_synchronised_then_lost() -> None:
    async def main():
        reference = ClockSource.local()
        udp, _ = await sntp.serve(reference, "127.0.0.1", 0)
        port = udp.get_extra_info("sockname")[1]
        clock = ClockSource(hold_s=0.6, failure_limit=2)
        kw = {"clock": clock, "sntp": [("127.0.0.1", port)], "sntp_interval_s": 0.1}
        try:
            async with memory_served(server_kw=kw) as (server, (client,), _):
                await until(clock.synchronized, 5, "SNTP synchronisation")
                server.model.update(MAG, 1234.5)
                stamped = server.model.read(T, "MX")
                quality = stamped.quality
                assert not quality.clock_not_synchronized and not quality.clock_failure
                assert 10 <= quality.accuracy <= 24  # loopback: well under a millisecond
                assert abs(stamped.to_float() - clock.now()) < 0.1
                ied = await client.associate(server.jid)
                seen = await ied.get_data_values(T, "MX")  # the client sees the same octet
                assert isinstance(seen, Timestamp) and seen.quality == quality
                udp.close()  # the time source goes away
                await until(
                    lambda: clock.quality().clock_failure and not clock.synchronized(),
                    5,
                    "clock failure after the failed polls",
                )
                server.model.update(MAG, 99.0)
                quality = server.model.read(T, "MX").quality
                assert quality.clock_failure and quality.clock_not_synchronized
                assert quality.accuracy == 31
        finally:
            udp.close()

    run(main())


@pytest.mark.timeout(10)
def test_without_sntp_the_local_clock_says_not_synchronised() -> None:
    async def main():
        async with memory_served(server_kw={"clock": ClockSource.local()}) as (server, _, _):
            server.model.update(MAG, 1.0)
            quality = server.model.read(T, "MX").quality
            assert quality.clock_not_synchronized and not quality.clock_failure
            assert quality.accuracy == 31
            assert server.sntp is None

    run(main())


def test_serve_takes_sntp_servers() -> None:
    from gridbind.cli import build_parser

    args = build_parser().parse_args(
        ["iec61850", "serve", "--scl", "x.scd", "--ca", "ca.pem", "--sntp", "127.0.0.1",
         "--sntp", "[::1]:1123", "--sntp-interval", "16"]
    )  # fmt: skip
    assert args.sntp == [("127.0.0.1", 123), ("::1", 1123)] and args.sntp_interval == 16.0
    with pytest.raises(SystemExit):
        build_parser().parse_args(["iec61850", "serve", "--scl", "x", "--ca", "c", "--sntp", "h:x"])


# ------------------------------------------------------------------ one clock for every time stamp
#: The IED's clock runs ten days behind the host (a fixed, known offset) and is not synchronised.
OFFSET = -10 * 86400.0
URCB = "FDR1LD0/LLN0.urcbStatus01"
LCB = "FDR1LD0/LLN0.logStatus"
LOG = "FDR1LD0/LLN0$Events"
IND2 = "FDR1LD0/GGIO1.Ind2.stVal"
CONTROLS = Path(__file__).parent / "data" / "controls.icd"


def ied_time() -> float:
    return time.time() + OFFSET


def assert_ied_stamp(stamp: Timestamp) -> None:
    """A time stamp of the offset clock with its TimeQuality (not synchronised, unspecified)."""
    assert abs(stamp.to_float() - ied_time()) < 5
    assert stamp.quality.clock_not_synchronized and stamp.quality.accuracy == 31


def stamp_in(structure: list) -> Timestamp:
    """The ``t`` of a reported or logged data object (its one TimeStamp)."""
    (stamp,) = [v for v in structure if isinstance(v, Timestamp)]
    return stamp


@pytest.mark.timeout(10)
def test_reports_and_logs_take_their_times_from_the_ied_clock() -> None:
    async def main():
        clock = ClockSource.local(offset=OFFSET)
        async with memory_served(server_kw={"clock": clock}) as (server, (client,), _):
            ied = await client.associate(server.jid)
            opt = OptFlds.REPORT_TIME_STAMP | OptFlds.DATA_REFERENCE
            await ied.enable_reporting(URCB, buffered=False, TrgOps=TC.DATA_CHANGE, OptFlds=opt)
            await ied.set_lcb_values(LCB, TrgOps=TC.DATA_CHANGE, LogEna=True)
            server.model.update(IND2, True)
            report = await asyncio.wait_for(anext(aiter(ied.report_stream())), 2)
            # TimeOfEntry (binary-time: no quality octet of its own) is the IED clock's time
            assert abs(report.time_of_entry.to_float() - ied_time()) < 5
            ind2 = report.by_reference()["FDR1LD0/GGIO1$ST$Ind2"]
            assert_ied_stamp(stamp_in(ind2))  # the reported t carries the clock's TimeQuality
            # log entries: their time and the logged t
            (entry,) = await ied.query_log_by_time(LOG, ied_time() - 60)
            assert abs(entry.time.to_float() - ied_time()) < 5
            assert_ied_stamp(stamp_in(entry.values[0].value))
            status = await ied.get_log_status_values(LCB)
            assert abs(status["NewEntrTm"].to_float() - ied_time()) < 5
            # nothing was logged at the host's time
            assert await ied.query_log_by_time(LOG, time.time() - 60) == []

    run(main())


@pytest.mark.timeout(10)
def test_controls_stamp_with_the_ied_clock() -> None:
    async def main():
        clock = ClockSource.local(offset=OFFSET)
        kw = {"clock": clock}
        async with memory_served(CONTROLS, server_kw=kw) as (server, (client,), _):
            ied = await client.associate(server.jid)
            for ln in ("CSWI2", "CSWI4"):  # normal security; enhanced with CommandTermination
                outcome = await ied.operate(f"CTL1CTRL/{ln}.Pos", True)
                assert outcome.ok
                assert_ied_stamp(server.model.read(f"CTL1CTRL/{ln}.Pos.t", "ST"))
            # a time-activated operate: operTm is a time of the IED's clock
            outcome = await ied.operate("CTL1CTRL/CSWI4.Pos", False, oper_time=ied_time() + 0.3)
            assert outcome.ok and outcome.terminated
            assert_ied_stamp(server.model.read("CTL1CTRL/CSWI4.Pos.t", "ST"))

    run(main())
