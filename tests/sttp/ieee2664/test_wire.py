"""Sans-IO pieces and hostile input: framing, payload codecs, metadata XML, bad peers."""

from __future__ import annotations

import asyncio
import gzip
import socket
import struct
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridbind.sttp.ieee2664 import Publisher, Subscriber, synthetic_pmu_metadata
from gridbind.sttp.ieee2664.compact import CompactCodec, SignalIndexCache, compact_flags, full_flags
from gridbind.sttp.ieee2664.metadata import DataSet, MetadataError, parse_datetime
from gridbind.sttp.ieee2664.params import SubscriptionSettings, parse_connection_string
from gridbind.sttp.ieee2664.publisher_session import PublisherSession
from gridbind.sttp.ieee2664.publisher_state import PublisherState
from gridbind.sttp.ieee2664.subscriber_session import SubscriberSession
from gridbind.sttp.ieee2664.wire import (
    CipherKeys,
    PacketReader,
    ProtocolError,
    command_packet,
    decode_message,
    gunzip_bytes,
    response_packet,
    split_response,
)
from gridbind.sttp.measurement import Measurement


def test_packet_reader_reassembles_split_and_coalesced_packets():
    packets = [
        command_packet(0x06, b"\x00\x00\x02\x02"),
        command_packet(0x01),
        command_packet(0x02, b"x" * 70000),
    ]
    stream = b"".join(packets)
    reader = PacketReader()
    out = []
    for start in range(0, len(stream), 7):
        out += list(reader.feed(stream[start : start + 7]))
    assert [p[:1] for p in out] == [b"\x06", b"\x01", b"\x02"] and len(out[2]) == 70001
    assert reader.pending == 0


def test_oversized_packet_is_refused_before_buffering():
    reader = PacketReader(max_size=1000)
    with pytest.raises(ProtocolError, match="exceeds"):
        list(reader.feed(struct.pack(">I", 1001) + b"x"))


def test_response_header_checks():
    code, command, payload = split_response(response_packet(0x80, 0x02, b"ok")[4:])
    assert (code, command, payload) == (0x80, 0x02, b"ok")
    with pytest.raises(ProtocolError, match="unknown server response"):
        split_response(b"\x10\x02\x00\x00\x00\x00")
    with pytest.raises(ProtocolError, match="says 5 payload bytes"):
        split_response(b"\x80\x02\x00\x00\x00\x05ab")
    assert decode_message(struct.pack(">I", 2) + b"hi") == "hi"  # sttpapi's prefixed strings


def test_gzip_bomb_refused():
    bomb = gzip.compress(b"\x00" * (2 * 1024 * 1024))
    with pytest.raises(ProtocolError, match="inflates past"):
        gunzip_bytes(bomb, limit=1024 * 1024)
    with pytest.raises(ProtocolError):
        gunzip_bytes(b"\x1f\x8bnot gzip")


def test_signal_index_cache_and_cipher_keys_roundtrip_and_truncation():
    cache = SignalIndexCache.from_signals(
        uuid.uuid4(), [(uuid.uuid4(), "PPA", i) for i in range(5)]
    )
    data = cache.build()
    again = SignalIndexCache.parse(data)
    assert again.entries == cache.entries and again.subscriber_id == cache.subscriber_id
    for cut in (10, 30, len(data) - 1):
        with pytest.raises(ProtocolError):
            SignalIndexCache.parse(data[:cut])
    keys = CipherKeys(1, ((b"k" * 32, b"i" * 16), (b"K" * 32, b"I" * 16)))
    assert CipherKeys.parse(keys.build()) == keys
    with pytest.raises(ProtocolError):
        CipherKeys.parse(b"\x00" + struct.pack(">i", 7) + b"short")


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 2**32 - 1),
            st.floats(width=32, allow_nan=False),
            st.integers(1, 2**40),
        ),
        min_size=1,
        max_size=20,
    )
)
def test_compact_roundtrip_property(items):
    signals = [uuid.UUID(int=i + 1) for i in range(len(items))]
    cache = SignalIndexCache.from_signals(uuid.UUID(int=0), [(s, "", 0) for s in signals])
    base = 10**17
    codec = CompactCodec(base_times=(base, base + 2**33), time_index=0)
    measurements = [
        Measurement(s, v, base + t, f) for s, (f, v, t) in zip(signals, items, strict=True)
    ]
    data = b"".join(codec.encode(i, m) for i, m in enumerate(measurements))
    decoded = CompactCodec(base_times=codec.base_times).decode(data, len(measurements), cache)
    assert [(m.signal_id, m.value, m.timestamp) for m in decoded] == [
        (m.signal_id, m.value, m.timestamp) for m in measurements
    ]
    assert [m.flags for m in decoded] == [full_flags(compact_flags(m.flags)) for m in measurements]


