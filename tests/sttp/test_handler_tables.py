"""Every command and response code of the generated specs has a defined outcome in each role of
each STTP profile: handled by an entry of the role's handler table, or refused in a documented
way. The checks iterate the generated enums, so a code added to a spec fails here until a role
handles or explicitly refuses it. The refusals themselves are checked on the sans-IO cores."""

from __future__ import annotations

import uuid

import pytest

from gridbind.generated.sttp import draft_0_8 as draft_wire
from gridbind.generated.sttp.ieee2664 import ServerCommand, ServerResponse
from gridbind.sttp.draft.core import _Session
from gridbind.sttp.draft.events import SessionClosed
from gridbind.sttp.draft.framing import FrameReader, encode_frame
from gridbind.sttp.draft.metadata import RESULT_ITEMS, MetadataDatabase
from gridbind.sttp.draft.publisher_session import Catalog
from gridbind.sttp.draft.publisher_session import PublisherSession as DraftPublisher
from gridbind.sttp.draft.subscriber_session import SubscriberSession as DraftSubscriber
from gridbind.sttp.ieee2664.events import (
    CommandFailed,
    Confirmed,
    NoOp,
    UserCommand,
    UserResponse,
)
from gridbind.sttp.ieee2664.metadata import synthetic_pmu_metadata
from gridbind.sttp.ieee2664.publisher_session import USER_COMMANDS, PublisherSession
from gridbind.sttp.ieee2664.publisher_state import PublisherState
from gridbind.sttp.ieee2664.subscriber_session import (
    DATAGRAM_RESPONSES,
    USER_RESPONSES,
    SubscriberSession,
)
from gridbind.sttp.ieee2664.wire import (
    PacketReader,
    ProtocolError,
    command_packet,
    response_body,
    response_packet,
    split_response,
)

CC = draft_wire.CommandCode
NS = draft_wire.NegotiateSubCommand
BTS = draft_wire.BulkTransportSubCommand


# ------------------------------------------------------------------------ ieee2664: coverage


def test_ieee2664_publisher_has_an_entry_for_every_server_command():
    table = PublisherSession.COMMANDS
    missing = [code.name for code in ServerCommand if code not in table]
    assert not missing, f"commands without a handler or a documented refusal: {missing}"
    assert set(table) == set(ServerCommand)  # no entry for a code the spec does not have
    assert set(USER_COMMANDS) == {c for c in ServerCommand if 0xD0 <= c <= 0xDF}


def test_ieee2664_subscriber_has_an_entry_for_every_server_response():
    table = SubscriberSession.RESPONSES
    missing = [code.name for code in ServerResponse if code not in table]
    assert not missing, f"responses without a handler: {missing}"
    assert set(table) == set(ServerResponse)
    assert set(SubscriberSession.SUCCEEDED) <= set(ServerCommand)
    assert DATAGRAM_RESPONSES <= set(ServerResponse)
    assert set(USER_RESPONSES) == {c for c in ServerResponse if 0xE0 <= c <= 0xEF}


# --------------------------------------------------------------------- ieee2664: refusals


def _responses(data: bytes) -> list[tuple[int, int, bytes]]:
    return [split_response(packet) for packet in PacketReader().feed(data)]


def _validated_publisher() -> PublisherSession:
    metadata, _signals = synthetic_pmu_metadata(2)
    publisher = PublisherSession(PublisherState(metadata))
    subscriber = SubscriberSession()
    subscriber.start()
    publisher.receive(subscriber.data_to_send())
    assert publisher.validated
    publisher.data_to_send()
    return publisher


def test_ieee2664_connect_is_refused_with_failed_and_the_session_goes_on():
    publisher = _validated_publisher()
    events = publisher.receive(command_packet(ServerCommand.Connect))
    assert events == []
    [(code, command, payload)] = _responses(publisher.data_to_send())
    assert (code, command) == (ServerResponse.Failed, ServerCommand.Connect)
    assert b"not supported by this publisher" in payload
    events = publisher.receive(command_packet(ServerCommand.ConfirmNotification))
    assert events == [Confirmed(ServerCommand.ConfirmNotification, b"")]


@pytest.mark.parametrize("code", [0x0E, 0x42, 0x80, 0xCF, 0xE0, 0xFF])
def test_ieee2664_unknown_command_codes_close_the_session(code):
    publisher = _validated_publisher()
    with pytest.raises(ProtocolError, match="unknown server command"):
        publisher.receive(command_packet(code))


