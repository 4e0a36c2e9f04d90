"""The subscriber end of a draft-profile connection (sans-IO): negotiation as the responder,
requests (Subscribe, metadata, SecureDataChannel; one larger than ``max_payload``, e.g. a
Subscribe by thousands of ids, is sent as BeginFragment + NextFragment), RuntimeIDMapping, data
on both channels, fragments, verification receipts and BulkTransport reassembly."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import ClassVar, cast

from gridbind.generated.sttp import draft_0_8 as wire
from gridbind.sttp.codecsupport import ConstraintError, WireError
from gridbind.sttp.draft.core import (
    _RECEIPT,
    ALGORITHM_VERSIONS,
    CC,
    NS,
    STATEFUL,
    STATELESS,
    FrameHandler,
    _modes,
    _name,
    _names,
    _Session,
    _Terminate,
)
from gridbind.sttp.draft.events import (
    BulkReceived,
    CommandFailed,
    CommandSucceeded,
    DataChannelSecured,
    DataPointsReceived,
    Event,
    MappingChanged,
    MetadataReceived,
    MetadataSchemaReceived,
    NegotiationComplete,
)
from gridbind.sttp.draft.framing import FrameError, FrameReader
from gridbind.sttp.draft.packets import (
    MAX_ASSEMBLED,
    MAX_RAW_PACKET,
    DataDecoder,
    FragmentError,
    PacketError,
    WirePoint,
    assembler,
)
from gridbind.sttp.draft.security import DatagramCipher
from gridbind.sttp.measurement import Measurement

__all__ = ["SubscriberSession"]

BTS = wire.BulkTransportSubCommand


class SubscriberSession(_Session):
    """The subscriber end of one connection.

    ``versions`` supported, ``stateful``/``stateless`` algorithm preferences (first offered
    one wins), ``udp_port`` the local UDP port for the data channel (0: none), time-outs in
    seconds, ``max_bulk`` bytes accepted per BulkTransport. ``max_verified_points`` is the most
    subscribed points requiring verification receipts this subscriber accepts (``None``: no
    limit): a RuntimeIDMapping beyond it is answered with RequestFailed (TerminateConnection)
    and the session closes ("Verification Characteristic", e.g. upload bandwidth).
    """

    role = "subscriber"
    max_fragmented = MAX_ASSEMBLED

    def __init__(
        self,
        *,
        now: float = 0.0,
        versions: Sequence[tuple[int, int]] = ((1, 0),),
        stateful: Sequence[str] = STATEFUL,
        stateless: Sequence[str] = STATELESS,
        udp_port: int = 0,
        negotiation_timeout: float = 5.0,
        response_timeout: float = 10.0,
        keepalive_interval: float | None = None,
        noop_timeout: float = 5.0,
        max_payload: int = MAX_RAW_PACKET,
        max_bulk: int = 64 << 20,
        max_verified_points: int | None = None,
    ) -> None:
        super().__init__(
            now=now,
            negotiation_timeout=negotiation_timeout,
            response_timeout=response_timeout,
            keepalive_interval=keepalive_interval,
            noop_timeout=noop_timeout,
            max_payload=max_payload,
        )
        self.versions = [tuple(v) for v in versions]
        self.prefer_stateful = list(stateful)
        self.prefer_stateless = list(stateless)
        self.udp_port = udp_port
        self.max_bulk = max_bulk
        self.max_verified_points = max_verified_points
        self._step = "versions"
        self.mapping: dict[int, tuple[uuid.UUID, int, int]] = {}
        self._tcp = DataDecoder(stateful=True)
        self._metadata: list[wire.MetadataResponseItem] = []
        self._bulk: dict[uuid.UUID, tuple[int, int, bytearray]] = {}
        self.unmapped = 0
        self.received = {"tcp": 0, "udp": 0}
        #: Why the last dropped datagram was refused.
        self.last_datagram_error = ""
        #: The data channel's cipher (None until SecureDataChannel agreed keys).
        self.cipher: DatagramCipher | None = None

    # commands (the table COMMANDS follows their handlers)
    def _tcp_points(self, code: int, payload: bytes, now: float) -> list[Event]:
        return self._points(self._tcp.basic(payload), "tcp")

    def _fragment(self, code: int, payload: bytes, now: float) -> list[Event]:
        packet = self._fragments.feed(code, payload)
        if packet is None:
            return []
        if packet.command_code != CC.SendDataPoints:
            # another command too big for one packet (e.g. a large metadata response):
            # handled as if it had come whole (the assembler refuses nested fragments)
            if packet.compression == wire.CompressionMode.Tssc:
                raise PacketError(f"TSSC-coded {_name(packet.command_code)}")
            return _Session._frame(self, packet.command_code, packet.payload, now)
        return self._points(self._tcp.packet(packet), "tcp")

    def _runtime_mapping(self, code: int, payload: bytes, now: float) -> list[Event]:
        return self._mapping(wire.RuntimeIDMapping.parse(payload))

    def _schema_response(self, code: int, payload: bytes, now: float) -> list[Event]:
        if not self._answered(CC.GetMetadataSchema):
            raise _Terminate(code, "GetMetadataSchemaResponse without a request")
        return [MetadataSchemaReceived(wire.GetMetadataSchemaResponse.parse(payload).schema)]

    def _metadata_response(self, code: int, payload: bytes, now: float) -> list[Event]:
        if not self._pending.get(CC.GetMetadata):
            raise _Terminate(code, "GetMetadataResponse without a request")
        items = wire.GetMetadataResponse.parse(payload).items
        self._metadata.extend(items)
        if len(self._metadata) > 1_000_000:
            raise _Terminate(code, "metadata response too large")
        if items and items[-1].sub_command == wire.MetadataResponseSubCommand.Finished:
            self._answered(CC.GetMetadata)
            done, self._metadata = self._metadata, []
            return [MetadataReceived(done)]
        return []

    def _bulk_transport(self, code: int, payload: bytes, now: float) -> list[Event]:
        item = wire.BulkTransport.parse(payload).item
        handler = self.BULK.get(item.sub_command)
        if handler is None:
            raise _Terminate(code, f"unknown BulkTransport sub-command {item.sub_command}")
        return handler(self, item.body)

    # negotiation (the table NEGOTIATION follows its handlers)
    def _negotiate(self, code: int, payload: bytes, now: float) -> list[Event]:
        message = wire.NegotiateSession.parse(payload)
        if self.negotiated is not None:
            raise _Terminate(CC.NegotiateSession, "session negotiation already completed")
        handler = self.NEGOTIATION.get(message.sub_command, SubscriberSession._out_of_order)
        return handler(self, message.body)

    def _out_of_order(self, body: object) -> list[Event]:
        """A documented refusal: RequestFailed (terminate) for a sub-command this responder
        does not take (reverse connections, instances, UDP cipher changes) or one out of
        its step; the session closes."""
        raise _Terminate(CC.NegotiateSession, "NegotiateSession out of order")

    def _negotiate_versions(self, body: object) -> list[Event]:
        if self._step != "versions":
            return self._out_of_order(body)
        # the codec switches the body's type on the sub-command
        versions = cast(wire.ProtocolVersions, body).versions
        offered = [(v.major, v.minor) for v in versions]
        common = [v for v in offered if v in self.versions]
        if not common:
            mine = wire.ProtocolVersions(versions=[wire.Version(*v) for v in self.versions])
            return self._terminate(
                CC.NegotiateSession, f"no supported protocol version in {offered}", mine.build()
            )
        chosen = max(common)
        self._step = "modes"
        self._succeed(
            CC.NegotiateSession,
            data=wire.ProtocolVersions(versions=[wire.Version(*chosen)]).build(),
        )
        self.version = chosen
        return []

    def _negotiate_modes(self, body: object) -> list[Event]:
        if self._step != "modes":
            return self._out_of_order(body)
        modes = cast(wire.OperationalModes, body)
        stateful = self._pick(_names(modes.stateful), self.prefer_stateful)
        stateless = self._pick(_names(modes.stateless), self.prefer_stateless)
        problem = ""
        if stateful is None:
            problem = "no common stateful compression"
        elif stateless is None:
            problem = "no common stateless compression"
        elif self.udp_port and not modes.udp_port:
            problem = "the publisher does not support a UDP data channel"
        if problem:
            ours = _modes(self.udp_port, self.prefer_stateful, self.prefer_stateless)
            return self._terminate(CC.NegotiateSession, problem, ours.build())
        assert stateful is not None and stateless is not None
        self._chosen = (stateful, stateless)
        self._step = "confirm"
        self._succeed(
            CC.NegotiateSession, data=_modes(self.udp_port, [stateful], [stateless]).build()
        )
        return []

    #: What each NegotiateSession sub-command does on this subscriber (the responder);
    #: tests/sttp/test_handler_tables.py checks every generated sub-command has an entry.
    NEGOTIATION: ClassVar[dict[int, Callable[[SubscriberSession, object], list[Event]]]] = {
        NS.ProtocolVersions: _negotiate_versions,
        NS.OperationalModes: _negotiate_modes,
        NS.InitiateReverseConnection: _out_of_order,
        NS.GetAllInstances: _out_of_order,
        NS.ChangeInstance: _out_of_order,
        NS.ChangeUdpCipher: _out_of_order,
    }

    #: What each command a publisher may send does on a subscriber (the codes the generated
    #: MESSAGES table says a subscriber sends are refused by ``_frame``; RequestSucceeded,
    #: RequestFailed and NoOp are ``SHARED``). Only NegotiateSession comes before the
    #: negotiation completed.
    COMMANDS: ClassVar[dict[int, FrameHandler]] = {
        CC.BeginFragment: _fragment,
        CC.NextFragment: _fragment,
        CC.SendDataPoints: _tcp_points,
        CC.RuntimeIDMapping: _runtime_mapping,
        CC.NegotiateSession: _negotiate,
        CC.BulkTransport: _bulk_transport,
        CC.GetMetadataSchemaResponse: _schema_response,
        CC.GetMetadataResponse: _metadata_response,
        # documented refusals (RequestFailed, terminate): this subscriber has no custom data
        # point format, and negotiation answers come as RequestSucceeded/RequestFailed
        CC.SendDataPointsCustom: _Session._not_handled,
        CC.NegotiateSessionResponse: _Session._not_handled,
    }
    BEFORE_NEGOTIATION = frozenset({CC.NegotiateSession})

    @staticmethod
    def _pick(offered: list[tuple[str, tuple[int, int]]], preference: list[str]) -> str | None:
        available = set(offered)
        for name in preference:
            if (name, ALGORITHM_VERSIONS[name]) in available:
                return name
        return None

    def _succeeded(self, ok: wire.RequestSucceeded, now: float) -> list[Event]:
        if ok.command == CC.NegotiateSession and self.negotiated is None:
            if self._step != "confirm":
                raise _Terminate(CC.NegotiateSession, "negotiation confirmed out of order")
            self._step = "done"
            self._udp_decoder = DataDecoder(stateful=False)
            return self._negotiation_done(
                NegotiationComplete(self.version, self._chosen[0], self._chosen[1], self.udp_port),
                now,
            )
        if self.negotiated is None:
            raise _Terminate(CC.RequestSucceeded, "response before session negotiation completed")
        if ok.command == CC.SecureDataChannel and self._answered(CC.SecureDataChannel):
            keys = wire.DataChannelKeys.parse(ok.data)
            self.cipher = DatagramCipher(keys.key, keys.iv)
            return [CommandSucceeded(ok.command, ok.reason), DataChannelSecured(keys.key, keys.iv)]
        if ok.command == CC.RuntimeIDMapping:
            return []
        return super()._succeeded(ok, now)

    def _failed(self, failed: wire.RequestFailed, now: float) -> list[Event]:
        events = super()._failed(failed, now)
        for event in events:
            if isinstance(event, CommandFailed) and event.command == CC.Subscribe and event.data:
                try:
                    named = wire.SttpNamedSet.parse(event.data)
                    event.proposed = {nv.name: nv.value for nv in named.items}
                except (WireError, ConstraintError):
                    event.proposed = None
        if failed.command == CC.SecureDataChannel and not self.closed:
            events += self._close(f"SecureDataChannel refused: {failed.reason}")
        return events

    # requests
    def subscribe(self, items: Sequence[wire.SubscribeItem], now: float) -> None:
        """Send a Subscribe with ``items`` (answered by CommandSucceeded/CommandFailed)."""
        self._require_ready()
        self._send(wire.Subscribe(items=list(items)))
        self._expect(CC.Subscribe, now)

    def get_metadata_schema(self, include_schema: bool, now: float) -> None:
        """Ask for the metadata schema (answered by MetadataSchemaReceived)."""
        self._require_ready()
        self._send(wire.GetMetadataSchema(include_schema=include_schema))
        self._expect(CC.GetMetadataSchema, now)

    def get_metadata(
        self,
        query: str,
        now: float,
        *,
        revision: int = 0,
        update: bool = False,
        schema_version: uuid.UUID | None = None,
    ) -> None:
        """Ask for one table (answered by MetadataReceived or CommandFailed)."""
        self._require_ready()
        self._send(
            wire.GetMetadata(
                schema_version=schema_version or uuid.UUID(int=0),
                revision=revision,
                is_update_query=update,
                query=query,
            )
        )
        self._expect(CC.GetMetadata, now)

    def secure_data_channel(self, now: float) -> None:
        """Ask for AES keys for the UDP data channel (DataChannelSecured or a close)."""
        self._require_ready()
        self._send_raw(CC.SecureDataChannel, b"")
        self._expect(CC.SecureDataChannel, now)

    def _require_ready(self) -> None:
        if self.negotiated is None or self.closed:
            raise RuntimeError("session negotiation has not completed")

    # data
    def _mapping(self, message: wire.RuntimeIDMapping) -> list[Event]:
        added, removed = [], []
        for key in message.points:
            if key.flags & wire.StateFlags.KeyAction:
                self.mapping[key.runtime_id] = (key.point_id, int(key.value_type), int(key.flags))
                added.append(key)
            else:
                if self.mapping.pop(key.runtime_id, None) is not None:
                    removed.append(key.runtime_id)
        events: list[Event] = [MappingChanged(added, removed)]
        limit = self.max_verified_points
        if limit is not None and self.verified_points > limit:
            return events + self._terminate(
                CC.RuntimeIDMapping,
                f"{self.verified_points} subscribed data points require verification; this "
                f"subscriber accepts at most {limit}",
            )
        self._succeed(CC.RuntimeIDMapping)
        return events

    @property
    def verified_points(self) -> int:
        """Subscribed points that require a verification receipt (the seed's statistics)."""
        flag = wire.StateFlags.Verification
        return sum(1 for key in self.mapping.values() if key[2] & flag)

    def receive_datagram(self, datagram: bytes) -> list[Event]:
        """One UDP datagram (decrypted first once SecureDataChannel agreed keys). Bad
        datagrams are dropped and counted."""
        if self.negotiated is None or self.closed:
            return []
        if self.cipher is not None:
            try:
                datagram = self.cipher.decrypt(datagram)
            except ValueError as exc:
                return self._bad_datagram(str(exc))
        return self.receive_frame_datagram(datagram)

    def _bad_datagram(self, reason: str) -> list[Event]:
        self.stats["bad_datagrams"] = self.stats.get("bad_datagrams", 0) + 1
        self.last_datagram_error = reason
        return []

    def receive_frame_datagram(self, datagram: bytes) -> list[Event]:
        """One plain (decrypted) datagram: exactly one frame."""
        try:
            frames = FrameReader().feed(datagram)
            if len(frames) != 1:
                raise PacketError("a datagram carries exactly one frame")
            code, payload = frames[0]
            if code == CC.SendDataPoints:
                points = self._udp_decoder.basic(payload)
            elif code == CC.BeginFragment:
                packet = assembler().feed(code, payload)
                if packet is None:
                    raise PacketError("fragmented datagram")
                points = self._udp_decoder.packet(packet)
            else:
                raise PacketError(f"{_name(code)} on the data channel")
        except (FrameError, PacketError, FragmentError) as exc:
            return self._bad_datagram(str(exc))
        return self._points(points, "udp")

    def _points(self, points: list[WirePoint], channel: str) -> list[Event]:
        mapping = self.mapping
        out: list[Measurement] = []
        receipts = bytearray()
        for p in points:
            key = mapping.get(p.runtime_id)
            if key is None:
                self.unmapped += 1
                continue
            out.append(Measurement(key[0], p.value, p.timestamp, p.quality))
            if key[2] & wire.StateFlags.Verification:
                receipts += _RECEIPT.pack(p.runtime_id, p.timestamp)
        if receipts:
            self._succeed(CC.SendDataPoints, "received", bytes(receipts))
        self.received[channel] += len(out)
        return [DataPointsReceived(out, channel)] if out else []

    # bulk transfers (the table BULK follows their handlers; the codec switches the body's
    # type on the sub-command)
    def _bulk_begin(self, body: object) -> list[Event]:
        begin = cast(wire.BulkBeginSend, body)
        pending = sum(state[1] for state in self._bulk.values())
        if begin.length + pending > self.max_bulk:
            raise _Terminate(CC.BulkTransport, f"bulk transfer of {begin.length} bytes too big")
        if len(self._bulk) >= 16:
            raise _Terminate(CC.BulkTransport, "too many concurrent bulk transfers")
        self._bulk[begin.id] = (int(begin.fundamental_type), begin.length, bytearray())
        return self._bulk_done(begin.id)

    def _bulk_fragment(self, body: object) -> list[Event]:
        fragment = cast(wire.BulkSendFragment, body)
        state = self._bulk.get(fragment.id)
        if state is None:
            raise _Terminate(CC.BulkTransport, "bulk fragment of an unknown transfer")
        if fragment.offset != len(state[2]) or len(state[2]) + len(fragment.data) > state[1]:
            raise _Terminate(CC.BulkTransport, "bulk fragment out of order or too long")
        state[2].extend(fragment.data)
        return self._bulk_done(fragment.id)

    def _bulk_cancel(self, body: object) -> list[Event]:
        self._bulk.pop(cast(wire.BulkCancelSend, body).id, None)
        return []

    #: What each BulkTransport sub-command does (one entry per generated sub-command).
    BULK: ClassVar[dict[int, Callable[[SubscriberSession, object], list[Event]]]] = {
        BTS.BeginSend: _bulk_begin,
        BTS.SendFragment: _bulk_fragment,
        BTS.CancelSend: _bulk_cancel,
    }

    def _bulk_done(self, transfer: uuid.UUID) -> list[Event]:
        kind, length, data = self._bulk[transfer]
        if len(data) < length:
            return []
        del self._bulk[transfer]
        return [BulkReceived(transfer, kind, bytes(data))]
