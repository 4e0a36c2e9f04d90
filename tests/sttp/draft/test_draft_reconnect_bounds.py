"""Reconnection of a draft subscriber stays bounded: one reconnection at a time with back-off,
a failed attempt closes its connection, and nothing dials on after stop()."""

from __future__ import annotations

import asyncio
import logging

import pytest

from gridbind.sttp.draft import Publisher, Subscriber
from gridbind.sttp.draft.characteristics import Options, Policy


def run(coro, timeout=10):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def reconnect_tasks() -> int:
    return sum(1 for task in asyncio.all_tasks() if "_reconnect_loop" in repr(task))


@pytest.mark.timeout(20)
def test_reconnect_against_a_silent_server_is_one_backed_off_loop(caplog):
    caplog.set_level(logging.CRITICAL)

    async def main():
        publisher = Publisher(port=0)
        await publisher.start()
        port = publisher.port
        subscriber = Subscriber(port=port, reconnect=0.05, negotiation_timeout=0.15)
        await subscriber.start()
        accepted: list[asyncio.StreamWriter] = []
        open_now: set[asyncio.StreamWriter] = set()

        async def hole(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted.append(writer)  # accepts, never negotiates
            open_now.add(writer)
            await reader.read()  # until the subscriber closes it
            open_now.discard(writer)
            writer.close()

        await publisher.stop()
        server = await asyncio.start_server(hole, "127.0.0.1", port)
        try:
            loops = []
            for _ in range(6):
                await asyncio.sleep(0.25)
                loops.append(reconnect_tasks())
            during = len(open_now)
        finally:
            await subscriber.stop()
            await asyncio.sleep(0.2)
            after = len(open_now)
            server.close()
        return len(accepted), loops, during, after, reconnect_tasks()

    accepted, loops, during, after, left = run(main())
    # 1.5 s of back-off from 0.05 s (0.025..0.05, 0.05..0.1, 0.1..0.2, ...) plus 0.15 s
    # negotiation time-outs: a handful of attempts (the doubling loops made hundreds)
    assert 2 <= accepted <= 8, accepted
    assert max(loops) == 1, loops
    assert during <= 1 and after == 0 and left == 0


@pytest.mark.timeout(20)
def test_refused_replay_closes_attempts_and_stop_ends_reconnection(caplog):
    caplog.set_level(logging.CRITICAL)

    async def main():
        publisher = Publisher(port=0)
        await publisher.start()
        port = publisher.port
        subscriber = Subscriber(port=port, reconnect=0.05, max_reconnect_interval=0.2)
        await subscriber.start()
        await subscriber.subscribe(options=Options(priority=5))
        await publisher.stop()
        # back with a stricter policy: every replayed subscription is refused
        strict = Publisher(port=port, policy=Policy(max_priority=3))
        await strict.start()
        try:
            await asyncio.sleep(1.0)
            most = len(strict.connections)
            await subscriber.stop()
            await asyncio.sleep(0.5)  # an orphaned loop would dial again here
            return most, len(strict.connections), subscriber.reconnects, reconnect_tasks()
        finally:
            await strict.stop()

    most, after, reconnects, left = run(main())
    assert most <= 1 and after == 0
    assert reconnects == 0 and left == 0
