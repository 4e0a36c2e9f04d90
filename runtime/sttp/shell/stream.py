"""The asyncio protocol that drives one session over one TCP (or TLS) connection."""

from __future__ import annotations

import asyncio
import logging
from abc import abstractmethod
from collections.abc import Callable, Coroutine, Iterable
from typing import Generic, TypeVar

from gridbind.sttp.shell.contract import DatagramSink, DatagramSource, Session, SlowPeerPolicy
from gridbind.sttp.slowpeer import MAX_BACKLOG, SendQueue

__all__ = ["SessionShell"]

log = logging.getLogger("gridbind.sttp.shell")

E = TypeVar("E")


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
            self.close(session.close_reason or "session ended")  # cancels the timer
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

    def _disarm(self) -> None:
        """No more ticks: the session ended (or the connection is going)."""
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._timer_due = None, None

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
        if session is not None and not session.closed and not self.closing:
            self.feed(session.tick)

    # -- ending
    def close(self, reason: str | None = None) -> None:
        """Close gracefully: what is queued still goes out. ``reason``: why this side ends
        the connection (None: a local close, the session ends with "connection closed")."""
        self.closing = True
        self._disarm()
        if self.sansio is None:
            self._held = None  # a session that never started takes nothing more
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
        self._disarm()
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
