"""Thin asyncio transports around the draft profile's sans-IO sessions.

:class:`Publisher` listens (forward connections) or dials out to a listening subscriber
(reverse connections); :class:`Subscriber` dials (forward) or listens (reverse). Either side
may use TLS (:class:`~gridbind.sttp.tls.TlsConfig`); a subscriber may ask for a UDP
data channel (``udp=True``) and secure it with AES (``secure_data_channel()``).

Both implement the session contract of :mod:`gridbind.sttp.api` (``start`` / ``stop`` /
``async with``, ``subscribe`` / ``unsubscribe`` / ``request_metadata`` / ``batches``, ...).

Example::

    publisher = Publisher(port=0, points={signal: ValueType.SINGLE for signal in signals})
    await publisher.start()                      # 127.0.0.1, ephemeral port
    subscriber = Subscriber(port=publisher.port)
    await subscriber.start()                     # connect and negotiate
    await subscriber.subscribe()                 # all data points
    publisher.publish([Measurement(signal, 50.0, ticks_now())])
    async for batch in subscriber.batches():
        ...
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
import warnings
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from gridbind.errors import RemoteError
from gridbind.generated.sttp import draft_0_8 as wire
from gridbind.sttp.api import DEFAULT_HOST, DEFAULT_PORT
from gridbind.sttp.draft.access import ANONYMOUS, AccessControl
from gridbind.sttp.draft.characteristics import Options, Policy
from gridbind.sttp.draft.core import _Session
from gridbind.sttp.draft.events import FilterRequested
from gridbind.sttp.draft.framing import encode_frame
from gridbind.sttp.draft.metadata import (
    MetadataDatabase,
    MetadataError,
    QueryResult,
    decode_result,
)
from gridbind.sttp.draft.packets import MAX_RAW_PACKET
from gridbind.sttp.draft.security import DatagramCipher
from gridbind.sttp.draft.session import (
    STATEFUL,
    STATELESS,
    BulkReceived,
    Catalog,
    CommandFailed,
    CommandSucceeded,
    DataPointsReceived,
    Event,
    MetadataReceived,
    MetadataSchemaReceived,
    NegotiationComplete,
    PublisherSession,
    SessionClosed,
    SubscriberSession,
)
from gridbind.sttp.errors import InvalidArgument, RequestRefused, SttpError
from gridbind.sttp.expressions import FilterExpressionError, run_bounded
from gridbind.sttp.measurement import Measurement
from gridbind.sttp.shell import SessionShell, SlowPeerPolicy, open_datagram_inlet
from gridbind.sttp.slowpeer import HIGH_WATER, SLOW_TIMEOUT
from gridbind.sttp.tls import TlsConfig, names_resolve_to, peer_identity

if TYPE_CHECKING:  # the gateway module imports this one
    from gridbind.sttp.draft.gateway import GatewaySession

__all__ = ["CommandError", "Publisher", "SessionError", "Subscriber", "SubscriptionRefused"]

log = logging.getLogger("gridbind.sttp.draft")
#: Unsent bytes a connection may hold before the peer is dropped as too slow.
MAX_WRITE_BUFFER = 64 << 20
#: Bytes held from a peer while its certificate's host names are resolved.
MAX_HELD = 1 << 20
#: ``Publisher.events`` / ``Subscriber.events`` keep at most this many entries (oldest go).
MAX_EVENTS = 10_000


def _record(events: list, entry: Any) -> None:
    """Append ``entry`` to an events list, dropping the oldest half past :data:`MAX_EVENTS`."""
    events.append(entry)
    if len(events) > MAX_EVENTS:
        del events[: MAX_EVENTS // 2]


CC = wire.CommandCode
SSC = wire.SubscribeSubCommand
SM = wire.SubscriptionMode


class SessionError(SttpError, RemoteError, ConnectionError):
    """The session ended (negotiation failed, time-out, peer terminated, ...)."""


class CommandError(RequestRefused):
    """The peer answered RequestFailed to a command."""

    def __init__(self, event: CommandFailed) -> None:
        super().__init__(f"command {event.command:#04x} failed: {event.reason} {event.details}")
        self.event = event


class SubscriptionRefused(CommandError):
    """The publisher refused the requested characteristics; ``proposed`` holds its offer."""

    @property
    def proposed(self) -> dict[str, str]:
        """Options the publisher would grant."""
        return self.event.proposed or {}


class _Link(SessionShell[Event]):
    """One TCP (or TLS) connection driving one draft session (either role, either direction).

    The shell (:class:`~gridbind.sttp.shell.SessionShell`) moves bytes, datagrams and time; this
    class adds what is particular to the draft profile: the TLS peer checks before the session
    starts, filter evaluations off the event loop, and the owner's callbacks (``_link_made``,
    ``_event``, ``_link_lost``, ``_refused``).
    """

    max_write_buffer = MAX_WRITE_BUFFER
    max_held = MAX_HELD

    def __init__(
        self,
        make_session: Callable[[_Link], _Session | GatewaySession],
        owner: Any,
        *,
        policy: SlowPeerPolicy | None = None,
    ) -> None:
        super().__init__(policy=policy)
        self._make_session = make_session
        self.owner = owner
        self.identity = ANONYMOUS
        #: Why the connection was refused after the TLS handshake ("" when it was not).
        self.refused = ""
        #: the session (the shell's ``sansio``), typed loosely: a publisher's, a subscriber's
        #: or a gateway's
        self.session: Any = None

    @property
    def closed(self) -> asyncio.Future[str]:
        """Resolved with the reason once the connection is lost."""
        return self.ended

    def connected(self) -> None:
        assert self.transport is not None
        tls = getattr(self.owner, "tls", None)
        if isinstance(tls, TlsConfig):
            # server-style sockets: a revoked client certificate, or one that does not name the
            # connecting address, is refused
            ssl_object = self.transport.get_extra_info("ssl_object")
            reason, names = tls.client_refusal(ssl_object, self.peer)
            if reason is not None:
                if not names:
                    self._refuse(reason)
                    return
                # bytes that arrive while the names resolve are held by the shell
                self.spawn(self._check_names(tls, reason, names))
                return
        self._start()

    def _start(self) -> None:
        transport = self.transport
        assert transport is not None
        identity = peer_identity(transport.get_extra_info("ssl_object"))
        if identity:
            self.identity = identity
        session = self._make_session(self)
        session.tls = transport.get_extra_info("ssl_object") is not None
        self.session = session
        source = None
        if isinstance(session, PublisherSession):
            session.defer_filters = True
            source = session
        self.owner._link_made(self)
        sink = session if isinstance(session, SubscriberSession) else None
        self.start(session, datagram_source=source, datagram_sink=sink)

    async def _check_names(self, tls: TlsConfig, reason: str, names: list[str]) -> None:
        matched = await names_resolve_to(names, self.peer, tls.resolve_timeout)
        if self.transport is None or self.transport.is_closing():
            return
        if not matched:
            self._refuse(reason + " (nor does any of its host names resolve to it)")
            return
        self._start()

    def refuse_early(self, reason: str) -> None:
        self._refuse("too much data before the client address check completed")

    def _refuse(self, reason: str) -> None:
        """Refuse the peer after the TLS handshake: a terminating RequestFailed, then close."""
        assert self.transport is not None
        self.refused = reason
        log.warning("TLS: refused the connection from %s: %s", self.peer, reason)
        failed = wire.RequestFailed(
            command=CC.NegotiateSession,
            terminate_connection=True,
            reason=f"connection refused: {reason}",
            details="",
            data=b"",
        )
        if not self.transport.is_closing():
            self.transport.write(encode_frame(CC.RequestFailed, failed.build()))
        self.close(reason)
        report = getattr(self.owner, "_refused", None)
        if report is not None:
            with contextlib.suppress(Exception):
                report(self, SessionClosed(f"connection refused: {reason}"))

    @property
    def cipher(self) -> DatagramCipher | None:
        """The UDP data channel's cipher (None until SecureDataChannel succeeded)."""
        session = self.session
        return (
            session.cipher if isinstance(session, (PublisherSession, SubscriberSession)) else None
        )

    async def _run_filter(self, event: FilterRequested) -> None:
        try:
            result: Any = await run_bounded(event.run, peer=self.peer[0] if self.peer else None)
        except FilterExpressionError as exc:
            result = MetadataError(str(exc))
        session = self.session
        if session is not None:
            self.feed(lambda now: session.filter_done(result, now))

    def event_received(self, event: Event) -> None:
        if isinstance(event, FilterRequested):
            self.spawn(self._run_filter(event))
            return
        try:
            self.owner._event(self, event)
        except Exception:  # an application callback must not kill the connection
            log.exception("event handler failed")

    def loss_reason(self, exc: Exception | None) -> str:
        session = self.session
        if (
            exc is None
            and not self.closing
            and session is not None
            and session.tls
            and session.negotiated is None
            and session.stats["frames_in"] == 0
        ):
            return (
                "connection closed by the peer right after the TLS handshake (it may have "
                "refused this side's certificate: untrusted, revoked or not naming this "
                "address)"
            )
        return super().loss_reason(exc)

    def ended_with(self, reason: str) -> None:
        if self.session is not None:  # else never made (refused or checking the address)
            self.owner._link_lost(self)


