"""Sans-IO session cores of the draft profile: negotiation, its failure paths, time-outs,
malformed and out-of-order frames, fragments, subscriptions and data encodings."""

from __future__ import annotations

import struct
import uuid
import zlib

import pytest

from gridbind.generated.sttp import draft_0_8 as wire
from gridbind.sttp import Measurement
from gridbind.sttp.draft.metadata import MetadataDatabase
from gridbind.sttp.draft.session import (
    Catalog,
    CommandFailed,
    CommandSucceeded,
    DataPointsReceived,
    MappingChanged,
    NegotiationComplete,
    PublisherSession,
    SessionClosed,
    SubscriberSession,
)
from gridbind.sttp.encoding import ValueType

from draft_sansio import encode, frames, pump

CC = wire.CommandCode
T0 = 638_000_000_000_000_000


def catalog(points: dict[uuid.UUID, int] | None = None) -> Catalog:
    return Catalog(MetadataDatabase(), value_types=dict(points or {}))


def failed(data: bytes) -> wire.RequestFailed:
    [(code, payload)] = [f for f in frames(data) if f[0] == CC.RequestFailed]
    return wire.RequestFailed.parse(payload)


def test_negotiation_exactly_as_written():
    pub = PublisherSession(catalog())
    first = frames(pub.data_to_send())
    assert first[0][0] == CC.NegotiateSession
    message = wire.NegotiateSession.parse(first[0][1])
    assert message.sub_command == wire.NegotiateSubCommand.ProtocolVersions
    assert [(v.major, v.minor) for v in message.body.versions] == [(1, 0)]

    sub = SubscriberSession(stateful=["DEFLATE", "TSSC"], stateless=["NONE"])
    events = sub.receive_data(encode(CC.NegotiateSession, first[0][1]), 0.0)
    assert events == []
    [(code, payload)] = frames(sub.data_to_send())
    reply = wire.RequestSucceeded.parse(payload)
    assert code == CC.RequestSucceeded and reply.command == CC.NegotiateSession
    assert wire.ProtocolVersions.parse(reply.data).versions == [wire.Version(1, 0)]

    pub.receive_data(encode(code, payload), 0.0)
    [(code, payload)] = frames(pub.data_to_send())
    modes = wire.NegotiateSession.parse(payload).body
    assert [n.name.strip() for n in modes.stateful.items] == ["TSSC", "DEFLATE", "NONE"]
    assert [(n.version.major, n.version.minor) for n in modes.stateful.items] == [
        (1, 0),
        (1, 0),
        (0, 0),
    ]
    assert modes.udp_port != 0  # this publisher supports UDP

    sub.receive_data(encode(code, payload), 0.0)
    [(code, payload)] = frames(sub.data_to_send())
    chosen = wire.OperationalModes.parse(wire.RequestSucceeded.parse(payload).data)
    assert [n.name.strip() for n in chosen.stateful.items] == ["DEFLATE"]
    assert [n.name.strip() for n in chosen.stateless.items] == ["NONE"]
    assert chosen.udp_port == 0

    events = pub.receive_data(encode(code, payload), 0.0)
    assert events == [NegotiationComplete((1, 0), "DEFLATE", "NONE", 0)]
    [(code, payload)] = frames(pub.data_to_send())
    assert code == CC.RequestSucceeded
    assert sub.receive_data(encode(code, payload), 0.0) == [
        NegotiationComplete((1, 0), "DEFLATE", "NONE", 0)
    ]


def test_subscriber_refuses_unknown_protocol_version():
    pub = PublisherSession(catalog(), versions=[(2, 0)])
    sub = SubscriberSession()
    pub_events, sub_events = pump(pub, sub)
    assert sub.closed and pub.closed
    assert any(isinstance(e, SessionClosed) for e in sub_events)
    refusal = next(e for e in pub_events if isinstance(e, CommandFailed))
    assert refusal.terminate and refusal.command == CC.NegotiateSession
    # the Failed payload lists the subscriber's supported versions
    assert wire.ProtocolVersions.parse(refusal.data).versions == [wire.Version(1, 0)]


def test_subscriber_refuses_modes_without_common_algorithm():
    pub = PublisherSession(catalog(), stateful=["DEFLATE"], stateless=["DEFLATE"])
    sub = SubscriberSession(stateful=["TSSC"], stateless=["NONE"])
    pub_events, _ = pump(pub, sub)
    assert pub.closed and sub.closed
    refusal = next(e for e in pub_events if isinstance(e, CommandFailed))
    offered = wire.OperationalModes.parse(refusal.data)
    assert [n.name.strip() for n in offered.stateful.items] == ["TSSC"]