def test_ieee2664_commands_before_the_operational_modes_close_the_session():
    metadata, _signals = synthetic_pmu_metadata(2)
    publisher = PublisherSession(PublisherState(metadata))
    with pytest.raises(ProtocolError, match="before DEFINE_OPERATIONAL_MODES"):
        publisher.receive(command_packet(ServerCommand.MetadataRefresh))


@pytest.mark.parametrize("code", USER_COMMANDS)
def test_ieee2664_user_commands_reach_the_application(code):
    publisher = _validated_publisher()
    assert publisher.receive(command_packet(code, b"abc")) == [UserCommand(code, b"abc")]
    assert publisher.data_to_send() == b""


def test_ieee2664_a_command_missing_from_the_table_is_answered_failed(monkeypatch):
    monkeypatch.delitem(PublisherSession.COMMANDS, ServerCommand.Unsubscribe)
    publisher = _validated_publisher()
    assert publisher.receive(command_packet(ServerCommand.Unsubscribe)) == []
    [(code, command, payload)] = _responses(publisher.data_to_send())
    assert (code, command) == (ServerResponse.Failed, ServerCommand.Unsubscribe)
    assert b"0x03 is not supported" in payload


@pytest.mark.parametrize("code", [0x7F, 0x8B, 0xC0, 0xDF, 0xF0, 0xFE])
def test_ieee2664_unknown_response_codes_close_the_subscriber_session(code):
    with pytest.raises(ProtocolError, match="unknown server response"):
        SubscriberSession().receive(response_packet(code, 0x02))


@pytest.mark.parametrize("code", USER_RESPONSES)
def test_ieee2664_user_responses_reach_the_application(code):
    events = SubscriberSession().receive(response_packet(code, 0xD3, b"xyz"))
    assert events == [UserResponse(code, 0xD3, b"xyz")]


def test_ieee2664_a_response_missing_from_the_table_closes_the_session(monkeypatch):
    monkeypatch.delitem(SubscriberSession.RESPONSES, ServerResponse.NoOp)
    with pytest.raises(ProtocolError, match="unhandled server response 0xFF"):
        SubscriberSession().receive(response_packet(ServerResponse.NoOp, 0x02))


def test_ieee2664_failed_is_reported_and_ends_the_subscription():
    session = SubscriberSession()
    session.subscribed = True
    events = session.receive(
        response_packet(ServerResponse.Failed, ServerCommand.Subscribe, b"nope")
    )
    assert events == [CommandFailed(ServerCommand.Subscribe, "nope")]
    assert not session.subscribed


@pytest.mark.parametrize("code", sorted(set(ServerResponse) - DATAGRAM_RESPONSES))
def test_ieee2664_responses_that_do_not_belong_on_udp_are_dropped_and_counted(code):
    session = SubscriberSession()
    assert session.receive_datagram(response_body(code, 0x02, b"\x00" * 16)) == []
    assert session.stats.dropped_packets == 1 and session.data_to_send() == b""


def test_ieee2664_noop_is_taken_on_udp():
    session = SubscriberSession()
    assert session.receive_datagram(response_body(ServerResponse.NoOp, 0x02)) == [NoOp()]


# --------------------------------------------------------------------------- draft: coverage


def _outcome(role: type[_Session], code: int) -> str:
    """How a session of ``role`` treats ``code`` (see ``_Session._frame``)."""
    if code in _Session.SHARED:
        return "shared"
    info = draft_wire.MESSAGES.get(code)
    if info is None:
        return "unknown"
    if info.direction == role.role:
        return "refused: sent by this role"
    if role.COMMANDS.get(code) is _Session._not_handled:
        return "refused: not handled"
    if code in role.COMMANDS:
        return "handled"
    return "missing"


@pytest.mark.parametrize("role", [DraftPublisher, DraftSubscriber])
def test_draft_roles_have_an_outcome_for_every_command_code(role):
    outcomes = {code.name: _outcome(role, code) for code in CC}
    missing = [name for name, outcome in outcomes.items() if outcome in ("missing", "unknown")]
    assert not missing, f"{role.role}: codes without a handler or a documented refusal: {missing}"
    # no entry for a code the role never gets to its table
    for code in role.COMMANDS:
        assert code in set(CC) and _outcome(role, code).split(":")[0] in ("handled", "refused")
        assert draft_wire.MESSAGES[code].direction != role.role
    assert set(role.BEFORE_NEGOTIATION) <= set(role.COMMANDS)


