"""Sans-IO session cores of the draft profile: bytes in, events out, bytes to send.

:class:`PublisherSession` and :class:`SubscriberSession` implement the seed's rules for one
connection: session negotiation (publisher first: ProtocolVersions, then OperationalModes, each
answered by RequestSucceeded/RequestFailed, with time-outs), nothing else before negotiation
completes, subscriptions with RuntimeIDMapping, data points (basic / DEFLATE / TSSC,
fragments), metadata, SecureDataChannel keys, NoOp keep-alive, and RequestFailed with
TerminateConnection. A malformed or out-of-order frame is answered with RequestFailed
(terminate) and the session closes; the transport then closes the socket.

Time is passed in explicitly (``now``, seconds of a monotonic clock); transports call
:meth:`tick` at :meth:`next_deadline`.
"""

from __future__ import annotations

import logging
import os
import struct
import uuid
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gridbind.codegen.support import ConstraintError, WireError
from gridbind.generated.sttp import draft_0_8 as wire
from gridbind.sttp.draft.access import ANONYMOUS, AccessControl
from gridbind.sttp.draft.characteristics import (
    CharacteristicsError,
    Options,
    PointFilter,
    Policy,
)
from gridbind.sttp.draft.framing import FrameError, FrameReader, encode_frame
from gridbind.sttp.draft.metadata import (
    MetadataDatabase,
    MetadataError,
    MetaTable,
    decode_result,
)
from gridbind.sttp.draft.packets import (
    MAX_RAW_PACKET,
    DataDecoder,
    DataEncoder,
    FragmentError,
    PacketError,
    WirePoint,
    assembler,
)
from gridbind.sttp.encoding import ValueType
from gridbind.sttp.measurement import Measurement

__all__ = [
    "ALGORITHM_VERSIONS",
    "BulkReceived",
    "CommandFailed",
    "CommandSucceeded",
    "DataChannelSecured",
    "DataPointsReceived",
    "Event",
    "MappingChanged",
    "MetadataReceived",
    "MetadataSchemaReceived",
    "NegotiationComplete",
    "PublisherSession",
    "SessionClosed",
    "SubscriberSession",
    "SubscriptionChanged",
    "VerificationTimedOut",
    "Verified",
]

log = logging.getLogger("gridbind.sttp.draft")
CC = wire.CommandCode
NS = wire.NegotiateSubCommand
SSC = wire.SubscribeSubCommand
SM = wire.SubscriptionMode
ALGORITHM_VERSIONS = {"NONE": (0, 0), "DEFLATE": (1, 0), "TSSC": (1, 0)}
STATEFUL = ("TSSC", "DEFLATE", "NONE")
STATELESS = ("DEFLATE", "NONE")
_RECEIPT = struct.Struct(">iq")
#: Metadata ``DataType`` names of the ValueTypeCodes.
_TYPE_NAMES = {
    "NULL": 0,
    "INT64": 1,
    "SINGLE": 2,
    "DOUBLE": 3,
    "STTPTIME": 4,
    "BOOL": 5,
    "GUID": 6,
    "STRING": 7,
    "STTPBUFFER": 8,
    "STTPMARKUP": 9,
    "STTPBULKTRANSPORT": 10,
}
_MAPPING_CHUNK = 600
_MAX_RECIPE = 4096


# --- events ---------------------------------------------------------------------------------


class Event:
    """Base of everything a session reports."""


@dataclass
class NegotiationComplete(Event):
    """Both sides agreed: protocol version, algorithms, the subscriber's UDP port (0 = none)."""

    version: tuple[int, int]
    stateful: str
    stateless: str
    udp_port: int


@dataclass
class SessionClosed(Event):
    """The session ended; the transport must close the connection."""

    reason: str
    by_peer: bool = False


@dataclass
class CommandSucceeded(Event):
    """The peer answered RequestSucceeded to one of our commands."""

    command: int
    reason: str = ""
    details: str = ""
    data: bytes = b""


@dataclass
class CommandFailed(Event):
    """The peer answered RequestFailed; ``proposed`` holds options the publisher offers."""

    command: int
    reason: str = ""
    details: str = ""
    terminate: bool = False
    data: bytes = b""
    proposed: dict[str, str] | None = None


@dataclass
class DataPointsReceived(Event):
    """Measurements of subscribed points (value types beyond float keep their Python form)."""

    measurements: list[Measurement]
    channel: str = "tcp"


@dataclass
class MappingChanged(Event):
    """RuntimeIDMapping received: keys added (with flags) and runtime IDs removed."""

    added: list[wire.DataPointKey]
    removed: list[int]


@dataclass
class SubscriptionChanged(Event):
    """Publisher side: the subscribed point set of this session changed."""

    points: list[uuid.UUID]


@dataclass
class MetadataSchemaReceived(Event):
    """GetMetadataSchemaResponse."""

    schema: wire.MetadataSchema


@dataclass
class MetadataReceived(Event):
    """All response items of one GetMetadata."""

    items: list[wire.MetadataResponseItem]


@dataclass
class DataChannelSecured(Event):
    """SecureDataChannel succeeded: AES-256 key and IV of the UDP data channel."""

    key: bytes
    iv: bytes


