"""The IED server's time source: SNTP (on 127.0.0.1) feeds the time stamps the server stamps,
and their TimeQuality says when the clock is synchronised, not synchronised or failed."""

from __future__ import annotations

import pytest

from gridbind.iec61850 import sntp
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
