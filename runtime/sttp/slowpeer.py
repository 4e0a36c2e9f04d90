"""The slow-subscriber policy both STTP publishers apply to every connection.

Each connection's send queue is the asyncio transport's write buffer, bounded at ``high_water``
bytes. The policy, so one subscriber that does not read never delays the others:

1. While a connection's queue is above ``high_water`` it is *lagging*: measurements published
   for it are dropped (counted in :attr:`SendQueue.dropped`), not queued, and its commands are
   not read (a client that does not read answers cannot make us produce more of them).
2. A connection that lags for ``slow_timeout`` seconds without interruption, or whose queue
   passes ``max_backlog`` bytes (one large answer on top of a full queue), is disconnected with
   a logged reason.
3. ``Publisher.drain()`` waits for lagging connections (lossless pacing for sources that want
   it), but never longer than their ``slow_timeout``. A live source publishes at its own rate and
   does not call it per frame; the ``gridbind sttp publish`` command does not.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

#: Default bound of a connection's send queue (bytes) before it counts as lagging.
HIGH_WATER = 4 * 1024 * 1024
#: Default hard bound (bytes): past it the connection is dropped at once.
MAX_BACKLOG = 64 * 1024 * 1024
#: Default seconds a connection may lag before it is dropped.
SLOW_TIMEOUT = 10.0


class SendQueue:
    """Applies the slow-subscriber policy to one connection's transport.

    The owning protocol calls :meth:`pause` / :meth:`resume` from ``pause_writing`` /
    ``resume_writing``, asks :meth:`admits_data` before encoding measurements, calls
    :meth:`check` after every write and :meth:`closed` from ``connection_lost``.
    ``disconnect(reason)`` is called once when the policy drops the connection.
    """

    def __init__(
        self,
        transport: asyncio.Transport,
        disconnect: Callable[[str], None],
        *,
        high_water: int = HIGH_WATER,
        max_backlog: int = MAX_BACKLOG,
        slow_timeout: float = SLOW_TIMEOUT,
    ) -> None:
        self.transport = transport
        self.high_water = high_water
        self.max_backlog = max_backlog
        self.slow_timeout = slow_timeout
        self._disconnect = disconnect
        #: measurements not queued because the connection lagged
        self.dropped = 0
        #: how many times the connection started lagging
        self.lag_episodes = 0
        self.lagging = False
        self.gone = False
        self._writable = asyncio.Event()
        self._writable.set()
        self._timer: asyncio.TimerHandle | None = None
        transport.set_write_buffer_limits(high=high_water)

    def pause(self) -> None:
        """The transport's buffer passed ``high_water``: start lagging."""
        if self.lagging or self.gone:
            return
        self.lagging = True
        self.lag_episodes += 1
        self._writable.clear()
        if not self.transport.is_closing():
            self.transport.pause_reading()
        if self.slow_timeout > 0:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self.slow_timeout, self._too_slow)

    def resume(self) -> None:
        """The buffer fell below the low-water mark: the connection caught up."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self.lagging:
            return
        self.lagging = False
        self._writable.set()
        if not self.transport.is_closing():
            self.transport.resume_reading()

    def admits_data(self, count: int) -> bool:
        """True when ``count`` measurements may be queued; else they are counted as dropped."""
        if self.lagging or self.gone:
            self.dropped += count
            return False
        return True

    def check(self) -> bool:
        """After a write: drop the connection past ``max_backlog``; False when dropped."""
        if self.gone:
            return False
        size = self.transport.get_write_buffer_size()
        if size > self.max_backlog:
            self._drop(f"{size} bytes unsent, over the {self.max_backlog}-byte limit")
            return False
        return True

    async def wait(self) -> None:
        """Wait until the connection stops lagging, is dropped or closes."""
        await self._writable.wait()

    def closed(self) -> None:
        """The connection is gone: release waiters and the timer."""
        self.gone = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._writable.set()

    def _too_slow(self) -> None:
        self._timer = None
        if self.lagging and not self.gone:
            self._drop(f"lagged for {self.slow_timeout:g} s (send queue full)")

    def _drop(self, reason: str) -> None:
        self.closed()
        self._disconnect(f"subscriber too slow: {reason}")
