"""The IEEE 2664 publisher session keeps its own time: deadlines out, ``tick(now)`` in (no
asyncio), as the draft-0.8 core does."""

from __future__ import annotations

from gridbind.generated.sttp.ieee2664 import ServerResponse
from gridbind.sttp.ieee2664 import PmuSource, SubscriptionSettings, synthetic_pmu_metadata
from gridbind.sttp.ieee2664.events import CipherKeysActivated, SessionExpired
from gridbind.sttp.ieee2664.publisher_session import PublisherSession, SessionTiming
from gridbind.sttp.ieee2664.publisher_state import PublisherConfig, PublisherState
from gridbind.sttp.ieee2664.subscriber_session import SubscriberConfig, SubscriberSession
from gridbind.sttp.ieee2664.wire import PacketReader, split_response

METADATA, SIGNALS = synthetic_pmu_metadata(20)


def _codes(data: bytes) -> list[int]:
    return [split_response(packet)[0] for packet in PacketReader().feed(data)]


def _pair(now: float, timing: SessionTiming, config: PublisherConfig | None = None):
    publisher = PublisherSession(PublisherState(METADATA, config), now=now, timing=timing)
    subscriber = SubscriberSession(SubscriberConfig(compress_payload=False))
    return publisher, subscriber


def test_negotiation_timeout_is_a_deadline():
    publisher, subscriber = _pair(100.0, SessionTiming(negotiation_timeout=5))
    assert publisher.next_deadline() == 105.0
    assert publisher.tick(104.9) == []
    assert [type(e) for e in publisher.tick(105.0)] == [SessionExpired]
    negotiated, subscriber = _pair(100.0, SessionTiming(negotiation_timeout=5))
    subscriber.start()
    negotiated.receive(subscriber.data_to_send(), now=101.0)
    assert negotiated.next_deadline() is None and negotiated.tick(200.0) == []


def test_keep_alive_is_a_deadline():
    publisher, subscriber = _pair(0.0, SessionTiming(noop_interval=2))
    subscriber.start()
    publisher.receive(subscriber.data_to_send(), now=0.5)
    publisher.data_to_send()
    assert publisher.tick(1.9) == [] and publisher.data_to_send() == b""
    publisher.tick(2.0)
    assert _codes(publisher.data_to_send()) == [ServerResponse.NoOp]
    assert publisher.next_deadline() == 4.0


def test_throttled_subscription_publishes_the_latest_values_at_its_interval():
    publisher, subscriber = _pair(10.0, SessionTiming())
    settings = SubscriptionSettings(throttled=True, publish_interval=0.5)
    subscriber.start()
    subscriber.subscribe(settings)
    publisher.receive(subscriber.data_to_send(), now=10.0)
    subscriber.receive(publisher.data_to_send())  # modes accepted, signal index cache
    frames = list(PmuSource(SIGNALS, start_ticks=0).frames(3))
    for frame in frames:
        assert publisher.offer(frame) == 0  # kept, not sent
    assert publisher.data_to_send() == b""
    assert publisher.next_deadline() == 10.5
    publisher.tick(10.5)
    events = subscriber.receive(publisher.data_to_send())
    sent = [m for e in events if hasattr(e, "measurements") for m in e.measurements]
    assert sorted(m.timestamp for m in sent) == [frames[-1][0].timestamp] * len(SIGNALS)
    assert publisher.next_deadline() == 11.0
    publisher.hold_data = True  # the subscriber lags: the next interval's values are dropped
    publisher.offer(frames[0])
    publisher.tick(11.0)
    assert publisher.dropped_measurements == len(SIGNALS)


