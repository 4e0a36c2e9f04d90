"""Access control over real sockets: group rules (and their precedence against an identity's own
rules) decide which points a subscriber receives, and metadata follows the allowed points: the
Resource and CDSM rows related only to disallowed points are hidden, and the visible set changes
with the metadata."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from gridbind.generated.sttp import draft_0_8 as wire
from gridbind.generated.sttp.templates import PhasorRecord, PmuRecord, SubstationRecord
from gridbind.sttp import Measurement
from gridbind.sttp.draft import AccessControl, Publisher, Subscriber, TlsConfig
from gridbind.sttp.draft.synthetic import SyntheticPmu

from draft_pki import pki_fixture  # noqa: F401 - provides the pki fixture

T0 = 638_000_000_000_000_000
AVT = wire.AttributeValueType


def run(coro, timeout=20):
    return asyncio.run(asyncio.wait_for(coro, timeout))


class Plant:
    """12 PMU signals (PMU0: 0..5, PMU1: 6..11), 3 breaker BOOLs of PMU1, an unrelated PMU2;
    substations S0 (PMU0), S1 (PMU1), S2 (nothing); phasors P0 (magnitude = signal 2) and P1
    (signal 8)."""

    def __init__(self) -> None:
        self.pmu = SyntheticPmu(12)
        self.ids = self.pmu.ids
        self.bools = [uuid.uuid4() for _ in range(3)]
        self.pmus = [uuid.uuid4() for _ in range(3)]
        self.stations = [uuid.uuid4() for _ in range(3)]
        self.phasors = [uuid.uuid4() for _ in range(2)]
        db = self.db = self.pmu.metadata()
        db.define_template(SubstationRecord)
        db.define_template(PmuRecord)
        db.define_template(PhasorRecord, extra=[("MagnitudeID", AVT.Guid)])
        db.upsert_many(
            "Substation", [{"ResourceID": s, "Name": f"S{i}"} for i, s in enumerate(self.stations)]
        )
        db.upsert_many(
            "PMU",
            [
                {
                    "ResourceID": p,
                    "Acronym": f"PMU{i}",
                    "SubstationTableName": "Substation" if i < 2 else None,
                    "SubstationTableID": self.stations[i] if i < 2 else None,
                }
                for i, p in enumerate(self.pmus)
            ],
        )
        db.upsert_many(
            "Phasor",
            [
                {"CDSMID": self.phasors[0], "CDSMTag": "P0", "MagnitudeID": self.ids[2]},
                {"CDSMID": self.phasors[1], "CDSMTag": "P1", "MagnitudeID": self.ids[8]},
            ],
        )
        db.upsert_many(
            "DataPoint",
            [
                {**row, "ProducerTableName": "PMU", "ProducerTableID": self.pmus[i // 6]}
                for i, row in enumerate(db.rows("DataPoint"))
            ]
            + [
                {
                    "PointID": b,
                    "PointTag": f"BRK{i}",
                    "DataType": "BOOL",
                    "PositionIndex": 100 + i,
                    "ProducerTableName": "PMU",
                    "ProducerTableID": self.pmus[1],
                }
                for i, b in enumerate(self.bools)
            ],
        )

    def frame(self, k: int) -> list[Measurement]:
        stamp = T0 + k
        return [Measurement(s, 1.0, stamp) for s in self.ids] + [
            Measurement(b, bool(k % 2), stamp) for b in self.bools
        ]


def row_of(db, point) -> dict:
    """A copy of the DataPoint row of ``point`` (upsert replaces whole rows)."""
    return next(r for r in db.rows("DataPoint") if r["PointID"] == point)


async def view(subscriber: Subscriber) -> dict[str, set]:
    """Keys of every table as this subscriber sees them."""
    out = {}
    for table in ("DataPoint", "PMU", "Substation", "Phasor"):
        result = await subscriber.request_metadata(f"SELECT * FROM {table}")
        key = result.table.columns[0].name
        out[table] = {row[key] for row in result.rows}
    return out


async def scenario(plant: Plant, publisher: Publisher, subscriber: Subscriber, change=None):
    """Metadata view and streamed points, then (optionally) again after ``change(db)``."""
    await publisher.start()
    subscriber.port = publisher.port
    try:
        await subscriber.start()
        before = await view(subscriber)
        await subscriber.subscribe()
        publisher.publish(plant.frame(1))
        first = {m.signal_id for m in await subscriber.collect(10_000, 0.5)}
        if change is None:
            return before, first
        change(plant.db)
        await asyncio.sleep(0.2)
        publisher.publish(plant.frame(2))
        second = {m.signal_id for m in await subscriber.collect(10_000, 0.5)}
        after = await view(subscriber)
        return before, first, after, second
    finally:
        await subscriber.stop()
        await publisher.stop()


@pytest.mark.timeout(20)
def test_group_rules_over_tcp_and_metadata_follows_the_allowed_points():
    plant = Plant()
    ids = plant.ids
    access = AccessControl(
        groups={"viewers": ["anonymous"]},
        group_rules={"viewers": ["ALLOW WHERE PositionIndex < 6", f"DENY {ids[3]}"]},
    )
    publisher = Publisher(port=0, metadata=plant.db, access=access, udp=False)

    def change(db):  # signal 7 moves into the allowed set: PMU1 and S1 become visible
        db.upsert("DataPoint", {**row_of(db, ids[7]), "PositionIndex": 1})

    before, first, after, second = run(scenario(plant, publisher, Subscriber(port=0), change))
    allowed = {ids[0], ids[1], ids[2], ids[4], ids[5]}  # group explicit DENY beats its filter
    assert before["DataPoint"] == first == allowed
    assert before["PMU"] == {plant.pmus[0]}  # PMU1: only disallowed points; PMU2: none
    assert before["Substation"] == {plant.stations[0]}  # through PMU0
    assert before["Phasor"] == {plant.phasors[0]}  # P1's magnitude is signal 8
    assert after["DataPoint"] == second == allowed | {ids[7]}
    assert after["PMU"] == {plant.pmus[0], plant.pmus[1]}
    assert after["Substation"] == {plant.stations[0], plant.stations[1]}
    assert after["Phasor"] == {plant.phasors[0]}


@pytest.mark.timeout(20)
def test_certificate_identity_group_membership_and_precedence_over_tls(pki):
    plant = Plant()
    access = AccessControl(
        rules={"operator-1": [f"DENY {plant.bools[0]}"]},  # (1) own explicit
        groups={"ops": ["operator-1"]},
        group_rules={
            "ops": ["ALLOW WHERE DataType = 'BOOL'"],  # (4) group filter
            "*": [f"ALLOW {plant.ids[0]}"],  # (2) group explicit, every identity
        },
    )
    publisher = Publisher(
        port=0,
        metadata=plant.db,
        access=access,
        udp=False,
        tls=TlsConfig(str(pki.publisher.cert), str(pki.publisher.key), cafile=str(pki.ca)),
    )
    subscriber = Subscriber(
        port=0, tls=TlsConfig(str(pki.subscriber.cert), str(pki.subscriber.key), cafile=str(pki.ca))
    )

    def change(db):  # the producer of signal 0 changes: PMU0 and S0 are no longer related
        db.upsert("DataPoint", {**row_of(db, plant.ids[0]), "ProducerTableID": plant.pmus[1]})

    before, first, after, second = run(scenario(plant, publisher, subscriber, change))
    allowed = {plant.ids[0], *plant.bools[1:]}
    assert before["DataPoint"] == first == allowed == after["DataPoint"] == second
    assert before["PMU"] == {plant.pmus[0], plant.pmus[1]}
    assert before["Substation"] == {plant.stations[0], plant.stations[1]}
    assert before["Phasor"] == set()
    assert after["PMU"] == {plant.pmus[1]} and after["Substation"] == {plant.stations[1]}


@pytest.mark.timeout(20)
def test_unrelated_rows_are_judged_by_the_rules_themselves():
    plant = Plant()
    pmu1_points = [*plant.ids[6:], *plant.bools]
    # everything allowed except every point of PMU1
    access = AccessControl(group_rules={"*": ["ALLOW ALL", *(f"DENY {p}" for p in pmu1_points)]})
    before, first = run(
        scenario(plant, Publisher(port=0, metadata=plant.db, access=access), Subscriber(port=0))
    )
    assert first == set(plant.ids[:6]) == before["DataPoint"]
    # PMU2 and S2 relate to no point: ALLOW ALL shows them; PMU1/S1/P1 follow their points
    assert before["PMU"] == {plant.pmus[0], plant.pmus[2]}
    assert before["Substation"] == {plant.stations[0], plant.stations[2]}
    assert before["Phasor"] == {plant.phasors[0]}

    # with allow-all every row stays visible
    plant = Plant()
    before, first = run(scenario(plant, Publisher(port=0, metadata=plant.db), Subscriber(port=0)))
    assert before["PMU"] == set(plant.pmus) and before["Substation"] == set(plant.stations)
    assert before["Phasor"] == set(plant.phasors) and len(first) == 15

    # an identity with no rules sees no row of any table
    plant = Plant()
    access = AccessControl(rules={"operator-1": ["ALLOW ALL"]})
    before, first = run(
        scenario(plant, Publisher(port=0, metadata=plant.db, access=access), Subscriber(port=0))
    )
    assert first == set() and all(keys == set() for keys in before.values())


def test_related_points_of_the_plant():
    plant = Plant()
    related = plant.db.related_points()
    assert related[("PMU", plant.pmus[0])] == set(plant.ids[:6])
    assert related[("PMU", plant.pmus[1])] == {*plant.ids[6:], *plant.bools}
    assert related[("SUBSTATION", plant.stations[1])] == {*plant.ids[6:], *plant.bools}
    assert related[("PHASOR", plant.phasors[1])] == {plant.ids[8]}
    assert ("PMU", plant.pmus[2]) not in related
    assert ("SUBSTATION", plant.stations[2]) not in related