def test_connection_string_parsing():
    text = SubscriptionSettings(
        filter_expression="PPA:1; FILTER ActiveMeasurements WHERE SignalType='FREQ'", udp_port=9000
    ).build()
    settings = SubscriptionSettings.parse(text)
    assert settings.filter_expression == "PPA:1; FILTER ActiveMeasurements WHERE SignalType='FREQ'"
    assert settings.udp_port == 9000 and settings.include_time
    assert parse_connection_string("A=1; b = {x=2;y={3}} ;") == {"a": "1", "b": "x=2;y={3}"}
    for bad in ("a={1", "a=1}", "novalue"):
        with pytest.raises(ProtocolError):
            parse_connection_string(bad)


def test_metadata_xml_is_parsed_safely():
    hostile = b"""<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>
    <DataSet><x>&x;</x></DataSet>"""
    with pytest.raises(MetadataError):
        DataSet.from_xml(hostile)
    with pytest.raises(MetadataError, match="well-formed"):
        DataSet.from_xml(b"<DataSet><oops></DataSet>")
    with pytest.raises(MetadataError, match="xs:schema"):
        DataSet.from_xml(b"<DataSet/>")
    metadata, _ = synthetic_pmu_metadata(3)
    bad = metadata.to_xml().replace(b"<AccessID>0</AccessID>", b"<AccessID>zero</AccessID>")
    with pytest.raises(MetadataError, match="not a valid int"):
        DataSet.from_xml(bad)


@pytest.mark.parametrize(
    "text",
    [
        "2026-01-01T00:00:00.000Z",
        "2026-01-01T00:00:00.Z",
        "2026-01-01T00:00:00Z",
        "2026-01-01T01:00:00+01:00",
        "2026-01-01",
    ],
)
def test_metadata_timestamps_including_000(text):
    assert parse_datetime(text).isoformat() == "2026-01-01T00:00:00+00:00"


def test_publisher_session_refuses_commands_before_modes_and_bad_versions():
    metadata, _ = synthetic_pmu_metadata(3)
    session = PublisherSession(PublisherState(metadata))
    with pytest.raises(ProtocolError, match="before DEFINE_OPERATIONAL_MODES"):
        session.receive(command_packet(0x02, b"\x02\x00\x00\x00\x00"))
    session = PublisherSession(PublisherState(metadata))
    with pytest.raises(ProtocolError, match="version 9"):
        session.receive(command_packet(0x06, struct.pack(">I", 0x209)))
    assert b"not supported" in session.data_to_send()
    session = PublisherSession(PublisherState(metadata))
    with pytest.raises(ProtocolError, match="unknown server command"):
        session.receive(command_packet(0x06, struct.pack(">I", 0x202)) + command_packet(0x42))


def test_bad_filter_expression_fails_the_subscription_not_the_session():
    metadata, _ = synthetic_pmu_metadata(3)
    publisher = PublisherSession(PublisherState(metadata))
    subscriber = SubscriberSession()
    subscriber.start()
    publisher.receive(subscriber.data_to_send())
    subscriber.receive(publisher.data_to_send())
    subscriber.subscribe(SubscriptionSettings(filter_expression="FILTER X WHERE"))
    publisher.receive(subscriber.data_to_send())
    events = subscriber.receive(publisher.data_to_send())
    assert [type(e).__name__ for e in events] == ["CommandFailed"]
    assert "Bad filter expression" in events[0].message
    subscriber.subscribe(SubscriptionSettings(filter_expression="PPA:2"))
    publisher.receive(subscriber.data_to_send())
    events = subscriber.receive(publisher.data_to_send())
    assert [type(e).__name__ for e in events] == ["CommandSucceeded", "SubscriptionUpdated"]
    assert len(events[1].cache) == 1


@pytest.mark.timeout(20)
def test_publisher_survives_hostile_clients_and_keeps_serving():
    metadata, signals = synthetic_pmu_metadata(10)

    async def run() -> None:
        async with Publisher(metadata, port=0) as publisher:
            loop = asyncio.get_running_loop()
            for junk in (
                b"\xff" * 64,
                struct.pack(">I", 0x7FFFFFFF) + b"x",
                command_packet(0x02, b""),
            ):
                with socket.create_connection(("127.0.0.1", publisher.port)) as raw:
                    raw.sendall(junk)
                    raw.settimeout(5)
                    data = await loop.run_in_executor(None, lambda: raw.recv(4096) + raw.recv(4096))
                    assert data == b"" or data  # closed by the publisher (EOF after any reply)
            async with Subscriber(port=publisher.port, auto_reconnect=False) as subscriber:
                assert len(await subscriber.wait_subscribed(5)) == 10
            assert publisher.connections == [] or all(c.closed for c in publisher.connections)

    asyncio.run(run())


