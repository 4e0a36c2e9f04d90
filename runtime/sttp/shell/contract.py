"""What the shell needs from a sans-IO session, and the bounds of a publisher's connection."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from gridbind.sttp.slowpeer import HIGH_WATER, MAX_BACKLOG, SLOW_TIMEOUT

__all__ = ["DatagramSink", "DatagramSource", "Session", "SlowPeerPolicy"]

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