def test_subscriber_needing_udp_fails_against_tcp_only_publisher():
    pub = PublisherSession(catalog(), udp=False)
    sub = SubscriberSession(udp_port=40000)
    pump(pub, sub)
    assert pub.closed and sub.closed and "UDP" in sub.close_reason


def test_publisher_rejects_a_version_it_did_not_offer():
    pub = PublisherSession(catalog())
    pub.data_to_send()
    bogus = wire.RequestSucceeded(
        command=CC.NegotiateSession,
        data=wire.ProtocolVersions(versions=[wire.Version(3, 1)]).build(),
    )
    events = pub.receive_data(wire.build_frame(bogus), 0.0)
    assert pub.closed and any(isinstance(e, SessionClosed) for e in events)
    assert failed(pub.data_to_send()).terminate_connection


def test_publisher_rejects_modes_it_did_not_offer():
    pub = PublisherSession(catalog(), stateful=["NONE"])
    sub = SubscriberSession()
    pub.data_to_send()
    ok = wire.RequestSucceeded(
        command=CC.NegotiateSession,
        data=wire.ProtocolVersions(versions=[wire.Version(1, 0)]).build(),
    )
    pub.receive_data(wire.build_frame(ok), 0.0)
    pub.data_to_send()
    from gridbind.sttp.draft.session import _modes

    choice = wire.RequestSucceeded(
        command=CC.NegotiateSession, data=_modes(0, ["TSSC"], ["NONE"]).build()
    )
    pub.receive_data(wire.build_frame(choice), 0.0)
    assert pub.closed and "stateful" in pub.close_reason
    assert sub.negotiated is None


@pytest.mark.parametrize(
    "message",
    [
        wire.Subscribe(items=[]),
        wire.GetMetadataSchema(include_schema=True),
        wire.NoOp(),
    ],
)
def test_nothing_else_is_accepted_before_negotiation(message):
    pub = PublisherSession(catalog())
    pub.data_to_send()
    pub.receive_data(wire.build_frame(message), 0.0)
    assert pub.closed
    refusal = failed(pub.data_to_send())
    assert refusal.command == type(message).CODE and refusal.terminate_connection
    assert "negotiation" in refusal.reason


def test_subscriber_refuses_data_before_negotiation():
    sub = SubscriberSession()
    sub.receive_data(wire.build_frame(wire.SendDataPoints(points=[])), 0.0)
    assert sub.closed and failed(sub.data_to_send()).command == CC.SendDataPoints


def test_negotiation_timeouts_disconnect_both_roles():
    pub = PublisherSession(catalog(), now=10.0, negotiation_timeout=2.0)
    sub = SubscriberSession(now=10.0, negotiation_timeout=2.0)
    assert pub.next_deadline() == 12.0 and sub.next_deadline() == 12.0
    assert pub.tick(11.9) == [] and not pub.closed
    events = pub.tick(12.0)
    assert pub.closed and isinstance(events[-1], SessionClosed)
    assert "timed out" in failed(pub.data_to_send()).reason
    sub.tick(12.5)
    assert sub.closed


def test_negotiation_timeout_after_first_step():
    pub = PublisherSession(catalog(), negotiation_timeout=1.0)
    sub = SubscriberSession(negotiation_timeout=1.0)
    sub.receive_data(pub.data_to_send(), 0.1)  # subscriber answers versions, publisher hangs
    assert sub.tick(1.0) and sub.closed


def negotiated(points=None, **pub_options):
    pub = PublisherSession(catalog(points), **pub_options)
    sub = SubscriberSession()
    pump(pub, sub)
    assert pub.negotiated and sub.negotiated
    return pub, sub


def test_noop_keepalive_answered_and_timeout_disconnects():
    pub = PublisherSession(catalog(), keepalive_interval=1.0, noop_timeout=0.5)
    sub = SubscriberSession()
    pump(pub, sub)
    assert pub.next_deadline() == 1.0
    pub.tick(1.0)
    assert frames(pub.data_to_send()) == [(CC.NoOp, b"")]
    sub.receive_data(encode(CC.NoOp, b""), 1.0)
    pub.receive_data(sub.data_to_send(), 1.1)  # RequestSucceeded(NoOp) resets the timer
    assert pub.next_deadline() == pytest.approx(2.1)
    pub.tick(2.1)
    assert frames(pub.data_to_send()) == [(CC.NoOp, b"")]
    assert pub.tick(2.5) == [] and not pub.closed  # deadline 2.6
    events = pub.tick(2.7)
    assert pub.closed and "NoOp" in events[0].reason