@dataclass
class BulkReceived(Event):
    """A complete BulkTransport buffer."""

    transfer_id: uuid.UUID
    fundamental_type: int
    data: bytes


@dataclass
class Verified(Event):
    """Publisher side: the subscriber confirmed receipt of a verified point."""

    signal_id: uuid.UUID
    timestamp: int


@dataclass
class VerificationTimedOut(Event):
    """Publisher side: no receipt for a verified point within the time-out."""

    signal_id: uuid.UUID
    timestamp: int


class _Terminate(Exception):
    def __init__(self, command: int, reason: str) -> None:
        super().__init__(reason)
        self.command = command
        self.reason = reason


# --- shared machinery --------------------------------------------------------------------------


class _Session:
    role = ""

    def __init__(
        self,
        *,
        now: float,
        negotiation_timeout: float,
        response_timeout: float,
        keepalive_interval: float | None,
        noop_timeout: float,
        max_payload: int,
    ) -> None:
        self.negotiation_timeout = negotiation_timeout
        self.response_timeout = response_timeout
        self.keepalive_interval = keepalive_interval
        self.noop_timeout = noop_timeout
        self.max_payload = max_payload
        self.negotiated: NegotiationComplete | None = None
        self.closed = False
        self.close_reason = ""
        self.tls = False
        self._out = bytearray()
        self._reader = FrameReader()
        self._negotiation_deadline: float | None = now + negotiation_timeout
        self._noop_deadline: float | None = None
        self._next_noop: float | None = now + keepalive_interval if keepalive_interval else None
        self._pending: dict[int, deque[float]] = {}
        self.stats = {"frames_in": 0, "frames_out": 0, "bytes_in": 0, "bytes_out": 0}

    # sending
    def _send(self, message: Any) -> None:
        self._send_raw(type(message).CODE, message.build())

    def _send_raw(self, code: int, payload: bytes) -> None:
        if self.closed:
            return
        frame = encode_frame(code, payload)
        self._out += frame
        self.stats["frames_out"] += 1
        self.stats["bytes_out"] += len(frame)

    def _send_frames(self, frames: Iterable[bytes]) -> None:
        if self.closed:
            return
        for frame in frames:
            self._out += frame
            self.stats["frames_out"] += 1
            self.stats["bytes_out"] += len(frame)

    def data_to_send(self) -> bytes:
        """Bytes queued for the command channel (and reliable data); empties the queue."""
        out = bytes(self._out)
        self._out.clear()
        return out

    def _succeed(self, command: int, reason: str = "", data: bytes = b"") -> None:
        self._send(wire.RequestSucceeded(command=command, reason=reason, data=data))

    def _refuse(self, command: int, reason: str, data: bytes = b"", details: str = "") -> None:
        self._send(
            wire.RequestFailed(
                command=command,
                terminate_connection=False,
                reason=reason,
                details=details,
                data=data,
            )
        )

    def _terminate(self, command: int, reason: str, data: bytes = b"") -> list[Event]:
        if self.closed:
            return []
        self._send(
            wire.RequestFailed(
                command=command & 0xFF, terminate_connection=True, reason=reason, data=data
            )
        )
        return self._close(reason)

    def _close(self, reason: str, by_peer: bool = False) -> list[Event]:
        if self.closed:
            return []
        self.closed = True
        self.close_reason = reason
        return [SessionClosed(reason, by_peer)]

    def close(self, reason: str = "closed locally") -> list[Event]:
        """End the session without a message (e.g. the socket went away)."""
        return self._close(reason)

    # time
    def _expect(self, command: int, now: float) -> None:
        self._pending.setdefault(command, deque()).append(now + self.response_timeout)

    def _answered(self, command: int) -> bool:
        queue = self._pending.get(command)
        if not queue:
            return False
        queue.popleft()
        return True

    def next_deadline(self) -> float | None:
        """When :meth:`tick` must be called next (``None``: no timer running)."""
        times = [t for t in (self._negotiation_deadline, self._noop_deadline, self._next_noop) if t]
        times += [q[0] for q in self._pending.values() if q]
        return min(times) if times else None

    def tick(self, now: float) -> list[Event]:
        """Run time-outs and the keep-alive schedule."""
        if self.closed:
            return []
        if self._negotiation_deadline is not None and now >= self._negotiation_deadline:
            return self._terminate(CC.NegotiateSession, "session negotiation timed out")
        if self._noop_deadline is not None and now >= self._noop_deadline:
            return self._close("NoOp keep-alive was not answered in time")
        for command, queue in self._pending.items():
            if queue and now >= queue[0]:
                return self._close(f"no response to command {command:#04x} in time")
        if self._next_noop is not None and now >= self._next_noop and self.negotiated:
            self.send_noop(now)
        return []

    def send_noop(self, now: float) -> None:
        """Send a NoOp; the peer must answer within ``noop_timeout``."""
        self._send_raw(CC.NoOp, b"")
        if self._noop_deadline is None:
            self._noop_deadline = now + self.noop_timeout
        self._next_noop = None

    # receiving
    def receive_data(self, data: bytes, now: float) -> list[Event]:
        """Feed bytes from the command channel; returns the resulting events."""
        if self.closed:
            return []
        self.stats["bytes_in"] += len(data)
        try:
            frames = self._reader.feed(data)
        except FrameError as exc:
            return self._terminate(0, f"malformed frame: {exc}")
        events: list[Event] = []
        for code, payload in frames:
            if self.closed:
                break
            self.stats["frames_in"] += 1
            try:
                events.extend(self._frame(code, payload, now))
            except _Terminate as exc:
                events.extend(self._terminate(exc.command, exc.reason))
            except (WireError, ConstraintError, PacketError, FragmentError, MetadataError) as exc:
                events.extend(self._terminate(code, f"malformed {_name(code)}: {exc}"))
            except Exception as exc:  # noqa: BLE001 - hostile input must end the session, not us
                log.exception("unexpected error handling %s", _name(code))
                events.extend(self._terminate(code, f"cannot handle {_name(code)}: {exc!r}"))
        return events

    def _frame(self, code: int, payload: bytes, now: float) -> list[Event]:
        if code == CC.RequestFailed:
            failed = wire.RequestFailed.parse(payload)
            self._answered(failed.command)
            return self._failed(failed, now)
        if code == CC.RequestSucceeded:
            ok = wire.RequestSucceeded.parse(payload)
            if ok.command == CC.NoOp:
                self._noop_deadline = None
                if self.keepalive_interval:
                    self._next_noop = now + self.keepalive_interval
                return []
            return self._succeeded(ok, now)
        if code == CC.NoOp:
            if payload:
                raise _Terminate(code, "NoOp carries no payload")
            if self.negotiated is None:
                raise _Terminate(code, "NoOp before session negotiation completed")
            self._succeed(CC.NoOp)
            return []
        if code not in wire.MESSAGES:
            raise _Terminate(code, f"unknown command code {code:#04x}")
        info = wire.MESSAGES[code]
        if info.direction == self.role:
            raise _Terminate(code, f"{info.name} is not sent to a {self.role}")
        return self._command(code, payload, now)

    def _failed(self, failed: wire.RequestFailed, now: float) -> list[Event]:
        event = CommandFailed(
            failed.command, failed.reason, failed.details, failed.terminate_connection, failed.data
        )
        if failed.terminate_connection:
            return [event] + self._close(f"peer terminated: {failed.reason}", by_peer=True)
        return [event]

    def _succeeded(self, ok: wire.RequestSucceeded, now: float) -> list[Event]:
        self._answered(ok.command)
        return [CommandSucceeded(ok.command, ok.reason, ok.details, ok.data)]

    def _command(self, code: int, payload: bytes, now: float) -> list[Event]:
        raise NotImplementedError

    def _negotiation_done(self, event: NegotiationComplete) -> list[Event]:
        self.negotiated = event
        self._negotiation_deadline = None
        return [event]


