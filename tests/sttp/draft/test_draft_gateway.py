"""Both roles on one connection: two gateways exchange data in both directions over one TCP
connection."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from gridbind.sttp import Measurement
from gridbind.sttp.draft import ValueType
from gridbind.sttp.draft.gateway import Gateway

T0 = 638_000_000_000_000_000


@pytest.mark.timeout(20)
def test_bidirectional_exchange_over_one_connection():
    east_points = [uuid.uuid4() for _ in range(50)]
    west_points = [uuid.uuid4() for _ in range(30)]

    async def main():
        east = Gateway(
            publisher_options={"points": {p: ValueType.DOUBLE for p in east_points}},
            subscriber_options={"stateful": ["DEFLATE"]},
        )
        west = Gateway(
            publisher_options={
                "points": {p: ValueType.INT64 for p in west_points},
                "keepalive_interval": 0.1,
            },
        )
        await east.start()
        try:
            await west.connect("127.0.0.1", east.port)
            await east.wait_negotiated()
            assert west.subscriber.session.negotiated.stateful == "TSSC"
            assert east.subscriber.session.negotiated.stateful == "DEFLATE"
            await west.subscriber.subscribe()
            await east.subscriber.subscribe(west_points[:10])
            east.publisher.publish(
                [Measurement(p, k / 7, T0 + k) for k, p in enumerate(east_points)]
            )
            west.publisher.publish(
                [Measurement(p, k * 3, T0 + k) for k, p in enumerate(west_points)]
            )
            at_west = await west.subscriber.collect(50, 5)
            at_east = await east.subscriber.collect(10, 5)
            await asyncio.sleep(0.5)  # keep-alives flow over the shared connection
            alive = len(east.publisher.connections) == 1 and not west.subscriber.session.closed
            return at_west, at_east, alive
        finally:
            await west.stop()
            await east.stop()

    at_west, at_east, alive = asyncio.run(asyncio.wait_for(main(), 15))
    assert sorted((m.signal_id, m.value) for m in at_west) == sorted(
        (p, k / 7) for k, p in enumerate(east_points)
    )
    assert sorted((m.signal_id, m.value) for m in at_east) == sorted(
        (p, k * 3) for k, p in enumerate(west_points[:10])
    )
    assert alive


def test_a_fragmented_answer_under_stateful_deflate_routes_to_the_core_that_asked():
    import os

    from test_draft_stateful_deflate import subscribed

    from gridbind.generated.sttp import draft_0_8 as wire
    from gridbind.sttp.draft.gateway import GatewaySession
    from gridbind.sttp.draft.session import SubscriberSession

    from draft_sansio import frames

    pub, _ = subscribed("DEFLATE")
    assert pub._deflate_out is not None
    pub.max_payload = 1000  # fragmented, yet small enough (<= 16384) to be DEFLATE-able
    CC = wire.CommandCode
    answer = wire.RequestSucceeded(command=CC.GetMetadata, data=os.urandom(4000))
    pub._send_raw(CC.RequestSucceeded, answer.build())
    sent = frames(pub.data_to_send())
    code, begin = sent[0]
    assert code == CC.BeginFragment and len(sent) > 1
    gateway = GatewaySession(pub, SubscriberSession())
    assert gateway._route_fragment(code, begin) is gateway.subscriber
    for code, payload in sent[1:]:
        assert gateway._route_fragment(code, payload) is gateway.subscriber
    assert gateway._fragment_core is None