class Publisher:
    """An STTP publisher (draft-0.8 profile).

    Points and metadata: ``points`` maps signal ids to their ValueTypeCode (Single by default
    for unknown points), ``metadata`` is a shared :class:`MetadataDatabase` (its DataPoint
    table also lists points). ``access`` restricts what each subscriber identity sees
    (default: everyone sees everything), ``policy`` bounds requested characteristics.
    ``tls`` makes every connection TLS. ``udp`` offers a UDP data channel. ``stateful`` /
    ``stateless`` list the algorithms offered. Time-outs are in seconds. ``host`` / ``port``:
    where to listen (default 127.0.0.1:7165, as the ieee2664 profile; 0 picks a free port).

    Slow subscribers (:mod:`gridbind.sttp.slowpeer`): a connection whose send queue passes
    ``high_water`` bytes lags: its data points are dropped (``connection.dropped``) and its
    commands not read until it catches up; after ``slow_timeout`` seconds of lagging, or past
    64 MiB unsent, it is disconnected. ``publish`` never waits; ``drain`` waits for a lagging
    subscriber at most until the policy drops it.
    """

    def __init__(
        self,
        *,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        points: Mapping[uuid.UUID, int] | None = None,
        metadata: MetadataDatabase | None = None,
        access: AccessControl | None = None,
        policy: Policy | None = None,
        tls: TlsConfig | None = None,
        udp: bool = True,
        stateful: Sequence[str] = STATEFUL,
        stateless: Sequence[str] = STATELESS,
        versions: Sequence[tuple[int, int]] = ((1, 0),),
        negotiation_timeout: float = 5.0,
        response_timeout: float = 10.0,
        keepalive_interval: float | None = None,
        noop_timeout: float = 5.0,
        verification_timeout: float = 5.0,
        max_payload: int = MAX_RAW_PACKET,
        on_event: Callable[[Any, Event], None] | None = None,
        high_water: int = HIGH_WATER,
        slow_timeout: float = SLOW_TIMEOUT,
    ) -> None:
        self.host = host
        self._port = port
        self.metadata = metadata or MetadataDatabase()
        self.catalog = Catalog(
            self.metadata,
            access or AccessControl.allow_all(),
            policy or Policy(),
            dict(points or {}),
        )
        self.tls = tls
        self.on_event = on_event
        self.high_water = high_water
        self.slow_timeout = slow_timeout
        self._session_options = dict(
            versions=versions,
            stateful=stateful,
            stateless=stateless,
            udp=udp,
            negotiation_timeout=negotiation_timeout,
            response_timeout=response_timeout,
            keepalive_interval=keepalive_interval,
            noop_timeout=noop_timeout,
            verification_timeout=verification_timeout,
            max_payload=max_payload,
        )
        self._server: asyncio.base_events.Server | None = None
        self._links: list[_Link] = []
        self._changed = asyncio.Condition()
        # the loop keeps only weak references to tasks: held here until they finish
        self._tasks: set[asyncio.Task[None]] = set()
        self.metadata.on_change(self._metadata_changed)
        self.events: list[tuple[Any, Event]] = []

    # lifecycle
    @property
    def port(self) -> int:
        """The listening port."""
        if self._server is None:
            return self._port
        return self._server.sockets[0].getsockname()[1]

    async def start(self) -> None:
        """Listen for subscribers (forward connections)."""
        context = self.tls.server_context() if self.tls else None
        self._server = await asyncio.get_running_loop().create_server(
            self._accept, self.host, self._port, ssl=context
        )

    def _accept(self) -> _Link:
        policy = SlowPeerPolicy(self.high_water, MAX_WRITE_BUFFER, self.slow_timeout)
        return _Link(self._new_session, self, policy=policy)

    async def connect(self, host: str, port: int, *, timeout: float = 10.0) -> _Link:
        """Dial out to a listening subscriber (reverse connection); returns the connection."""
        loop = asyncio.get_running_loop()
        context = self.tls.client_context() if self.tls else None
        server_hostname = (self.tls.server_hostname or host) if self.tls else None
        _, link = await asyncio.wait_for(
            loop.create_connection(
                self._accept,
                host,
                port,
                ssl=context,
                server_hostname=server_hostname,
            ),
            timeout,
        )
        return link

    async def stop(self) -> None:
        """Stop listening and close every connection."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for link in list(self._links):
            link.close()
        for link in list(self._links):
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(link.closed), 2.0)

    async def __aenter__(self) -> Publisher:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # sessions
    def _new_session(self, link: _Link) -> PublisherSession:
        return PublisherSession(
            self.catalog,
            now=link.loop.time(),
            identity=link.identity,
            **self._session_options,  # type: ignore[arg-type]
        )

    def _link_made(self, link: _Link) -> None:
        self._links.append(link)

    def _link_lost(self, link: _Link) -> None:
        if link in self._links:
            self._links.remove(link)
        self._notify()

    def _refused(self, link: _Link, event: SessionClosed) -> None:
        """A connection refused after the TLS handshake (never a session)."""
        _record(self.events, (link, event))
        if self.on_event is not None:
            self.on_event(link, event)
        self._notify()

    def _event(self, link: _Link, event: Event) -> None:
        if isinstance(event, NegotiationComplete) and event.udp_port and link.peer:
            link.spawn(link.open_datagram_target(link.peer[0], event.udp_port))
        _record(self.events, (link, event))
        if self.on_event is not None:
            self.on_event(link, event)
        self._notify()

    def _notify(self) -> None:
        async def notify() -> None:
            async with self._changed:
                self._changed.notify_all()

        self._spawn(notify())

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _metadata_changed(self) -> None:
        for link in list(self._links):
            if link.session is not None:
                link.handle(link.session.access_changed())

    @property
    def connections(self) -> list[_Link]:
        """Open connections (``.session`` is the PublisherSession, ``.identity`` the peer)."""
        return list(self._links)

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait until ``predicate()`` holds (checked after every session event)."""

        async def wait() -> None:
            async with self._changed:
                await self._changed.wait_for(predicate)

        await asyncio.wait_for(wait(), timeout)

    async def wait_subscribed(self, count: int = 1, timeout: float = 10.0) -> None:
        """Wait until ``count`` connections have a non-empty subscription."""
        await self.wait_for(
            lambda: sum(1 for link in self._links if link.session.subscribed_points) >= count,
            timeout,
        )

    # data
    def define_points(self, points: Mapping[uuid.UUID, int]) -> None:
        """Declare (or re-type) points by ValueTypeCode."""
        self.catalog.value_types.update(points)
        self._metadata_changed()

    def publish(self, measurements: Sequence[Measurement]) -> int:
        """Send measurements to every subscriber that subscribed to them; returns points queued."""
        total = 0
        for link in list(self._links):
            session = link.session
            if session is None:
                continue
            if link.lagging:
                link.admits_data(session.count_subscribed(measurements))
                continue
            try:
                total += session.publish(measurements, link.loop.time())
                link.flush()
            except Exception as exc:  # noqa: BLE001 - one subscription's failure ends only it
                log.exception("publishing to %s failed", link.peer)
                link.abort(f"cannot publish to it: {exc!r}")
        return total

    async def drain(self) -> None:
        """Wait until every connection can take more data (back-pressure); a subscriber that
        stays lagging is dropped after ``slow_timeout``, which bounds the wait."""
        for link in list(self._links):
            await link.drain()

    def send_bulk(self, data: bytes) -> list[uuid.UUID]:
        """Send a large buffer to every negotiated subscriber; returns the transfer ids."""
        ids = []
        for link in self._links:
            if link.session is not None and link.session.negotiated:
                ids.append(link.session.send_bulk(data))
                link.flush()
        return ids