def _coerce(value_type: int, value: Any) -> Any:
    """``value`` as the Python form of ``value_type`` (raises when it cannot be)."""
    if value_type in (ValueType.SINGLE, ValueType.DOUBLE):
        return value if type(value) is float else float(value)
    if value_type == ValueType.BOOL:
        return bool(value)
    if value_type in (ValueType.INT64, ValueType.STTP_TIME):
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(f"{value} is not an integer")
        return int(value)
    if value_type == ValueType.STRING:
        return value if isinstance(value, str) else str(value)
    if value_type == ValueType.GUID:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    if value_type in (ValueType.STTP_BUFFER, ValueType.STTP_MARKUP):
        return bytes(value)
    return value


def _name(code: int) -> str:
    info = wire.MESSAGES.get(code)
    return info.name if info else f"frame {code:#04x}"


def _modes(udp: int, stateful: Sequence[str], stateless: Sequence[str]) -> wire.OperationalModes:
    def named(names: Sequence[str]) -> wire.NamedVersions:
        items = [
            wire.NamedVersion(name=n, version=wire.Version(*ALGORITHM_VERSIONS[n])) for n in names
        ]
        return wire.NamedVersions(items=items)

    return wire.OperationalModes(udp_port=udp, stateful=named(stateful), stateless=named(stateless))


def _names(versions: wire.NamedVersions) -> list[tuple[str, tuple[int, int]]]:
    return [
        (item.name.strip(), (item.version.major, item.version.minor)) for item in versions.items
    ]


# --- publisher ---------------------------------------------------------------------------------


@dataclass
class _Subscribed:
    runtime_id: int
    value_type: int
    options: Options
    verify: bool
    filter: PointFilter


