"""A listening (reverse) draft subscriber takes the next publisher that dials in after the
first one left: a fresh negotiation, and batches() goes on across the re-dials."""

from __future__ import annotations

import asyncio
import logging
import uuid

import pytest

from gridbind.sttp import Measurement
from gridbind.sttp.draft import Publisher, Subscriber, ValueType


@pytest.mark.timeout(20)
def test_listening_subscriber_accepts_a_publisher_again(caplog):
    caplog.set_level(logging.CRITICAL)
    signal = uuid.uuid4()

    async def main():
        subscriber = Subscriber(port=0, listen=True)
        await subscriber.start()
        publisher = Publisher(port=0, points={signal: ValueType.DOUBLE})
        await publisher.start()
        batches = subscriber.batches()
        got = []
        try:
            for round_ in range(2):
                link = await publisher.connect("127.0.0.1", subscriber.port, timeout=3)
                await publisher.wait_for(lambda l=link: l.session.negotiated is not None, 3)
                negotiated = await subscriber.wait_negotiated(3)
                assert negotiated is not None
                await subscriber.subscribe([signal], timeout=3)
                publisher.publish([Measurement(signal, float(round_), 10 + round_)])
                batch = await asyncio.wait_for(anext(batches), 3)
                got.extend(m.value for m in batch)
                link.close()
                await asyncio.wait_for(asyncio.shield(link.closed), 3)
                for _ in range(100):  # until the subscriber saw the loss
                    if subscriber.link is None:
                        break
                    await asyncio.sleep(0.01)
        finally:
            await subscriber.stop()
            await publisher.stop()
        return got

    assert asyncio.run(asyncio.wait_for(main(), 15)) == [0.0, 1.0]