class Subscriber:
    """An STTP subscriber (draft-0.8 profile).

    ``host``/``port`` of the publisher (forward; default 127.0.0.1:7165, as the ieee2664
    profile) or, with ``listen=True``, where :meth:`start` listens for the publisher to dial in
    (reverse connection). ``udp=True`` asks for a UDP data channel on ``udp_port`` (0: any free
    port). ``stateful``/``stateless`` are algorithm preferences. Measurements arrive through
    ``on_measurements(list[Measurement])`` and/or :meth:`measurements` (an async iterator of
    batches, bounded by ``queue_size`` batches; when full the oldest batch is dropped and
    counted in ``dropped_batches``). With ``reconnect`` (seconds), a forward connection that
    is lost (e.g. a NoOp time-out) is re-established and the subscriptions are sent again:
    one reconnection at a time, the first after about ``reconnect`` seconds, each failed attempt
    (its connection closed) doubling the wait up to ``max_reconnect_interval``, with jitter.
    ``max_verified_points`` bounds how many subscribed points may require verification
    receipts; a subscription beyond it is terminated by this subscriber.

    Deprecated names (they warn; use the :mod:`gridbind.sttp.api` verbs): ``connect()`` and
    ``listen()`` (use ``start()``, with ``listen=True`` for a reverse connection), ``close()``
    (``stop()``), ``measurements()`` (``batches()``), ``get_metadata()``
    (``request_metadata()``).
    """

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        *,
        listen: bool = False,
        tls: TlsConfig | None = None,
        udp: bool = False,
        udp_port: int = 0,
        stateful: Sequence[str] = STATEFUL,
        stateless: Sequence[str] = STATELESS,
        versions: Sequence[tuple[int, int]] = ((1, 0),),
        negotiation_timeout: float = 5.0,
        response_timeout: float = 10.0,
        keepalive_interval: float | None = None,
        noop_timeout: float = 5.0,
        max_payload: int = MAX_RAW_PACKET,
        on_measurements: Callable[[list[Measurement]], None] | None = None,
        on_event: Callable[[Event], None] | None = None,
        queue_size: int = 10_000,
        reconnect: float | None = None,
        max_verified_points: int | None = None,
        max_reconnect_interval: float = 30.0,
    ) -> None:
        self.host = host
        self.listen_mode = listen
        self.reconnect = reconnect
        self.max_reconnect_interval = max_reconnect_interval
        self.reconnects = 0
        self._closing = False
        self._forward = False
        self._established = False
        self._subscriptions: list[dict[str, Any]] = []
        self._reconnecting: asyncio.Future[None] | None = None
        self.port = port
        self.tls = tls
        self.udp = udp
        self.udp_port = udp_port
        self.on_measurements = on_measurements
        self.on_event = on_event
        self._session_options = dict(
            versions=versions,
            stateful=stateful,
            stateless=stateless,
            negotiation_timeout=negotiation_timeout,
            response_timeout=response_timeout,
            keepalive_interval=keepalive_interval,
            noop_timeout=noop_timeout,
            max_payload=max_payload,
            max_verified_points=max_verified_points,
        )
        self.link: _Link | None = None
        self._server: asyncio.base_events.Server | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._negotiated: asyncio.Future[NegotiationComplete] | None = None
        self._waiters: dict[int, list[asyncio.Future[Any]]] = {}
        self._queue: asyncio.Queue[list[Measurement] | None] = asyncio.Queue(queue_size)
        #: set while a subscription is confirmed on the current connection
        self._subscribed = asyncio.Event()
        self._confirmation: CommandSucceeded | None = None
        self.dropped_batches = 0
        self.bad_datagrams = 0
        self.events: list[Event] = []
        self.received = 0
        self.bytes_received = 0
        self._bulk: asyncio.Queue[BulkReceived] = asyncio.Queue(64)

    # connection
    async def _prepare(self) -> None:
        loop = asyncio.get_running_loop()
        self._negotiated = loop.create_future()
        if self.udp and self._udp is None:
            self._udp = await open_datagram_inlet(self.host, self.udp_port, self._datagram)
            self.udp_port = self._udp.get_extra_info("sockname")[1]

    async def start(self, *, timeout: float = 10.0) -> None:
        """Dial the publisher and complete session negotiation (see :attr:`negotiated`); with
        ``listen=True``, listen for the publisher instead (reverse connection; returns once
        listening, :attr:`port` is the bound port, :meth:`wait_negotiated` waits for it)."""
        self._closing = False
        if self.listen_mode:
            await self._listen()
        else:
            self._established = False  # reconnection applies only after a first success
            await self._dial(timeout=timeout)
            self._established = True

    @property
    def negotiated(self) -> NegotiationComplete | None:
        """What session negotiation agreed on (``None`` before it completed)."""
        future = self._negotiated
        if future is None or not future.done() or future.cancelled() or future.exception():
            return None
        return future.result()

    async def connect(self, *, timeout: float = 10.0) -> NegotiationComplete:
        """Deprecated: ``await start()`` (then :attr:`negotiated`)."""
        warnings.warn("Subscriber.connect() is deprecated; use start()", DeprecationWarning, 2)
        self._closing = False
        self._established = False
        negotiated = await self._dial(timeout=timeout)
        self._established = True
        return negotiated

    async def listen(self) -> int:
        """Deprecated: ``Subscriber(listen=True)`` and ``await start()`` (then :attr:`port`)."""
        warnings.warn(
            "Subscriber.listen() is deprecated; use Subscriber(listen=True).start()",
            DeprecationWarning,
            2,
        )
        self.listen_mode = True
        return await self._listen()

    async def _dial(self, *, timeout: float = 10.0) -> NegotiationComplete:
        """Dial the publisher (forward connection) and complete session negotiation."""
        self._forward = True
        await self._prepare()
        loop = asyncio.get_running_loop()
        context = self.tls.client_context() if self.tls else None
        server_hostname = (self.tls.server_hostname or self.host) if self.tls else None
        made: list[_Link] = []

        def dialled() -> _Link:
            made.append(_Link(self._new_session, self))
            return made[-1]

        try:
            await asyncio.wait_for(
                loop.create_connection(
                    dialled, self.host, self.port, ssl=context, server_hostname=server_hostname
                ),
                timeout,
            )
            return await self.wait_negotiated(timeout)
        except BaseException:
            # a failed attempt must not leave its connection open (nor its session running)
            for link in made:
                link.abort("connection attempt failed")
            raise

    async def _listen(self) -> int:
        """Listen for the publisher to dial in (reverse connection); returns the port."""
        await self._prepare()
        context = self.tls.server_context() if self.tls else None

        def accept() -> _Link:
            if self.link is not None:  # one publisher per subscriber
                raise ConnectionRefusedError("already connected")
            return _Link(self._new_session, self)

        self._server = await asyncio.get_running_loop().create_server(
            accept, self.host, self.port, ssl=context
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def wait_negotiated(self, timeout: float = 10.0) -> NegotiationComplete:
        """Wait for session negotiation to complete (raises :class:`SessionError` if it fails)."""
        assert self._negotiated is not None, "start() first"
        return await asyncio.wait_for(asyncio.shield(self._negotiated), timeout)

    async def close(self) -> None:
        """Deprecated: ``await stop()``."""
        warnings.warn("Subscriber.close() is deprecated; use stop()", DeprecationWarning, 2)
        await self.stop()

    async def stop(self) -> None:
        """Close the connection (and the listener / UDP socket); ends :meth:`batches`."""
        self._closing = True
        if self._reconnecting is not None:
            self._reconnecting.cancel()
        if self._server is not None:
            self._server.close()
        if self.link is not None:
            self.link.close()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.link.closed), 2.0)
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._queue.full():
            self._queue.get_nowait()
        self._queue.put_nowait(None)  # ends batches() even between reconnections

    async def __aenter__(self) -> Subscriber:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def session(self) -> SubscriberSession:
        """The sans-IO session (after connecting)."""
        if self.link is None or self.link.session is None:
            raise SessionError("not connected")
        return self.link.session

    def _new_session(self, link: _Link) -> SubscriberSession:
        return SubscriberSession(
            now=link.loop.time(),
            udp_port=self.udp_port if self.udp else 0,
            **self._session_options,  # type: ignore[arg-type]
        )

    def _link_made(self, link: _Link) -> None:
        self.link = link
        if self.listen_mode and (self._negotiated is None or self._negotiated.done()):
            # each publisher that dials in negotiates anew (wait_negotiated waits for it)
            self._negotiated = link.loop.create_future()

    def _refused(self, link: _Link, event: SessionClosed) -> None:
        """A dialling publisher refused after the TLS handshake (reverse connections)."""
        _record(self.events, event)
        if self.on_event is not None:
            self.on_event(event)

    def _link_lost(self, link: _Link) -> None:
        if link is not self.link:
            return  # a connection already superseded (or never current) ends nothing
        if self.listen_mode:
            self.link = None  # free for the next publisher that dials in
        self._subscribed.clear()
        reason = link.session.close_reason if link.session else "closed"
        self._fail_all(SessionError(reason))
        if self.reconnect is not None and self._established and not self._closing:
            if self._reconnecting is None or self._reconnecting.done():
                log.warning("connection lost (%s); reconnecting", reason)
                self._reconnecting = asyncio.get_running_loop().create_task(self._reconnect_loop())
            return  # else an attempt of the running reconnection failed: it retries
        if self.listen_mode and not self._closing:
            return  # batches() goes on with the next publisher that dials in
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped_batches += 1
        self._queue.put_nowait(None)  # ends batches()

    def _backoff(self, attempt: int) -> float:
        """Seconds before reconnection attempt ``attempt`` (1, 2, ...): ``reconnect`` doubled
        per failed attempt up to ``max_reconnect_interval``, with jitter (a half of it random)
        so that many subscribers of one restarted publisher do not dial in step."""
        assert self.reconnect is not None
        ceiling = max(self.max_reconnect_interval, self.reconnect)
        wait = min(self.reconnect * 2 ** min(attempt - 1, 30), ceiling)
        return wait * random.uniform(0.5, 1.0)

    async def _reconnect_loop(self) -> None:
        attempt = 0
        while not self._closing:
            attempt += 1  # reset (a new loop) only once the replayed subscription is confirmed
            await asyncio.sleep(self._backoff(attempt))
            if self._closing:
                return
            try:
                await self._dial()
                for request in self._subscriptions:
                    await self.subscribe(**request, _replay=True)
            except Exception as exc:  # noqa: BLE001 - any failure: close it, retry later
                log.warning("reconnect attempt %d failed: %s", attempt, exc)
                link = self.link
                if link is not None:
                    link.abort(f"reconnection failed: {exc}")
                continue
            if self._closing:  # stopped while the replay was confirmed
                if self.link is not None:
                    self.link.close()
                return
            self.reconnects += 1
            return

    def _fail_all(self, error: Exception) -> None:
        if self._negotiated is not None and not self._negotiated.done():
            self._negotiated.set_exception(error)
            self._negotiated.exception()  # mark retrieved: a caller may not be waiting
        for waiters in self._waiters.values():
            for future in waiters:
                if not future.done():
                    future.set_exception(error)
        self._waiters.clear()

    def _event(self, link: _Link, event: Event) -> None:
        if isinstance(event, DataPointsReceived):
            self._deliver(event.measurements)
            return
        _record(self.events, event)
        if isinstance(event, NegotiationComplete):
            if self._negotiated is not None and not self._negotiated.done():
                self._negotiated.set_result(event)
        elif isinstance(event, SessionClosed):
            self._fail_all(SessionError(event.reason))
        elif isinstance(event, (CommandSucceeded, CommandFailed)):
            self._resolve(event.command, event)
        elif isinstance(event, MetadataSchemaReceived):
            self._resolve(CC.GetMetadataSchema, event)
        elif isinstance(event, MetadataReceived):
            self._resolve(CC.GetMetadata, event)
        elif isinstance(event, BulkReceived):
            if self._bulk.full():
                self._bulk.get_nowait()
            self._bulk.put_nowait(event)
        if self.on_event is not None:
            self.on_event(event)

    def _resolve(self, command: int, event: Event) -> None:
        waiters = self._waiters.get(command)
        if not waiters:
            return
        future = waiters.pop(0)
        if future.done():
            return
        if isinstance(event, CommandFailed):
            error = SubscriptionRefused(event) if event.proposed else CommandError(event)
            future.set_exception(error)
        else:
            future.set_result(event)

    def _deliver(self, batch: list[Measurement]) -> None:
        self.received += len(batch)
        if self.on_measurements is not None:
            self.on_measurements(batch)
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped_batches += 1
        self._queue.put_nowait(batch)

    def _datagram(self, data: bytes, addr: tuple[str, int]) -> None:
        link = self.link
        if link is None or link.session is None:
            return
        if link.peer is not None and addr[0] != link.peer[0]:
            self.bad_datagrams += 1  # only the publisher we are connected to may send data
            return
        self.bytes_received += len(data)
        stats = link.session.stats
        before = stats.get("bad_datagrams", 0)
        link.datagram_received(data)
        self.bad_datagrams += stats.get("bad_datagrams", 0) - before

    async def _request(self, command: int, send: Callable[[float], None], timeout: float) -> Any:
        link = self.link
        if link is None or link.session is None or link.session.closed:
            raise SessionError("not connected")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(command, []).append(future)
        send(link.loop.time())
        link.flush()
        return await asyncio.wait_for(future, timeout)

    # requests
    async def subscribe(
        self,
        points: Iterable[uuid.UUID] | None = None,
        *,
        query: str | None = None,
        mode: int = SM.Replace,
        options: Options | Mapping[str, str] | None = None,
        timeout: float = 10.0,
        _replay: bool = False,
    ) -> CommandSucceeded:
        """Subscribe to ``points`` (ids), or by ``query``, or to everything (neither given).

        ``mode`` is Replace, Append or Remove. ``options`` are the requested characteristics.
        Raises :class:`SubscriptionRefused` (with ``proposed``) when the publisher refuses them.
        """
        items: list[wire.SubscribeItem] = []
        if options is not None:
            named = options.to_named() if isinstance(options, Options) else dict(options)
            items.append(
                wire.SubscribeItem(
                    sub_command=SSC.ConfigureOptions,
                    mode=SM.Replace,
                    body=wire.SttpNamedSet(
                        items=[wire.NamedValue(name=k, value=v) for k, v in named.items()]
                    ),
                )
            )
        if points is not None:
            ids = list(points)
            if not ids:  # api.py: the same in both profiles (unsubscribe() removes all)
                raise InvalidArgument("no points given")
            for start in range(0, max(len(ids), 1), 3000):
                items.append(
                    wire.SubscribeItem(
                        sub_command=SSC.DataPointByID,
                        mode=SM(mode) if start == 0 else SM.Append,
                        body=ids[start : start + 3000],
                    )
                )
        elif query is not None:
            items.append(wire.SubscribeItem(sub_command=SSC.ByQuery, mode=SM(mode), body=query))
        else:
            items.append(
                wire.SubscribeItem(sub_command=SSC.AllDataPoints, mode=SM(mode), body=None)
            )
        result = await self._request(
            CC.Subscribe, lambda now: self.session.subscribe(items, now), timeout
        )
        if mode == SM.Remove and points is None:
            self._subscribed.clear()
        else:
            self._confirmation = result
            self._subscribed.set()
        if not _replay:
            self._remember(
                points=None if points is None else ids, query=query, mode=mode, options=options
            )
        return result

    def _remember(self, **request: Any) -> None:
        """Keep a confirmed request for replay after a reconnection (everything removed:
        nothing is replayed until the next subscribe())."""
        if request["mode"] == SM.Remove and request["points"] is None and not request["query"]:
            self._subscriptions = []
            return
        if request["mode"] == SM.Replace:
            self._subscriptions = []
        self._subscriptions.append(request)
        del self._subscriptions[:-64]

    async def unsubscribe(self, *, timeout: float = 10.0) -> CommandSucceeded:
        """Remove every subscribed point (the seed's replacement of Unsubscribe); returns once
        the publisher confirmed. Reconnections do not subscribe again until :meth:`subscribe`
        is called."""
        return await self.subscribe(mode=SM.Remove, timeout=timeout)

    async def wait_subscribed(self, timeout: float = 10.0) -> CommandSucceeded:
        """Wait until a subscription is confirmed on the current connection (after a
        reconnection: once it was sent again); returns the publisher's confirmation."""
        await asyncio.wait_for(self._subscribed.wait(), timeout)
        assert self._confirmation is not None
        return self._confirmation

    async def get_metadata_schema(
        self, include_schema: bool = True, timeout: float = 10.0
    ) -> wire.MetadataSchema:
        """The publisher's metadata schema version, revision and (optionally) tables."""
        event = await self._request(
            CC.GetMetadataSchema,
            lambda now: self.session.get_metadata_schema(include_schema, now),
            timeout,
        )
        return event.schema

    async def get_metadata(self, *args: Any, **kwargs: Any) -> QueryResult:
        """Deprecated: ``await request_metadata(...)``."""
        warnings.warn(
            "Subscriber.get_metadata() is deprecated; use request_metadata()",
            DeprecationWarning,
            2,
        )
        return await self.request_metadata(*args, **kwargs)

    async def request_metadata(
        self,
        query: str = "SELECT * FROM DataPoint",
        *,
        revision: int = 0,
        update: bool = False,
        schema_version: uuid.UUID | None = None,
        timeout: float = 10.0,
    ) -> QueryResult:
        """Rows of one table (``update=True``: only changes since ``revision``)."""
        event = await self._request(
            CC.GetMetadata,
            lambda now: self.session.get_metadata(
                query, now, revision=revision, update=update, schema_version=schema_version
            ),
            timeout,
        )
        return decode_result(event.items)

    async def secure_data_channel(self, timeout: float = 10.0) -> None:
        """Ask for AES-256 keys for the UDP data channel (before subscribing)."""
        await self._request(
            CC.SecureDataChannel, lambda now: self.session.secure_data_channel(now), timeout
        )

    async def receive_bulk(self, timeout: float = 30.0) -> BulkReceived:
        """The next complete BulkTransport buffer (``.data``, ``.transfer_id``)."""
        return await asyncio.wait_for(self._bulk.get(), timeout)

    def measurements(self) -> AsyncIterator[list[Measurement]]:
        """Deprecated: :meth:`batches`."""
        warnings.warn(
            "Subscriber.measurements() is deprecated; use batches()", DeprecationWarning, 2
        )
        return self.batches()

    async def batches(self) -> AsyncIterator[list[Measurement]]:
        """Batches of received measurements until the connection closes or :meth:`stop` (a
        listening subscriber's go on across the publishers that dial in, until :meth:`stop`)."""
        while True:
            batch = await self._queue.get()
            if batch is None:
                return
            yield batch

    def __aiter__(self) -> AsyncIterator[Measurement]:
        """Received measurements one at a time (see :meth:`batches`)."""
        return self._each()

    async def _each(self) -> AsyncIterator[Measurement]:
        async for batch in self.batches():
            for measurement in batch:
                yield measurement

    async def collect(self, count: int, timeout: float) -> list[Measurement]:
        """Receive until ``count`` measurements arrived (or ``timeout`` seconds passed)."""
        out: list[Measurement] = []

        async def run() -> None:
            async for batch in self.batches():
                out.extend(batch)
                if len(out) >= count:
                    return

        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(run(), timeout)
        return out