@dataclass
class Catalog:
    """The publisher's points: value types, metadata, access control, characteristics policy."""

    metadata: MetadataDatabase
    access: AccessControl = field(default_factory=AccessControl.allow_all)
    policy: Policy = field(default_factory=Policy)
    value_types: dict[uuid.UUID, int] = field(default_factory=dict)
    #: Column of the DataPoint table that names the point id.
    key_column: str = "PointID"

    def datapoint_table(self) -> MetaTable | None:
        """The DataPoint table, when defined."""
        try:
            return self.metadata.table("DataPoint")
        except MetadataError:
            return None

    def row(self, point: uuid.UUID) -> dict[str, Any] | None:
        """DataPoint metadata row of ``point``."""
        table = self.datapoint_table()
        return None if table is None else table.rows.get(point)

    def points(self) -> list[uuid.UUID]:
        """Every point the publisher offers."""
        table = self.datapoint_table()
        known = list(self.value_types)
        if table is not None:
            seen = set(known)
            known += [p for p in table.rows if p not in seen]
        return known

    def value_type(self, point: uuid.UUID) -> int:
        """ValueTypeCode of ``point``: declared, else its metadata ``DataType``, else Single."""
        declared = self.value_types.get(point)
        if declared is not None:
            return declared
        row = self.row(point)
        if row is not None:
            name = str(row.get("DataType") or "").upper()
            if name in _TYPE_NAMES:
                return _TYPE_NAMES[name]
        return ValueType.SINGLE

    def is_angle(self, point: uuid.UUID) -> bool:
        """Whether the metadata says ``point`` is a phase angle (for filtered down-sampling)."""
        row = self.row(point)
        if row is None:
            return False
        kind = str(row.get("Signal Type") or row.get("SignalType") or "").upper()
        return kind in ("PA", "VPHA", "IPHA")


