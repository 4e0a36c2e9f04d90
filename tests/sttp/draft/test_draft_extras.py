"""Bulk transport of a file, every metadata attribute value type, the blocking helpers, and a
peer that stops reading."""

from __future__ import annotations

import asyncio
import os
import threading
import uuid

import pytest

from gridbind.generated.sttp import draft_0_8 as wire
from gridbind.sttp import Measurement
from gridbind.sttp.draft import MetadataDatabase, Publisher, Subscriber, ValueType, transport
from gridbind.sttp.draft.sync import fetch_metadata, receive, serve
from gridbind.sttp.draft.synthetic import SyntheticPmu

AVT = wire.AttributeValueType


def run(coro, timeout=20):
    return asyncio.run(asyncio.wait_for(coro, timeout))


@pytest.mark.timeout(20)
def test_bulk_transport_of_a_file_over_tcp(tmp_path):
    blob = os.urandom(300_000)
    path = tmp_path / "event.comtrade"
    path.write_bytes(blob)

    async def main():
        publisher = Publisher(port=0)
        await publisher.start()
        subscriber = Subscriber(port=publisher.port)
        try:
            await subscriber.start()
            [transfer] = publisher.send_bulk(path.read_bytes())
            got = await subscriber.receive_bulk(5)
            return transfer, got
        finally:
            await subscriber.stop()
            await publisher.stop()

    transfer, got = run(main())
    assert got.transfer_id == transfer and got.data == blob
    assert got.fundamental_type == ValueType.STTP_BUFFER


@pytest.mark.timeout(20)
def test_every_attribute_value_type_round_trips():
    db = MetadataDatabase()
    db.define_table(
        "Everything",
        wire.TableType.CDSM,
        [
            ("CDSMID", AVT.Guid),
            ("Text", AVT.String),
            ("F32", AVT.Single),
            ("F64", AVT.Double),
            ("Dec", AVT.Decimal),
            ("I32", AVT.Int32),
            ("I64", AVT.Int64),
            ("When", AVT.Ticks),
            ("Blob", AVT.Binary),
            ("Flag", AVT.Boolean),
            ("Nothing", AVT.String),
        ],
    )
    row = {
        "CDSMID": uuid.uuid4(),
        "Text": "Smith–Jones Line",
        "F32": 0.5,
        "F64": 1 / 3,
        "Dec": bytes(range(16)),
        "I32": -(2**31),
        "I64": 2**62,
        "When": 638_000_000_000_000_000,
        "Blob": b"\x00\xff" * 10,
        "Flag": True,
        "Nothing": None,
    }
    db.upsert("Everything", row)

    async def main():
        publisher = Publisher(port=0, metadata=db)
        await publisher.start()
        subscriber = Subscriber(port=publisher.port)
        try:
            await subscriber.start()
            return await subscriber.request_metadata("SELECT * FROM Everything")
        finally:
            await subscriber.stop()
            await publisher.stop()

    result = run(main())
    assert result.rows == [row]
    types = [c.type for c in result.table.columns]
    assert set(types) == set(AVT) - {AVT.Null}


@pytest.mark.timeout(30)
def test_blocking_helpers():
    pmu = SyntheticPmu(20, 30.0, start=638_000_000_000_000_000)
    sent: list[int] = []
    ready = threading.Event()

    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    def publisher_thread():
        ready.set()
        sent.append(
            serve(
                pmu.frames(30),
                rate=30.0,
                port=port,
                metadata=pmu.metadata(),
                subscribers=1,
            )
        )

    thread = threading.Thread(target=publisher_thread, daemon=True)
    thread.start()
    ready.wait(5)
    for _ in range(50):
        try:
            rows = fetch_metadata("127.0.0.1", port).rows
            break
        except OSError:
            import time

            time.sleep(0.1)
    assert len(rows) == 20
    got = receive("127.0.0.1", port, count=600, timeout=10)
    thread.join(10)
    assert len(got) == 600 == sent[0]
    assert all(m.value == pmu.value(pmu.index[m.signal_id], 0) for m in got[:20])


@pytest.mark.timeout(20)
def test_a_peer_that_stops_reading_is_dropped(monkeypatch):
    monkeypatch.setattr(transport, "MAX_WRITE_BUFFER", 2_000_000)

    async def main():
        pmu = SyntheticPmu(1000, start=638_000_000_000_000_000)
        publisher = Publisher(port=0, points=pmu.value_types(), stateful=["NONE"])
        await publisher.start()
        subscriber = Subscriber(port=publisher.port, stateful=["NONE"])
        try:
            await subscriber.start()
            await subscriber.subscribe()
            subscriber.link.transport.pause_reading()  # a peer that stops reading
            for k in range(400):
                publisher.publish(pmu.frame(k))
                if not publisher.connections:
                    break
                await asyncio.sleep(0)
            reasons = [e.reason for _, e in publisher.events if type(e).__name__ == "SessionClosed"]
            return publisher.connections, reasons
        finally:
            await subscriber.stop()
            await publisher.stop()

    connections, reasons = run(main())
    assert connections == [] and any("too slow" in r for r in reasons)


@pytest.mark.timeout(20)
def test_verified_points_get_receipts_over_tcp():
    from gridbind.sttp.draft import Policy
    from gridbind.sttp.draft.session import Verified

    critical, normal = uuid.uuid4(), uuid.uuid4()

    async def main():
        publisher = Publisher(
            port=0,
            points={critical: ValueType.DOUBLE, normal: ValueType.DOUBLE},
            policy=Policy(verified_points=frozenset({critical})),
        )
        await publisher.start()
        subscriber = Subscriber(port=publisher.port)
        try:
            await subscriber.start()
            await subscriber.subscribe()
            publisher.publish([Measurement(critical, 1.0, 10), Measurement(normal, 2.0, 10)])
            got = await subscriber.collect(2, 5)
            await publisher.wait_for(
                lambda: any(isinstance(e, Verified) for _, e in publisher.events), 5
            )
            return got, [e for _, e in publisher.events if isinstance(e, Verified)]
        finally:
            await subscriber.stop()
            await publisher.stop()

    got, receipts = run(main())
    assert sorted(m.value for m in got) == [1.0, 2.0]
    assert receipts == [Verified(critical, 10)]
