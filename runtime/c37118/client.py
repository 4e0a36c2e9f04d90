"""PDC client: connect to a PMU or PDC, ask for its configuration, stream its data.

:class:`PdcSession` is the sans-IO core. It sends TURN OFF, SEND CFG-2 (or CFG-3; an unanswered
request is repeated every ``config_retry`` seconds, alternating between the two, since a device
may lack CFG-3 or have a configuration too big for CFG-2) and, once the configuration is in,
TURN ON; it follows configuration changes (a STAT "configuration change"
bit or a data frame the configuration does not describe makes it ask again, at most once per
``config_retry`` seconds) and holds up to ``max_held`` undescribed data frames (and
``max_held_bytes``) until the new configuration arrives, so none of the frames after a change is lost. Time comes in as ``now``
(seconds); :meth:`PdcSession.next_deadline` / :meth:`PdcSession.tick` drive the retries and the
data time-out.

:class:`PdcClient` is the asyncio shell: TCP commands (and data), optionally a UDP socket for data
frames where the device sends them over UDP, reconnection with back-off.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gridbind.c37118.constants import MIN_FRAME, SYNC_BYTE, Command, FrameType, Stat
from gridbind.c37118.errors import C37118Error
from gridbind.c37118.frames import (
    CommandFrame,
    ConfigFrame,
    Stamp,
    build_command,
)
from gridbind.c37118.framing import (
    ConfigReceived,
    DataReceived,
    DataUnmatched,
    FrameDecoder,
    FrameRejected,
    HeaderReceived,
)
from gridbind.c37118.layout import DataLayout
from gridbind.c37118.mapping import stamp_ticks
from gridbind.sttp.measurement import TICKS_PER_SECOND

log = logging.getLogger(__name__)

# The decoder's events are the client's too (one class per event across the package).
__all__ = [
    "ClientStats",
    "ConfigurationChanged",
    "DataReceived",
    "Event",
    "FrameRejected",
    "HeaderReceived",
    "PdcClient",
    "PdcSession",
    "StreamStalled",
    "config_signature",
    "frame_period",
]


@dataclass(slots=True)
class ConfigurationChanged:
    """The stream's configuration is new (the first one, or different from the last)."""

    config: ConfigFrame
    previous: ConfigFrame | None


@dataclass(slots=True)
class StreamStalled:
    """Nothing arrived for ``seconds``; the transport reconnects."""

    seconds: float


Event = ConfigurationChanged | DataReceived | HeaderReceived | FrameRejected | StreamStalled


@dataclass(slots=True)
class ClientStats:
    """Counters of one client (over reconnections)."""

    frames: int = 0
    frames_lost: int = 0
    rejected: int = 0
    config_changes: int = 0
    config_requests: int = 0
    held: int = 0
    dropped_held: int = 0
    #: ticks of the newest data frame (kept over reconnections, so a gap counts as lost frames)
    last_ticks: int | None = None
    reasons: deque[str] = field(default_factory=lambda: deque(maxlen=32))


def config_signature(config: ConfigFrame) -> str:
    """A text equal exactly when two configurations describe the same stream.

    Made of the parsed values (their ``repr``: NaN coordinates compare equal), never by building
    the configuration again: what a peer sent may parse and still not be buildable.
    """
    family = "3" if config.kind == FrameType.CFG3 else "2"
    return repr((family, config.stamp.idcode, config.time_base, config.data_rate, config.pmus))


def frame_period(data_rate: int) -> float:
    """Seconds between frames: DATA_RATE > 0 is frames per second, < 0 seconds per frame."""
    if data_rate > 0:
        return 1.0 / data_rate
    return float(-data_rate) if data_rate else 0.0


