"""The session contract both STTP profiles implement: :class:`PublisherAPI`, :class:`SubscriberAPI`.

``gridbind.sttp.Publisher(profile=...)`` / ``Subscriber(profile=...)`` return the profile's
class (``ieee2664``: :mod:`gridbind.sttp.ieee2664`; ``draft-0.8``: :mod:`gridbind.sttp.draft`);
code written against these protocols runs on either. ``mypy -p gridbind`` proves that both
profiles' classes conform (the checks sit in ``gridbind.sttp``), and the protocols are
``runtime_checkable`` for ``isinstance`` tests of the method names.

Verbs, chosen as an asyncio server / client reads, the same for both roles:

- ``await start()``: a publisher listens for subscribers; a subscriber dials the publisher and
  returns once connected (draft: session negotiated; ieee2664: operational modes sent), or,
  built with ``listen=True``, once it listens for the publisher to dial in (reverse
  connection). Failing to connect raises ``OSError`` (``ConnectionError``, ``ssl.SSLError``)
  or ``TimeoutError``, whatever the reconnection options: reconnection applies only to a
  connection that was once up (the same for a publisher's ``connect()``).
- ``await stop()``: close every connection and listener; a subscriber's iteration ends.
- ``async with``: ``start()`` on entry, ``stop()`` on exit.
- ``host`` / ``port``: where a publisher (or listening subscriber) listens, or the publisher a
  subscriber dials; ``port`` is the bound port once started with ``port=0``.

Publisher: ``publish(measurements) -> int`` (queued copies, never blocks), ``await drain()``
(back-pressure, bounded by the slow-subscriber policy), ``connections`` (open connections:
``peer``, ``dropped``, ``close()``), ``await wait_subscribed(count, timeout)`` (``count``
connections will receive what is published now), ``await connect(host, port)`` (reverse
connection: dial a listening subscriber).

Subscriber: ``await subscribe(points=None)`` (the given signal ids, or, with ``None``, what the
subscriber's options select, by default every point; returns once the publisher confirmed, raises
:class:`~gridbind.sttp.errors.RequestRefused` when it refuses),
``subscribe([])`` raises :class:`~gridbind.sttp.errors.InvalidArgument` (use ``unsubscribe``),
``await unsubscribe()`` (returns once the publisher confirmed; the connection stays up; from
then on a reconnection does not subscribe again until ``subscribe()`` is called),
``await request_metadata()``, ``batches()`` (async iterator of ``list[Measurement]`` until
:meth:`stop` or the connection ends), ``async for measurement in subscriber`` (one at a time),
``await wait_subscribed(timeout)``.

What a confirmation or the metadata *is* differs by profile (the draft answers a subscription
with ``CommandSucceeded`` and metadata with table rows, ``QueryResult``; ieee2664 with the
signal index cache and an XML ``DataSet``): the protocols type those results ``object``, and the
factories' overloads give the concrete class, and so the concrete result types, for a literal
profile.

Defaults shared by both profiles: ``host`` :data:`DEFAULT_HOST` (loopback: exposing a publisher
on a network is a decision to write down) and ``port`` :data:`DEFAULT_PORT`, 7165, the port
deployed IEEE 2664 publishers (openPDC, openHistorian, SIEGate, ``sttpapi``) listen on. The
draft specification names no port, so the draft profile uses the deployed one; ``port=0`` picks
a free port. TLS uses one type, :class:`gridbind.sttp.tls.TlsConfig`, passed as ``tls=``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Protocol, Self, runtime_checkable

from gridbind.sttp.measurement import Measurement

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "ConnectionAPI", "PublisherAPI", "SubscriberAPI"]

#: Where both profiles listen / dial by default.
DEFAULT_HOST = "127.0.0.1"
#: The STTP port of deployed publishers; both profiles' default.
DEFAULT_PORT = 7165


@runtime_checkable
class ConnectionAPI(Protocol):
    """One subscriber connection of a publisher."""

    @property
    def peer(self) -> tuple[str, int] | None:
        """The subscriber's address (``None`` before the connection is made)."""
        ...

    @property
    def dropped(self) -> int:
        """Measurements not sent to this subscriber because it lagged."""
        ...

    def close(self) -> None:
        """Close this connection."""
        ...


@runtime_checkable
class PublisherAPI(Protocol):
    """What both profiles' publishers offer."""

    @property
    def host(self) -> str:
        """Address listened on."""
        ...

    @property
    def port(self) -> int:
        """Port listened on (the bound one once started with 0)."""
        ...

    @property
    def connections(self) -> Sequence[ConnectionAPI]:
        """Open subscriber connections."""
        ...

    async def start(self) -> None:
        """Listen for subscribers."""
        ...

    async def stop(self) -> None:
        """Close the listener and every connection."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc: object) -> None: ...

    async def connect(self, host: str, port: int) -> object:
        """Reverse connection: dial a listening subscriber; returns once connected."""
        ...

    def publish(self, measurements: Sequence[Measurement]) -> int:
        """Queue measurements for every subscriber that selected them; returns copies queued."""
        ...

    async def drain(self) -> None:
        """Wait until every subscriber can take more (bounded by the slow-subscriber policy)."""
        ...

    async def wait_subscribed(self, count: int = 1, timeout: float = 10.0) -> None:
        """Wait until ``count`` connections receive what is published now."""
        ...


@runtime_checkable
class SubscriberAPI(Protocol):
    """What both profiles' subscribers offer."""

    @property
    def host(self) -> str:
        """The publisher's address (listened on with ``listen=True``)."""
        ...

    @property
    def port(self) -> int:
        """The publisher's port (the bound one when listening on 0)."""
        ...

    async def start(self) -> None:
        """Connect (or listen, with ``listen=True``); returns once connected."""
        ...

    async def stop(self) -> None:
        """Close the connection (and listener); ends :meth:`batches`."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc: object) -> None: ...

    async def subscribe(
        self, points: Iterable[uuid.UUID] | None = None, *, timeout: float = 10.0
    ) -> object:
        """Subscribe to ``points`` (``None``: what the options select, by default everything);
        returns the publisher's confirmation; raises ``RequestRefused`` when it refuses."""
        ...

    async def unsubscribe(self, *, timeout: float = 10.0) -> object:
        """Stop the data flow (the connection stays up); returns once confirmed."""
        ...

    async def request_metadata(self, *, timeout: float = 10.0) -> object:
        """The publisher's metadata (draft: DataPoint rows; ieee2664: the XML data set)."""
        ...

    async def wait_subscribed(self, timeout: float = 10.0) -> object:
        """Wait until a subscription is confirmed on the current connection."""
        ...

    def batches(self) -> AsyncIterator[list[Measurement]]:
        """Received measurement batches until :meth:`stop` or the connection ends."""
        ...

    def __aiter__(self) -> AsyncIterator[Measurement]:
        """Received measurements one at a time (see :meth:`batches`)."""
        ...
