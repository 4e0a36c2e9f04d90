"""SNTP (RFC 5905's SNTP subset, RFC 4330 rules) for IEC 61850-8-2 time synchronisation.

- :class:`NtpPacket`: the 48-octet NTP header, encode/decode (extension fields and MAC after
  octet 48 are ignored; anything shorter is malformed).
- :class:`SntpClient` (sans-IO, mode 3): ``request(now)`` -> datagram; ``response(data, now)``
  -> :class:`SntpResult` (offset, delay, error bound) or :class:`SntpError`. A reply is refused
  when it is shorter than 48 octets, not mode 4 (server), of a version other than 1..4, leap 3
  (clock not synchronised), stratum 0 (kiss-o'-death) or 16 and above (unsynchronised), when its
  originate timestamp is not the transmit timestamp of our request, or when its transmit time is
  zero. Refusals that may come from a stray or forged datagram (malformed, wrong mode,
  originate mismatch) are ``final=False``: the asyncio client keeps waiting for the real answer.
- :class:`SntpServer` (sans-IO, mode 4): ``respond(data, now)`` -> reply datagram or ``None``
  (dropped: malformed or not a mode-3 request). A server on a :meth:`ClockSource.local` clock is
  a reference by configuration (its stratum); one on an SNTP-fed clock answers leap 3 and
  stratum 16 while that clock is not synchronised, so clients refuse it.
- :class:`ClockSource`: the IED's time: the local clock corrected by the last SNTP result, with
  the 7-2 TimeQuality: ``clock_not_synchronized`` while no valid SNTP result is younger than
  ``hold_s`` (or SNTP is not configured), ``clock_failure`` after ``failure_limit`` consecutive
  failed polls (the configured time source is unreliable), ``accuracy`` = the number of
  significant fraction bits implied by the error bound (``floor(-log2(bound))``, 0..24; 31 =
  unspecified while not synchronised).
- Thin asyncio shells: :func:`query`, :func:`serve`, and :class:`SntpPoller` (one kept task).

Time stamps are NTP 64-bit values (era 0 from 1900; a value with the top bit clear is taken as
era 1, from 2036, as RFC 4330 section 3 says). Port 123 by default, configurable everywhere.
"""

from __future__ import annotations

import asyncio
import math
import os
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from gridbind.iec61850.mmsdata import TimeQuality
from gridbind.iec61850.model import Timestamp

__all__ = [
    "NTP_PORT",
    "SntpError",
    "NtpPacket",
    "SntpResult",
    "SntpClient",
    "SntpServer",
    "ClockSource",
    "SntpPoller",
    "query",
    "serve",
    "ntp_from_posix",
    "posix_from_ntp",
]

NTP_PORT = 123
#: Seconds from 1900-01-01 (NTP era 0) to 1970-01-01.
NTP_UNIX_DELTA = 2_208_988_800
_HEADER = struct.Struct("!BBbbII4sQQQQ")
MODE_CLIENT, MODE_SERVER = 3, 4
LEAP_UNSYNC = 3


class SntpError(Exception):
    """An SNTP datagram was refused; ``final`` False when a later datagram may still answer."""

    def __init__(self, reason: str, *, final: bool = True) -> None:
        super().__init__(reason)
        self.final = final


def ntp_from_posix(t: float) -> int:
    """64-bit NTP timestamp of POSIX seconds (wrapping at the era boundary in 2036)."""
    seconds = math.floor(t)
    frac = min(int((t - seconds) * (1 << 32)), (1 << 32) - 1)
    return (((seconds + NTP_UNIX_DELTA) & 0xFFFFFFFF) << 32) | frac


def posix_from_ntp(ts: int) -> float:
    """POSIX seconds of a 64-bit NTP timestamp (era 0 if the top bit is set, else era 1)."""
    seconds, frac = ts >> 32, ts & 0xFFFFFFFF
    if not seconds & 0x80000000:
        seconds += 1 << 32  # era 1 (from 2036-02-07)
    return seconds - NTP_UNIX_DELTA + frac / (1 << 32)


