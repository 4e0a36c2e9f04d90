"""Small blocking helpers for scripts (each runs its own event loop; not for use inside one).

Example::

    from gridbind.sttp.draft.sync import fetch_metadata, receive

    rows = fetch_metadata("127.0.0.1", 7175).rows
    values = receive("127.0.0.1", 7175, count=3000, query="SELECT PointID FROM DataPoint")
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any

from gridbind.sttp.draft.metadata import QueryResult
from gridbind.sttp.draft.transport import Publisher, Subscriber
from gridbind.sttp.measurement import Measurement

__all__ = ["fetch_metadata", "receive", "serve"]


def receive(
    host: str,
    port: int,
    *,
    count: int,
    timeout: float = 30.0,
    query: str | None = None,
    points: Iterable[Any] | None = None,
    **options: Any,
) -> list[Measurement]:
    """Connect, subscribe (to ``points``, by ``query`` or to everything) and return the first
    ``count`` measurements received within ``timeout`` seconds."""

    async def run() -> list[Measurement]:
        async with Subscriber(host=host, port=port, **options) as subscriber:
            await subscriber.subscribe(points, query=query)
            return (await subscriber.collect(count, timeout))[:count]

    return asyncio.run(run())


def fetch_metadata(
    host: str, port: int, query: str = "SELECT * FROM DataPoint", **options: Any
) -> QueryResult:
    """Connect and return one metadata table."""

    async def run() -> QueryResult:
        async with Subscriber(host=host, port=port, **options) as subscriber:
            return await subscriber.request_metadata(query)

    return asyncio.run(run())


def serve(
    frames: Iterable[Sequence[Measurement]],
    *,
    rate: float,
    subscribers: int = 1,
    wait: float = 30.0,
    **options: Any,
) -> int:
    """Listen, wait for ``subscribers`` to subscribe, publish ``frames`` at ``rate`` frames/s,
    then stop; returns the number of data points sent."""

    async def run() -> int:
        async with Publisher(**options) as publisher:
            await publisher.wait_subscribed(subscribers, wait)
            loop = asyncio.get_running_loop()
            began, sent = loop.time(), 0
            for number, frame in enumerate(frames):
                await asyncio.sleep(max(0.0, began + number / rate - loop.time()))
                sent += publisher.publish(frame)
                await publisher.drain()
            return sent

    return asyncio.run(run())