@pytest.mark.parametrize(
    "data, why",
    [
        (b"\x05\x00\x01", "length"),  # frame length below the header
        (encode(0x42, b""), "unknown"),  # unknown code
        (encode(CC.Subscribe, b"\x07\x00"), "malformed"),  # bad sub-command
        (encode(CC.NoOp, b"x"), "payload"),
        (wire.build_frame(wire.SendDataPoints(points=[])), "not sent to a publisher"),
        # a subscriber's fragments are reassembled now; a 0-byte one with 2 bytes is overlong
        (encode(CC.BeginFragment, b"\x00" * 12), "overlong"),
    ],
)
def test_malformed_or_misdirected_frames_get_request_failed_and_close(data, why):
    pub, sub = negotiated()
    events = pub.receive_data(data, 0.0)
    assert pub.closed and isinstance(events[-1], SessionClosed)
    refusal = failed(pub.data_to_send())
    assert refusal.terminate_connection and why in refusal.reason


def test_request_failed_with_terminate_is_honoured():
    pub, sub = negotiated()
    bye = wire.RequestFailed(command=CC.Subscribe, terminate_connection=True, reason="bye")
    events = sub.receive_data(wire.build_frame(bye), 0.0)
    assert sub.closed and events[0].terminate and events[-1].by_peer
    assert sub.data_to_send() == b""  # a failure is never answered


def test_request_failed_without_terminate_keeps_the_session():
    pub, sub = negotiated()
    note = wire.RequestFailed(command=CC.Subscribe, terminate_connection=False, reason="meh")
    events = sub.receive_data(wire.build_frame(note), 0.0)
    assert not sub.closed and isinstance(events[0], CommandFailed)


def subscribe_all(pub, sub, **kwargs):
    sub.subscribe(
        [wire.SubscribeItem(sub_command=wire.SubscribeSubCommand.AllDataPoints, body=None)], 0.0
    )
    return pump(pub, sub)


def test_subscription_replace_remove_append_and_runtime_id_mapping():
    ids = [uuid.uuid4() for _ in range(5)]
    pub, sub = negotiated({i: ValueType.SINGLE for i in ids})
    SSC, SM = wire.SubscribeSubCommand, wire.SubscriptionMode
    pub_events, sub_events = subscribe_all(pub, sub)
    assert set(pub.subscribed_points) == set(ids)
    mapping = next(e for e in sub_events if isinstance(e, MappingChanged))
    assert {k.point_id for k in mapping.added} == set(ids)
    assert all(k.flags & wire.StateFlags.KeyAction for k in mapping.added)
    assert any(isinstance(e, CommandSucceeded) and e.command == CC.Subscribe for e in sub_events)

    gone = sorted(pub.runtime_id(i) for i in ids[:2])
    sub.subscribe(
        [wire.SubscribeItem(sub_command=SSC.DataPointByID, mode=SM.Remove, body=ids[:2])], 0
    )
    _, sub_events = pump(pub, sub)
    assert set(pub.subscribed_points) == set(ids[2:])
    removed = next(e for e in sub_events if isinstance(e, MappingChanged)).removed
    assert sorted(removed) == gone
    assert len(sub.mapping) == 3

    sub.subscribe(
        [wire.SubscribeItem(sub_command=SSC.DataPointByID, mode=SM.Append, body=ids[:1])], 0
    )
    pump(pub, sub)
    assert set(pub.subscribed_points) == set(ids[2:]) | {ids[0]}

    sub.subscribe(
        [wire.SubscribeItem(sub_command=SSC.DataPointByID, mode=SM.Replace, body=ids[4:])], 0
    )
    pump(pub, sub)
    assert pub.subscribed_points == [ids[4]] and list(sub.mapping.values())[0][0] == ids[4]


