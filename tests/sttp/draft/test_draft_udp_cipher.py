"""The draft profile's UDP encryption lives in its sans-IO sessions: once SecureDataChannel agreed
keys, the publisher session's datagrams are AES ciphertext and the subscriber session decrypts
them; a datagram that does not decrypt is dropped and counted, never raised."""

from __future__ import annotations

import uuid

import pytest

from gridbind.generated.sttp import draft_0_8 as wire
from gridbind.sttp import Measurement
from gridbind.sttp.draft.framing import FrameReader
from gridbind.sttp.draft.metadata import MetadataDatabase
from gridbind.sttp.draft.security import DatagramCipher
from gridbind.sttp.draft.session import (
    Catalog,
    DataChannelSecured,
    DataPointsReceived,
    PublisherSession,
    SubscriberSession,
)
from gridbind.sttp.encoding import ValueType

from draft_sansio import pump

CC = wire.CommandCode
T0 = 638_000_000_000_000_000
POINTS = [uuid.uuid4() for _ in range(20)]


def lossy_pair(secure: bool) -> tuple[PublisherSession, SubscriberSession, list]:
    catalog = Catalog(MetadataDatabase(), value_types={p: ValueType.DOUBLE for p in POINTS})
    pub = PublisherSession(catalog, tls=True, stateless=["NONE"])
    sub = SubscriberSession(udp_port=40000, stateless=["NONE"])
    pump(pub, sub)
    assert pub.negotiated and sub.negotiated and sub.negotiated.udp_port == 40000
    secured: list = []
    if secure:
        sub.secure_data_channel(0.0)
        pub_events, sub_events = pump(pub, sub)
        secured = [e for e in pub_events + sub_events if isinstance(e, DataChannelSecured)]
    options = wire.SttpNamedSet(items=[wire.NamedValue(name="reliability", value="lossy")])
    sub.subscribe(
        [
            wire.SubscribeItem(
                sub_command=wire.SubscribeSubCommand.ConfigureOptions,
                mode=wire.SubscriptionMode.Replace,
                body=options,
            ),
            wire.SubscribeItem(sub_command=wire.SubscribeSubCommand.AllDataPoints, body=None),
        ],
        0.0,
    )
    pump(pub, sub)
    assert set(pub.subscribed_points) == set(POINTS)
    return pub, sub, secured


def publish(pub: PublisherSession) -> tuple[list[Measurement], list[bytes]]:
    sent = [Measurement(p, float(i), T0 + i) for i, p in enumerate(POINTS)]
    pub.publish(sent, 0.0)
    datagrams = pub.datagrams_to_send()
    assert datagrams and pub.data_to_send() == b""  # lossy: nothing on the stream
    return sent, datagrams


def values(events: list) -> list[tuple[uuid.UUID, float, int]]:
    return [
        (m.signal_id, m.value, m.timestamp)
        for e in events
        if isinstance(e, DataPointsReceived)
        for m in e.measurements
    ]


def test_without_keys_datagrams_are_plain_frames():
    pub, sub, _ = lossy_pair(secure=False)
    assert pub.cipher is None and sub.cipher is None
    sent, datagrams = publish(pub)
    assert all(len(FrameReader().feed(d)) == 1 for d in datagrams)
    events = [e for d in datagrams for e in sub.receive_datagram(d)]
    assert values(events) == [(m.signal_id, m.value, m.timestamp) for m in sent]


def test_secured_datagrams_are_ciphertext_the_subscriber_decrypts():
    pub, sub, secured = lossy_pair(secure=True)
    # both sides report the same keys, and each session holds the cipher itself
    assert len(secured) == 2 and secured[0] == secured[1]
    assert pub.cipher is not None and sub.cipher is not None
    sent, datagrams = publish(pub)
    plain = [DatagramCipher(secured[0].key, secured[0].iv).decrypt(d) for d in datagrams]
    for datagram, frame in zip(datagrams, plain, strict=True):
        # counter, nonce, ciphertext (as long as the frame), tag
        assert len(datagram) == 8 + 12 + len(frame) + 16 and frame not in datagram
        [(code, _)] = FrameReader().feed(frame)
        assert code in (CC.SendDataPoints, CC.BeginFragment)
    events = [e for d in datagrams for e in sub.receive_datagram(d)]
    assert values(events) == [(m.signal_id, m.value, m.timestamp) for m in sent]
    assert sub.stats.get("bad_datagrams", 0) == 0


def test_tampered_foreign_and_plain_datagrams_are_dropped_and_counted():
    pub, sub, secured = lossy_pair(secure=True)
    _, datagrams = publish(pub)
    good = datagrams[0]
    tampered = bytearray(good)
    tampered[-17] ^= 1  # a ciphertext bit
    plain = DatagramCipher(secured[0].key, secured[0].iv).decrypt(good)
    foreign = DatagramCipher(b"k" * 32, b"i" * 16).encrypt(plain)  # another key
    bad = [bytes(tampered), good[:-5], foreign, plain, b""]
    for datagram in bad:
        assert sub.receive_datagram(datagram) == []
    assert sub.stats["bad_datagrams"] == len(bad)
    assert sub.last_datagram_error
    # the session goes on: the untouched datagram still decodes
    assert values(sub.receive_datagram(good))
    assert not sub.closed


def test_bit_flips_anywhere_and_replays_are_dropped_and_counted():
    """AES-GCM: a flipped bit in the counter, the nonce, the first ciphertext block (CBC let it
    flip the frame's first bytes undetected) or the tag fails; a replayed datagram, or one
    older than the replay window, is dropped; reordering within the window is accepted."""
    from gridbind.sttp.draft.security import REPLAY_WINDOW

    pub, sub, _ = lossy_pair(secure=True)
    _, first = publish(pub)
    _, second = publish(pub)
    good = first[0]
    for index in (0, 7, 8, 19, 20, 21, 35, len(good) - 1):
        tampered = bytearray(good)
        tampered[index] ^= 0x01
        assert sub.receive_datagram(bytes(tampered)) == []
    assert sub.stats["bad_datagrams"] == 8 and "authenticate" in sub.last_datagram_error
    # newest first, then an older one (UDP reorders): both accepted
    assert values(sub.receive_datagram(second[0])) and values(sub.receive_datagram(good))
    for replay in (good, second[0]):
        assert sub.receive_datagram(replay) == []
    assert sub.stats["bad_datagrams"] == 10 and "replayed" in sub.last_datagram_error
    assert sub.cipher is not None and sub.cipher.replayed == 2
    # a datagram that fell out of the window is refused even if never received
    sender, receiver = DatagramCipher(b"k" * 32, b"i" * 16), DatagramCipher(b"k" * 32, b"i" * 16)
    old = sender.encrypt(b"frame 1")
    for n in range(REPLAY_WINDOW + 1):
        receiver.decrypt(sender.encrypt(b"frame %d" % (n + 2)))
    with pytest.raises(ValueError, match="replay"):
        receiver.decrypt(old)
    assert not sub.closed
