"""The generated draft-0.8 module: every struct and message round-trips, hand-worked byte vectors."""

from __future__ import annotations

import random
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridbind.codegen.spec import load_spec
from gridbind.generated.sttp import draft_0_8 as d
from gridbind.sttp.encoding import SttpValue, ValueType

from sttp_strategies import Strategies

pytestmark = pytest.mark.timeout(120)
ROOT = Path(__file__).resolve().parents[2]
SPEC = load_spec(ROOT / "specs/sttp/draft-0.8.yaml", "specs/sttp/draft-0.8.yaml")
STRATEGIES = Strategies(SPEC, d)
NAMES = list(SPEC.structs)


def test_every_seed_structure_is_generated() -> None:
    wanted = {
        "Version", "NamedVersion", "NamedVersions", "Command", "Response", "ProtocolVersions",
        "OperationalModes", "BeginFragment", "NextFragment", "GetMetadataSchema", "GetMetadata",
        "Subscribe", "SubscribeItem", "RuntimeIDMapping", "SendDataPoints", "SendDataPointsCustom",
        "RequestSucceeded", "RequestFailed", "DataPoint", "FixedSizeDataPoint", "NegotiateSession",
        "BulkTransport", "SecureDataChannel", "NoOp", "GetMetadataSchemaResponse",
        "GetMetadataResponse", "NegotiateSessionResponse", "StateFlags", "Priority",
        "ResolutionType", "TimeQuality", "TimeQualityFlags", "DataQualityFlags",
        "AttributeValueType", "ValueTypeCode", "SubscriptionMode",
    }  # fmt: skip
    assert wanted <= set(d.__all__)
    codes = {info.code for info in d.MESSAGES.values()}
    assert codes == set(range(0x01, 0x0C)) | {0xFF} | set(range(0x80, 0x85))
    assert d.DECISIONS, "open points of the draft must be recorded as decisions"
    assert all(reason for reason in d.DECISIONS.values())


def test_message_metadata_table() -> None:
    info = d.message_info(0x05)
    assert (info.name, info.kind, info.direction, info.response_expected, info.channel) == (
        "Subscribe",
        "command",
        "subscriber",
        True,
        "command",
    )
    assert info.type is d.Subscribe and d.Subscribe.INFO is info and d.Subscribe.CODE == 5
    assert d.message_info(0x06).channel == "data" and not d.message_info(0x06).response_expected
    assert d.message_info(0x84).kind == "response"
    for info in d.MESSAGES.values():
        # the draft's rule: commands expecting a response are command-channel functions
        if info.kind == "command":
            assert (info.channel == "command") == info.response_expected, info.name
        assert d.CommandCode(info.code).name == info.name
    with pytest.raises(d.WireError, match="unknown message code 0x42"):
        d.message_info(0x42)


@pytest.mark.parametrize("name", NAMES)
def test_round_trip_every_struct_and_message(name: str) -> None:
    cls = getattr(d, name)

    @given(STRATEGIES.for_struct(name))
    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    def round_trip(obj: object) -> None:
        data = obj.build()
        assert cls.parse(data) == obj
        if name in {m.name for m in SPEC.messages}:
            assert d.parse_frame(d.build_frame(obj)) == obj

    round_trip()


@pytest.mark.parametrize("name", NAMES)
def test_garbage_gives_wire_error_only(name: str) -> None:
    cls = getattr(d, name)

    @given(st.binary(max_size=64))
    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    def fuzz(data: bytes) -> None:
        try:
            obj = cls.parse(data)
        except d.WireError:
            return
        assert cls.parse(obj.build()) == obj

    fuzz()


@pytest.mark.parametrize("name", NAMES)
def test_mutated_messages_give_wire_error_only(name: str) -> None:
    cls = getattr(d, name)

    @given(STRATEGIES.for_struct(name), st.randoms(use_true_random=False))
    @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
    def mutate(obj: object, rnd: random.Random) -> None:
        data = bytearray(obj.build())
        for _ in range(rnd.randint(1, 3)):
            op = rnd.randint(0, 3)
            if op == 0 and data:
                data[rnd.randrange(len(data))] = rnd.randrange(256)
            elif op == 1 and data:
                del data[rnd.randrange(len(data)) :]
            elif op == 2:
                data += bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 5)))
            elif data:
                data.insert(rnd.randrange(len(data)), rnd.randrange(256))
        try:
            parsed = cls.parse(bytes(data))
        except d.WireError:
            return
        assert cls.parse(parsed.build()) == parsed

    mutate()


# --- hand-worked vectors ----------------------------------------------------------------------


def test_version_and_named_version_layout() -> None:
    assert d.Version(1, 0).build() == b"\x01\x00"
    # 20 ASCII bytes padded right with spaces, no terminator, then major and minor
    none = d.NamedVersion("NONE", d.Version(0, 0))
    assert none.build() == b"NONE" + b" " * 16 + b"\x00\x00"
    tssc = d.NamedVersion("TSSC", d.Version(1, 0))
    assert tssc.build().hex() == "54535343" + "20" * 16 + "0100"
    assert d.NamedVersion.parse(b"DEFLATE" + b" " * 13 + b"\x01\x00") == d.NamedVersion(
        "DEFLATE", d.Version(1, 0)
    )
    with pytest.raises(d.ConstraintError, match="longer than 20"):
        d.NamedVersion("X" * 21).build()
    with pytest.raises(d.ConstraintError, match="not ASCII"):
        d.NamedVersion("NÖNE").build()