class PublisherSession(_Session):
    """The publisher end of one connection.

    Options: ``versions`` offered, ``stateful``/``stateless`` algorithm names offered,
    ``udp`` (whether a UDP data channel is supported), ``identity`` of the peer for access
    control, time-outs in seconds, ``max_payload`` of a frame.
    """

    role = "publisher"

    def __init__(
        self,
        catalog: Catalog,
        *,
        now: float = 0.0,
        identity: str = ANONYMOUS,
        versions: Sequence[tuple[int, int]] = ((1, 0),),
        stateful: Sequence[str] = STATEFUL,
        stateless: Sequence[str] = STATELESS,
        udp: bool = True,
        tls: bool = False,
        negotiation_timeout: float = 5.0,
        response_timeout: float = 10.0,
        keepalive_interval: float | None = None,
        noop_timeout: float = 5.0,
        verification_timeout: float = 5.0,
        max_payload: int = MAX_RAW_PACKET,
    ) -> None:
        super().__init__(
            now=now,
            negotiation_timeout=negotiation_timeout,
            response_timeout=response_timeout,
            keepalive_interval=keepalive_interval,
            noop_timeout=noop_timeout,
            max_payload=max_payload,
        )
        self.catalog = catalog
        self.identity = identity
        self.tls = tls
        self.versions = [tuple(v) for v in versions]
        self.offer_stateful = list(stateful)
        self.offer_stateless = list(stateless)
        self.udp = udp
        self.verification_timeout = verification_timeout
        self._step = "versions"
        self._points: dict[uuid.UUID, _Subscribed] = {}
        self._by_runtime: dict[int, uuid.UUID] = {}
        self._free_ids: list[int] = []
        self._next_id = 0
        self._recipe: list[tuple[int, int, Any, Options]] = []
        self.ever_subscribed = False
        self.udp_key: tuple[bytes, bytes] | None = None
        self._tcp: DataEncoder | None = None
        self._udp: DataEncoder | None = None
        self._datagrams: list[bytes] = []
        self._verify_pending: dict[tuple[int, int], float] = {}
        self._bulk_seq = 0
        self.published = {"tcp": 0, "udp": 0}
        #: Data points published per priority level (the seed's recommended statistics).
        self.published_by_priority = [0] * 8
        #: Values held back by exception (deadband) or down-sampling.
        self.suppressed = 0
        self._send(
            wire.NegotiateSession(
                sub_command=NS.ProtocolVersions,
                body=wire.ProtocolVersions(versions=[wire.Version(*v) for v in self.versions]),
            )
        )

    @property
    def subscribed_points(self) -> list[uuid.UUID]:
        """Points currently subscribed by this peer."""
        return list(self._points)

    def configured(self) -> dict[str, Any]:
        """Subscribed points per characteristic (the seed's recommended statistics)."""
        by_priority = [0] * 8
        counts = {"lossy": 0, "verified": 0, "exception": 0, "downsampled": 0}
        for entry in self._points.values():
            options = entry.options
            by_priority[options.priority] += 1
            counts["lossy"] += options.lossy
            counts["verified"] += entry.verify
            counts["exception"] += options.exception
            counts["downsampled"] += bool(options.resolution)
        return {"by_priority": by_priority, **counts}

    def runtime_id(self, point: uuid.UUID) -> int | None:
        """Runtime ID assigned to ``point`` in this session."""
        entry = self._points.get(point)
        return None if entry is None else entry.runtime_id

    def datagrams_to_send(self) -> list[bytes]:
        """Frames for the UDP data channel (one per datagram); empties the queue."""
        out, self._datagrams = self._datagrams, []
        return out

    # negotiation
    def _succeeded(self, ok: wire.RequestSucceeded, now: float) -> list[Event]:
        if ok.command == CC.NegotiateSession and self.negotiated is None:
            return self._negotiation_reply(ok.data, now)
        if self.negotiated is None:
            raise _Terminate(CC.RequestSucceeded, "response before session negotiation completed")
        if ok.command == CC.SendDataPoints:
            return self._receipts(ok.data)
        return super()._succeeded(ok, now)

    def _failed(self, failed: wire.RequestFailed, now: float) -> list[Event]:
        events = super()._failed(failed, now)
        if self.negotiated is None and failed.command == CC.NegotiateSession and not self.closed:
            events += self._close(f"subscriber refused negotiation: {failed.reason}", True)
        return events

    def _negotiation_reply(self, data: bytes, now: float) -> list[Event]:
        if self._step == "versions":
            chosen = wire.ProtocolVersions.parse(data)
            picked = [(v.major, v.minor) for v in chosen.versions]
            if len(picked) != 1 or picked[0] not in self.versions:
                return self._terminate(CC.NegotiateSession, f"unacceptable protocol {picked}")
            self.version = picked[0]
            self._step = "modes"
            self._send(
                wire.NegotiateSession(
                    sub_command=NS.OperationalModes,
                    body=_modes(int(self.udp), self.offer_stateful, self.offer_stateless),
                )
            )
            return []
        if self._step != "modes":
            raise _Terminate(CC.NegotiateSession, "unexpected negotiation reply")
        modes = wire.OperationalModes.parse(data)
        stateful, stateless = _names(modes.stateful), _names(modes.stateless)
        offered_sf = {(n, ALGORITHM_VERSIONS[n]) for n in self.offer_stateful}
        offered_sl = {(n, ALGORITHM_VERSIONS[n]) for n in self.offer_stateless}
        if len(stateful) != 1 or stateful[0] not in offered_sf:
            return self._terminate(CC.NegotiateSession, f"unacceptable stateful mode {stateful}")
        if len(stateless) != 1 or stateless[0] not in offered_sl:
            return self._terminate(CC.NegotiateSession, f"unacceptable stateless mode {stateless}")
        if stateless[0][0] == "TSSC":
            return self._terminate(CC.NegotiateSession, "TSSC cannot be stateless")
        if modes.udp_port and not self.udp:
            return self._terminate(CC.NegotiateSession, "this publisher does not support UDP")
        self._succeed(CC.NegotiateSession)
        self._step = "done"
        self._tcp = DataEncoder(stateful[0][0], stateful=True, max_payload=self.max_payload)
        if modes.udp_port:
            self._udp = DataEncoder(stateless[0][0], stateful=False, max_payload=self.max_payload)
        return self._negotiation_done(
            NegotiationComplete(self.version, stateful[0][0], stateless[0][0], modes.udp_port)
        )

    # commands
    def _command(self, code: int, payload: bytes, now: float) -> list[Event]:
        if self.negotiated is None:
            raise _Terminate(code, f"{_name(code)} before session negotiation completed")
        message = wire.parse_payload(code, payload)
        if code == CC.Subscribe:
            return self._subscribe(message)
        if code == CC.GetMetadataSchema:
            self._send(
                wire.GetMetadataSchemaResponse(
                    schema=self.catalog.metadata.schema(message.include_schema)
                )
            )
            return []
        if code == CC.GetMetadata:
            return self._get_metadata(message)
        if code == CC.SecureDataChannel:
            return self._secure_data_channel()
        raise _Terminate(code, f"{_name(code)} is not handled by a publisher")

    def _secure_data_channel(self) -> list[Event]:
        if not self.negotiated or not self.negotiated.udp_port:
            self._refuse(
                CC.SecureDataChannel,
                "data channel functions can only be secured when a lossy communications "
                "protocol (UDP) has been established",
            )
            return []
        if not self.tls:
            self._refuse(
                CC.SecureDataChannel,
                "data channel functions can only be secured when command channel functions are "
                "already secured using TLS",
            )
            return []
        if self.ever_subscribed:
            self._refuse(
                CC.SecureDataChannel,
                "data channel functions cannot be secured after a subscription has already "
                "been initiated",
            )
            return []
        key, iv = os.urandom(32), os.urandom(16)
        self.udp_key = (key, iv)
        self._succeed(CC.SecureDataChannel, "keys", wire.DataChannelKeys(key=key, iv=iv).build())
        return [DataChannelSecured(key, iv)]

    def _get_metadata(self, request: wire.GetMetadata) -> list[Event]:
        def visible(table: MetaTable, row: Mapping[str, Any]) -> bool:
            if table.name.upper() != "DATAPOINT":
                return True
            return self.catalog.access.allowed(self.identity, row[table.key], row)

        try:
            items = self.catalog.metadata.answer(request, visible)
        except MetadataError as exc:
            self._refuse(CC.GetMetadata, "bad metadata query", details=str(exc))
            return []
        batch: list[wire.MetadataResponseItem] = []
        size = 0
        for item in items:
            item_size = len(item.build())
            if batch and size + item_size > self.max_payload - 16:
                self._send(wire.GetMetadataResponse(items=batch))
                batch, size = [], 0
            batch.append(item)
            size += item_size
        self._send(wire.GetMetadataResponse(items=batch))
        return []

    def _subscribe(self, request: wire.Subscribe) -> list[Event]:
        recipe = list(self._recipe)
        options = Options()
        named: dict[str, str] = {}
        for item in request.items:
            if item.sub_command == SSC.ConfigureOptions:
                pairs = {nv.name: nv.value for nv in item.body.items}
                if item.mode == SM.Replace:
                    named = dict(pairs)
                elif item.mode == SM.Append:
                    named.update(pairs)
                else:
                    for name in pairs:
                        named.pop(name, None)
                try:
                    options = Options.from_named(named)
                except CharacteristicsError as exc:
                    self._refuse(CC.Subscribe, "bad subscription options", details=str(exc))
                    return []
                granted = self.catalog.policy.review(options)
                if granted != options:
                    proposed = wire.SttpNamedSet(
                        items=[
                            wire.NamedValue(name=k, value=v) for k, v in granted.to_named().items()
                        ]
                    )
                    self._refuse(
                        CC.Subscribe,
                        "requested characteristics refused; proposed values attached",
                        proposed.build(),
                    )
                    return []
                continue
            if item.mode == SM.Replace:
                recipe = []
            recipe.append((item.mode, item.sub_command, item.body, options))
        if len(recipe) > _MAX_RECIPE:
            self._refuse(CC.Subscribe, "subscription too fragmented; use Replace")
            return []
        try:
            wanted = self._evaluate(recipe)
        except MetadataError as exc:
            self._refuse(CC.Subscribe, "bad subscription query", details=str(exc))
            return []
        self._recipe = recipe
        self.ever_subscribed = True
        events = self._apply(wanted)
        self._succeed(CC.Subscribe, f"{len(self._points)} data points subscribed")
        return events

    def _evaluate(self, recipe: list[tuple[int, int, Any, Options]]) -> dict[uuid.UUID, Options]:
        catalog = self.catalog
        wanted: dict[uuid.UUID, Options] = {}
        offered = catalog.points()
        offered_set = set(offered)
        for mode, kind, body, options in recipe:
            if kind == SSC.AllDataPoints:
                selected = offered
            elif kind == SSC.DataPointByID:
                selected = [p for p in body if p in offered_set]
            else:
                selected = self._query(body)
            if mode == SM.Remove:
                for point in selected:
                    wanted.pop(point, None)
            else:
                for point in selected:
                    wanted[point] = options
        return {
            p: o
            for p, o in wanted.items()
            if catalog.access.allowed(self.identity, p, catalog.row(p))
        }

    def _query(self, text: str) -> list[uuid.UUID]:
        table = self.catalog.datapoint_table()
        if table is None:
            raise MetadataError("no DataPoint table to query")
        request = wire.GetMetadata(query=text)
        items = self.catalog.metadata.answer(request)
        result = decode_result(items)
        if result.table is None or result.table.name.upper() != "DATAPOINT":
            raise MetadataError("a subscription query must select from the DataPoint table")
        return [row[table.key] for row in result.rows]

    def _apply(self, wanted: dict[uuid.UUID, Options]) -> list[Event]:
        added: list[wire.DataPointKey] = []
        removed: list[wire.DataPointKey] = []
        for point in list(self._points):
            if point not in wanted:
                entry = self._points.pop(point)
                del self._by_runtime[entry.runtime_id]
                self._free_ids.append(entry.runtime_id)
                removed.append(
                    wire.DataPointKey(
                        runtime_id=entry.runtime_id,
                        point_id=point,
                        value_type=wire.ValueTypeCode(entry.value_type),
                        flags=wire.StateFlags(0),
                    )
                )
        verified = self.catalog.policy.verified_points
        for point, options in wanted.items():
            entry = self._points.get(point)
            value_type = self.catalog.value_type(point)
            if entry is not None and entry.options == options and entry.value_type == value_type:
                continue
            if entry is None:
                if self._free_ids:
                    runtime_id = self._free_ids.pop()
                else:
                    runtime_id = self._next_id
                    self._next_id += 1
                entry = _Subscribed(
                    runtime_id,
                    value_type,
                    options,
                    point in verified,
                    self._filter(point, options),
                )
                self._points[point] = entry
                self._by_runtime[runtime_id] = point
            else:
                entry.options = options
                entry.value_type = value_type
                entry.filter = self._filter(point, options)
            added.append(
                wire.DataPointKey(
                    runtime_id=entry.runtime_id,
                    point_id=point,
                    value_type=wire.ValueTypeCode(entry.value_type),
                    flags=wire.StateFlags(options.state_flags(entry.verify)),
                )
            )
        keys = removed + added
        for start in range(0, len(keys), _MAPPING_CHUNK):
            self._send(wire.RuntimeIDMapping(points=keys[start : start + _MAPPING_CHUNK]))
        if keys:
            return [SubscriptionChanged(list(self._points))]
        return []

    def _filter(self, point: uuid.UUID, options: Options) -> PointFilter:
        if options.resolution and not options.angle and self.catalog.is_angle(point):
            from dataclasses import replace

            return PointFilter(replace(options, angle=True))
        return PointFilter(options)

    def access_changed(self) -> list[Event]:
        """Re-evaluate the subscription after metadata or access rules changed."""
        if self.negotiated is None or self.closed:
            return []
        try:
            wanted = self._evaluate(self._recipe)
        except MetadataError:
            wanted = {}
        return self._apply(wanted)

    # data
    def publish(self, measurements: Iterable[Measurement], now: float = 0.0) -> int:
        """Queue the subscribed measurements; returns how many data points were queued."""
        if self.negotiated is None or self.closed or not self._points:
            return 0
        points = self._points
        tcp: list[WirePoint] = []
        udp: list[WirePoint] = []
        verified: list[WirePoint] = []
        prioritised = False
        use_udp = self._udp is not None
        for m in measurements:
            entry = points.get(m.signal_id)
            if entry is None:
                continue
            if entry.filter.passthrough:
                out = [(m.timestamp, m.value, m.flags)]
            else:
                out = entry.filter.offer(m.timestamp, m.value, m.flags)
            options = entry.options
            if options.priority:
                prioritised = True
            if not out:
                self.suppressed += 1
            self.published_by_priority[options.priority] += len(out)
            for stamp, value, quality in out:
                try:
                    value = _coerce(entry.value_type, value)
                except (TypeError, ValueError, OverflowError):
                    self.stats["rejected"] = self.stats.get("rejected", 0) + 1
                    continue
                point = WirePoint(entry.runtime_id, entry.value_type, stamp, value, quality)
                if entry.verify:
                    verified.append(point)
                    self._verify_pending[(entry.runtime_id, stamp)] = (
                        now + self.verification_timeout
                    )
                elif options.lossy and use_udp:
                    udp.append(point)
                else:
                    tcp.append(point)
        if prioritised:
            tcp.sort(key=lambda p: -self._points[self._by_runtime[p.runtime_id]].options.priority)
        assert self._tcp is not None
        if tcp:
            self._send_frames(self._tcp.encode(tcp))
        if verified:
            basic = DataEncoder("NONE", stateful=True, max_payload=self.max_payload)
            self._send_frames(basic.encode(verified))
        if udp and self._udp is not None:
            self._datagrams.extend(self._udp.encode(udp))
        self.published["tcp"] += len(tcp) + len(verified)
        self.published["udp"] += len(udp)
        return len(tcp) + len(udp) + len(verified)

    def _receipts(self, data: bytes) -> list[Event]:
        if len(data) % _RECEIPT.size:
            raise _Terminate(CC.RequestSucceeded, "malformed verification receipt")
        events: list[Event] = []
        for offset in range(0, len(data), _RECEIPT.size):
            runtime_id, stamp = _RECEIPT.unpack_from(data, offset)
            if self._verify_pending.pop((runtime_id, stamp), None) is not None:
                point = self._by_runtime.get(runtime_id)
                if point is not None:
                    events.append(Verified(point, stamp))
        return events

    def next_deadline(self) -> float | None:
        """Earliest timer including verification receipts."""
        base = super().next_deadline()
        if self._verify_pending:
            first = min(self._verify_pending.values())
            return first if base is None else min(base, first)
        return base

    def tick(self, now: float) -> list[Event]:
        """Time-outs, keep-alive and overdue verification receipts."""
        events = super().tick(now)
        expired = [k for k, t in self._verify_pending.items() if now >= t]
        for key in expired:
            del self._verify_pending[key]
            point = self._by_runtime.get(key[0])
            if point is not None:
                events.append(VerificationTimedOut(point, key[1]))
        return events

    def send_bulk(self, data: bytes, fundamental_type: int = ValueType.STTP_BUFFER) -> uuid.UUID:
        """Send a large buffer (e.g. a file) with BulkTransport; returns its transfer id."""
        if self.negotiated is None:
            raise RuntimeError("session negotiation has not completed")
        transfer = uuid.uuid4()
        BTS = wire.BulkTransportSubCommand
        self._send(
            wire.BulkTransport(
                item=wire.BulkTransportItem(
                    sub_command=BTS.BeginSend,
                    body=wire.BulkBeginSend(
                        id=transfer,
                        fundamental_type=wire.ValueTypeCode(fundamental_type),
                        length=len(data),
                    ),
                )
            )
        )
        step = self.max_payload - 64
        for offset in range(0, len(data), step):
            self._send(
                wire.BulkTransport(
                    item=wire.BulkTransportItem(
                        sub_command=BTS.SendFragment,
                        body=wire.BulkSendFragment(
                            id=transfer, offset=offset, data=data[offset : offset + step]
                        ),
                    )
                )
            )
        return transfer