def test_draft_outcomes_per_role_are_as_documented():
    publisher = {code: _outcome(DraftPublisher, code) for code in CC}
    subscriber = {code: _outcome(DraftSubscriber, code) for code in CC}
    assert [c for c, o in publisher.items() if o == "handled"] == [
        CC.BeginFragment,
        CC.NextFragment,
        CC.GetMetadataSchema,
        CC.GetMetadata,
        CC.Subscribe,
        CC.SecureDataChannel,
    ]
    assert [c for c, o in subscriber.items() if o == "refused: not handled"] == [
        CC.SendDataPointsCustom,
        CC.NegotiateSessionResponse,
    ]
    assert [c for c, o in subscriber.items() if o == "refused: sent by this role"] == [
        CC.GetMetadataSchema,
        CC.GetMetadata,
        CC.Subscribe,
        CC.SecureDataChannel,
    ]


def test_draft_sub_command_tables_cover_the_generated_enums():
    assert set(DraftSubscriber.NEGOTIATION) == set(NS)
    assert set(DraftSubscriber.BULK) == set(BTS)
    assert set(RESULT_ITEMS) == set(draft_wire.MetadataResponseSubCommand)


# --------------------------------------------------------------------------- draft: refusals


def _frames(data: bytes) -> list[tuple[int, bytes]]:
    return FrameReader().feed(data)


def _negotiated() -> tuple[DraftPublisher, DraftSubscriber]:
    publisher = DraftPublisher(Catalog(MetadataDatabase()))
    subscriber = DraftSubscriber()
    for _ in range(10):
        out = publisher.data_to_send()
        if out:
            subscriber.receive_data(out, 0.0)
        back = subscriber.data_to_send()
        if back:
            publisher.receive_data(back, 0.0)
        if not out and not back:
            break
    assert publisher.negotiated and subscriber.negotiated
    return publisher, subscriber


def _terminated(session: _Session, events: list, code: int) -> str:
    """The reason of the RequestFailed (terminate) the session sent for ``code``."""
    assert session.closed and isinstance(events[-1], SessionClosed)
    [(frame_code, payload)] = _frames(session.data_to_send())
    assert frame_code == CC.RequestFailed
    failed = draft_wire.RequestFailed.parse(payload)
    assert failed.terminate_connection and failed.command == code
    return failed.reason


@pytest.mark.parametrize(
    "role, code",
    [(0, c) for c in CC if draft_wire.MESSAGES[c].direction == "publisher"]
    + [(1, c) for c in CC if draft_wire.MESSAGES[c].direction == "subscriber"],
)
def test_draft_codes_the_role_itself_sends_end_the_session(role, code):
    session = _negotiated()[role]
    events = session.receive_data(encode_frame(code, b""), 0.0)
    reason = _terminated(session, events, code)
    assert reason == f"{CC(code).name} is not sent to a {session.role}"


@pytest.mark.parametrize("role", [0, 1])
@pytest.mark.parametrize("code", [0x0C, 0x42, 0x85, 0xFE])
def test_draft_unknown_codes_end_the_session(role, code):
    session = _negotiated()[role]
    events = session.receive_data(encode_frame(code, b""), 0.0)
    assert _terminated(session, events, code) == f"unknown command code {code:#04x}"


@pytest.mark.parametrize("code", [CC.SendDataPointsCustom, CC.NegotiateSessionResponse])
def test_draft_subscriber_refuses_what_it_does_not_handle(code):
    _publisher, subscriber = _negotiated()
    events = subscriber.receive_data(encode_frame(code, b""), 0.0)
    reason = _terminated(subscriber, events, code)
    assert reason == f"{CC(code).name} is not handled by a subscriber"


def test_draft_commands_before_the_negotiation_end_the_session():
    publisher = DraftPublisher(Catalog(MetadataDatabase()))
    publisher.data_to_send()
    request = draft_wire.GetMetadataSchema(include_schema=True)
    events = publisher.receive_data(draft_wire.build_frame(request), 0.0)
    reason = _terminated(publisher, events, CC.GetMetadataSchema)
    assert reason == "GetMetadataSchema before session negotiation completed"
    subscriber = DraftSubscriber()
    events = subscriber.receive_data(encode_frame(CC.RuntimeIDMapping, b""), 0.0)
    reason = _terminated(subscriber, events, CC.RuntimeIDMapping)
    assert reason == "RuntimeIDMapping before session negotiation completed"