def test_named_versions_count_is_computed() -> None:
    modes = d.NamedVersions([d.NamedVersion("NONE"), d.NamedVersion("TSSC", d.Version(1, 0))])
    data = modes.build()
    assert data[:2] == b"\x00\x02" and len(data) == 2 + 2 * 22


def test_protocol_versions_1_0() -> None:
    # uint8 count = 1, then Version 1.0
    assert d.ProtocolVersions([d.Version(1, 0)]).build() == b"\x01\x01\x00"


def test_operational_modes() -> None:
    modes = d.OperationalModes(
        udp_port=0x1234,
        stateful=d.NamedVersions([d.NamedVersion("TSSC", d.Version(1, 0))]),
        stateless=d.NamedVersions([d.NamedVersion("NONE")]),
    )
    data = modes.build()
    assert data == (
        b"\x12\x34" + b"\x00\x01" + b"TSSC" + b" " * 16 + b"\x01\x00"
        + b"\x00\x01" + b"NONE" + b" " * 16 + b"\x00\x00"
    )  # fmt: skip
    assert d.OperationalModes.parse(data) == modes


def test_command_frame_length_counts_the_header() -> None:
    # NoOp: code 0xFF, length 3 (the whole packet), empty payload
    assert d.build_frame(d.NoOp()) == b"\xff\x00\x03"
    frame = d.build_frame(d.GetMetadataSchema(include_schema=True))
    assert frame == b"\x03\x00\x04\x01"
    assert d.parse_frame(frame) == d.GetMetadataSchema(True)
    with pytest.raises(d.WireError):
        d.parse_frame(b"\x03\x00\x05\x01")  # length says one more byte than there is
    with pytest.raises(d.WireError, match="left over"):
        d.parse_frame(b"\x03\x00\x04\x01\x00")
    with pytest.raises(d.WireError, match="unknown message code 0x42"):
        d.parse_frame(b"\x42\x00\x03")
    with pytest.raises(d.ConstraintError, match="more than 65532"):
        d.Command(command_code=7, payload=bytes(65533)).build()
    succeeded = d.build_frame(d.RequestSucceeded(command=0xFF))
    assert d.Response.parse(succeeded) == d.Response(0x83, succeeded[3:])


def test_negotiate_session_protocol_versions() -> None:
    message = d.NegotiateSession(
        d.NegotiateSubCommand.ProtocolVersions, d.ProtocolVersions([d.Version(1, 0)])
    )
    assert d.build_frame(message) == b"\x09\x00\x07\x01\x01\x01\x00"
    with pytest.raises(d.ConstraintError, match="expected ProtocolVersions"):
        d.NegotiateSession(d.NegotiateSubCommand.ProtocolVersions, d.Version(1, 0)).build()


def test_request_failed_layout() -> None:
    failed = d.RequestFailed(
        command=d.CommandCode.SecureDataChannel,
        terminate_connection=True,
        reason="no TLS",
        details="",
    )
    assert failed.build() == b"\x0b\x01\x00\x06no TLS\x00\x00"
    assert d.RequestFailed.parse(failed.build()) == failed


def test_begin_fragment_layout() -> None:
    message = d.BeginFragment(
        total_fragment_size=1000,
        total_raw_size=4000,
        command_code=0x06,
        compression_mode=d.CompressionMode.Deflate,
        first_fragment=b"abc",
    )
    assert message.build() == bytes.fromhex("000003e8 00000fa0 06 01") + b"abc"
    with pytest.raises(d.ConstraintError, match="below the minimum 0"):
        d.BeginFragment(total_fragment_size=-1).build()
    with pytest.raises(d.ConstraintError, match="below the minimum 0"):
        d.BeginFragment.parse(bytes.fromhex("ffffffff 00000000 06 00"))
    with pytest.raises(d.ConstraintError, match="not a CompressionMode"):
        d.BeginFragment.parse(bytes.fromhex("00000000 00000000 06 09"))


def test_state_flags_bit_fields() -> None:
    flags = d.StateFlags.Timestamp | d.StateFlags.Reliability
    flags = flags.with_priority(d.Priority.Level6).with_resolution_type(d.ResolutionType.Filter)
    assert int(flags) == 0x0001 | 0x0100 | (6 << 5) | (3 << 12)
    assert flags.priority is d.Priority.Level6
    assert flags.resolution_type is d.ResolutionType.Filter
    assert d.StateFlags(0xE0).priority is d.Priority.Level7
    with pytest.raises(d.ConstraintError, match="does not fit"):
        flags.with_priority(8)
    quality = d.TimeQualityFlags.NoAccurateTimeSource | d.TimeQualityFlags(0x0A)
    assert quality.time_quality is d.TimeQuality.Unlocked1Second