@pytest.mark.parametrize("algorithm", ["NONE", "DEFLATE", "TSSC"])
def test_data_points_round_trip_exactly(algorithm):
    ids = [uuid.uuid4() for _ in range(400)]
    types = {i: ValueType.SINGLE for i in ids}
    extra = {
        uuid.uuid4(): ValueType.DOUBLE,
        uuid.uuid4(): ValueType.BOOL,
        uuid.uuid4(): ValueType.INT64,
        uuid.uuid4(): ValueType.STRING,
        uuid.uuid4(): ValueType.GUID,
    }
    types.update(extra)
    pub = PublisherSession(catalog(types), stateful=[algorithm])
    sub = SubscriberSession(stateful=[algorithm])
    pump(pub, sub)
    subscribe_all(pub, sub)
    import struct as st

    sent = [
        Measurement(i, st.unpack("f", st.pack("f", k * 1.37 - 200))[0], T0 + k, k % 3)
        for k, i in enumerate(ids)
    ]
    x = list(extra)
    sent += [
        Measurement(x[0], 1 / 3, T0, 0),
        Measurement(x[1], True, T0, 1),
        Measurement(x[2], -(2**62), T0, 2),
        Measurement(x[3], "ü" * 40_000, T0, 3),  # bigger than a packet: fragments
        Measurement(x[4], uuid.uuid4(), T0, 2**40),
    ]
    pub.publish(sent)
    _, events = pump(pub, sub)
    got = [m for e in events if isinstance(e, DataPointsReceived) for m in e.measurements]
    assert sorted(got, key=lambda m: str(m.signal_id)) == sorted(
        sent, key=lambda m: str(m.signal_id)
    )
    wire_bytes = pub.stats["bytes_out"]
    assert wire_bytes > 0


def test_next_fragment_out_of_order_and_interleaving_are_refused():
    pub, sub = negotiated()
    sub.receive_data(encode(CC.NextFragment, b"abc"), 0.0)
    assert sub.closed and "NextFragment" in failed(sub.data_to_send()).reason

    pub, sub = negotiated()
    begin = struct.pack(">iiBB", 100, 100, CC.SendDataPoints, 0) + b"x" * 10
    sub.receive_data(encode(CC.BeginFragment, begin), 0.0)
    assert not sub.closed
    sub.receive_data(wire.build_frame(wire.NoOp()), 0.0)
    assert sub.closed and "interleaved" in failed(sub.data_to_send()).reason


def test_overlong_fragments_and_deflate_bomb_are_refused():
    pub, sub = negotiated()
    begin = struct.pack(">iiBB", 12, 12, CC.SendDataPoints, 0) + b"x" * 10
    sub.receive_data(encode(CC.BeginFragment, begin) + encode(CC.NextFragment, b"y" * 5), 0.0)
    assert sub.closed and "overlong" in failed(sub.data_to_send()).reason

    pub, sub = negotiated()
    bomb = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = bomb.compress(b"\0" * 10_000_000) + bomb.flush()
    begin = struct.pack(">iiBB", len(data), 16384, CC.SendDataPoints, 1) + data
    sub.receive_data(encode(CC.BeginFragment, begin), 0.0)
    assert sub.closed and "inflate" in failed(sub.data_to_send()).reason


def test_tssc_block_out_of_sequence_is_refused():
    ids = [uuid.uuid4() for _ in range(3)]
    pub, sub = negotiated({i: ValueType.SINGLE for i in ids}, stateful=["TSSC"])
    subscribe_all(pub, sub)
    pub.publish([Measurement(i, 1.0, T0, 0) for i in ids])
    first = pub.data_to_send()
    pub.publish([Measurement(i, 2.0, T0 + 1, 0) for i in ids])
    second = pub.data_to_send()
    sub.receive_data(second, 0.0)  # block 1 before block 0
    assert sub.closed and "TSSC" in failed(sub.data_to_send()).reason
    assert first


def test_bulk_transport_reassembles_large_buffers():
    pub, sub = negotiated()
    blob = bytes(range(256)) * 1000
    transfer = pub.send_bulk(blob)
    _, events = pump(pub, sub)
    [done] = [e for e in events if type(e).__name__ == "BulkReceived"]
    assert done.transfer_id == transfer and done.data == blob


def test_unanswered_command_times_out():
    pub = PublisherSession(catalog())
    sub = SubscriberSession(response_timeout=1.0)
    pump(pub, sub)
    sub.get_metadata_schema(True, now=5.0)
    sub.data_to_send()  # lost on the way: no answer will come
    assert sub.next_deadline() == 6.0
    assert sub.tick(5.9) == [] and not sub.closed
    events = sub.tick(6.0)
    assert sub.closed and "no response" in events[0].reason


def test_remove_all_is_the_unsubscribe():
    ids = [uuid.uuid4() for _ in range(3)]
    pub, sub = negotiated({i: ValueType.SINGLE for i in ids})
    subscribe_all(pub, sub)
    sub.subscribe(
        [
            wire.SubscribeItem(
                sub_command=wire.SubscribeSubCommand.AllDataPoints,
                mode=wire.SubscriptionMode.Remove,
                body=None,
            )
        ],
        0.0,
    )
    _, events = pump(pub, sub)
    assert pub.subscribed_points == [] and sub.mapping == {}
    pub.publish([Measurement(i, 1.0, T0) for i in ids])
    assert pub.data_to_send() == b""