def _negotiate_body(sub_command: int) -> object:
    bodies: dict[int, object] = {
        NS.InitiateReverseConnection: None,
        NS.GetAllInstances: None,
        NS.ChangeInstance: draft_wire.ChangeInstance(instance="other"),
        NS.ChangeUdpCipher: draft_wire.ChangeUdpCipher(nonce=b"n" * 16),
    }
    return bodies[sub_command]


@pytest.mark.parametrize(
    "sub_command",
    [
        NS.InitiateReverseConnection,
        NS.GetAllInstances,
        NS.ChangeInstance,
        NS.ChangeUdpCipher,
    ],
)
def test_draft_subscriber_refuses_negotiation_sub_commands_it_does_not_take(sub_command):
    subscriber = DraftSubscriber()
    message = draft_wire.NegotiateSession(
        sub_command=sub_command, body=_negotiate_body(sub_command)
    )
    events = subscriber.receive_data(draft_wire.build_frame(message), 0.0)
    assert _terminated(subscriber, events, CC.NegotiateSession) == "NegotiateSession out of order"


def test_draft_negotiation_sub_commands_out_of_step_are_refused():
    subscriber = DraftSubscriber()
    modes = draft_wire.NegotiateSession(
        sub_command=NS.OperationalModes,
        body=draft_wire.OperationalModes(
            udp_port=0,
            stateful=draft_wire.NamedVersions(items=[]),
            stateless=draft_wire.NamedVersions(items=[]),
        ),
    )
    events = subscriber.receive_data(draft_wire.build_frame(modes), 0.0)
    assert _terminated(subscriber, events, CC.NegotiateSession) == "NegotiateSession out of order"


def test_draft_a_code_missing_from_a_role_table_is_refused(monkeypatch):
    monkeypatch.delitem(DraftPublisher.COMMANDS, CC.GetMetadataSchema)
    publisher, _subscriber = _negotiated()
    request = draft_wire.GetMetadataSchema(include_schema=True)
    events = publisher.receive_data(draft_wire.build_frame(request), 0.0)
    reason = _terminated(publisher, events, CC.GetMetadataSchema)
    assert reason == "GetMetadataSchema is not handled by a publisher"


def test_draft_bulk_sub_commands_go_through_their_table():
    publisher, subscriber = _negotiated()
    transfer = publisher.send_bulk(b"x" * 5000)
    events = subscriber.receive_data(publisher.data_to_send(), 0.0)
    assert [(e.transfer_id, e.data) for e in events] == [(transfer, b"x" * 5000)]
    cancel = draft_wire.BulkTransport(
        item=draft_wire.BulkTransportItem(
            sub_command=BTS.CancelSend, body=draft_wire.BulkCancelSend(id=uuid.uuid4())
        )
    )
    assert subscriber.receive_data(draft_wire.build_frame(cancel), 0.0) == []
    stray = draft_wire.BulkTransport(
        item=draft_wire.BulkTransportItem(
            sub_command=BTS.SendFragment,
            body=draft_wire.BulkSendFragment(id=uuid.uuid4(), offset=0, data=b"y"),
        )
    )
    events = subscriber.receive_data(draft_wire.build_frame(stray), 0.0)
    assert _terminated(subscriber, events, CC.BulkTransport) == (
        "bulk fragment of an unknown transfer"
    )


def test_both_profiles_answer_only_through_data_to_send():
    """One output channel: the command methods of every role queue, none returns bytes."""
    session = SubscriberSession()
    assert session.start() is None and session.request_metadata() is None
    assert session.request_schema() is None and session.rotate_cipher_keys() is None
    assert session.update_processing_interval(10) is None and session.unsubscribe() is None
    assert session.user_command(0xD1, b"u") is None
    codes = [packet[0] for packet in PacketReader().feed(session.data_to_send())]
    assert codes == [
        ServerCommand.DefineOperationalModes,
        ServerCommand.MetadataRefresh,
        ServerCommand.GetPrimaryMetadataSchema,
        ServerCommand.RotateCipherKeys,
        ServerCommand.UpdateProcessingInterval,
        ServerCommand.Unsubscribe,
        0xD1,
    ]
    assert session.data_to_send() == b""
    _publisher, subscriber = _negotiated()
    assert subscriber.get_metadata_schema(True, 0.0) is None
    [(code, _payload)] = _frames(subscriber.data_to_send())
    assert code == CC.GetMetadataSchema