def test_data_point_state_conditional_fields() -> None:
    flags = d.StateFlags.Timestamp | d.StateFlags.Sequence
    state = d.DataPointState(flags=flags, timestamp=0x0102030405060708, sequence=9)
    assert state.build().hex() == "0009" + "0102030405060708" + "00000009"
    assert d.DataPointState.parse(state.build()) == state
    assert d.DataPointState(flags=d.StateFlags(0)).build() == b"\x00\x00"
    with pytest.raises(d.ConstraintError, match="timestamp is required when flags has bits 0x1"):
        d.DataPointState(flags=d.StateFlags.Timestamp).build()
    with pytest.raises(d.ConstraintError, match="sequence must be None"):
        d.DataPointState(flags=d.StateFlags(0), sequence=1).build()


def test_subscribe_sub_commands() -> None:
    point = uuid.UUID("00112233-4455-6677-8899-aabbccddeeff")
    message = d.Subscribe(
        [
            d.SubscribeItem(d.SubscribeSubCommand.AllDataPoints, d.SubscriptionMode.Remove, None),
            d.SubscribeItem(
                d.SubscribeSubCommand.DataPointByID, d.SubscriptionMode.Append, [point]
            ),
            d.SubscribeItem(d.SubscribeSubCommand.ByQuery, d.SubscriptionMode.Replace, "x"),
        ]
    )
    assert message.build() == (
        b"\x02\x01" + b"\x03\x02\x00\x01" + point.bytes + b"\x04\x00\x00\x01x"
    )
    assert d.Subscribe.parse(message.build()) == message


def test_change_udp_cipher_nonce_constraint() -> None:
    ok = d.ChangeUdpCipher(nonce=bytes(range(16)))
    assert ok.build() == b"\x00\x10" + bytes(range(16))
    with pytest.raises(d.ConstraintError, match="fewer than 16"):
        d.ChangeUdpCipher(nonce=b"short").build()
    with pytest.raises(d.ConstraintError, match="fewer than 16"):
        d.ChangeUdpCipher.parse(b"\x00\x05short")


def test_send_data_points_in_one_bit_byte_block() -> None:
    by_runtime_id = d.DataPoint(
        runtime_id=7,
        timestamp=SttpValue(ValueType.STTP_TIME, 638_000_000_000_000_000),
        value=SttpValue(ValueType.SINGLE, 59.5),
        quality=0,
    )
    by_id = d.DataPoint(
        runtime_id=-1,
        id=SttpValue(ValueType.STRING, "BUS1:FREQ"),
        value=SttpValue(ValueType.BOOL, True),
    )
    message = d.SendDataPoints([by_runtime_id, by_id])
    assert d.SendDataPoints.parse(message.build()) == message
    assert d.SendDataPoints.parse(b"") == d.SendDataPoints([])
    with pytest.raises(d.ConstraintError, match="id is required"):
        d.DataPoint(runtime_id=-1).build()
    with pytest.raises(d.ConstraintError, match="id must be None"):
        d.DataPoint(runtime_id=1, id=SttpValue()).build()


def test_fixed_size_data_point_is_fixed() -> None:
    point = d.FixedSizeDataPoint(id=1, value=[1, 2, 3, 4, 5, 6, 7, 8], length=8)
    assert len(point.build()) == 4 + 64 + 8 + 8 + 1 + 1 + 4 + 4 + 1
    with pytest.raises(d.ConstraintError, match="above the maximum 64"):
        d.FixedSizeDataPoint(length=65).build()


def test_metadata_attribute_value_switch() -> None:
    assert d.AttributeValue(d.AttributeValueType.Int32, -2).build() == b"\x05\xff\xff\xff\xfe"
    assert d.AttributeValue(d.AttributeValueType.Null, None).build() == b"\x00"
    with pytest.raises(d.WireError):
        d.AttributeValue.parse(b"\x0b")  # 0x0B is no AttributeValueType
    row = d.GetMetadataResponse(
        [
            d.MetadataResponseItem(
                d.MetadataResponseSubCommand.DefineRow,
                d.MetadataRow([d.AttributeValue(d.AttributeValueType.String, "PMU1")]),
            ),
            d.MetadataResponseItem(d.MetadataResponseSubCommand.Finished, None),
        ]
    )
    assert d.GetMetadataResponse.parse(row.build()) == row


def test_value_type_codes_match_the_hand_written_codec() -> None:
    assert {m.name: int(m) for m in d.ValueTypeCode} == {
        "Null": ValueType.NULL,
        "Int64": ValueType.INT64,
        "Single": ValueType.SINGLE,
        "Double": ValueType.DOUBLE,
        "SttpTime": ValueType.STTP_TIME,
        "Bool": ValueType.BOOL,
        "Guid": ValueType.GUID,
        "String": ValueType.STRING,
        "SttpBuffer": ValueType.STTP_BUFFER,
        "SttpMarkup": ValueType.STTP_MARKUP,
        "SttpBulkTransport": ValueType.STTP_BULK_TRANSPORT,
    }
    assert [int(m) for m in d.AttributeValueType] == list(range(0x0B))
