"""The runtime's hand-written fast paths agree with the structures generated from the spec."""

from __future__ import annotations

import uuid

import pytest

from gridbind.generated.sttp import ieee2664 as spec
from gridbind.sttp.ieee2664.compact import CompactCodec, SignalIndexCache
from gridbind.sttp.ieee2664.subscriber_session import SubscriberSession
from gridbind.sttp.ieee2664.wire import command_packet, response_body, response_packet
from gridbind.sttp.measurement import Measurement


def test_the_runtime_uses_the_generated_codes():
    """No hand copy of the generated enums: the session and wire modules use spec's."""
    from gridbind.sttp.ieee2664 import compact, publisher_session, subscriber_session, wire

    for session in (publisher_session, subscriber_session):
        assert session.ServerCommand is spec.ServerCommand
        assert session.ServerResponse is spec.ServerResponse
        assert session.OperationalModes is spec.OperationalModes
    assert compact.CompactStateFlags is spec.CompactStateFlags
    assert wire.KNOWN_COMMANDS == {int(c) for c in spec.ServerCommand}
    assert len(spec.ServerCommand) == 14 + 16 and len(spec.ServerResponse) == 11 + 16 + 1
    assert {c for c in range(256) if wire.is_user_command(c)} == set(range(0xD0, 0xE0))
    assert {c for c in range(256) if wire.is_user_response(c)} == set(range(0xE0, 0xF0))
    for code, info in spec.MESSAGES.items():
        assert (info.kind == "command") == (code < 0x80 or 0xD0 <= code <= 0xDF)


@pytest.mark.parametrize(
    "message",
    [
        spec.Unsubscribe(),
        spec.UpdateProcessingInterval(interval=-1),
        spec.Subscribe(flags=spec.DataPacketFlags.Compact, connection_string="includeTime=True"),
        spec.MetadataRefresh(filters=[spec.MetadataFilter("FILTER MeasurementDetail WHERE 1=1")]),
        spec.UserCommand05(payload=b"xyz"),
    ],
)
def test_command_framing_matches_generated_frame(message):
    assert command_packet(type(message).CODE, message.build()) == spec.build_frame(message)
    assert spec.parse_frame(spec.build_frame(message)) == message


def test_response_framing_matches_generated_struct():
    payload = spec.UpdateBaseTimes(time_index=1, base_time0=10, base_time1=20).build()
    frame = spec.ResponseFrame(spec.ServerResponse.UpdateBaseTimes, 0x02, payload)
    assert response_body(0x84, 0x02, payload) == frame.build()
    assert response_packet(0x84, 0x02, payload)[4:] == frame.build()


def test_compact_encoder_output_parses_with_generated_struct():
    codec = CompactCodec(base_times=(1_000_000_000, 0))
    signal = uuid.uuid4()
    near = codec.encode(7, Measurement(signal, 1.5, 1_000_000_123, 0x100))
    far = codec.encode(8, Measurement(signal, -2.25, 9_000_000_000_000, 0))
    assert spec.CompactMeasurement.parse(near) == spec.CompactMeasurement(
        spec.CompactStateFlags.BaseTimeOffset | spec.CompactStateFlags.DataQuality,
        7,
        1.5,
        123,
        None,
    )
    parsed = spec.CompactMeasurement.parse(far)
    assert (parsed.offset, parsed.ticks) == (None, 9_000_000_000_000)


def test_signal_index_cache_uses_generated_layout():
    cache = SignalIndexCache.from_signals(uuid.uuid4(), [(uuid.uuid4(), "PPA", 3)])
    parsed = spec.SignalIndexCache.parse(cache.build())
    assert parsed.entries[0].source == "PPA" and parsed.binary_length == len(cache.build())


def test_operational_modes_word():
    modes = spec.OperationalModes(SubscriberSession().operational_modes())
    assert modes.version == 2 and modes.encoding == 2  # UTF-8
    assert modes & spec.OperationalModes.CompressMetadata
