"""Asyncio data publisher of the IEEE 2664 profile (a thin transport over PublisherSession).

::

    metadata, signals = synthetic_pmu_metadata(1000)
    async with Publisher(metadata, host="127.0.0.1", port=0) as publisher:
        publisher.publish(measurements)      # to every subscriber whose filter selects them
        await publisher.drain()              # wait for slow subscribers (flow control)

Each connection gets its own session (operational modes, filter expression, signal index cache,
TSSC or compact encoding, optional UDP data channel with cipher keys). Whatever one connection
sends can only close that connection: every error while handling it is logged with the reason
and ends that connection alone. A connection that has not defined its operational modes within
``negotiation_timeout`` seconds is closed.

Slow subscribers (the policy of :mod:`gridbind.sttp.slowpeer`): ``publish`` never blocks. Each
connection's send queue is bounded at ``high_water`` bytes; while a connection is above it, the
measurements published for it are dropped (counted in ``Connection.dropped``) and its commands
are not read; one that stays above for ``slow_timeout`` seconds, or passes ``max_backlog`` bytes,
is disconnected. :meth:`Publisher.drain` waits for lagging subscribers, at most until the policy
drops them; a live source need not call it per frame.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from gridbind.sttp.api import DEFAULT_HOST, DEFAULT_PORT
from gridbind.sttp.expressions import FilterExpressionError, run_bounded
from gridbind.sttp.ieee2664.events import (
    CipherKeysActivated,
    Event,
    FilterRequested,
    ReplayDue,
    SessionExpired,
    Subscribed,
)
from gridbind.sttp.ieee2664.metadata import DataSet, MetadataError, parse_datetime
from gridbind.sttp.ieee2664.publisher_session import PublisherSession, SessionTiming
from gridbind.sttp.ieee2664.publisher_state import PublisherConfig, PublisherState
from gridbind.sttp.ieee2664.wire import ProtocolError
from gridbind.sttp.measurement import Measurement, ticks_from_datetime, ticks_now
from gridbind.sttp.shell import SessionShell, SlowPeerPolicy
from gridbind.sttp.slowpeer import HIGH_WATER, MAX_BACKLOG, SLOW_TIMEOUT
from gridbind.sttp.tls import TlsConfig

log = logging.getLogger(__name__)

#: history(start_ticks, stop_ticks, signal_ids) -> async iterator of measurement batches
HistorySource = Callable[[int, int, list[uuid.UUID]], AsyncIterator[Sequence[Measurement]]]


class _Core:
    """The shell's view of a :class:`PublisherSession`: a ProtocolError or an expired session
    ends it (``closed``, ``close_reason``), commands wait while the subscriber's answers fill
    its send queue, and ``tick`` gets the wall clock too."""

    def __init__(self, session: PublisherSession, room: Callable[[], int]) -> None:
        self.session = session
        self.room = room
        self.closed = False
        self.close_reason = ""

    def _end(self, reason: str) -> None:
        if not self.closed:
            self.closed, self.close_reason = True, reason

    def receive_data(self, data: bytes, now: float) -> list[Event]:
        try:
            # answers beyond the send queue's room wait until the subscriber reads
            return self.session.receive(data, self.room(), now)
        except ProtocolError as exc:
            self._end(str(exc))
            return []

    def filter_done(self, result: object) -> list[Event]:
        try:
            return self.session.filter_done(result)
        except ProtocolError as exc:
            self._end(str(exc))
            return []

    def data_to_send(self) -> bytes:
        return self.session.data_to_send()

    def next_deadline(self) -> float | None:
        return None if self.closed else self.session.next_deadline()

    def tick(self, now: float) -> list[Event]:
        if self.closed:
            return []  # a timer that fired as the session ended does nothing
        events = self.session.tick(now, ticks_now())
        for event in events:
            if isinstance(event, SessionExpired):
                self._end(event.reason)
        return events

    def close(self, reason: str) -> list[Event]:
        self._end(reason)
        return []


class Connection(SessionShell[Event]):
    """One subscriber connection: its session on the shared asyncio shell (flush, timer, UDP
    data channel, slow-subscriber policy), historical replay and filter evaluation."""

    def __init__(self, publisher: Publisher) -> None:
        super().__init__(
            policy=SlowPeerPolicy(
                publisher.high_water, publisher.max_backlog, publisher.slow_timeout
            )
        )
        self.publisher = publisher
        self.session: PublisherSession | None = None
        self._core: _Core | None = None
        #: set when the session says the next historical replay batch may go
        self._replay_go = asyncio.Event()
        #: the replay and UDP work of the current subscription
        self._work: list[asyncio.Task[None]] = []

    @property
    def closed(self) -> bool:
        """True once the connection is gone (or being dropped)."""
        return self.gone

    @property
    def lost(self) -> asyncio.Future[str]:
        """Resolved (with the reason) once the connection is lost."""
        return self.ended

    # -- shell hooks
    def connected(self) -> None:
        assert self.transport is not None and self.peer is not None
        publisher = self.publisher
        publisher._connections.add(self)
        ssl_object = self.transport.get_extra_info("ssl_object")
        if publisher.tls is not None and ssl_object is not None:
            # revoked client certificates, or ones not naming the peer, are refused (tls.py);
            # the session (and its negotiation deadline) starts once admitted, bytes that
            # arrive meanwhile are held by the shell (bounded: max_held)
            self.spawn(self._admit(publisher.tls, ssl_object))
            return
        self._begin()

    def _begin(self) -> None:
        assert self.peer is not None
        publisher = self.publisher
        rotation = publisher.cipher_rotation_interval if publisher.config.encrypt_udp else None
        timing = SessionTiming(
            noop_interval=publisher.noop_interval or 0.0,
            negotiation_timeout=publisher.negotiation_timeout or 0.0,
            cipher_rotation_interval=rotation,
        )
        session = PublisherSession(
            publisher.state, self.peer[0], now=self.loop.time(), timing=timing
        )
        session.defer_filters = True
        self.session = session
        self._core = _Core(session, self._room)
        log.info("subscriber connected from %s:%s", *self.peer)
        self.start(self._core, datagram_source=session)

    async def _admit(self, tls: TlsConfig, ssl_object: Any) -> None:
        reason = await tls.refusal(ssl_object, self.peer)
        if reason is not None:
            self.abort(f"TLS: refused the connection: {reason}")
        elif self.transport is not None and not self.gone and not self.closing:
            self._begin()

    def _room(self) -> int:
        transport = self.transport
        buffered = transport.get_write_buffer_size() if transport is not None else 0
        return max(0, self.publisher.high_water - buffered)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self.publisher._changed()  # e.g. a confirmed signal index cache makes it ready
        self._go_on()

    def _go_on(self) -> None:
        """Handle the commands that waited (behind a filter or a full send queue), unless they
        must wait on (resume_writing and the filter's end call it again)."""
        session = self.session
        if session is None or self.gone or self.lagging:
            return
        if session.held_commands and not session.filter_pending:
            self.loop.call_soon(self.data_received, b"")

    def writing_paused(self) -> None:
        if self.session is not None:
            self.session.hold_data = True

    def writing_resumed(self) -> None:
        if self.session is not None:
            self.session.hold_data = False
        self._go_on()

    def abort(self, reason: str) -> None:
        super().abort(reason)
        self.publisher._connections.discard(self)

    def ended_with(self, reason: str) -> None:
        self.publisher._connections.discard(self)
        self.publisher._changed()
        log.info("subscriber %s disconnected (%s)", self.peer, reason)

    def event_received(self, event: Event) -> None:
        if isinstance(event, FilterRequested):
            self.spawn(self._run_filter(event))
            return
        if isinstance(event, ReplayDue):
            self._replay_go.set()
        elif isinstance(event, CipherKeysActivated):
            log.info("subscriber %s did not confirm cipher keys; switched", self.peer)
        elif isinstance(event, Subscribed):
            for task in self._work:
                task.cancel()
            self._work.clear()
            assert self.session is not None
            target = self.session.udp_target
            if target is not None:
                self._work.append(self.spawn(self._open_udp(*target)))
            if event.temporal:
                self._work.append(self.spawn(self._replay(event)))
        self.publisher._changed()
        if self.publisher.on_event is not None:
            self.publisher.on_event(self, event)

    async def _open_udp(self, host: str, port: int) -> None:
        await self.open_datagram_target(host, port)
        self.publisher._changed()  # the UDP channel may make it ready

    # -- state
    @property
    def ready(self) -> bool:
        """True once data published now reaches this subscriber: subscribed, its signal index
        cache confirmed (UDP data waits for that) and its UDP data channel open."""
        session = self.session
        if session is None or self.gone or not session.ready:
            return False
        return session.udp_target is None or self.udp is not None

    @property
    def dropped(self) -> int:
        """Measurements not sent to this subscriber because it lagged (slow-subscriber policy)."""
        session = self.session.dropped_measurements if self.session is not None else 0
        return session + (self.queue.dropped if self.queue is not None else 0)

    # -- data
    def publish(self, measurements: Sequence[Measurement], now: int | None) -> int:
        """Hand measurements to this connection (throttled subscriptions keep only the latest)."""
        session = self.session
        if session is None or not session.subscribed or self.gone:
            return 0
        if self.transport is None or self.transport.is_closing():
            return 0
        settings = session.settings
        if settings is not None and settings.start_time:
            return 0  # a historical replay owns this subscription's data flow
        if self.lagging:
            self.admits_data(session.count_selected(measurements))
            return 0
        try:
            # throttled subscriptions keep the latest values for the session's next interval
            count = session.offer(measurements, now)
            if count:
                self.flush()
        except Exception as exc:  # noqa: BLE001 - one subscription's failure ends only it
            log.exception("error publishing to %s", self.peer)
            self.abort(f"cannot publish to it: {exc!r}")
            return 0
        return count

    async def _run_filter(self, event: FilterRequested) -> None:
        try:
            result: Any = await run_bounded(event.run, peer=self.peer[0] if self.peer else None)
        except FilterExpressionError as exc:
            result = exc
        core = self._core
        if core is None or self.gone:
            return
        self.feed(lambda now: core.filter_done(result))
        self._go_on()

    async def _replay(self, event: Subscribed) -> None:
        history = self.publisher.history
        session = self.session
        assert history is not None and session is not None
        settings = event.settings
        try:
            start = parse_time_constraint(settings.start_time)
            stop = parse_time_constraint(settings.stop_time) if settings.stop_time else ticks_now()
        except (ValueError, OverflowError) as exc:
            session.fail(0x02, f"Bad time constraint: {exc}")
            self.flush()
            return
        first = True
        async for batch in history(start, stop, event.signal_ids):
            if self.gone or not session.subscribed:
                return
            # The constraints bound the replay whatever the source yields: nothing before the
            # start or after the stop time goes out, and the replay ends past the stop time.
            inside = [m for m in batch if start <= m.timestamp <= stop]
            if first and inside:
                session.data_start_time(inside[0].timestamp)
                first = False
            if inside:
                session.publish(inside, None)
            if batch and min(m.timestamp for m in batch) > stop:
                break
            self.flush()
            await self.drain()
            # The pace is a session deadline (processingInterval, changeable meanwhile).
            if session.replay_sent(self.loop.time()):
                await asyncio.sleep(0)
            else:
                self._replay_go.clear()
                self.flush()  # re-arms the timer for the replay deadline
                await self._replay_go.wait()
        session.processing_complete()
        self.flush()


class Publisher:
    """IEEE 2664 data publisher.

    Args:
        metadata: the publisher's metadata (DeviceDetail / MeasurementDetail / PhasorDetail...);
            subscriptions are filtered against the ``ActiveMeasurements`` view derived from it.
            Also accepted as XML data set bytes (e.g. relayed from an upstream publisher), which
            are then served verbatim.
        host, port: where to listen (port 0 picks a free port; see :attr:`port`).
        config: policy (metadata refresh, NaN filter, base time offsets, UDP encryption...).
        tls: TLS for the command channel (:class:`~gridbind.sttp.tls.TlsConfig`, the same type
            as the draft profile's): listening needs ``certfile``; with ``cafile`` subscribers
            must present certificates issued by it (revoked ones are refused with ``crlfile``).
        noop_interval: seconds between NO_OP keep-alives (0 disables).
        cipher_rotation_interval: seconds between UDP cipher key rotations (``encrypt_udp``).
        history: a source of archived measurements, enabling historical replay for
            subscriptions with ``startTimeConstraint``.
        high_water: bytes of a subscriber's send queue past which it lags: its measurements are
            dropped and its commands not read until it catches up (slow-subscriber policy).
        max_backlog: bytes a subscriber may lag behind before it is disconnected at once.
        slow_timeout: seconds a subscriber may lag before it is disconnected (0: never).
        negotiation_timeout: seconds a new connection has to send DEFINE_OPERATIONAL_MODES
            before it is closed (0: never), as the draft profile's negotiation timeout.
        on_event: called with ``(connection, event)`` for every session event.
    """

    def __init__(
        self,
        metadata: DataSet | bytes | str | None = None,
        *,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        config: PublisherConfig | None = None,
        tls: TlsConfig | None = None,
        noop_interval: float = 5.0,
        cipher_rotation_interval: float | None = 60.0,
        history: HistorySource | None = None,
        max_backlog: int = MAX_BACKLOG,
        high_water: int = HIGH_WATER,
        slow_timeout: float = SLOW_TIMEOUT,
        negotiation_timeout: float = 5.0,
        on_event: Callable[[Connection, Event], Any] | None = None,
    ) -> None:
        from gridbind.sttp.ieee2664.metadata import empty_source_metadata

        self.config = config or PublisherConfig()
        if history is not None:
            self.config.supports_temporal = True
        self.state = PublisherState(
            empty_source_metadata() if metadata is None else metadata, self.config
        )
        self.host, self._port = host, port
        self.tls = tls
        self.noop_interval = noop_interval
        self.cipher_rotation_interval = cipher_rotation_interval
        self.history = history
        self.max_backlog = max_backlog
        self.high_water = high_water
        self.slow_timeout = slow_timeout
        self.negotiation_timeout = negotiation_timeout
        self.on_event = on_event
        self._server: asyncio.Server | None = None
        self._connections: set[Connection] = set()
        self._dialers: list[asyncio.Task[None]] = []
        #: set (and replaced) whenever a connection's state may have changed, while someone
        #: waits (wait_subscribed); not touched on the data path otherwise
        self._change = asyncio.Event()
        self._watchers = 0

    @property
    def port(self) -> int:
        """The listening port (the real one when 0 was asked for)."""
        if self._server is not None and self._server.sockets:
            return int(self._server.sockets[0].getsockname()[1])
        return self._port

    @property
    def connections(self) -> list[Connection]:
        """Current subscriber connections."""
        return list(self._connections)

    def _changed(self) -> None:
        if self._watchers:
            self._change.set()
            self._change = asyncio.Event()

    async def wait_subscribed(self, count: int = 1, timeout: float = 10.0) -> None:
        """Wait until ``count`` connections are :attr:`Connection.ready` (data published now
        reaches them: subscribed, signal index cache confirmed, UDP channel open)."""

        async def wait() -> None:
            while sum(1 for c in self._connections if c.ready) < count:
                await self._change.wait()

        self._watchers += 1
        try:
            await asyncio.wait_for(wait(), timeout)
        finally:
            self._watchers -= 1

    async def start(self, listen: bool = True) -> None:
        """Listen for subscribers (``listen=False``: only :meth:`connect` to listening ones)."""
        if not listen:
            return
        loop = asyncio.get_running_loop()
        context = self.tls.server_context() if self.tls is not None else None
        self._server = await loop.create_server(
            lambda: Connection(self), self.host, self._port, ssl=context
        )

    async def stop(self) -> None:
        """Close the listener, stop redialling and close every connection."""
        for dialer in self._dialers:
            dialer.cancel()
        self._dialers.clear()
        if self._server is not None:
            self._server.close()
        for connection in list(self._connections):
            connection.flush()
            connection.close()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        await asyncio.sleep(0)

    async def __aenter__(self) -> Publisher:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def connect(
        self,
        host: str,
        port: int,
        *,
        retry_interval: float = 1.0,
        max_retry_interval: float = 30.0,
    ) -> None:
        """Reverse connection: dial a listening subscriber and, once connected, keep
        redialling (with back-off) whenever the connection drops, until :meth:`stop`. Returns
        once connected; raises :class:`OSError` when the first attempt fails.
        With ``tls``, the subscriber's certificate must name ``tls.server_hostname`` (default:
        ``host``)."""
        connected = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(
            self._dial(host, port, retry_interval, max_retry_interval, connected)
        )
        self._dialers.append(task)
        done, _ = await asyncio.wait({task, connected}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            task.result()

    async def _dial(
        self,
        host: str,
        port: int,
        retry_interval: float,
        max_retry_interval: float,
        connected: asyncio.Future[None],
    ) -> None:
        loop = asyncio.get_running_loop()
        tls = self.tls
        context = tls.client_context() if tls is not None else None
        server_hostname = (tls.server_hostname or host) if tls is not None else None
        attempt = 0
        while True:
            try:
                _, connection = await loop.create_connection(
                    lambda: Connection(self),
                    host,
                    port,
                    ssl=context,
                    server_hostname=server_hostname,
                )
            except OSError:
                if not connected.done():
                    raise  # the first attempt: connect() reports it (redialling follows success)
                attempt += 1
                wait = min(retry_interval * 2 ** (attempt - 1), max_retry_interval)
                log.info("dialling subscriber %s:%s failed; retry in %.1f s", host, port, wait)
                await asyncio.sleep(wait)
                continue
            attempt = 0
            if not connected.done():
                connected.set_result(None)
            await connection.lost
            await asyncio.sleep(retry_interval)

    def publish(self, measurements: Sequence[Measurement]) -> int:
        """Send measurements to every subscriber that selected them; returns copies queued."""
        now = ticks_now()
        return sum(connection.publish(measurements, now) for connection in list(self._connections))

    async def drain(self) -> None:
        """Wait until every subscriber's send queue is below the high-water mark; a subscriber
        that stays above is disconnected after ``slow_timeout``, which bounds the wait.

        Always yields to the event loop once, so a source that publishes in a tight loop still
        lets commands (unsubscribe) and disconnects be processed.
        """
        await asyncio.sleep(0)
        for connection in list(self._connections):
            await connection.drain()

    def define_metadata(self, metadata: DataSet | bytes | str) -> None:
        """Replace the metadata (a DataSet or XML served verbatim) and tell subscribers that the
        configuration changed."""
        self.state = PublisherState(metadata, self.config)
        for connection in list(self._connections):
            if connection.session is not None:
                connection.session.state = self.state
                connection.session.configuration_changed()
                connection.flush()

    def notify(self, message: str) -> None:
        """Send a NOTIFY to every subscriber."""
        for connection in list(self._connections):
            if connection.session is not None and connection.session.validated:
                connection.session.notify(message)
                connection.flush()

    def send_buffer_block(self, signal_id: uuid.UUID, data: bytes) -> int:
        """Send a BUFFER_BLOCK for ``signal_id`` to every subscriber of it; returns how many."""
        sent = 0
        for connection in list(self._connections):
            if connection.session is not None and connection.session.buffer_block(signal_id, data):
                connection.flush()
                sent += 1
        return sent


_RELATIVE = re.compile(r"^\*\s*(?:([-+])\s*(\d+(?:\.\d+)?)\s*([smhd]))?$", re.IGNORECASE)


def parse_time_constraint(text: str, now: int | None = None) -> int:
    """Ticks of a start/stop time constraint: ``*`` (now), ``*-10s`` / ``*-5m`` / ``*-2h`` /
    ``*-1d``, an ISO date-time, or a tick count."""
    value = text.strip()
    now = ticks_now() if now is None else now
    match = _RELATIVE.match(value)
    if match:
        sign, amount, unit = match.groups()
        if amount is None:
            return now
        seconds = float(amount) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit.lower()]
        delta = int(seconds * 10_000_000)
        return now - delta if sign == "-" else now + delta
    if value.isdigit():
        return int(value)
    try:
        return ticks_from_datetime(parse_datetime(value))
    except MetadataError:
        pass
    try:
        moment = datetime.strptime(value, "%m/%d/%Y %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        raise ProtocolError(f"not a time constraint: {text!r}") from None
    return ticks_from_datetime(moment)
