"""SNTP client/server (RFC 5905 subset) and the IED ClockSource."""

from __future__ import annotations

import asyncio
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridbind.iec61850 import sntp
from gridbind.iec61850.mmsdata import TimeQuality
from gridbind.iec61850.sntp import (
    ClockSource,
    NtpPacket,
    SntpClient,
    SntpError,
    SntpServer,
    ntp_from_posix,
    posix_from_ntp,
)

T = 1_780_000_000.25  # some POSIX time in 2026


def run(coro, timeout: float = 5.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def good_reply(request: bytes, server_time: float, **changes) -> bytes:
    req = NtpPacket.decode(request)
    reply = NtpPacket(
        leap=0,
        version=4,
        mode=4,
        stratum=2,
        reference_id=b"LOCL",
        reference_ts=ntp_from_posix(server_time - 10),
        originate_ts=req.transmit_ts,
        receive_ts=ntp_from_posix(server_time),
        transmit_ts=ntp_from_posix(server_time),
    )
    for k, v in changes.items():
        setattr(reply, k, v)
    return reply.encode()


def test_timestamp_conversion_and_eras():
    assert posix_from_ntp(ntp_from_posix(T)) == pytest.approx(T, abs=1e-9)
    assert ntp_from_posix(0) >> 32 == sntp.NTP_UNIX_DELTA
    after_2036 = 2_085_978_496 + 100.5  # 2036-02-07T06:28:16Z + 100.5 s: era 1
    assert ntp_from_posix(after_2036) >> 32 == 100
    assert posix_from_ntp(ntp_from_posix(after_2036)) == pytest.approx(after_2036)


@given(st.floats(0, 4e9))
def test_timestamp_round_trip(t):
    assert posix_from_ntp(ntp_from_posix(t)) == pytest.approx(t, abs=1e-9)


def test_client_computes_offset_and_delay():
    client = SntpClient()
    req = client.request(T)
    assert len(req) == 48 and NtpPacket.decode(req).mode == 3
    # Server clock 5 s ahead, 20 ms each way.
    result = client.response(good_reply(req, T + 5.02), T + 0.04)
    assert result.offset == pytest.approx(5.0, abs=1e-6)
    assert result.delay == pytest.approx(0.04, abs=1e-6)
    assert result.stratum == 2


@pytest.mark.parametrize(
    "changes,match,final",
    [
        ({"stratum": 0, "reference_id": b"RATE"}, "kiss-o'-death 'RATE'", True),
        ({"stratum": 16}, "stratum 16", True),
        ({"leap": 3}, "leap indicator 3", True),
        ({"mode": 3}, "mode 3", False),
        ({"mode": 5}, "mode 5", False),
        ({"originate_ts": 12345}, "originate timestamp", False),
        ({"transmit_ts": 0}, "transmit timestamp is zero", True),
        ({"version": 0}, "version 0", True),
        ({"receive_ts": 0}, "receive timestamp is zero", True),
        ({"root_dispersion": 17 << 16}, "root distance 17.000 s", True),
        ({"root_delay": 34 << 16}, "root distance 17.000 s", True),
        ({"root_delay": 16 << 16, "root_dispersion": 9 << 16}, "root distance 17.000 s", True),
    ],
)
def test_client_refuses_bad_replies(changes, match, final):
    client = SntpClient()
    req = client.request(T)
    with pytest.raises(SntpError, match=match) as err:
        client.response(good_reply(req, T, **changes), T)
    assert err.value.final is final


def test_client_refuses_short_and_unsolicited_datagrams():
    client = SntpClient()
    with pytest.raises(SntpError, match="no request outstanding"):
        client.response(b"\0" * 48, T)
    req = client.request(T)
    with pytest.raises(SntpError, match="47 octets"):
        client.response(good_reply(req, T)[:47], T)
    # Extension fields after the header are ignored.
    assert client.response(good_reply(req, T) + b"\0" * 20, T).offset == pytest.approx(0)


def test_server_answers_requests_only():
    server = SntpServer(ClockSource.local(wall=lambda: T))
    client = SntpClient()
    req = client.request(T)
    reply = NtpPacket.decode(server.respond(req, T))
    assert (reply.mode, reply.stratum, reply.leap) == (4, 2, 0)
    assert reply.originate_ts == NtpPacket.decode(req).transmit_ts
    assert server.respond(b"\x1b" * 10, T) is None  # malformed
    assert server.respond(NtpPacket(mode=4).encode(), T) is None  # not a request
    assert server.respond(NtpPacket(mode=3, version=7).encode(), T) is None


def test_server_of_an_unsynchronised_clock_is_refused():
    clock = ClockSource(wall=lambda: T)  # SNTP-fed, never synchronised
    server = SntpServer(clock)
    client = SntpClient()
    req = client.request(T)
    with pytest.raises(SntpError, match="stratum 16"):
        client.response(server.respond(req, T), T)


def test_clock_source_quality():
    mono = [100.0]
    clock = ClockSource(wall=lambda: T, monotonic=lambda: mono[0], hold_s=60, failure_limit=2)
    q = clock.quality()
    assert q.clock_not_synchronized and not q.clock_failure and q.accuracy == 31
    client = SntpClient()
    clock.update(client.response(good_reply(client.request(T), T + 2.0005), T + 0.001))
    assert clock.now() == pytest.approx(T + 2.0, abs=1e-6)
    q = clock.quality()
    assert not q.clock_not_synchronized and not q.clock_failure
    assert q.accuracy == 10  # error 0.5 ms: 2^-11 < 0.5 ms <= 2^-10
    ts = clock.timestamp()
    assert TimeQuality.from_octet(ts.quality) == q
    assert ts.to_float() == pytest.approx(T + 2.0, abs=1e-6)
    mono[0] += 61  # no sync for longer than hold_s
    assert clock.quality().clock_not_synchronized
    clock.failed()
    assert not clock.quality().clock_failure
    clock.failed()
    assert clock.quality().clock_failure
    local = ClockSource.local(wall=lambda: T)
    for _ in range(5):
        local.failed()
    assert local.quality() == TimeQuality(clock_not_synchronized=True, accuracy=31)


def test_client_and_server_agree_within_a_millisecond_on_loopback():
    async def main():
        transport, _ = await sntp.serve(ClockSource.local(), "127.0.0.1", 0)
        port = transport.get_extra_info("sockname")[1]
        try:
            results = [await sntp.query("127.0.0.1", port, timeout=2) for _ in range(8)]
        finally:
            transport.close()
        return results

    # The least delayed sample (as an NTP clock filter picks it) on a machine under load.
    best = min(run(main()), key=lambda r: r.delay)
    assert abs(best.offset) < 0.001, best


def test_poller_synchronises_a_clock_source_to_the_server():
    async def main():
        reference = ClockSource.local()
        reference.offset = 3.25  # the reference runs 3.25 s ahead of this machine
        transport, _ = await sntp.serve(reference, "127.0.0.1", 0)
        port = transport.get_extra_info("sockname")[1]
        ied_clock = ClockSource()
        poller = sntp.SntpPoller(ied_clock, [("127.0.0.1", port)], interval_s=3600)
        try:
            poller.start()
            for _ in range(200):
                if ied_clock.synchronized():
                    break
                await asyncio.sleep(0.01)
        finally:
            await poller.stop()
            transport.close()
        return reference, ied_clock

    reference, ied_clock = run(main())
    assert abs(ied_clock.now() - reference.now()) < 0.001
    assert not ied_clock.quality().clock_not_synchronized


def _udp_socket():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    return sock


@pytest.mark.parametrize(
    "changes,match",
    [
        ({"leap": 3}, "leap indicator 3"),
        ({"stratum": 0}, "kiss"),
        ({"originate_ts": 1}, "no valid"),
    ],
)
def test_query_over_udp_refuses_bad_replies(changes, match):
    async def main():
        sock = _udp_socket()  # a fake server answering one request
        loop = asyncio.get_running_loop()

        async def answer():
            data, addr = await loop.sock_recvfrom(sock, 512)
            await loop.sock_sendto(sock, good_reply(data, T, **changes), addr)

        task = loop.create_task(answer())
        try:
            with pytest.raises(SntpError, match=match):
                await sntp.query("127.0.0.1", sock.getsockname()[1], timeout=0.5)
        finally:
            await task
            sock.close()

    run(main())


def test_request_transmit_timestamp_is_a_64_bit_nonce():
    stamps = {NtpPacket.decode(SntpClient().request(T)).transmit_ts for _ in range(8)}
    assert len(stamps) == 8
    # It does not reveal the local clock (the offset uses the kept send time).
    assert not any(ts >> 32 == ntp_from_posix(T) >> 32 for ts in stamps)
    client = SntpClient()
    req = client.request(T)
    assert client.response(good_reply(req, T + 5), T).offset == pytest.approx(5.0, abs=1e-6)


def test_root_distance_limit_is_configurable():
    client = SntpClient(max_root_distance=0.5)
    req = client.request(T)
    with pytest.raises(SntpError, match="root distance"):
        client.response(good_reply(req, T, root_dispersion=1 << 16), T)


def _result(offset: float) -> sntp.SntpResult:
    return sntp.SntpResult(offset=offset, delay=0.01, stratum=2, error=0.01, server_time=T)


def test_clock_step_is_limited():
    clock = ClockSource(wall=lambda: T, max_step_s=10.0)
    clock.update(_result(100.0))  # the first sync may step (allow_first_step)
    assert clock.now() == pytest.approx(T + 100.0)
    with pytest.raises(SntpError, match="maximum step of 10.0 s"):
        clock.update(_result(-50.0))
    assert clock.now() == pytest.approx(T + 100.0)
    clock.update(_result(2.0))
    assert clock.now() == pytest.approx(T + 102.0)
    strict = ClockSource(wall=lambda: T, max_step_s=10.0, allow_first_step=False)
    with pytest.raises(SntpError, match="maximum step"):
        strict.update(_result(100.0))
    assert strict.offset == 0.0 and not strict.synchronized()


class _FakeServer:
    def __init__(self, ahead: float) -> None:
        reference = ClockSource.local(wall=lambda: T)
        reference.offset = ahead
        self.core = SntpServer(reference)

    def answer(self, send: sntp.SntpSend) -> bytes:
        return self.core.respond(send.datagram, self.core.clock.now())


def test_poll_core_samples_then_waits_for_the_interval():
    clock = ClockSource(wall=lambda: T, monotonic=lambda: 0.0)
    server = _FakeServer(3.25)
    core = sntp.SntpPollCore(clock, [("a", 123)], interval_s=64, timeout=2, samples=3)
    sends = core.handle_timer(0.0)
    assert [s.server for s in sends] == [("a", 123)] and core.next_deadline() == 2.0
    for n in range(3):
        assert core.handle_timer(0.5) == []  # nothing due yet
        sends = core.datagram_received(("a", 123), server.answer(sends[0]), 0.1 * (n + 1))
    assert sends == [] and core.next_deadline() == pytest.approx(0.3 + 64)
    assert clock.synchronized() and clock.offset == pytest.approx(3.25, abs=1e-6)
    # A datagram from another address or when none is outstanding is dropped.
    assert core.datagram_received(("b", 123), b"\0" * 48, 1.0) == []


def test_poll_core_times_out_then_asks_the_next_server():
    clock = ClockSource(wall=lambda: T, monotonic=lambda: 0.0)
    server = _FakeServer(1.0)
    core = sntp.SntpPollCore(clock, [("a", 123), ("b", 123)], timeout=2, samples=1)
    (first,) = core.handle_timer(0.0)
    assert first.server == ("a", 123)
    (second,) = core.handle_timer(2.0)  # "a" timed out
    assert second.server == ("b", 123) and "no valid SNTP reply from a:123" in str(core.last_error)
    # A forged reply (wrong originate) is ignored; the real one is used.
    assert core.datagram_received(("b", 123), good_reply(first.datagram, T), 2.1) == []
    core.datagram_received(("b", 123), server.answer(second), 2.2)
    assert clock.synchronized() and clock.offset == pytest.approx(1.0, abs=1e-6)
    # A poll where no server answers is a clock failure.
    failing = ClockSource(wall=lambda: T, failure_limit=1)
    core = sntp.SntpPollCore(failing, [("a", 123)], timeout=2, samples=1, interval_s=60)
    core.handle_timer(0.0)
    assert core.handle_timer(2.0) == [] and core.next_deadline() == 62.0
    assert failing.quality().clock_failure


def test_poll_core_refuses_a_step_beyond_the_limit():
    clock = ClockSource(wall=lambda: T, max_step_s=5.0, allow_first_step=False)
    server = _FakeServer(30.0)
    core = sntp.SntpPollCore(clock, [("a", 123)], samples=1)
    (send,) = core.handle_timer(0.0)
    core.datagram_received(("a", 123), server.answer(send), 0.1)
    assert "maximum step" in str(core.last_error) and clock.offset == 0.0