def _short(value: float) -> int:
    """NTP short format (16.16) of a non-negative number of seconds, saturating."""
    return min(max(int(value * (1 << 16)), 0), 0xFFFFFFFF)


@dataclass
class NtpPacket:
    """The NTP header (RFC 5905 figure 8); timestamps as 64-bit NTP integers."""

    leap: int = 0
    version: int = 4
    mode: int = MODE_CLIENT
    stratum: int = 0
    poll: int = 0
    precision: int = 0
    root_delay: int = 0
    root_dispersion: int = 0
    reference_id: bytes = b"\0\0\0\0"
    reference_ts: int = 0
    originate_ts: int = 0
    receive_ts: int = 0
    transmit_ts: int = 0

    def encode(self) -> bytes:
        first = (self.leap & 3) << 6 | (self.version & 7) << 3 | (self.mode & 7)
        return _HEADER.pack(
            first,
            self.stratum & 0xFF,
            self.poll,
            self.precision,
            self.root_delay,
            self.root_dispersion,
            self.reference_id,
            self.reference_ts,
            self.originate_ts,
            self.receive_ts,
            self.transmit_ts,
        )

    @classmethod
    def decode(cls, data: bytes) -> NtpPacket:
        if len(data) < _HEADER.size:
            raise SntpError(f"datagram of {len(data)} octets (NTP needs 48)", final=False)
        first, stratum, poll, precision, rd, rdisp, refid, ref, org, rec, xmt = _HEADER.unpack_from(
            data
        )
        return cls(
            first >> 6, (first >> 3) & 7, first & 7, stratum, poll, precision, rd, rdisp,
            refid, ref, org, rec, xmt,
        )  # fmt: skip


@dataclass(frozen=True)
class SntpResult:
    """One accepted reply: clock ``offset`` (add to the local clock), round-trip ``delay``,
    the server's stratum, and ``error`` = delay/2 + root delay/2 + root dispersion (seconds)."""

    offset: float
    delay: float
    stratum: int
    error: float
    server_time: float


class SntpClient:
    """Sans-IO SNTP client (mode 3): one outstanding request at a time."""

    def __init__(self, version: int = 4) -> None:
        self.version = version
        self._sent: int | None = None
        self._sent_posix = 0.0

    def request(self, now: float) -> bytes:
        """A mode-3 request; its transmit timestamp (low bits random, RFC 5905 ``xmt`` nonce)
        must come back as the reply's originate timestamp."""
        ts = (ntp_from_posix(now) & ~0xFFFF) | int.from_bytes(os.urandom(2), "big")
        self._sent, self._sent_posix = ts, now
        return NtpPacket(version=self.version, mode=MODE_CLIENT, transmit_ts=ts).encode()

    def response(self, data: bytes, now: float) -> SntpResult:
        """Check a reply received at ``now``; SntpError when it must be refused."""
        if self._sent is None:
            raise SntpError("no request outstanding", final=False)
        p = NtpPacket.decode(data)
        if p.mode != MODE_SERVER:
            raise SntpError(f"mode {p.mode}, not 4 (server)", final=False)
        if p.originate_ts != self._sent:
            raise SntpError("originate timestamp is not our request's", final=False)
        if not 1 <= p.version <= 4:
            raise SntpError(f"NTP version {p.version}")
        if p.stratum == 0:
            raise SntpError(f"kiss-o'-death {p.reference_id.decode('ascii', 'replace')!r}")
        if p.stratum >= 16:
            raise SntpError(f"stratum {p.stratum}: server not synchronised")
        if p.leap == LEAP_UNSYNC:
            raise SntpError("leap indicator 3: server clock not synchronised")
        if p.transmit_ts == 0:
            raise SntpError("transmit timestamp is zero")
        self._sent = None
        t1, t4 = self._sent_posix, now
        t2, t3 = posix_from_ntp(p.receive_ts), posix_from_ntp(p.transmit_ts)
        offset = ((t2 - t1) + (t3 - t4)) / 2
        delay = max((t4 - t1) - (t3 - t2), 0.0)
        error = delay / 2 + p.root_delay / (1 << 17) + p.root_dispersion / (1 << 16)
        return SntpResult(offset, delay, p.stratum, error, t3)