class PdcSession:
    """Sans-IO PDC client core for the stream ``idcode``."""

    def __init__(
        self,
        idcode: int,
        *,
        prefer_cfg3: bool = False,
        config_retry: float = 2.0,
        data_timeout: float = 10.0,
        max_held: int = 600,
        max_held_bytes: int = 8 << 20,
        known: ConfigFrame | None = None,
        stats: ClientStats | None = None,
    ) -> None:
        self.idcode = idcode
        self.prefer_cfg3 = prefer_cfg3
        self.config_retry = config_retry
        self.data_timeout = data_timeout
        self.max_held = max_held
        self.max_held_bytes = max_held_bytes
        self._held_bytes = 0
        self.config: ConfigFrame | None = None
        self.known = known
        self.stats = stats or ClientStats()
        self.decoder = FrameDecoder(auto_layout=False)
        self.streaming = False
        self._out = bytearray()
        self._held: deque[bytes] = deque()
        self._requested_at: float | None = None
        self._last_rx = 0.0
        self._ask_cfg3 = prefer_cfg3
        self._change_announced = False

    # -- output
    def data_to_send(self) -> bytes:
        """Bytes to write to the TCP connection."""
        out = bytes(self._out)
        self._out.clear()
        return out

    def command(self, command: int) -> None:
        """Queue a command frame for the stream."""
        self._out += build_command(CommandFrame(Stamp(self.idcode), command))

    def start(self, now: float) -> None:
        """Stop the data, ask for the configuration (then :meth:`receive` turns data on)."""
        self._last_rx = now
        self.command(Command.DATA_OFF)
        self._request(now)

    def _request(self, now: float) -> None:
        self.command(Command.SEND_CFG3 if self._ask_cfg3 else Command.SEND_CFG2)
        self._requested_at = now
        self.stats.config_requests += 1

    def _maybe_request(self, now: float) -> None:
        if self._requested_at is None or now - self._requested_at >= self.config_retry:
            self._request(now)

    # -- timers
    def next_deadline(self) -> float | None:
        """When :meth:`tick` must run next (seconds, same clock as ``now``)."""
        timeout = self._data_timeout()
        deadlines = [self._last_rx + timeout] if timeout else []
        if self._requested_at is not None:
            deadlines.append(self._requested_at + self.config_retry)
        return min(deadlines) if deadlines else None

    def _data_timeout(self) -> float:
        """``data_timeout``, but never less than 3 frame periods of the stream (a negative
        DATA_RATE is seconds per frame)."""
        if not self.data_timeout or self.config is None:
            return self.data_timeout
        return max(self.data_timeout, 3 * frame_period(self.config.data_rate))

    def tick(self, now: float) -> list[Event]:
        """Retry an unanswered configuration request; report a stalled stream."""
        events: list[Event] = []
        if self._requested_at is not None and now - self._requested_at >= self.config_retry:
            # No answer: a device may lack CFG-3 (pyc37), or have a configuration too big for
            # CFG-2; ask for the other one next.
            self._ask_cfg3 = not self._ask_cfg3
            self._request(now)
        timeout = self._data_timeout()
        if timeout and now - self._last_rx >= timeout:
            events.append(StreamStalled(now - self._last_rx))
            self._last_rx = now
        return events

    # -- input
    def receive(self, data: bytes, now: float) -> list[Event]:
        """Events of bytes received on TCP."""
        self._last_rx = now
        events: list[Event] = []
        decoder = self.decoder
        for item in decoder.split(data):
            # one frame at a time: a configuration changes the layout of the frames after it
            decoded = item if isinstance(item, FrameRejected) else decoder.frame(item)
            events.extend(self._handle([decoded], now))
        return events

    def receive_datagram(self, data: bytes, now: float) -> list[Event]:
        """Events of one UDP datagram: only a data frame of this stream's IDCODE is taken (a
        configuration or command over UDP is refused: anyone can send a datagram)."""
        if len(data) < MIN_FRAME or data[0] != SYNC_BYTE or (data[1] >> 4) & 0x7 != FrameType.DATA:
            return [self.refuse("a UDP datagram that is not a data frame")]
        idcode = (data[4] << 8) | data[5]
        if idcode != self.idcode:
            return [self.refuse(f"a UDP data frame of IDCODE {idcode}")]
        self._last_rx = now
        return self._handle(self.decoder.datagram(data), now)

    def refuse(self, reason: str) -> FrameRejected:
        """Count input refused before decoding (e.g. a datagram from another host)."""
        self.stats.rejected += 1
        self.stats.reasons.append(reason)
        return FrameRejected(reason)

    def _handle(self, decoded: list, now: float) -> list[Event]:
        events: list[Event] = []
        for item in decoded:
            if isinstance(item, DataReceived):
                self._data(item, now, events)
            elif isinstance(item, ConfigReceived):
                try:
                    self._configuration(item.config, now, events)
                except C37118Error as exc:  # what the device sent must never end the session
                    events.append(self.refuse(f"configuration refused: {exc}"))
            elif isinstance(item, DataUnmatched):
                self._hold(item.raw, now)
            elif isinstance(item, FrameRejected):
                self.stats.rejected += 1
                self.stats.reasons.append(item.reason)
                events.append(item)
            elif isinstance(item, HeaderReceived):
                events.append(item)
        return events

    def _data(self, item: DataReceived, now: float, events: list) -> None:
        stamp, values, layout = item.stamp, item.values, item.layout
        self.stats.frames += 1
        config = layout.config
        rate = config.data_rate
        ticks = stamp_ticks(stamp.soc, stamp.fracsec, config.time_base)
        last = self.stats.last_ticks
        if last is not None and rate and ticks > last:
            period = frame_period(rate) * TICKS_PER_SECOND
            gap = round((ticks - last) / period) - 1
            if gap > 0:
                self.stats.frames_lost += gap
        if last is None or ticks > last:
            self.stats.last_ticks = ticks
        if any(values[slot.stat] & Stat.CONFIG_CHANGE for slot in layout.slots):
            # A change is announced: ask (rate-limited) while the bit is set ...
            self._change_announced = True
            self._maybe_request(now)
        elif self._change_announced:
            # ... and once more when it clears without a new configuration having come (in-band
            # or as an answer): that is when the change happened.
            self._change_announced = False
            self._request(now)
        events.append(item)

    def _hold(self, raw: bytes, now: float) -> None:
        while self._held and (
            len(self._held) >= self.max_held or self._held_bytes + len(raw) > self.max_held_bytes
        ):
            self._held_bytes -= len(self._held.popleft())
            self.stats.dropped_held += 1
            self.stats.frames_lost += 1
        self._held.append(raw)
        self._held_bytes += len(raw)
        self.stats.held += 1
        self._maybe_request(now)

    def _configuration(self, config: ConfigFrame, now: float, events: list) -> None:
        if config.kind == FrameType.CFG1:
            return  # CFG-1 describes what the device can do, not the stream
        self._requested_at = None
        try:
            layout = DataLayout(config)
        except C37118Error as exc:
            events.append(self.refuse(f"configuration refused: {exc}"))
            return
        previous = self.config or self.known
        if previous is None or config_signature(previous) != config_signature(config):
            self.stats.config_changes += 1
            events.append(ConfigurationChanged(config, previous))
            current = config
            self._change_announced = False  # the announced change has arrived
        else:
            current = previous  # the same stream: keep the object its mapping is keyed on
        self.config = self.known = current
        in_force = self.decoder.layout
        if in_force is None or in_force.config is not current:
            self.decoder.layout = layout if current is config else DataLayout(current)
        if not self.streaming:
            self.streaming = True
            self.command(Command.DATA_ON)
        held, self._held = self._held, deque()
        self._held_bytes = 0
        if held:
            # Frames that arrived before their configuration: parse them now, in order.
            events.extend(self._handle([self.decoder.frame(raw) for raw in held], now))