@pytest.mark.timeout(20)
def test_subscriber_closes_cleanly_on_hostile_publisher():
    async def run() -> None:
        async def hostile(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read(100)
            writer.write(
                response_packet(
                    0x80, 0x01, gzip.compress(b"<!DOCTYPE x [<!ENTITY a 'b'>]><x>&a;</x>")
                )
            )
            await writer.drain()
            await asyncio.sleep(5)

        server = await asyncio.start_server(hostile, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            subscriber = Subscriber(port=port, auto_reconnect=False)
            await subscriber.start()
            with pytest.raises(ConnectionError, match="bad metadata"):
                async for _ in subscriber:
                    pass
            await subscriber.stop()

    asyncio.run(run())


def test_metadata_from_draft_data_point_rows():
    """The draft profile's DataPoint rows feed the deployed metadata and its filters."""
    from gridbind.sttp.expressions import select_signal_ids
    from gridbind.sttp.ieee2664.metadata import active_measurements, from_data_points

    points = [
        {
            "PointID": uuid.UUID(int=i + 1),
            "PointTag": f"PMU0:{kind}",
            "Signal Type": kind,
            "PositionIndex": i,
        }
        for i, kind in enumerate(["FREQ", "DFDT", "VPHM", "VPHA"])
    ]
    metadata = from_data_points(points)
    rows = metadata["MeasurementDetail"].rows
    assert [r["ID"] for r in rows] == ["STTP:1", "STTP:2", "STTP:3", "STTP:4"]
    view = active_measurements(metadata, uuid.uuid4())
    assert select_signal_ids([view], "FILTER ActiveMeasurements WHERE SignalType='VPHA'") == [
        uuid.UUID(int=4)
    ]
    assert DataSet.from_xml(metadata.to_xml())["MeasurementDetail"].rows == rows
    with pytest.raises(MetadataError, match="no PointID"):
        from_data_points([{"PointTag": "x"}])


@pytest.mark.timeout(30)
def test_stalled_subscriber_is_disconnected_not_buffered_without_bound():
    from gridbind.sttp.ieee2664 import PmuSource, SubscriberConfig
    from gridbind.sttp.ieee2664.subscriber_session import SubscriberSession as Session
    from gridbind.sttp.measurement import ticks_now

    metadata, signals = synthetic_pmu_metadata(1000)
    frames = list(PmuSource(signals, start_ticks=ticks_now()).frames(20))

    async def run() -> None:
        async with Publisher(metadata, port=0, max_backlog=1 << 20) as publisher:
            # a subscriber that subscribes (compact, 17+ bytes/measurement) and never reads again
            session = Session(SubscriberConfig(compress_payload=False))
            reader, writer = await asyncio.open_connection("127.0.0.1", publisher.port)
            session.start()
            session.subscribe(SubscriptionSettings("PPA:1;PPA:2"))
            session.subscribe(SubscriptionSettings())
            writer.write(session.data_to_send())
            await writer.drain()
            for _ in range(100):
                if publisher.connections and publisher.connections[0].session.subscribed:
                    break
                await asyncio.sleep(0.02)
            stalled = publisher.connections[0]
            for number in range(2000):
                publisher.publish(frames[number % 20])  # never blocks
                if stalled.closed:
                    break
                if number % 20 == 0:
                    await asyncio.sleep(0)
            assert stalled.closed and stalled not in publisher.connections
            writer.close()
            async with Subscriber(port=publisher.port, auto_reconnect=False) as healthy:
                assert len(await healthy.wait_subscribed(5)) == 1000

    asyncio.run(run())


def test_schema_requests():
    metadata, _ = synthetic_pmu_metadata(3)
    publisher = PublisherSession(PublisherState(metadata))
    subscriber = SubscriberSession()
    subscriber.start()
    publisher.receive(subscriber.data_to_send())
    subscriber.receive(publisher.data_to_send())
    subscriber.request_schema()
    subscriber.request_schema(selection=True)
    publisher.receive(subscriber.data_to_send())
    primary, selection = subscriber.receive(publisher.data_to_send())
    assert [t.name for t in primary.schema.tables] == [t.name for t in metadata.tables]
    assert all(not t.rows for t in primary.schema.tables)
    assert selection.schema.tables[0].name == "ActiveMeasurements"
    assert "SignalType" in selection.schema.tables[0].column_names


def test_text_metadata_is_served_as_utf8_whatever_its_declaration_said():
    from gridbind.sttp.ieee2664.metadata import DataSet, synthetic_pmu_metadata
    from gridbind.sttp.ieee2664.publisher_state import PublisherState

    metadata, _ = synthetic_pmu_metadata(10)
    body = metadata.to_xml().decode("utf-8").split("?>", 1)[-1].lstrip()
    text = '<?xml version="1.0" encoding="utf-16"?>\n' + body  # as .NET StringWriter writes
    served = PublisherState(text).metadata_xml(False)
    assert served.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    assert DataSet.from_xml(served).to_xml() == metadata.to_xml()
