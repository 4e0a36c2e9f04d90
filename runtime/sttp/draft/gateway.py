"""Both roles on one connection ("Bidirectional Data Exchange"): a gateway is a publisher and a
subscriber at once over a single TCP (or TLS) connection, whichever side dialled.

:class:`GatewaySession` (sans-IO) runs a :class:`PublisherSession` and a
:class:`SubscriberSession` side by side and routes each received frame to the core it is meant
for. Decision (the seed gives no rule): commands go by their direction in the command table;
RequestSucceeded/RequestFailed go by the command they answer, and for NegotiateSession by their
data (a subscriber's reply carries the chosen ProtocolVersions/OperationalModes, the publisher's
final confirmation is empty). A fragmented packet (BeginFragment + its NextFragments) goes to
the core its inner command is meant for (by the same rules, on the inner command code and the
first fragment), and while it is incomplete every frame goes to that core, which refuses
anything interleaved. The keep-alive runs on the publisher core only.

:class:`Gateway` is the asyncio endpoint: ``gateway.publisher`` and ``gateway.subscriber`` are
ordinary :class:`~gridbind.sttp.draft.transport.Publisher` /
:class:`~gridbind.sttp.draft.transport.Subscriber` objects bound to the shared connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gridbind.generated.sttp import draft_0_8 as wire
from gridbind.sttp.draft.framing import FrameError, FrameReader, encode_frame
from gridbind.sttp.draft.session import Event, PublisherSession, SubscriberSession
from gridbind.sttp.draft.transport import Publisher, Subscriber, _Link
from gridbind.sttp.tls import TlsConfig

__all__ = ["Gateway", "GatewaySession", "RoleEvent"]

CC = wire.CommandCode
_TO_SUBSCRIBER = {0x01, 0x02, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x80, 0x81, 0x82}
_ANSWERS_TO_SUBSCRIBER = {CC.Subscribe, CC.GetMetadataSchema, CC.GetMetadata, CC.SecureDataChannel}


@dataclass
class RoleEvent(Event):
    """An event of one of the gateway's cores (``role`` is "publisher" or "subscriber")."""

    role: str
    event: Event


class GatewaySession:
    """A publisher core and a subscriber core sharing one byte stream."""

    role = "gateway"

    def __init__(self, publisher: PublisherSession, subscriber: SubscriberSession) -> None:
        self.publisher = publisher
        self.subscriber = subscriber
        self._reader = FrameReader()
        self._fragment_core: Any = None
        self._fragment_left = 0

    @property
    def tls(self) -> bool:
        """Whether the connection is TLS."""
        return self.publisher.tls

    @tls.setter
    def tls(self, value: bool) -> None:
        self.publisher.tls = self.subscriber.tls = value

    @property
    def closed(self) -> bool:
        """True once either core ended (the connection then closes)."""
        return self.publisher.closed or self.subscriber.closed

    @property
    def close_reason(self) -> str:
        """Why the connection ended."""
        return self.publisher.close_reason or self.subscriber.close_reason

    def _route_fragment(self, code: int, payload: bytes) -> Any:
        core = self._fragment_core
        if code == CC.BeginFragment and core is None and len(payload) >= 10:
            total = int.from_bytes(payload[0:4], "big", signed=True)
            inner, mode = payload[8], payload[9]
            first = payload[10:] if mode == wire.CompressionMode.Uncompressed else b""
            core = self.subscriber if inner in (0x01, 0x02) else self._route(inner, first)
            left = total - (len(payload) - 10)
            if left > 0:
                self._fragment_core, self._fragment_left = core, left
            return core
        if core is None:
            return self._route(code, payload)
        if code == CC.NextFragment:
            self._fragment_left -= len(payload)
            if self._fragment_left <= 0:
                self._fragment_core = None
        return core  # anything else interleaved: the core assembling it refuses

    def _route(self, code: int, payload: bytes) -> Any:
        if code in _TO_SUBSCRIBER:
            return self.subscriber
        if code in (CC.RequestSucceeded, CC.RequestFailed) and payload:
            answered = payload[0]
            if answered in _ANSWERS_TO_SUBSCRIBER:
                return self.subscriber
            if answered == CC.NegotiateSession:
                try:
                    message = (
                        wire.RequestSucceeded if code == CC.RequestSucceeded else wire.RequestFailed
                    ).parse(payload)
                except (wire.WireError, wire.ConstraintError):
                    return self.publisher
                return self.publisher if message.data else self.subscriber
        return self.publisher

    def receive_data(self, data: bytes, now: float) -> list[Event]:
        """Feed received bytes; events come wrapped in :class:`RoleEvent`."""
        if self.closed:
            return []
        try:
            frames = self._reader.feed(data)
        except FrameError as exc:
            return self._tag("publisher", self.publisher._terminate(0, f"malformed frame: {exc}"))
        events: list[Event] = []
        for code, payload in frames:
            if self.closed:
                break
            core = self._route_fragment(code, payload)
            role = "publisher" if core is self.publisher else "subscriber"
            events += self._tag(role, core.receive_data(encode_frame(code, payload), now))
        return events + self._propagate_close()

    def _propagate_close(self) -> list[Event]:
        if self.publisher.closed and not self.subscriber.closed:
            return self._tag("subscriber", self.subscriber.close(self.publisher.close_reason))
        if self.subscriber.closed and not self.publisher.closed:
            return self._tag("publisher", self.publisher.close(self.subscriber.close_reason))
        return []

    @staticmethod
    def _tag(role: str, events: list[Event]) -> list[Event]:
        return [RoleEvent(role, event) for event in events]

    def data_to_send(self) -> bytes:
        """Queued bytes of both cores (each core's output stays contiguous)."""
        return self.publisher.data_to_send() + self.subscriber.data_to_send()

    def next_deadline(self) -> float | None:
        """Earliest timer of both cores."""
        times = [t for t in (self.publisher.next_deadline(), self.subscriber.next_deadline()) if t]
        return min(times) if times else None

    def tick(self, now: float) -> list[Event]:
        """Timers of both cores."""
        events = self._tag("publisher", self.publisher.tick(now))
        events += self._tag("subscriber", self.subscriber.tick(now))
        return events + self._propagate_close()

    def close(self, reason: str = "closed locally") -> list[Event]:
        """End both cores."""
        return self._tag("publisher", self.publisher.close(reason)) + self._tag(
            "subscriber", self.subscriber.close(reason)
        )


