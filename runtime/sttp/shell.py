"""The one asyncio shell both STTP profiles run their sans-IO sessions in.

A session (draft-0.8 or IEEE 2664) decides everything about the protocol; :class:`SessionShell`
only moves bytes and time, the way aioquic's ``QuicConnectionProtocol`` drives a
``QuicConnection``:

- what arrives on the TCP (or TLS) stream goes to ``session.receive_data(data, now)``;
- the events that come back go to :meth:`SessionShell.event_received` (the profile's hook),
  then everything the session queued is written (:meth:`SessionShell.flush`): its stream
  bytes, and its UDP datagrams to the peer's data channel once one was opened
  (:meth:`SessionShell.open_datagram_target`);
- one timer runs at ``session.next_deadline()`` and calls ``session.tick(now)``; it is re-armed
  after every flush;
- writing is bounded: a publisher's connection applies the slow-subscriber policy
  (:class:`SlowPeerPolicy`, :mod:`gridbind.sttp.slowpeer`), any other connection is dropped when
  more than :attr:`SessionShell.max_write_buffer` bytes stay unsent;
- a session that ends itself (``session.closed``) has its last bytes flushed, then the
  connection closes with ``session.close_reason``; a lost connection ends the session with the
  reason (:attr:`SessionShell.ended` holds it).

A subscriber's UDP data channel outlives its TCP connections (both profiles keep one port), so
it is a separate endpoint (:func:`open_datagram_inlet`) whose datagrams the profile hands to
the current connection's :meth:`SessionShell.datagram_received`.

Decisions: an exception that escapes a session or an event hook is a bug, not hostile input (the
sessions turn bad input into a close): it is logged and ends that connection alone. Bytes that
arrive before the profile started the session (a TLS peer whose address is being checked) are
held, at most :attr:`SessionShell.max_held` bytes.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from abc import abstractmethod
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from gridbind.sttp.slowpeer import HIGH_WATER, MAX_BACKLOG, SLOW_TIMEOUT, SendQueue

__all__ = [
    "DatagramSink",
    "DatagramSource",
    "Session",
    "SessionShell",
    "SlowPeerPolicy",
    "open_datagram_inlet",
]

log = logging.getLogger(__name__)

E = TypeVar("E")
E_co = TypeVar("E_co", covariant=True)


class Session(Protocol[E_co]):
    """What the shell needs from a sans-IO session (events of type ``E_co``).

    A session reports bad input by ending itself (``closed`` and ``close_reason``), never by
    raising. ``close(reason)`` ends it from outside (the connection went away) and returns the
    events that causes; it does nothing when the session already ended.
    """

    @property
    def closed(self) -> bool:
        """True once the session ended (the shell then closes the connection)."""
        ...

    @property
    def close_reason(self) -> str:
        """Why the session ended."""
        ...

    def receive_data(self, data: bytes, now: float) -> Iterable[E_co]:
        """Bytes from the stream, received at ``now`` (loop seconds) -> events."""
        ...

    def data_to_send(self) -> bytes:
        """Bytes for the stream (empties the session's output)."""
        ...

    def next_deadline(self) -> float | None:
        """When :meth:`tick` must run next (None: no timer)."""
        ...

    def tick(self, now: float) -> Iterable[E_co]:
        """Run what is due at ``now`` -> events."""
        ...

    def close(self, reason: str) -> Iterable[E_co]:
        """End the session from outside -> events."""
        ...


class DatagramSource(Protocol):
    """A session that sends UDP datagrams (a publisher's)."""

    def datagrams_to_send(self) -> list[bytes]:
        """Datagrams for the data channel (empties the session's queue)."""
        ...


class DatagramSink(Protocol[E_co]):
    """A session that receives UDP datagrams (a subscriber's); bad ones are dropped and
    counted by the session, not raised."""

    def receive_datagram(self, datagram: bytes) -> Iterable[E_co]:
        """One datagram -> events."""
        ...


@dataclass(frozen=True)
class SlowPeerPolicy:
    """Bounds of a publisher's connection (see :mod:`gridbind.sttp.slowpeer`)."""

    #: bytes unsent past which the connection lags (its data is dropped, its commands wait)
    high_water: int = HIGH_WATER
    #: bytes unsent past which it is dropped at once
    max_backlog: int = MAX_BACKLOG
    #: seconds it may lag before it is dropped (0: never)
    slow_timeout: float = SLOW_TIMEOUT


class SessionShell(asyncio.Protocol, Generic[E]):
    """One TCP (or TLS) connection driving one sans-IO session.

    A profile subclasses it: :meth:`connected` starts the session (:meth:`start`) and
    :meth:`event_received` takes its events; :meth:`ended_with` and the writing hooks are
    optional. ``policy`` applies the slow-subscriber policy (a publisher's connections).
    """

    #: unsent bytes a connection without a policy may hold before the peer is dropped
    max_write_buffer = MAX_BACKLOG
    #: bytes held from a peer before its session started
    max_held = 1 << 20

    def __init__(self, *, policy: SlowPeerPolicy | None = None) -> None:
        self.loop = asyncio.get_running_loop()
        self.policy = policy
        self.transport: asyncio.Transport | None = None
        #: the peer's (host, port)
        self.peer: tuple[str, int] | None = None
        #: the sans-IO session driven (None until :meth:`start`)
        self.sansio: Session[E] | None = None
        #: the slow-subscriber policy at work (None without ``policy``)
        self.queue: SendQueue | None = None
        #: the UDP endpoint towards the peer's data channel (None until opened)
        self.udp: asyncio.DatagramTransport | None = None
        #: why this side ended the connection (None: not ended by this side)
        self.close_reason: str | None = None
        #: the connection is gone or going: nothing more is read or sent
        self.gone = False
        #: :meth:`close` was called
        self.closing = False
        #: resolved with the reason once the connection is lost
        self.ended: asyncio.Future[str] = self.loop.create_future()
        self._source: DatagramSource | None = None
        self._sink: DatagramSink[E] | None = None
        self._held: bytearray | None = bytearray()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_due: float | None = None
        self._writable = asyncio.Event()
        self._writable.set()
        self._tasks: set[asyncio.Task[None]] = set()

    # -- profile hooks
    @abstractmethod
    def connected(self) -> None:
        """The transport is up: call :meth:`start` (now or later) or :meth:`close`."""

    @abstractmethod
    def event_received(self, event: E) -> None:
        """One event of the session (an exception here ends the connection)."""

    def ended_with(self, reason: str) -> None:
        """The connection is lost and cleaned up (``reason``: why)."""

    def writing_paused(self) -> None:
        """The peer's send queue passed its high-water mark."""

    def writing_resumed(self) -> None:
        """The peer caught up."""

    def loss_reason(self, exc: Exception | None) -> str:
        """Why the connection was lost when this side did not end it."""
        return str(exc) if exc else "connection closed"

    # -- driving the session
    def start(
        self,
        session: Session[E],
        *,
        datagram_source: DatagramSource | None = None,
        datagram_sink: DatagramSink[E] | None = None,
    ) -> None:
        """Run ``session`` on this connection (bytes held meanwhile are fed to it)."""
        self.sansio = session
        self._source = datagram_source
        self._sink = datagram_sink
        held, self._held = self._held, None
        if held:
            self.data_received(bytes(held))
        else:
            self.flush()

    def feed(self, produce: Callable[[float], Iterable[E]]) -> None:
        """Call a session method with ``now`` and handle the events it returns."""
        if self.sansio is None or self.gone:
            return
        try:
            events = list(produce(self.loop.time()))
        except Exception as exc:  # noqa: BLE001 - a bug must end this connection only
            log.exception("session of %s failed", self.peer)
            self.abort(f"cannot handle its data: {exc!r}")
            return
        self.handle(events)

    def handle(self, events: Iterable[E]) -> None:
        """Give ``events`` to :meth:`event_received`, then :meth:`flush`."""
        for event in events:
            try:
                self.event_received(event)
            except Exception as exc:  # noqa: BLE001 - as in feed
                log.exception("event handler of %s failed", self.peer)
                self.abort(f"cannot handle its request: {exc!r}")
                return
        self.flush()

    def flush(self) -> None:
        """Write what the session queued, close when it ended, re-arm the timer."""
        session, transport = self.sansio, self.transport
        if session is None or transport is None or self.gone:
            return
        data = session.data_to_send()
        if data and not transport.is_closing():
            transport.write(data)
            if not self._bounded(transport):
                return
        if self._source is not None:
            datagrams = self._source.datagrams_to_send()
            udp = self.udp
            if datagrams and udp is not None and not udp.is_closing():
                for datagram in datagrams:
                    udp.sendto(datagram)
        if session.closed:
            self.close(session.close_reason or "session ended")
            return
        self._arm(session)

    def datagram_received(self, datagram: bytes) -> None:
        """A datagram from the peer's data channel (see :func:`open_datagram_inlet`)."""
        sink = self._sink
        if sink is not None:
            self.feed(lambda now: sink.receive_datagram(datagram))

    def _bounded(self, transport: asyncio.Transport) -> bool:
        if self.queue is not None:
            return self.queue.check()
        if transport.get_write_buffer_size() > self.max_write_buffer:
            # a peer that does not read must not make us buffer without bound
            self.abort(f"peer too slow: over {self.max_write_buffer} bytes unsent")
            return False
        return True

    def _arm(self, session: Session[E]) -> None:
        due = session.next_deadline()
        if due == self._timer_due and (due is None or self._timer is not None):
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_due = due
        if due is not None:
            self._timer = self.loop.call_at(due, self._on_timer)

    def _on_timer(self) -> None:
        self._timer, self._timer_due = None, None
        session = self.sansio
        if session is not None:
            self.feed(session.tick)

    # -- ending
    def close(self, reason: str | None = None) -> None:
        """Close gracefully: what is queued still goes out. ``reason``: why this side ends
        the connection (None: a local close, the session ends with "connection closed")."""
        self.closing = True
        if reason is not None and self.close_reason is None:
            self.close_reason = reason
            log.warning("closing %s: %s", self.peer, reason)
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.close()

    def abort(self, reason: str) -> None:
        """Drop the connection at once (nothing more is sent); the session ends with
        ``reason``."""
        if self.gone:
            return
        if self.close_reason is None:
            self.close_reason = reason
        log.warning("disconnecting %s: %s", self.peer, reason)
        self._end_session(reason)
        self.gone = True
        if self.transport is not None:
            self.transport.abort()

    def _end_session(self, reason: str) -> None:
        session = self.sansio
        if session is None:
            return
        try:
            events = list(session.close(reason))
        except Exception:  # noqa: BLE001 - the connection ends anyway
            log.exception("closing the session of %s failed", self.peer)
            return
        for event in events:
            try:
                self.event_received(event)
            except Exception:  # noqa: BLE001
                log.exception("event handler of %s failed", self.peer)

    # -- back-pressure
    def pause_writing(self) -> None:
        self._writable.clear()
        if self.queue is not None:
            self.queue.pause()
        self.writing_paused()

    def resume_writing(self) -> None:
        self._writable.set()
        if self.queue is not None:
            self.queue.resume()
        self.writing_resumed()

    @property
    def lagging(self) -> bool:
        """True while the peer's send queue is above its high-water mark (or it is gone)."""
        if self.queue is not None:
            return self.queue.lagging or self.queue.gone
        return self.gone or not self._writable.is_set()

    @property
    def dropped(self) -> int:
        """Data points not sent because the peer lagged (slow-subscriber policy)."""
        return self.queue.dropped if self.queue is not None else 0

    def admits_data(self, count: int) -> bool:
        """True when ``count`` data points may be queued now; else they count as dropped."""
        if self.queue is not None:
            return self.queue.admits_data(count)
        return not self.gone

    async def drain(self) -> None:
        """Wait until the peer's send queue has room (with a policy: at most until the policy
        drops the peer)."""
        if self.ended.done():
            return
        if self.queue is not None:
            await self.queue.wait()
        else:
            await self._writable.wait()

    # -- UDP towards the peer
    async def open_datagram_target(self, host: str, port: int) -> None:
        """Send the session's datagrams to ``host:port`` from now on."""
        transport, _ = await self.loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, remote_addr=(host, port)
        )
        if self.gone or self.transport is None or self.transport.is_closing():
            transport.close()
            return
        if self.udp is not None:
            self.udp.close()
        self.udp = transport

    # -- work bound to the connection
    def spawn(self, work: Coroutine[object, object, None]) -> asyncio.Task[None]:
        """Run ``work`` while the connection lasts; its failure ends the connection."""

        async def guarded() -> None:
            try:
                await work
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - ends this connection only
                log.exception("connection task of %s failed", self.peer)
                self.abort(f"connection task failed: {exc!r}")

        task = self.loop.create_task(guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = (peer[0], peer[1]) if peer else None
        if self.policy is not None:
            self.queue = SendQueue(
                transport,
                self.abort,
                high_water=self.policy.high_water,
                max_backlog=self.policy.max_backlog,
                slow_timeout=self.policy.slow_timeout,
            )
        self.connected()

    def data_received(self, data: bytes) -> None:
        if self.gone:
            return
        held = self._held
        if held is not None:  # the session has not started
            if len(held) + len(data) > self.max_held:
                self._held = None
                self.refuse_early("too much data before the session started")
                return
            held += data
            return
        session = self.sansio
        if session is not None:
            self.feed(lambda now: session.receive_data(data, now))

    def refuse_early(self, reason: str) -> None:
        """The peer sent too much before its session started."""
        self.abort(reason)

    def connection_lost(self, exc: Exception | None) -> None:
        self.gone = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for task in list(self._tasks):
            task.cancel()
        self._held = None
        if self.udp is not None:
            self.udp.close()
        self._writable.set()
        if self.queue is not None:
            self.queue.closed()
        reason = self.close_reason or self.loss_reason(exc)
        self._end_session(reason)
        session = self.sansio
        final = (session.close_reason if session is not None else "") or reason
        if not self.ended.done():
            self.ended.set_result(final)
        self.ended_with(final)


class _Inlet(asyncio.DatagramProtocol):
    def __init__(self, deliver: Callable[[bytes, tuple[str, int]], None]) -> None:
        self.deliver = deliver

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.deliver(data, addr)

    def error_received(self, exc: Exception) -> None:
        log.warning("UDP data channel error: %s", exc)


async def open_datagram_inlet(
    host: str,
    port: int,
    deliver: Callable[[bytes, tuple[str, int]], None],
    *,
    receive_buffer: int = 0,
) -> asyncio.DatagramTransport:
    """A subscriber's UDP data channel on ``host:port`` (0: any free port); every datagram
    goes to ``deliver(data, (host, port))``. ``receive_buffer`` asks for SO_RCVBUF bytes."""
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: _Inlet(deliver), local_addr=(host, port)
    )
    sock = transport.get_extra_info("socket")
    if receive_buffer and sock is not None:
        # Loopback and LAN losses are receive-buffer overflows while this process is busy;
        # the kernel caps the request at net.core.rmem_max.
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        except OSError as exc:
            log.debug("SO_RCVBUF %d refused: %s", receive_buffer, exc)
    return transport