class _Tcp(asyncio.Protocol):
    def __init__(self, owner: PdcClient) -> None:
        self.owner = owner
        self.transport: asyncio.Transport | None = None
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.owner._feed(data, datagram=False)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, owner: PdcClient) -> None:
        self.owner = owner

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.owner._feed(data, datagram=True, sender=addr[0])


class PdcClient:
    """Asyncio PDC client of the stream ``idcode`` at ``host:port``.

    ``on_event`` receives every :data:`Event` (on the event loop). ``udp_port`` (0: any free
    port, see :attr:`udp_port` after :meth:`start`) also takes data frames from UDP datagrams on
    ``udp_host`` (``0.0.0.0`` for a PMU on another host): only data frames of ``idcode`` sent
    from the PMU's address (the TCP connection's peer); other datagrams are counted as rejected. The client reconnects after a lost connection or a stalled stream, waiting
    ``retry_interval`` seconds doubling up to ``max_retry_interval``.
    """

    def __init__(
        self,
        host: str,
        port: int,
        idcode: int,
        *,
        on_event: Callable[[Event], Any] | None = None,
        prefer_cfg3: bool = False,
        udp_port: int | None = None,
        udp_host: str = "127.0.0.1",
        data_timeout: float = 10.0,
        config_retry: float = 2.0,
        retry_interval: float = 0.5,
        max_retry_interval: float = 30.0,
    ) -> None:
        self.host, self.port, self.idcode = host, port, idcode
        self.on_event = on_event
        self.prefer_cfg3 = prefer_cfg3
        self.udp_host = udp_host
        self.udp_port = udp_port
        self.data_timeout = data_timeout
        self.config_retry = config_retry
        self.retry_interval = retry_interval
        self.max_retry_interval = max_retry_interval
        self.stats = ClientStats()
        self.session: PdcSession | None = None
        self.connections = 0
        self.last_error: str | None = None
        self._tcp: _Tcp | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._runner: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._stopping = False
        #: the PMU's address (of the TCP connection): UDP data from any other is refused
        self._peer_host: str | None = None

    @property
    def config(self) -> ConfigFrame | None:
        """The configuration in force (None before the first one)."""
        return self.session.known if self.session is not None else None

    async def start(self) -> None:
        """Open the UDP socket (if any) and start connecting; returns at once."""
        loop = asyncio.get_running_loop()
        if self.udp_port is not None and self._udp is None:
            self._udp, _ = await loop.create_datagram_endpoint(
                lambda: _Udp(self), local_addr=(self.udp_host, self.udp_port)
            )
            self.udp_port = self._udp.get_extra_info("sockname")[1]
        self._stopping = False
        self._runner = loop.create_task(self._run(), name="c37118-pdc-client")

    async def wait_connected(self, timeout: float = 10.0) -> None:
        """Wait until the TCP connection is up."""
        await asyncio.wait_for(self._connected.wait(), timeout)

    async def stop(self) -> None:
        """Turn the data off, close the connection and stop reconnecting."""
        self._stopping = True
        tcp = self._tcp
        if tcp is not None and tcp.transport is not None and not tcp.transport.is_closing():
            if self.session is not None:
                self.session.command(Command.DATA_OFF)
                tcp.transport.write(self.session.data_to_send())
            tcp.transport.close()
        if self._runner is not None:
            self._runner.cancel()
            try:
                await self._runner
            except asyncio.CancelledError:
                pass
        if self._timer is not None:
            self._timer.cancel()
        if self._udp is not None:
            self._udp.close()
            self._udp = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        attempt = 0
        while not self._stopping:
            try:
                _, tcp = await asyncio.wait_for(
                    loop.create_connection(lambda: _Tcp(self), self.host, self.port), 10.0
                )
            except (TimeoutError, OSError) as exc:
                self.last_error = str(exc) or type(exc).__name__
                attempt += 1
                wait = min(self.retry_interval * 2 ** (attempt - 1), self.max_retry_interval)
                log.info(
                    "connecting to %s:%s failed (%s); retry in %.1f s",
                    self.host,
                    self.port,
                    exc,
                    wait,
                )
                await asyncio.sleep(wait)
                continue
            attempt = 0
            self.connections += 1
            self._tcp = tcp
            peer = tcp.transport.get_extra_info("peername") if tcp.transport else None
            self._peer_host = peer[0] if peer else None
            known = self.session.known if self.session is not None else None
            self.session = PdcSession(
                self.idcode,
                prefer_cfg3=self.prefer_cfg3,
                config_retry=self.config_retry,
                data_timeout=self.data_timeout,
                known=known,
                stats=self.stats,
            )
            self.session.start(loop.time())
            self._flush()
            self._connected.set()
            await tcp.lost
            self._connected.clear()
            self._tcp = None
            if self._timer is not None:
                self._timer.cancel()
            if not self._stopping:
                log.warning("connection to %s:%s lost; reconnecting", self.host, self.port)
                await asyncio.sleep(self.retry_interval)

    def _feed(self, data: bytes, datagram: bool, sender: str | None = None) -> None:
        session = self.session
        if session is None:
            return
        now = asyncio.get_running_loop().time()
        if datagram and not _same_host(sender, self._peer_host):
            events: list[Event] = [session.refuse(f"UDP datagram from {sender}, not the PMU")]
        elif datagram:
            events = session.receive_datagram(data, now)
        else:
            events = session.receive(data, now)
        self._flush()
        self._dispatch(events)

    def _dispatch(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, StreamStalled) and self._tcp and self._tcp.transport:
                log.warning("no data for %.1f s; reconnecting", event.seconds)
                self._tcp.transport.close()
            elif isinstance(event, FrameRejected):
                log.warning("bad frame from %s:%s: %s", self.host, self.port, event.reason)
            if self.on_event is not None:
                self.on_event(event)

    def _flush(self) -> None:
        session, tcp = self.session, self._tcp
        if session is None:
            return
        data = session.data_to_send()
        if (
            data
            and tcp is not None
            and tcp.transport is not None
            and not tcp.transport.is_closing()
        ):
            tcp.transport.write(data)
        self._arm()

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.session is None or self._tcp is None:
            return
        deadline = self.session.next_deadline()
        if deadline is not None:
            self._timer = asyncio.get_running_loop().call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self.session is None:
            return
        events = self.session.tick(asyncio.get_running_loop().time())
        self._flush()
        self._dispatch(events)


def _same_host(sender: str | None, peer: str | None) -> bool:
    if sender is None or peer is None:
        return False
    try:
        a, b = ipaddress.ip_address(sender.split("%")[0]), ipaddress.ip_address(peer.split("%")[0])
    except ValueError:
        return sender == peer
    mapped_a = getattr(a, "ipv4_mapped", None) or a
    mapped_b = getattr(b, "ipv4_mapped", None) or b
    return mapped_a == mapped_b