def test_cipher_key_rotation_and_the_unconfirmed_switch_are_deadlines():
    config = PublisherConfig(encrypt_udp=True, cipher_confirm_timeout=2.0)
    publisher, subscriber = _pair(0.0, SessionTiming(cipher_rotation_interval=30), config)
    settings = SubscriptionSettings(udp_port=9)
    subscriber.start(udp=True)
    subscriber.subscribe(settings)
    publisher.receive(subscriber.data_to_send(), now=1.0)
    publisher.data_to_send()
    first = publisher.keys
    assert publisher.next_deadline() == 31.0
    assert publisher.tick(31.0) == []
    assert ServerResponse.UpdateCipherKeys in _codes(publisher.data_to_send())
    assert publisher.pending_keys is not None and publisher.keys is first
    assert publisher.next_deadline() == 33.0
    assert [type(e) for e in publisher.tick(33.0)] == [CipherKeysActivated]
    assert publisher.keys is not first and publisher.pending_keys is None
    assert publisher.next_deadline() == 61.0


def test_subscriber_idle_timeout_is_a_deadline_moved_by_what_arrives():
    publisher, _ = _pair(0.0, SessionTiming(noop_interval=1))
    subscriber = SubscriberSession(now=0.0, idle_timeout=3)
    assert subscriber.next_deadline() == 3.0
    publisher.tick(1.0)
    subscriber.receive(publisher.data_to_send(), now=1.0)  # a NO_OP keep-alive
    assert subscriber.next_deadline() == 4.0 and subscriber.tick(3.5) == []
    assert [type(e) for e in subscriber.tick(4.0)] == [SessionExpired]
    assert subscriber.next_deadline() is None and subscriber.tick(9.0) == []
    assert SubscriberSession().next_deadline() is None


def test_historical_replay_pace_is_a_deadline_the_subscriber_can_change():
    from gridbind.sttp.ieee2664.events import ReplayDue

    config = PublisherConfig(supports_temporal=True)
    publisher, subscriber = _pair(0.0, SessionTiming(), config)
    settings = SubscriptionSettings(start_time="*-10s", processing_interval=100)
    subscriber.start()
    subscriber.subscribe(settings)
    publisher.receive(subscriber.data_to_send(), now=0.0)
    assert publisher.replay_sent(1.0) is False  # 100 ms per batch
    assert publisher.next_deadline() == 1.1
    assert publisher.tick(1.05) == []
    assert [type(e) for e in publisher.tick(1.1)] == [ReplayDue]
    assert publisher.replay_sent(2.0) is False
    subscriber.update_processing_interval(500)
    publisher.receive(subscriber.data_to_send(), now=2.01)
    assert publisher.next_deadline() == 2.5  # the waiting batch goes at the new pace
    subscriber.update_processing_interval(-1)
    publisher.receive(subscriber.data_to_send(), now=2.02)
    assert publisher.next_deadline() == 2.0  # due at once
    assert [type(e) for e in publisher.tick(2.02)] == [ReplayDue]
    assert publisher.replay_sent(3.0) is True and publisher.next_deadline() is None


def test_confirmations_are_not_held_behind_a_filter_evaluation():
    """CONFIRM_* answer what the publisher sent: handled at once while a subscription's filter
    is evaluated, and never counted in the 64-command backlog behind it."""
    from gridbind.generated.sttp.ieee2664 import ServerCommand
    from gridbind.sttp.ieee2664.events import Confirmed, FilterRequested
    from gridbind.sttp.ieee2664.wire import command_packet

    publisher, subscriber = _pair(0.0, SessionTiming())
    publisher.defer_filters = True
    subscriber.start()
    subscriber.subscribe(
        SubscriptionSettings(filter_expression="FILTER ActiveMeasurements WHERE 1=1")
    )
    events = publisher.receive(subscriber.data_to_send(), now=0.1)
    [request] = [e for e in events if isinstance(e, FilterRequested)]
    confirmations = command_packet(ServerCommand.ConfirmNotification, b"\0\0\0\1") * 100
    queued = command_packet(ServerCommand.Unsubscribe)
    events = publisher.receive(confirmations + queued, now=0.2)
    assert sum(isinstance(e, Confirmed) for e in events) == 100
    assert publisher.held_commands == 1  # the UNSUBSCRIBE waits for the filter
    publisher.filter_done(request.run())
    assert publisher.held_commands == 0 and not publisher.subscribed
