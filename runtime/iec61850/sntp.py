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
  Also refused: a zero receive timestamp, and a root distance (root delay / 2 + root
  dispersion, RFC 5905) above ``max_root_distance`` (16 s, RFC 5905's MAXDISP). The request's
  transmit timestamp is a 64-bit random nonce (it does not reveal our clock; RFC 5905 section 9
  recommends randomising it), and the local send time is kept apart for the offset.
- :class:`SntpServer` (sans-IO, mode 4): ``respond(data, now)`` -> reply datagram or ``None``
  (dropped: malformed or not a mode-3 request). A server on a :meth:`ClockSource.local` clock is
  a reference by configuration (its stratum); one on an SNTP-fed clock answers leap 3 and
  stratum 16 while that clock is not synchronised, so clients refuse it.
- :class:`ClockSource`: the IED's time: the local clock corrected by the last SNTP result, with
  the 7-2 TimeQuality: ``clock_not_synchronized`` while no valid SNTP result is younger than
  ``hold_s`` (or SNTP is not configured), ``clock_failure`` after ``failure_limit`` consecutive
  failed polls (the configured time source is unreliable), ``accuracy`` = the number of
  significant fraction bits implied by the error bound (``floor(-log2(bound))``, 0..24; 31 =
  unspecified while not synchronised). A result that would move the clock by more than
  ``max_step_s`` is refused (:meth:`ClockSource.update` raises), except on the first sync when
  ``allow_first_step`` is set.
- :class:`SntpPollCore` (sans-IO): the poll schedule and sampling as deadlines:
  ``next_deadline()``, ``handle_timer(now)`` and ``datagram_received(server, data, now)``
  return the datagrams to send.
- Thin asyncio shells: :func:`query`, :func:`serve`, and :class:`SntpPoller` (one kept task
  around :class:`SntpPollCore`).

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

from gridbind.errors import RemoteError
from gridbind.iec61850.errors import Iec61850Error, InvalidArgument
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
    "SntpPollCore",
    "SntpPoller",
    "SntpSend",
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
#: RFC 5905 MAXDISP: a server whose root distance exceeds this is not a usable reference.
MAX_ROOT_DISTANCE = 16.0


class SntpError(Iec61850Error, RemoteError):
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

    def __init__(self, version: int = 4, *, max_root_distance: float = MAX_ROOT_DISTANCE) -> None:
        self.version = version
        self.max_root_distance = max_root_distance
        self._sent: int | None = None
        self._sent_posix = 0.0

    def request(self, now: float) -> bytes:
        """A mode-3 request; its transmit timestamp is a 64-bit random nonce (the send time
        ``now`` stays local) that must come back as the reply's originate timestamp."""
        ts = int.from_bytes(os.urandom(8), "big") or 1
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
        if p.receive_ts == 0:
            raise SntpError("receive timestamp is zero")
        distance = p.root_delay / (1 << 17) + p.root_dispersion / (1 << 16)
        if distance > self.max_root_distance:
            raise SntpError(f"root distance {distance:.3f} s exceeds {self.max_root_distance} s")
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
    #: Largest correction accepted from one result (ntpd's panic threshold); None: no limit.
    max_step_s: float | None = 1000.0
    #: The first sync may step the clock by any amount (a freshly booted device).
    allow_first_step: bool = True
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
        """Apply an accepted SNTP result (the offset is relative to the corrected clock).

        SntpError (and a failure recorded) when it would step the clock by more than
        ``max_step_s``, unless it is the first sync and ``allow_first_step`` is set."""
        first = self.error is None
        if (
            self.max_step_s is not None
            and abs(result.offset) > self.max_step_s
            and not (first and self.allow_first_step)
        ):
            self.failed()
            raise SntpError(
                f"offset {result.offset:+.3f} s exceeds the maximum step of {self.max_step_s} s"
            )
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
            raise InvalidArgument("stratum of a synchronised server is 1..15")
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


@dataclass(frozen=True)
class SntpSend:
    """A datagram :class:`SntpPollCore` wants sent to ``server`` (host, port)."""

    server: tuple[str, int]
    datagram: bytes


class SntpPollCore:
    """Sans-IO SNTP poll schedule: every ``interval_s`` each server in turn is asked ``samples``
    times; the least delayed answer (RFC 5905's clock filter idea: the least delayed sample has
    the least asymmetry error) updates ``clock``. A server that does not answer validly within
    ``timeout`` is left for the next; a poll where none answered counts as a clock failure.

    ``now`` is a monotonic time for deadlines; the NTP timestamps come from ``clock.now()``."""

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
            raise InvalidArgument("at least one SNTP server")
        if not 1 <= samples <= 8:
            raise InvalidArgument("samples per poll: 1..8")
        self.clock = clock
        self.servers = list(servers)
        self.interval_s = interval_s
        self.timeout = timeout
        self.samples = samples
        self.last_error: SntpError | None = None
        self._deadline = -math.inf  # poll at the first timer
        self._index: int | None = None  # server being asked; None between polls
        self._client: SntpClient | None = None
        self._results: list[SntpResult] = []
        self._refusal: SntpError | None = None

    def next_deadline(self) -> float:
        """When :meth:`handle_timer` must be called next (a poll is due, or a reply timed out)."""
        return self._deadline

    def handle_timer(self, now: float) -> list[SntpSend]:
        """Start a due poll, or give up on the server that did not answer in time."""
        if now < self._deadline:
            return []
        if self._index is None:
            self._index, self._results = 0, []
            return self._ask(now)
        host, port = self.servers[self._index]
        last = f" (last refusal: {self._refusal})" if self._refusal else ""
        self.last_error = SntpError(
            f"no valid SNTP reply from {host}:{port} in {self.timeout} s{last}"
        )
        return self._next_server(now)

    def datagram_received(self, server: tuple[str, int], data: bytes, now: float) -> list[SntpSend]:
        """A datagram from ``server``; stray ones (other server, no request out) are dropped."""
        if self._index is None or self._client is None or server != self.servers[self._index]:
            return []
        try:
            result = self._client.response(data, self.clock.now())
        except SntpError as exc:
            self._refusal = exc
            if not exc.final:
                return []  # maybe forged or stray: keep waiting for the real answer
            self.last_error = exc
            return self._next_server(now)
        self._results.append(result)
        if len(self._results) < self.samples:
            return self._ask(now)
        return self._finish(now)

    def send_failed(self, server: tuple[str, int], error: Exception, now: float) -> list[SntpSend]:
        """The transport could not send to ``server`` (or reported an ICMP error)."""
        if self._index is None or server != self.servers[self._index]:
            return []
        self.last_error = SntpError(f"{server[0]}:{server[1]}: {error}")
        return self._next_server(now)

    def _ask(self, now: float) -> list[SntpSend]:
        self._client, self._refusal = SntpClient(), None
        self._deadline = now + self.timeout
        assert self._index is not None
        return [SntpSend(self.servers[self._index], self._client.request(self.clock.now()))]

    def _next_server(self, now: float) -> list[SntpSend]:
        assert self._index is not None
        if self._results:
            return self._finish(now)
        self._index += 1
        if self._index < len(self.servers):
            return self._ask(now)
        self.clock.failed()
        return self._idle(now)

    def _finish(self, now: float) -> list[SntpSend]:
        try:
            self.clock.update(min(self._results, key=lambda r: r.delay))
        except SntpError as exc:
            self.last_error = exc
        return self._idle(now)

    def _idle(self, now: float) -> list[SntpSend]:
        self._index, self._client, self._results = None, None, []
        self._deadline = now + self.interval_s
        return []


class _PollProtocol(asyncio.DatagramProtocol):
    def __init__(self, poller: SntpPoller, server: tuple[str, int]) -> None:
        self.poller = poller
        self.server = server

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        self.poller._feed(self.poller.core.datagram_received(self.server, data, _loop_time()))

    def error_received(self, exc: Exception) -> None:
        self.poller._feed(self.poller.core.send_failed(self.server, exc, _loop_time()))


def _loop_time() -> float:
    return asyncio.get_running_loop().time()


class SntpPoller:
    """Asyncio shell of :class:`SntpPollCore`: one connected UDP endpoint per server, one kept
    task that sends what the core asks for and waits until its next deadline or a datagram."""

    def __init__(
        self,
        clock: ClockSource,
        servers: list[tuple[str, int]],
        *,
        interval_s: float = 64.0,
        timeout: float = 2.0,
        samples: int = 4,
    ) -> None:
        self.core = SntpPollCore(
            clock, servers, interval_s=interval_s, timeout=timeout, samples=samples
        )
        self.clock = clock
        self._task: asyncio.Task[None] | None = None
        self._outbox: list[SntpSend] = []
        self._wake: asyncio.Event | None = None
        self._endpoints: dict[tuple[str, int], asyncio.DatagramTransport] = {}

    @property
    def last_error(self) -> SntpError | None:
        return self.core.last_error

    def _feed(self, sends: list[SntpSend]) -> None:
        self._outbox.extend(sends)
        if self._wake is not None:
            self._wake.set()

    async def _send(self, item: SntpSend) -> None:
        loop = asyncio.get_running_loop()
        try:
            transport = self._endpoints.get(item.server)
            if transport is None or transport.is_closing():
                transport, _ = await loop.create_datagram_endpoint(
                    lambda: _PollProtocol(self, item.server), remote_addr=item.server
                )
                self._endpoints[item.server] = transport
            transport.sendto(item.datagram)
        except OSError as exc:
            self._feed(self.core.send_failed(item.server, exc, loop.time()))

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        try:
            while True:
                self._outbox.extend(self.core.handle_timer(loop.time()))
                while self._outbox:
                    await self._send(self._outbox.pop(0))
                self._wake.clear()
                delay = self.core.next_deadline() - loop.time()
                if delay > 0:
                    try:
                        await asyncio.wait_for(self._wake.wait(), delay)
                    except TimeoutError:
                        pass
        finally:
            for transport in self._endpoints.values():
                transport.close()
            self._endpoints.clear()

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