class _RoleView:
    """What a Publisher/Subscriber object sees of a gateway connection: one core of it."""

    udp = None
    cipher = None

    def __init__(self, link: _Link, role: str) -> None:
        self.link = link
        self.role = role

    @property
    def session(self) -> Any:
        core = self.link.session
        if core is None:
            return None
        return core.publisher if self.role == "publisher" else core.subscriber

    def __getattr__(self, name: str) -> Any:  # loop, identity, peer, closed, close, drain
        return getattr(self.link, name)

    def handle(self, events: list[Event]) -> None:
        self.link.handle([RoleEvent(self.role, event) for event in events])

    def flush(self) -> None:
        self.link.flush()


class Gateway:
    """Publisher and subscriber over one connection; listen with :meth:`start` or dial with
    :meth:`connect`. ``publisher_options`` / ``subscriber_options`` are those of
    :class:`Publisher` / :class:`Subscriber` (UDP is not used by a gateway)."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: TlsConfig | None = None,
        publisher_options: Mapping[str, Any] | None = None,
        subscriber_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.host = host
        self._port = port
        self.tls = tls
        self.publisher = Publisher(host=host, port=port, udp=False, **(publisher_options or {}))
        self.subscriber = Subscriber(host=host, port=port, **(subscriber_options or {}))
        self._server: asyncio.base_events.Server | None = None
        self._views: dict[int, tuple[_RoleView, _RoleView]] = {}

    @property
    def port(self) -> int:
        """The listening port."""
        return self._server.sockets[0].getsockname()[1] if self._server else self._port

    def _new_session(self, link: _Link) -> GatewaySession:
        publisher = self.publisher._new_session(link)
        subscriber = self.subscriber._new_session(link)
        subscriber.keepalive_interval = None
        subscriber._next_noop = None
        return GatewaySession(publisher, subscriber)

    async def start(self) -> None:
        """Listen for the other gateway."""
        await self.subscriber._prepare()
        context = self.tls.server_context() if self.tls else None
        self._server = await asyncio.get_running_loop().create_server(
            lambda: _Link(self._new_session, self), self.host, self._port, ssl=context
        )

    async def connect(self, host: str, port: int, timeout: float = 10.0) -> None:
        """Dial the other gateway and wait for both negotiations."""
        await self.subscriber._prepare()
        loop = asyncio.get_running_loop()
        context = self.tls.client_context() if self.tls else None
        await asyncio.wait_for(
            loop.create_connection(
                lambda: _Link(self._new_session, self),
                host,
                port,
                ssl=context,
                server_hostname=(self.tls.server_hostname or host) if self.tls else None,
            ),
            timeout,
        )
        await self.subscriber.wait_negotiated(timeout)

    async def wait_negotiated(self, timeout: float = 10.0) -> None:
        """Wait until the subscriber core negotiated (the listening side)."""
        await self.subscriber.wait_negotiated(timeout)

    async def stop(self) -> None:
        """Close the connection and the listener."""
        if self._server is not None:
            self._server.close()
        await self.subscriber.stop()
        await self.publisher.stop()

    # owner callbacks of _Link
    def _link_made(self, link: _Link) -> None:
        views = (_RoleView(link, "publisher"), _RoleView(link, "subscriber"))
        self._views[id(link)] = views
        self.publisher._link_made(views[0])  # type: ignore[arg-type]
        self.subscriber._link_made(views[1])  # type: ignore[arg-type]

    def _event(self, link: _Link, event: Event) -> None:
        if not isinstance(event, RoleEvent):
            return
        publisher_view, subscriber_view = self._views[id(link)]
        if event.role == "publisher":
            self.publisher._event(publisher_view, event.event)  # type: ignore[arg-type]
        else:
            self.subscriber._event(subscriber_view, event.event)  # type: ignore[arg-type]

    def _link_lost(self, link: _Link) -> None:
        views = self._views.pop(id(link), None)
        if views is not None:
            self.publisher._link_lost(views[0])  # type: ignore[arg-type]
            self.subscriber._link_lost(views[1])  # type: ignore[arg-type]