# --- subscriber --------------------------------------------------------------------------------


class SubscriberSession(_Session):
    """The subscriber end of one connection.

    ``versions`` supported, ``stateful``/``stateless`` algorithm preferences (first offered
    one wins), ``udp_port`` the local UDP port for the data channel (0: none), time-outs in
    seconds, ``max_bulk`` bytes accepted per BulkTransport.
    """

    role = "subscriber"

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
        self._step = "versions"
        self.mapping: dict[int, tuple[uuid.UUID, int, int]] = {}
        self._tcp = DataDecoder(stateful=True)
        self._fragments = assembler()
        self._metadata: list[wire.MetadataResponseItem] = []
        self._bulk: dict[uuid.UUID, tuple[int, int, bytearray]] = {}
        self.unmapped = 0
        self.received = {"tcp": 0, "udp": 0}
        #: Why the last dropped datagram was refused.
        self.last_datagram_error = ""

    # negotiation
    def _command(self, code: int, payload: bytes, now: float) -> list[Event]:
        if code == CC.NegotiateSession:
            return self._negotiate(wire.NegotiateSession.parse(payload))
        if self.negotiated is None:
            raise _Terminate(code, f"{_name(code)} before session negotiation completed")
        if code == CC.SendDataPoints:
            return self._points(self._tcp.basic(payload), "tcp")
        if code in (CC.BeginFragment, CC.NextFragment):
            packet = self._fragments.feed(code, payload)
            return [] if packet is None else self._points(self._tcp.packet(packet), "tcp")
        if code == CC.RuntimeIDMapping:
            return self._mapping(wire.RuntimeIDMapping.parse(payload))
        if code == CC.GetMetadataSchemaResponse:
            if not self._answered(CC.GetMetadataSchema):
                raise _Terminate(code, "GetMetadataSchemaResponse without a request")
            return [MetadataSchemaReceived(wire.GetMetadataSchemaResponse.parse(payload).schema)]
        if code == CC.GetMetadataResponse:
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
        if code == CC.BulkTransport:
            return self._bulk_item(wire.BulkTransport.parse(payload).item)
        raise _Terminate(code, f"{_name(code)} is not handled by a subscriber")

    def _negotiate(self, message: wire.NegotiateSession) -> list[Event]:
        if self.negotiated is not None:
            raise _Terminate(CC.NegotiateSession, "session negotiation already completed")
        if message.sub_command == NS.ProtocolVersions and self._step == "versions":
            offered = [(v.major, v.minor) for v in message.body.versions]
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
        if message.sub_command == NS.OperationalModes and self._step == "modes":
            modes = message.body
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
                mine = _modes(self.udp_port, self.prefer_stateful, self.prefer_stateless)
                return self._terminate(CC.NegotiateSession, problem, mine.build())
            assert stateful is not None and stateless is not None
            self._chosen = (stateful, stateless)
            self._step = "confirm"
            self._succeed(
                CC.NegotiateSession, data=_modes(self.udp_port, [stateful], [stateless]).build()
            )
            return []
        raise _Terminate(CC.NegotiateSession, "NegotiateSession out of order")

    def _frame(self, code: int, payload: bytes, now: float) -> list[Event]:
        if self._fragments.busy and code != CC.NextFragment:
            raise _Terminate(code, f"{_name(code)} interleaved with a fragmented packet")
        return super()._frame(code, payload, now)

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
                NegotiationComplete(self.version, self._chosen[0], self._chosen[1], self.udp_port)
            )
        if self.negotiated is None:
            raise _Terminate(CC.RequestSucceeded, "response before session negotiation completed")
        if ok.command == CC.SecureDataChannel and self._answered(CC.SecureDataChannel):
            keys = wire.DataChannelKeys.parse(ok.data)
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
        self._succeed(CC.RuntimeIDMapping)
        return [MappingChanged(added, removed)]

    def receive_datagram(self, datagram: bytes) -> list[Event]:
        """One decrypted UDP datagram (one frame). Bad datagrams are dropped and counted."""
        if self.negotiated is None or self.closed:
            return []
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
            self.stats["bad_datagrams"] = self.stats.get("bad_datagrams", 0) + 1
            self.last_datagram_error = str(exc)
            return []
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

    def _bulk_item(self, item: wire.BulkTransportItem) -> list[Event]:
        BTS = wire.BulkTransportSubCommand
        body = item.body
        if item.sub_command == BTS.BeginSend:
            pending = sum(state[1] for state in self._bulk.values())
            if body.length + pending > self.max_bulk:
                raise _Terminate(CC.BulkTransport, f"bulk transfer of {body.length} bytes too big")
            if len(self._bulk) >= 16:
                raise _Terminate(CC.BulkTransport, "too many concurrent bulk transfers")
            self._bulk[body.id] = (int(body.fundamental_type), body.length, bytearray())
            return self._bulk_done(body.id)
        if item.sub_command == BTS.CancelSend:
            self._bulk.pop(body.id, None)
            return []
        state = self._bulk.get(body.id)
        if state is None:
            raise _Terminate(CC.BulkTransport, "bulk fragment of an unknown transfer")
        if body.offset != len(state[2]) or len(state[2]) + len(body.data) > state[1]:
            raise _Terminate(CC.BulkTransport, "bulk fragment out of order or too long")
        state[2].extend(body.data)
        return self._bulk_done(body.id)

    def _bulk_done(self, transfer: uuid.UUID) -> list[Event]:
        kind, length, data = self._bulk[transfer]
        if len(data) < length:
            return []
        del self._bulk[transfer]
        return [BulkReceived(transfer, kind, bytes(data))]
