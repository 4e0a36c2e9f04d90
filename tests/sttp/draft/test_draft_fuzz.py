"""Hostile bytes never crash or hang a session: they end in events (often RequestFailed and a
close), with memory bounded by one frame."""

from __future__ import annotations

import logging
import struct
import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_draft_session import negotiated, subscribe_all

from gridbind.generated.sttp import draft_0_8 as wire
from gridbind.sttp.draft.session import SessionClosed
from gridbind.sttp.encoding import ValueType

CODES = sorted(wire.MESSAGES) + [0x00, 0x0C, 0x7F, 0x85, 0xFE]


def frame(code: int, payload: bytes) -> bytes:
    return struct.pack(">BH", code, len(payload) + 3) + payload


frames = st.lists(
    st.tuples(st.sampled_from(CODES), st.binary(max_size=300)).map(lambda t: frame(*t)),
    min_size=1,
    max_size=6,
)


def check(session, data: bytes, caplog) -> None:
    with caplog.at_level(logging.ERROR, logger="gridbind.sttp.draft"):
        for start in range(0, len(data), 97):  # arbitrary chunking
            events = session.receive_data(data[start : start + 97], 0.0)
            assert all(not isinstance(e, Exception) for e in events)
    assert "unexpected error" not in caplog.text, caplog.text
    if session.closed:
        assert session.receive_data(b"\x01\x00\x03", 0.0) == []
    assert session._reader.pending < 65536


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=frames)
def test_publisher_survives_hostile_frames(data, caplog):
    caplog.clear()
    pub, _ = negotiated({uuid.uuid4(): ValueType.SINGLE})
    check(pub, b"".join(data), caplog)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=frames)
def test_subscriber_survives_hostile_frames(data, caplog):
    caplog.clear()
    points = {uuid.uuid4(): ValueType.SINGLE}
    pub, sub = negotiated(points, stateful=["TSSC"])
    subscribe_all(pub, sub)
    check(sub, b"".join(data), caplog)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(min_size=1, max_size=600))
def test_raw_bytes_before_negotiation(data, caplog):
    caplog.clear()
    from gridbind.sttp.draft.session import SubscriberSession

    sub = SubscriberSession()
    check(sub, data, caplog)
    events = sub.close()
    assert events == [] or isinstance(events[0], SessionClosed)


def _valid_stream(algorithm: str) -> tuple[bytes, bytes]:
    """(negotiation bytes the publisher sends, the data bytes that follow) of a real session."""
    from gridbind.sttp import Measurement
    from gridbind.sttp.draft.metadata import MetadataDatabase
    from gridbind.sttp.draft.session import Catalog, PublisherSession, SubscriberSession

    points = {uuid.uuid4(): ValueType.SINGLE for _ in range(20)}
    points[uuid.uuid4()] = ValueType.STRING
    pub = PublisherSession(Catalog(MetadataDatabase(), value_types=points), stateful=[algorithm])
    sub = SubscriberSession(stateful=[algorithm])
    from test_draft_session import pump

    pump(pub, sub)
    sub.subscribe(
        [wire.SubscribeItem(sub_command=wire.SubscribeSubCommand.AllDataPoints, body=None)], 0.0
    )
    pub.receive_data(sub.data_to_send(), 0.0)
    mapping = pub.data_to_send()
    sent = [
        Measurement(p, 1.5 * k if k < 20 else "x" * 300, 638_000_000_000_000_000 + k, k)
        for k, p in enumerate(points)
    ]
    pub.publish(sent)
    pub.publish(sent)
    pub.send_bulk(b"z" * 1000)
    return mapping, pub.data_to_send()


STREAMS = {name: _valid_stream(name) for name in ("NONE", "DEFLATE", "TSSC")}


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    name=st.sampled_from(sorted(STREAMS)),
    where=st.floats(0, 1, exclude_max=True),
    flip=st.integers(1, 255),
    cut=st.booleans(),
)
def test_mutated_real_streams(name, where, flip, cut, caplog):
    caplog.clear()
    from test_draft_session import pump

    from gridbind.sttp.draft.metadata import MetadataDatabase
    from gridbind.sttp.draft.session import Catalog, PublisherSession, SubscriberSession

    mapping, data = STREAMS[name]
    pub = PublisherSession(Catalog(MetadataDatabase()), stateful=[name])
    sub = SubscriberSession(stateful=[name])
    pump(pub, sub)
    sub.subscribe(
        [wire.SubscribeItem(sub_command=wire.SubscribeSubCommand.AllDataPoints, body=None)], 0.0
    )
    sub.data_to_send()
    stream = bytearray(mapping + data)
    index = int(where * len(stream))
    if cut:
        del stream[index:]
    else:
        stream[index] ^= flip
    check(sub, bytes(stream), caplog)


def test_unmutated_streams_deliver_everything():
    from test_draft_session import pump

    from gridbind.sttp.draft.metadata import MetadataDatabase
    from gridbind.sttp.draft.session import Catalog, PublisherSession, SubscriberSession

    for name, (mapping, data) in STREAMS.items():
        pub = PublisherSession(Catalog(MetadataDatabase()), stateful=[name])
        sub = SubscriberSession(stateful=[name])
        pump(pub, sub)
        events = sub.receive_data(mapping + data, 0.0)
        kinds = [type(e).__name__ for e in events]
        assert kinds.count("DataPointsReceived") >= 2 and "BulkReceived" in kinds, (name, kinds)
        assert not sub.closed