@dataclass
class ClockSource:
    """The IED's clock: ``wall`` (POSIX seconds) corrected by SNTP, with its TimeQuality.

    Without SNTP (:meth:`local`), time is the local clock and TimeQuality says "not
    synchronised, accuracy unspecified". ``monotonic`` measures the age of the last sync.
    """

    sntp: bool = True
    hold_s: float = 3 * 64.0
    failure_limit: int = 3
    leap_seconds_known: bool = False
    wall: Callable[[], float] = time.time
    monotonic: Callable[[], float] = time.monotonic
    offset: float = 0.0
    error: float | None = None
    _synced_at: float | None = field(default=None, init=False, repr=False)
    _failures: int = field(default=0, init=False, repr=False)

    @classmethod
    def local(cls, **kw: object) -> ClockSource:
        """The local clock only (no SNTP configured)."""
        return cls(sntp=False, **kw)  # type: ignore[arg-type]

    def now(self) -> float:
        """Corrected POSIX seconds."""
        return self.wall() + self.offset

    def synchronized(self) -> bool:
        return (
            self.sntp
            and self._synced_at is not None
            and self.monotonic() - self._synced_at <= self.hold_s
        )

    def quality(self) -> TimeQuality:
        """TimeQuality of time stamps taken now."""
        synced = self.synchronized()
        accuracy = 31
        if synced and self.error is not None:
            accuracy = 24 if self.error <= 2**-24 else max(0, min(24, int(-math.log2(self.error))))
        return TimeQuality(
            leap_seconds_known=self.leap_seconds_known,
            clock_failure=self.sntp and self._failures >= self.failure_limit,
            clock_not_synchronized=not synced,
            accuracy=accuracy,
        )

    def timestamp(self) -> Timestamp:
        """A model time stamp of now with its TimeQuality octet."""
        return Timestamp.from_float(self.now(), self.quality().to_octet())

    def update(self, result: SntpResult) -> None:
        """Apply an accepted SNTP result (the offset is relative to the corrected clock)."""
        self.offset += result.offset
        self.error = result.error
        self._synced_at = self.monotonic()
        self._failures = 0

    def failed(self) -> None:
        """Record a failed poll (timeout or refused reply)."""
        self._failures += 1


class SntpServer:
    """Sans-IO SNTP server (mode 4) serving a :class:`ClockSource`."""

    def __init__(
        self, clock: ClockSource, *, stratum: int = 2, reference_id: bytes = b"LOCL"
    ) -> None:
        if not 1 <= stratum <= 15:
            raise ValueError("stratum of a synchronised server is 1..15")
        self.clock = clock
        self.stratum = stratum
        self.reference_id = reference_id[:4].ljust(4, b"\0")
        self._reference = 0

    def respond(self, data: bytes, received: float) -> bytes | None:
        """The reply to a request received at ``received`` (corrected clock), or None."""
        try:
            req = NtpPacket.decode(data)
        except SntpError:
            return None
        if req.mode != MODE_CLIENT or not 1 <= req.version <= 4:
            return None
        quality = self.clock.quality()
        synced = not quality.clock_not_synchronized or not self.clock.sntp
        error = self.clock.error or 0.0
        if synced and self._reference == 0:
            self._reference = ntp_from_posix(received)
        return NtpPacket(
            leap=0 if synced else LEAP_UNSYNC,
            version=req.version,
            mode=MODE_SERVER,
            stratum=self.stratum if synced else 16,
            poll=req.poll,
            precision=-20,
            root_delay=0,
            root_dispersion=_short(error),
            reference_id=self.reference_id,
            reference_ts=self._reference,
            originate_ts=req.transmit_ts,
            receive_ts=ntp_from_posix(received),
            transmit_ts=ntp_from_posix(self.clock.now()),
        ).encode()


