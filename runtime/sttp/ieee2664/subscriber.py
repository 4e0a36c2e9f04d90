"""Asyncio data subscriber of the IEEE 2664 profile (a thin transport over SubscriberSession).

Use it as an async context manager and iterate measurements, or pass callbacks::

    async with Subscriber(host="127.0.0.1", port=7165,
                          filter_expression="FILTER ActiveMeasurements WHERE SignalType='FREQ'") as sub:
        async for measurement in sub:
            ...

The subscriber connects, defines its operational modes (TSSC, GZip metadata and signal index
cache, UTF-8), requests metadata, subscribes when the metadata arrived, and reconnects with
exponential back-off when the connection drops (``auto_reconnect``).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

from gridbind.generated.sttp.ieee2664 import ServerCommand
from gridbind.sttp.api import DEFAULT_HOST, DEFAULT_PORT
from gridbind.sttp.errors import InvalidArgument, RequestRefused
from gridbind.sttp.ieee2664.compact import SignalIndexCache
from gridbind.sttp.ieee2664.events import (
    CommandFailed,
    CommandSucceeded,
    ConfigurationChanged,
    Event,
    MeasurementsReceived,
    MetadataArrived,
    MetadataReceived,
    ProcessingComplete,
    SessionExpired,
    SubscriptionUpdated,
)
from gridbind.sttp.ieee2664.metadata import DataSet
from gridbind.sttp.ieee2664.params import SubscriptionSettings
from gridbind.sttp.ieee2664.statistics import Statistics
from gridbind.sttp.ieee2664.subscriber_session import SubscriberConfig, SubscriberSession
from gridbind.sttp.ieee2664.wire import ProtocolError
from gridbind.sttp.measurement import Measurement
from gridbind.sttp.shell import SessionShell, open_datagram_inlet
from gridbind.sttp.tls import TlsConfig

log = logging.getLogger(__name__)
#: How many connection attempts and retry waits a subscriber remembers.
HISTORY = 256


def _remember(values: list[float], value: float) -> None:
    values.append(value)
    if len(values) > HISTORY:
        del values[: len(values) - HISTORY]


MeasurementsCallback = Callable[[list[Measurement]], Any]


class _Core:
    """The shell's view of one connection's :class:`SubscriberSession`: a ProtocolError ends
    it, an undecodable datagram is dropped and counted."""

    def __init__(self, session: SubscriberSession) -> None:
        self.session = session
        self.closed = False
        self.close_reason = ""
        #: the ProtocolError that ended the session (None: it did not end on one)
        self.error: ProtocolError | None = None

    def receive_data(self, data: bytes, now: float) -> list[Event]:
        if self.closed:
            return []
        try:
            return self.session.receive(data, now)
        except ProtocolError as exc:
            self.error = exc
            self.close(str(exc))
            return []

    def receive_datagram(self, datagram: bytes) -> list[Event]:
        try:
            return self.session.receive_datagram(datagram)
        except Exception:  # noqa: BLE001 - a datagram the session cannot take is dropped
            log.exception("dropping an undecodable datagram")
            self.session.stats.dropped_packets += 1
            return []

    def data_to_send(self) -> bytes:
        return self.session.data_to_send()

    def next_deadline(self) -> float | None:
        return None if self.closed else self.session.next_deadline()

    def tick(self, now: float) -> list[Event]:
        return [] if self.closed else self.session.tick(now)

    def close(self, reason: str) -> list[Event]:
        if not self.closed:
            self.closed, self.close_reason = True, reason
        return []


class _CommandProtocol(SessionShell[Event]):
    """The command channel of one connection to the publisher, on the shared shell."""

    def __init__(self, owner: Subscriber) -> None:
        super().__init__()
        self.owner = owner
        self.reject = False
        self.core: _Core | None = None
        #: what the transport reported when the connection was lost
        self.lost_error: Exception | None = None

    def connected(self) -> None:
        if self.reject:
            self.close()  # one publisher at a time; the owner starts the session otherwise

    def begin(self, session: SubscriberSession) -> None:
        """Run ``session`` on this connection."""
        self.core = _Core(session)
        self.start(self.core, datagram_sink=self.core)

    def event_received(self, event: Event) -> None:
        if isinstance(event, SessionExpired):
            owner = self.owner
            owner._close_reason = owner.last_error = event.reason
            log.warning("%s; closing the connection", event.reason)
            self.abort(event.reason)
        self.owner._event(event)

    def ended_with(self, reason: str) -> None:
        core = self.core
        if core is not None and core.error is not None:
            self.owner._failed(core.error)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost_error = exc
        super().connection_lost(exc)


class Subscriber:
    """IEEE 2664 data subscriber.

    Args:
        host, port: the publisher to dial.
        filter_expression: which signals (``FILTER ActiveMeasurements WHERE ...``, IDs, keys).
        settings: full subscription parameters (``filter_expression`` overrides its filter).
        config: operational modes (TSSC, compression of metadata / signal index cache).
        request_metadata: fetch metadata first and subscribe when it arrives.
        metadata_filters: ``FILTER <table> WHERE ...`` expressions for the metadata request.
        auto_subscribe: subscribe by itself after connecting (and after every reconnect).
        auto_reconnect, retry_interval, max_retry_interval, max_retries: reconnect policy;
            the wait doubles from ``retry_interval`` up to ``max_retry_interval``; -1 retries
            forever.
        udp: receive data on a UDP channel (``udp_port`` 0 picks a free port on ``udp_host``).
        udp_receive_buffer: SO_RCVBUF asked for the UDP socket (0 keeps the kernel default).
        tls: TLS for the command channel (:class:`~gridbind.sttp.tls.TlsConfig`, the same type
            as the draft profile's); ``tls.server_hostname`` is the name expected in the
            publisher's certificate when it differs from ``host`` (a publisher behind NAT).
            With ``listen`` it is the server side (``certfile`` required).
        on_measurements: called with each received batch (on the event loop).
        on_event: called with every session event (metadata, subscription updates, failures...).
        queue_batches: bound of the async-iterator queue: TCP reading pauses when it holds
            this many batches; data on UDP cannot be paused, so at most twice as many are
            kept and beyond that the oldest batch is dropped (counted in ``dropped_batches``).
        idle_timeout: close (and, with ``auto_reconnect``, redial) a connection on which nothing,
            not even a NO_OP keep-alive, arrived for this many seconds (0 disables).
        refresh_on_change: on CONFIGURATION_CHANGED, refresh metadata and resubscribe.
        listen: reverse connection: listen on ``host:port`` (port 0: any, see :attr:`port` after
            :meth:`start`) and let the publisher dial in (``Publisher.connect``).
    """

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        *,
        filter_expression: str = "",
        settings: SubscriptionSettings | None = None,
        config: SubscriberConfig | None = None,
        request_metadata: bool = True,
        metadata_filters: str = "",
        auto_subscribe: bool = True,
        auto_reconnect: bool = True,
        retry_interval: float = 1.0,
        max_retry_interval: float = 30.0,
        max_retries: int = -1,
        udp: bool = False,
        udp_host: str = "127.0.0.1",
        udp_port: int = 0,
        udp_receive_buffer: int = 4 * 1024 * 1024,
        tls: TlsConfig | None = None,
        on_measurements: MeasurementsCallback | None = None,
        on_event: Callable[[Event], Any] | None = None,
        queue_batches: int = 1024,
        connect_timeout: float = 5.0,
        idle_timeout: float = 0.0,
        listen: bool = False,
        refresh_on_change: bool = True,
    ) -> None:
        self.host, self.port = host, port
        self.settings = settings or SubscriptionSettings()
        if filter_expression:
            self.settings.filter_expression = filter_expression
        #: the selection of the options, which subscribe() without points returns to
        self._selection = self.settings.filter_expression
        self.config = config or SubscriberConfig()
        self.request_metadata_first = request_metadata
        self.metadata_filters = metadata_filters
        self.auto_subscribe = auto_subscribe
        self.auto_reconnect = auto_reconnect
        self.retry_interval = retry_interval
        self.max_retry_interval = max_retry_interval
        self.max_retries = max_retries
        self.udp, self.udp_host, self.udp_port = udp, udp_host, udp_port
        self.udp_receive_buffer = udp_receive_buffer
        #: the latest connection attempts (loop time) and waits before a retry, in order (the
        #: last HISTORY of each: a subscriber reconnecting for months must not grow them)
        self.attempt_times: list[float] = []
        self.retry_waits: list[float] = []
        self.tls = tls
        self.on_measurements = on_measurements
        self.on_event = on_event
        self.connect_timeout = connect_timeout
        self.idle_timeout = idle_timeout
        self._close_reason: str | None = None
        self.listen = listen
        self.refresh_on_change = refresh_on_change
        self._server: asyncio.Server | None = None
        self._incoming: asyncio.Queue[_CommandProtocol] = asyncio.Queue()
        self._listening = asyncio.Event()
        self.session = self._new_session()
        self.metadata: DataSet | None = None
        self.cache: SignalIndexCache | None = None
        self.connections = 0
        self.last_error: str | None = None
        self._queue_limit = max(1, queue_batches)
        self._queue: asyncio.Queue[list[Measurement] | None] = asyncio.Queue(2 * self._queue_limit)
        #: batches dropped (oldest first) because the queue was full (UDP data)
        self.dropped_batches = 0
        self._iterators = 0
        self._protocol: _CommandProtocol | None = None
        self._udp_transport: asyncio.DatagramTransport | None = None
        self._runner: asyncio.Task[None] | None = None
        self._stopping = False
        self._connected = asyncio.Event()
        self._subscribed = asyncio.Event()
        self._metadata_event = asyncio.Event()
        #: request_metadata() calls waiting for an answer, oldest first (a refusal answers the
        #: oldest, metadata every one: the latest data set supersedes older requests)
        self._metadata_waiters: list[asyncio.Future[DataSet]] = []
        self._complete = asyncio.Event()
        self._unsubscribed = asyncio.Event()
        self._paused = False
        #: the current start() reached the publisher once (from then on it reconnects)
        self._established = False
        self._fatal: BaseException | None = None
        self._totals = Statistics()
        #: the latest metadata answer waiting for the parser (older ones are superseded)
        #: the current connection confirmed a subscription (resets the reconnect back-off)
        self._confirmed = False
        self._metadata_next: tuple[SubscriberSession, bytes] | None = None
        self._metadata_worker: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        #: SUBSCRIBEs sent on the session ``_pending_for`` and not yet answered: subscribed
        #: means the latest one was, not an earlier one (an auto-subscribe before subscribe())
        self._pending_for: SubscriberSession | None = None
        self._pending = 0
        #: unsubscribe() was called (and subscribe() not since): reconnections and metadata
        #: changes do not subscribe again (api.py)
        self._user_unsubscribed = False
        #: the answer subscribe() waits for: the signal index cache, or RequestRefused
        self._answer: asyncio.Future[SignalIndexCache] | None = None

    # -- lifecycle
    async def start(self) -> None:
        """Connect and return once connected (raises :class:`ConnectionError` when the first
        attempt fails; the reconnect policy applies only after a first success); with
        ``listen``, return once listening for the publisher."""
        self._stopping = False
        self._established = False
        self._runner = asyncio.create_task(self._run(), name="sttp-subscriber")
        waiter = asyncio.create_task(
            self._listening.wait() if self.listen else self._connected.wait()
        )
        done, _ = await asyncio.wait({waiter, self._runner}, return_when=asyncio.FIRST_COMPLETED)
        if self._runner in done:
            waiter.cancel()
            self._runner.result()  # raises the connection error
            raise ConnectionError(self.last_error or "subscriber stopped before connecting")

    async def stop(self) -> None:
        """Unsubscribe politely, close the channels and end the async iteration."""
        self._stopping = True
        protocol = self._protocol
        if protocol and protocol.transport and not protocol.transport.is_closing():
            if self.session.subscribed:
                # Let the publisher answer UNSUBSCRIBE before closing, so it does not write
                # into a reset connection.
                self._unsubscribed.clear()
                self.session.unsubscribe()
                protocol.flush()
                try:
                    await asyncio.wait_for(self._unsubscribed.wait(), 1.0)
                except TimeoutError:
                    pass
            protocol.close()
        if self._runner is not None and not self._connected.is_set():
            self._runner.cancel()  # still dialling or backing off: nothing to wind down
        if self._runner is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._runner), 5)
            except (TimeoutError, asyncio.CancelledError, ConnectionError, OSError):
                self._runner.cancel()
        self._close_udp()
        if self._server is not None:
            self._server.close()
            self._server = None
        self._metadata_next = None
        for task in [self._metadata_worker, *self._tasks]:
            if task is not None:
                task.cancel()
        self._enqueue(None)

    async def __aenter__(self) -> Subscriber:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- state
    @property
    def connected(self) -> bool:
        """True while the command channel is up."""
        return self._connected.is_set()

    @property
    def subscribed(self) -> bool:
        """True once the publisher accepted the subscription and sent its signal index cache."""
        return self._subscribed.is_set()

    @property
    def stats(self) -> Statistics:
        """Counters summed over all connections of this subscriber."""
        total = Statistics(**vars(self._totals))
        for name, value in vars(self.session.stats).items():
            setattr(total, name, getattr(total, name) + value)
        return total

    async def wait_subscribed(self, timeout: float = 10.0) -> SignalIndexCache:
        """Wait until subscribed; returns the signal index cache."""
        await asyncio.wait_for(self._subscribed.wait(), timeout)
        assert self.cache is not None
        return self.cache

    async def wait_metadata(self, timeout: float = 10.0) -> DataSet:
        """Wait for the (next) metadata."""
        await asyncio.wait_for(self._metadata_event.wait(), timeout)
        assert self.metadata is not None
        return self.metadata

    async def wait_processing_complete(self, timeout: float = 30.0) -> None:
        """Wait for PROCESSING_COMPLETE (end of a historical replay)."""
        await asyncio.wait_for(self._complete.wait(), timeout)

    # -- commands
    def _send(self) -> None:
        """Write what the session queued (the command just asked for)."""
        protocol = self._protocol
        if protocol is None or protocol.transport is None or protocol.transport.is_closing():
            raise ConnectionError("subscriber is not connected")
        protocol.flush()

    async def request_metadata(self, filters: str = "", *, timeout: float = 10.0) -> DataSet:
        """Ask for metadata (optionally filtered: ``FILTER <table> WHERE ...``) and wait for
        it; raises :class:`~gridbind.sttp.errors.RequestRefused` when the publisher refuses."""
        answer: asyncio.Future[DataSet] = asyncio.get_running_loop().create_future()
        self._metadata_event.clear()
        self.session.request_metadata(filters)
        self._send()
        self._metadata_waiters.append(answer)
        try:
            return await asyncio.wait_for(answer, timeout)
        finally:
            if answer in self._metadata_waiters:
                self._metadata_waiters.remove(answer)

    async def subscribe(
        self,
        points: Iterable[uuid.UUID] | None = None,
        *,
        settings: SubscriptionSettings | None = None,
        timeout: float = 10.0,
    ) -> SignalIndexCache:
        """(Re)subscribe and wait for the signal index cache: to ``points`` (signal ids) when
        given, else to what the options select (the constructor's ``filter_expression`` /
        ``settings``, or the ``settings`` given here; an empty filter selects every signal).
        With ``auto_subscribe`` it is sent again after a reconnection."""
        self._user_unsubscribed = False
        if settings is not None:
            self.settings = settings
            self._selection = settings.filter_expression
        if points is not None:
            ids = [str(point) for point in points]
            if not ids:
                raise InvalidArgument("no points given")
            # a signal id is itself a filter expression statement
            self.settings.filter_expression = ";".join(ids)
        else:
            self.settings.filter_expression = self._selection
        return await self._resubscribe(timeout)

    async def _resubscribe(self, timeout: float = 10.0) -> SignalIndexCache:
        """Send the current settings again and wait for the signal index cache (raises
        :class:`~gridbind.sttp.errors.RequestRefused` when the publisher refuses)."""
        self._subscribed.clear()
        self._complete.clear()
        answer = asyncio.get_running_loop().create_future()
        self._answer = answer
        await self._send_subscribe()
        return await asyncio.wait_for(answer, timeout)

    async def unsubscribe(self, *, timeout: float = 10.0) -> None:
        """Stop the data flow and wait for the publisher's confirmation (the connection stays
        up); reconnections do not subscribe again until :meth:`subscribe` is called."""
        self._user_unsubscribed = True
        self._subscribed.clear()
        self._unsubscribed.clear()
        self.session.unsubscribe()
        self._send()
        await asyncio.wait_for(self._unsubscribed.wait(), timeout)

    def rotate_cipher_keys(self) -> None:
        """Ask the publisher for new UDP cipher keys."""
        self.session.rotate_cipher_keys()
        self._send()

    def update_processing_interval(self, interval_ms: int) -> None:
        """Change the replay pace of a historical subscription (ms per frame)."""
        self.session.update_processing_interval(interval_ms)
        self._send()

    def send_user_command(self, code: int, payload: bytes = b"") -> None:
        """Send one of the user-defined commands 0xD0-0xDF."""
        self.session.user_command(code, payload)
        self._send()

    async def _send_subscribe(self) -> None:
        if self.udp:
            await self._open_udp()
            self.settings.udp_port = self.udp_port
        self.session.subscribe(self.settings)
        self._send()
        self._count_subscribes(1)

    def _count_subscribes(self, change: int) -> int:
        """Add ``change`` to the unanswered SUBSCRIBEs of the current session; returns them."""
        if self._pending_for is not self.session:
            self._pending_for, self._pending = self.session, 0
        self._pending = max(0, self._pending + change)
        return self._pending

    async def _open_udp(self) -> None:
        if self._udp_transport is not None:
            return
        self._udp_transport = await open_datagram_inlet(
            self.udp_host, self.udp_port, self._on_udp, receive_buffer=self.udp_receive_buffer
        )
        self.udp_port = self._udp_transport.get_extra_info("sockname")[1]

    def _close_udp(self) -> None:
        if self._udp_transport is not None:
            self._udp_transport.close()
            self._udp_transport = None

    # -- iteration
    def __aiter__(self) -> AsyncIterator[Measurement]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Measurement]:
        async for batch in self.batches():
            for measurement in batch:
                yield measurement

    async def batches(self) -> AsyncIterator[list[Measurement]]:
        """Received measurement batches, as they arrive, until :meth:`stop`."""
        self._iterators += 1
        try:
            async for batch in self._drain_queue():
                yield batch
        finally:
            self._iterators -= 1

    async def _drain_queue(self) -> AsyncIterator[list[Measurement]]:
        while True:
            batch = await self._queue.get()
            if self._paused and self._queue.qsize() < self._queue_limit // 2:
                self._resume()
            if batch is None:
                if self._fatal is not None:
                    raise ConnectionError(str(self._fatal))
                return
            yield batch

    def _enqueue(self, batch: list[Measurement] | None) -> None:
        """Queue a batch (or the end); when full, the oldest batch makes room (counted)."""
        if self._queue.full():
            if self._queue.get_nowait() is not None:
                self.dropped_batches += 1
        self._queue.put_nowait(batch)

    def _resume(self) -> None:
        self._paused = False
        protocol = self._protocol
        if protocol and protocol.transport and not protocol.transport.is_closing():
            protocol.transport.resume_reading()

    # -- connection loop
    async def _run(self) -> None:
        attempt = 0
        loop = asyncio.get_running_loop()
        while not self._stopping:
            if self.listen:
                protocol = await self._accept()
                attempt = 0
                self.connections += 1
                self._paused = False
                self._protocol = protocol
                self._totals_add(self.session.stats)
                self.session = self._new_session()
                self._subscribed.clear()
                if await self._serve(protocol, loop):
                    break
                continue
            _remember(self.attempt_times, loop.time())
            tls = self.tls
            try:
                _, protocol = await asyncio.wait_for(
                    loop.create_connection(
                        lambda: _CommandProtocol(self),
                        self.host,
                        self.port,
                        ssl=tls.client_context() if tls is not None else None,
                        server_hostname=(tls.server_hostname or self.host) if tls else None,
                    ),
                    self.connect_timeout,
                )
            except (TimeoutError, OSError) as exc:
                self.last_error = f"connect to {self.host}:{self.port} failed: {exc}"
                attempt += 1
                # reconnection applies only after a first success: start() reports a publisher
                # it cannot reach (or a refused certificate) instead of retrying for ever
                first = not self._established
                if first or not self.auto_reconnect or 0 <= self.max_retries < attempt:
                    raise ConnectionError(self.last_error) from None
                # Back-off bounds the rate; a refused certificate must not look like silence.
                log.warning("%s (attempt %d; retrying)", self.last_error, attempt)
                await self._retry_wait(attempt)
                continue
            self.connections += 1
            self._established = True
            self._paused = False  # a new connection starts reading; the queue pauses it anew
            self._protocol = protocol
            self._totals_add(self.session.stats)
            self.session = self._new_session()
            self._subscribed.clear()
            self._confirmed = False
            if await self._serve(protocol, loop):
                break
            # The back-off starts over only after a confirmed subscription (or accepted
            # operational modes without auto_subscribe): a publisher that accepts connections
            # and drops them must not get a reconnect per retry_interval.
            attempt = 1 if self._confirmed else attempt + 1
            if 0 <= self.max_retries < attempt:
                break
            await self._retry_wait(attempt)
        self._enqueue(None)
        if self._server is not None:
            self._server.close()
            self._server = None

    async def _serve(self, protocol: _CommandProtocol, loop: asyncio.AbstractEventLoop) -> bool:
        """Run one connection until it closes; True when the subscriber should not go on."""
        try:
            self.session.receive(b"", loop.time())  # the idle clock starts now
            protocol.begin(self.session)
            self.session.start(udp=self.udp)
            self._send()
            if self.request_metadata_first:
                self.session.request_metadata(self.metadata_filters)
                self._send()
            elif self.auto_subscribe and not self._user_unsubscribed:
                await self._send_subscribe()
            self._connected.set()
            await asyncio.shield(protocol.ended)
            exc = protocol.lost_error
        finally:
            self._connected.clear()
            self._subscribed.clear()
            if protocol.transport is not None:
                protocol.transport.close()
        if self._stopping or not self.auto_reconnect or (self._fatal and not self.auto_reconnect):
            return True
        reason = exc or self._fatal or self._close_reason or "closed by publisher"
        self.last_error = f"connection lost: {reason}"
        self._close_reason = None
        log.info("%s; %s", self.last_error, "waiting" if self.listen else "reconnecting")
        return False

    async def _accept(self) -> _CommandProtocol:
        """Reverse connection: listen on host:port and take the next publisher that dials in."""
        loop = asyncio.get_running_loop()
        if self._server is None:
            self._incoming = asyncio.Queue()

            def accepted() -> _CommandProtocol:
                protocol = _CommandProtocol(self)
                if self._connected.is_set() or self._incoming.qsize():
                    protocol.reject = True  # one publisher at a time
                else:
                    self._incoming.put_nowait(protocol)
                return protocol

            context = self.tls.server_context() if self.tls is not None else None
            self._server = await loop.create_server(accepted, self.host, self.port, ssl=context)
            self.port = self._server.sockets[0].getsockname()[1]
            self._listening.set()
        while True:
            protocol = await self._incoming.get()
            await asyncio.sleep(0)  # let connection_made run
            transport = protocol.transport
            if transport is None or transport.is_closing():
                continue
            if self.tls is not None:
                # a revoked publisher certificate, or one not naming the peer, is refused
                peer = transport.get_extra_info("peername")
                reason = await self.tls.refusal(transport.get_extra_info("ssl_object"), peer)
                if reason is not None:
                    self.last_error = f"TLS: refused the publisher at {peer}: {reason}"
                    log.warning("%s", self.last_error)
                    transport.close()
                    continue
            if not transport.is_closing():
                return protocol

    def _backoff(self, attempt: int) -> float:
        return min(self.retry_interval * 2 ** max(attempt - 1, 0), self.max_retry_interval)

    async def _retry_wait(self, attempt: int) -> None:
        wait = self._backoff(attempt)
        _remember(self.retry_waits, wait)
        await asyncio.sleep(wait)

    def _totals_add(self, stats: Statistics) -> None:
        for name, value in vars(stats).items():
            setattr(self._totals, name, getattr(self._totals, name) + value)

    def _new_session(self) -> SubscriberSession:
        session = SubscriberSession(self.config, idle_timeout=self.idle_timeout)
        session.defer_metadata = True  # parsed off the event loop, see _parse_metadata
        return session

    def _spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _parse_metadata(self) -> None:
        """Parse metadata answers in a worker thread, one at a time, the latest first: a large
        (or hostile) data set costs seconds of CPU that must not stop this event loop."""
        while self._metadata_next is not None:
            session, payload = self._metadata_next
            self._metadata_next = None
            try:
                metadata = await asyncio.to_thread(session.decode_metadata, payload)
            except ProtocolError as exc:
                if session is self.session:
                    self._fail(exc)
                continue
            if session is self.session and self._metadata_next is None:
                self._event(session.metadata_parsed(metadata, payload))
        self._metadata_worker = None

    # -- input dispatch
    def _on_udp(self, data: bytes, addr: tuple[str, int]) -> None:
        protocol = self._protocol
        if protocol is None or protocol.core is None or protocol.gone:
            self.session.stats.dropped_packets += 1  # no connection to take it
            return
        protocol.datagram_received(data)

    def _failed(self, exc: BaseException) -> None:
        """The session ended on a breach of the wire (the connection is closing)."""
        log.error("closing the session: %s", exc)
        self.last_error = str(exc)
        self._fatal = exc

    def _fail(self, exc: BaseException) -> None:
        self._failed(exc)
        protocol = self._protocol
        if protocol is not None:
            protocol.close(str(exc))

    def _event(self, event: Event) -> None:
        if isinstance(event, MeasurementsReceived):
            batch = event.measurements
            if self.on_measurements is not None:
                self.on_measurements(batch)
                if not self._iterators:
                    return  # callback-only use: nothing will drain the queue
            self._enqueue(batch)
            if not self._paused and self._queue.qsize() >= self._queue_limit:
                self._paused = True
                if self._protocol and self._protocol.transport:
                    self._protocol.transport.pause_reading()
            return
        if isinstance(event, MetadataArrived):
            self._metadata_next = (self.session, event.payload)
            if self._metadata_worker is None:
                self._metadata_worker = asyncio.get_running_loop().create_task(
                    self._parse_metadata()
                )
            return
        if isinstance(event, MetadataReceived):
            self.metadata = event.metadata
            self._metadata_event.set()
            waiters, self._metadata_waiters = self._metadata_waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(event.metadata)
            if (
                self.auto_subscribe
                and not self._user_unsubscribed
                and not self.session.subscribed
                and self.session.settings is None
            ):
                self._spawn(self._subscribe_after_metadata())
        elif isinstance(event, SubscriptionUpdated):
            self.cache = event.cache
            if self._count_subscribes(-1) == 0:
                self._subscribed.set()
                if self._answer is not None and not self._answer.done():
                    self._answer.set_result(event.cache)
            self._confirmed = True
        elif isinstance(event, CommandFailed):
            # as for a success: only the answer to the latest SUBSCRIBE is subscribe()'s (an
            # earlier one's refusal must not fail it)
            if event.command == ServerCommand.Subscribe and self._count_subscribes(-1) == 0:
                if self._answer is not None and not self._answer.done():
                    refused = RequestRefused(f"subscription refused: {event.message}")
                    self._answer.set_exception(refused)
            elif event.command == ServerCommand.MetadataRefresh and self._metadata_waiters:
                waiter = self._metadata_waiters.pop(0)
                if not waiter.done():
                    waiter.set_exception(RequestRefused(f"metadata refused: {event.message}"))
            self.last_error = f"command 0x{event.command:02X} failed: {event.message}"
            log.warning("%s", self.last_error)
        elif isinstance(event, ConfigurationChanged) and self.refresh_on_change:
            self._spawn(self._refresh_after_change())
        elif isinstance(event, ProcessingComplete):
            self._complete.set()
        elif isinstance(event, CommandSucceeded):
            if event.command == 0x03:
                self._unsubscribed.set()
            elif event.command == 0x06 and not self.auto_subscribe:
                self._confirmed = True
            log.debug("command 0x%02X succeeded: %s", event.command, event.message)
        if self.on_event is not None:
            self.on_event(event)

    async def _refresh_after_change(self) -> None:
        """The publisher's metadata changed: fetch it and renew the subscription, whose filter
        expression may now select other signals."""
        try:
            self._metadata_event.clear()
            self.session.request_metadata(self.metadata_filters)
            self._send()
            await self.wait_metadata()
            if self.session.settings is not None and not self._user_unsubscribed:
                await self._resubscribe()  # the same selection, evaluated anew
        except (TimeoutError, ConnectionError, OSError) as exc:
            log.warning("refresh after configuration change failed: %s", exc)

    async def _subscribe_after_metadata(self) -> None:
        try:
            await self._send_subscribe()
        except (ConnectionError, OSError) as exc:
            log.warning("subscribe after metadata failed: %s", exc)


def collect(
    host: str,
    port: int,
    *,
    count: int | None = None,
    seconds: float | None = None,
    **options: Any,
) -> list[Measurement]:
    """Synchronous helper: subscribe, gather ``count`` measurements or for ``seconds``, return them."""
    if count is None and seconds is None:
        raise InvalidArgument("give count or seconds")

    async def run() -> list[Measurement]:
        received: list[Measurement] = []
        async with Subscriber(host, port, **options) as subscriber:

            async def gather() -> None:
                async for batch in subscriber.batches():
                    received.extend(batch)
                    if count is not None and len(received) >= count:
                        return

            try:
                await asyncio.wait_for(gather(), seconds)
            except TimeoutError:
                pass
        return received[:count] if count is not None else received

    return asyncio.run(run())
