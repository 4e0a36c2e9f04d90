"""Metadata (tables, schema version, revisions, GetMetadataSchema / GetMetadata incl. update
queries, Appendix F templates) and access control: a subscriber never receives what it is not
allowed to, and the allowed set follows metadata changes."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from gridbind.generated.sttp import draft_0_8 as wire
from gridbind.generated.sttp.templates import DataPointRecord, PmuRecord
from gridbind.sttp import Measurement
from gridbind.sttp.draft import (
    AccessControl,
    CommandError,
    MetadataDatabase,
    Publisher,
    Subscriber,
    TlsConfig,
)
from gridbind.sttp.draft.synthetic import SyntheticPmu

from draft_pki import pki_fixture  # noqa: F401 - provides the pki fixture

T0 = 638_000_000_000_000_000


def run(coro, timeout=20):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def database(pmu: SyntheticPmu, bools: list[uuid.UUID]) -> MetadataDatabase:
    db = pmu.metadata()
    db.upsert_many(
        "DataPoint",
        [{"PointID": b, "PointTag": f"BRK{i}", "DataType": "BOOL"} for i, b in enumerate(bools)],
    )
    db.define_template(PmuRecord)
    db.upsert("PMU", {"ResourceID": uuid.uuid4(), "Acronym": "PMU0", "Name": "Test PMU"})
    return db


def test_access_rule_precedence():
    point, other = uuid.uuid4(), uuid.uuid4()
    acl = AccessControl(
        rules={"alice": [f"DENY {point}", "ALLOW WHERE DataType = 'BOOL'"]},
        groups={"ops": ["alice", "bob"]},
        group_rules={"ops": [f"ALLOW {point}", "DENY WHERE DataType = 'BOOL'"]},
    )
    bool_row = {"DataType": "BOOL"}
    assert not acl.allowed("alice", point, bool_row)  # (1) point explicit beats everything
    assert acl.allowed("bob", point, bool_row)  # (2) group explicit beats group filter
    assert acl.allowed("alice", other, bool_row)  # (3) own filter beats group filter
    assert not acl.allowed("bob", other, bool_row)  # (4) group filter
    assert not acl.allowed("carol", other, bool_row)  # nothing matches: denied (always on)
    assert not acl.allowed("alice", other, {"Other": 1})  # missing column: rule does not match
    with pytest.raises(ValueError):
        AccessControl(rules={"x": ["PERMIT ALL"]})


def test_template_tables_and_update_queries_in_process():
    db = MetadataDatabase()
    table = db.define_template(DataPointRecord)
    assert table.key == "PointID" and "Signal Type" in table.column_names
    first = uuid.uuid4()
    db.upsert("DataPoint", DataPointRecord(point_id=first, point_tag="A"))
    revision = db.revision
    second = uuid.uuid4()
    db.upsert("DataPoint", {"PointID": second, "PointTag": "B"})
    db.delete("DataPoint", first)
    items = db.answer(wire.GetMetadata(revision=revision, is_update_query=True, query="DataPoint"))
    kinds = [i.sub_command.name for i in items]
    assert kinds == ["DefineTable", "DefineRow", "UndefineRow", "Finished"]


async def session(publisher: Publisher, subscriber: Subscriber, body):
    await publisher.start()
    subscriber.port = publisher.port
    try:
        await subscriber.start()
        return await body()
    finally:
        await subscriber.stop()
        await publisher.stop()


@pytest.mark.timeout(20)
def test_metadata_schema_and_queries_over_tcp():
    pmu = SyntheticPmu(12)
    db = database(pmu, [uuid.uuid4()])
    publisher = Publisher(port=0, metadata=db)
    subscriber = Subscriber(port=0)

    async def body():
        schema = await subscriber.get_metadata_schema(include_schema=True)
        assert schema.schema_version == db.schema_version and schema.revision == db.revision
        tables = {t.name: t for t in schema.tables}
        assert set(tables) == {"DataPoint", "PMU"}
        assert tables["PMU"].table_type == wire.TableType.Resource
        columns = {c.name: c.type for c in tables["DataPoint"].columns}
        assert columns["PointID"] == wire.AttributeValueType.Guid
        assert columns["PositionIndex"] == wire.AttributeValueType.Int64
        brief = await subscriber.get_metadata_schema(include_schema=False)
        assert brief.tables == [] and brief.revision == db.revision

        everything = await subscriber.request_metadata("SELECT * FROM DataPoint")
        assert len(everything.rows) == 13
        freq = await subscriber.request_metadata(
            "SELECT PointTag, [Signal Type] FROM DataPoint WHERE [Signal Type] = 'FREQ'"
        )
        assert [c.name for c in freq.table.columns] == ["PointID", "PointTag", "Signal Type"]
        assert sorted(r["PointTag"] for r in freq.rows) == ["PMU0:FREQ", "PMU1:FREQ"]
        assert all(isinstance(r["PointID"], uuid.UUID) for r in freq.rows)

        revision = db.revision
        db.upsert("DataPoint", {"PointID": pmu.ids[0], "PointTag": "RENAMED", "DataType": "SINGLE"})
        db.delete("DataPoint", pmu.ids[1])
        update = await subscriber.request_metadata(
            "DataPoint", revision=revision, update=True, schema_version=db.schema_version
        )
        assert [r["PointTag"] for r in update.rows] == ["RENAMED"]
        assert update.removed == [pmu.ids[1]]
        stale = await subscriber.request_metadata("DataPoint", schema_version=uuid.uuid4())
        assert not stale.compatible and stale.rows == []
        with pytest.raises(CommandError, match="bad metadata query"):
            await subscriber.request_metadata("SELECT * FROM Nowhere")
        big = await subscriber.request_metadata("FILTER PMU WHERE Acronym = 'PMU0'")
        assert big.rows[0]["Name"] == "Test PMU"
        return True

    assert run(session(publisher, subscriber, body))


@pytest.mark.timeout(20)
def test_large_metadata_is_streamed_in_several_packets():
    pmu = SyntheticPmu(3000)
    publisher = Publisher(port=0, metadata=pmu.metadata())
    subscriber = Subscriber(port=0)

    async def body():
        result = await subscriber.request_metadata()
        return len(result.rows), subscriber.session.stats["frames_in"]

    rows, frames_in = run(session(publisher, subscriber, body))
    assert rows == 3000 and frames_in > 5


async def stream_allowed(publisher, subscriber, pmu, bools, db):
    """Subscribe to everything; publish all points; return what arrived, before and after a
    metadata change that allows one more point and revokes one."""

    async def frame(k):
        stamp = T0 + k
        publisher.publish(
            [Measurement(s, 1.0, stamp) for s in pmu.ids]
            + [Measurement(b, bool(k % 2), stamp) for b in bools]
        )
        return await subscriber.collect(10_000, 0.5)

    async def body():
        metadata = await subscriber.request_metadata()
        await subscriber.subscribe()  # answered after the publisher applied it
        first = await frame(1)
        db.upsert_many(
            "DataPoint",
            [
                {"PointID": pmu.ids[0], "DataType": "BOOL"},  # becomes allowed
                {"PointID": bools[0], "DataType": "INT64"},  # revoked
            ],
        )
        await asyncio.sleep(0.2)
        second = await frame(2)
        after = await subscriber.request_metadata()
        return metadata, first, second, after

    return await session(publisher, subscriber, body)


@pytest.mark.timeout(20)
def test_subscriber_only_sees_allowed_points_by_certificate_identity(pki):
    pmu = SyntheticPmu(12)
    bools = [uuid.uuid4() for _ in range(3)]
    db = database(pmu, bools)
    publisher = Publisher(
        port=0,
        metadata=db,
        access=AccessControl(rules={"operator-1": ["ALLOW WHERE DataType = 'BOOL'"]}),
        tls=TlsConfig(str(pki.publisher.cert), str(pki.publisher.key), cafile=str(pki.ca)),
    )
    subscriber = Subscriber(
        port=0, tls=TlsConfig(str(pki.subscriber.cert), str(pki.subscriber.key), cafile=str(pki.ca))
    )
    metadata, first, second, after = run(stream_allowed(publisher, subscriber, pmu, bools, db))
    assert {r["PointID"] for r in metadata.rows} == set(bools)
    assert {m.signal_id for m in first} == set(bools)
    assert all(m.value is True or m.value is False for m in first)
    assert {m.signal_id for m in second} == {pmu.ids[0], *bools[1:]}
    assert {r["PointID"] for r in after.rows} == {pmu.ids[0], *bools[1:]}


@pytest.mark.timeout(20)
def test_identity_without_rules_receives_nothing():
    pmu = SyntheticPmu(6)
    bools = [uuid.uuid4()]
    db = database(pmu, bools)
    publisher = Publisher(
        port=0, metadata=db, access=AccessControl(rules={"operator-1": ["ALLOW ALL"]})
    )
    subscriber = Subscriber(port=0)  # anonymous
    metadata, first, second, after = run(stream_allowed(publisher, subscriber, pmu, bools, db))
    assert metadata.rows == [] and first == [] and second == [] and after.rows == []


@pytest.mark.timeout(20)
def test_subscribe_by_query_follows_metadata():
    pmu = SyntheticPmu(12)
    db = pmu.metadata()
    publisher = Publisher(port=0, metadata=db)
    subscriber = Subscriber(port=0)

    async def body():
        await subscriber.subscribe(query="SELECT PointID FROM DataPoint WHERE [Signal Type]='FREQ'")
        await publisher.wait_subscribed()
        [link] = publisher.connections
        first = set(link.session.subscribed_points)
        db.upsert("DataPoint", {"PointID": pmu.ids[1], "Signal Type": "FREQ"})
        second = set(link.session.subscribed_points)
        with pytest.raises(CommandError, match="bad subscription query"):
            await subscriber.subscribe(query="SELECT * FROM DataPoint WHERE Nope = 1")
        return first, second

    first, second = run(session(publisher, subscriber, body))
    assert first == {pmu.ids[0], pmu.ids[6]}
    assert second == first | {pmu.ids[1]}