# ---- asyncio shells -------------------------------------------------------------------------


class _ServerProtocol(asyncio.DatagramProtocol):
    def __init__(self, core: SntpServer) -> None:
        self.core = core
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        reply = self.core.respond(data, self.core.clock.now())
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)


async def serve(
    clock: ClockSource, host: str = "127.0.0.1", port: int = NTP_PORT, **kw: object
) -> tuple[asyncio.DatagramTransport, SntpServer]:
    """Serve SNTP on UDP ``host:port`` (port 0: any free port; read it from the transport)."""
    core = SntpServer(clock, **kw)  # type: ignore[arg-type]
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: _ServerProtocol(core), local_addr=(host, port)
    )
    return transport, core


class _ClientProtocol(asyncio.DatagramProtocol):
    def __init__(self, core: SntpClient, clock: Callable[[], float]) -> None:
        self.core = core
        self.clock = clock
        self.done: asyncio.Future[SntpResult] = asyncio.get_running_loop().create_future()
        self.last_error: SntpError | None = None

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        if self.done.done():
            return
        try:
            self.done.set_result(self.core.response(data, self.clock()))
        except SntpError as exc:
            self.last_error = exc
            if exc.final:
                self.done.set_exception(exc)

    def error_received(self, exc: Exception) -> None:
        if not self.done.done():
            self.done.set_exception(SntpError(f"UDP error: {exc}"))


async def query(
    host: str,
    port: int = NTP_PORT,
    *,
    timeout: float = 2.0,
    clock: Callable[[], float] = time.time,
) -> SntpResult:
    """One SNTP exchange with ``host:port``; SntpError on refusal or timeout.

    ``clock`` is the local clock the offset is measured against (a ClockSource's ``now``)."""
    loop = asyncio.get_running_loop()
    core = SntpClient()
    transport, proto = await loop.create_datagram_endpoint(
        lambda: _ClientProtocol(core, clock), remote_addr=(host, port)
    )
    try:
        transport.sendto(core.request(clock()))
        try:
            return await asyncio.wait_for(asyncio.shield(proto.done), timeout)
        except TimeoutError:
            last = f" (last refusal: {proto.last_error})" if proto.last_error else ""
            raise SntpError(
                f"no valid SNTP reply from {host}:{port} in {timeout} s{last}"
            ) from None
    finally:
        transport.close()


class SntpPoller:
    """Polls SNTP servers every ``interval_s`` and updates a :class:`ClockSource`."""

    def __init__(
        self,
        clock: ClockSource,
        servers: list[tuple[str, int]],
        *,
        interval_s: float = 64.0,
        timeout: float = 2.0,
        samples: int = 4,
    ) -> None:
        if not servers:
            raise ValueError("at least one SNTP server")
        if not 1 <= samples <= 8:
            raise ValueError("samples per poll: 1..8")
        self.samples = samples
        self.clock = clock
        self.servers = servers
        self.interval_s = interval_s
        self.timeout = timeout
        self.last_error: SntpError | None = None
        self._task: asyncio.Task[None] | None = None

    async def poll_once(self) -> bool:
        """Try the servers in order; True when one answered validly.

        Each server is asked ``samples`` times and the answer with the smallest round-trip delay
        is used (RFC 5905's clock filter idea: the least delayed sample has the least
        asymmetry error)."""
        for host, port in self.servers:
            results = []
            for _ in range(self.samples):
                try:
                    results.append(
                        await query(host, port, timeout=self.timeout, clock=self.clock.now)
                    )
                except (SntpError, OSError) as exc:
                    self.last_error = exc if isinstance(exc, SntpError) else SntpError(str(exc))
                    break
            if results:
                self.clock.update(min(results, key=lambda r: r.delay))
                return True
        self.clock.failed()
        return False

    async def _run(self) -> None:
        while True:
            await self.poll_once()
            await asyncio.sleep(self.interval_s)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
