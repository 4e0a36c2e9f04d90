"""The machinery both session roles of the draft profile share: framing, RequestSucceeded /
RequestFailed, termination, time-outs, NoOp keep-alive, the negotiation helpers, and
fragmentation of oversized commands in both directions.

Any command whose payload is larger than ``max_payload`` is sent as BeginFragment +
NextFragment frames, queued back to back so nothing is interleaved with them; the receiver
reassembles it (bounded: see each role's ``max_fragmented``) and handles it as if it had come
whole. A frame other than NextFragment while a fragmented packet is incomplete ends the
session. When the negotiated stateful algorithm is DEFLATE each direction of the command
channel runs one DEFLATE stream (see :mod:`gridbind.sttp.draft.packets`): oversized commands of
at most 16384 bytes are then sent as ``Deflate`` fragments of that stream."""

from __future__ import annotations

import logging
import struct
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar

from gridbind.generated.sttp import draft_0_8 as wire
from gridbind.sttp.codecsupport import ConstraintError, WireError
from gridbind.sttp.draft.compression import DeflateCompressor, DeflateDecompressor
from gridbind.sttp.draft.events import (
    CommandFailed,
    CommandSucceeded,
    Event,
    NegotiationComplete,
    SessionClosed,
)
from gridbind.sttp.draft.fragments import Assembler, Fragmenter
from gridbind.sttp.draft.framing import FrameError, FrameReader, encode_frame
from gridbind.sttp.draft.metadata import MetadataError
from gridbind.sttp.draft.packets import STREAM_DEFLATE_LEVEL, FragmentError, PacketError
from gridbind.sttp.encoding import ValueType
from gridbind.sttp.errors import InvalidArgument

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
_FRAGMENT_CODES = (CC.BeginFragment, CC.NextFragment)
_ANSWERS = (CC.RequestSucceeded, CC.RequestFailed)
_MAPPING_CHUNK = 600
_MAX_RECIPE = 4096
# Commands a peer may pipeline behind a filter being evaluated off the event loop.
_MAX_BACKLOG = 64


class _Terminate(Exception):
    def __init__(self, command: int, reason: str) -> None:
        super().__init__(reason)
        self.command = command
        self.reason = reason


#: A handler of one command code: ``(session, code, payload, now) -> events``.
FrameHandler = Callable[[Any, int, bytes, float], list[Event]]


class _Session:
    role = ""
    #: What each command sent to this role does, by code (each role sets its table).
    COMMANDS: ClassVar[Mapping[int, FrameHandler]] = {}
    #: Commands this role handles before the session negotiation completed.
    BEFORE_NEGOTIATION: ClassVar[frozenset[int]] = frozenset()
    #: Largest fragmented packet (declared sizes) this role reassembles.
    max_fragmented = 4 << 20

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
        #: when the next keep-alive NoOp is due: from negotiation on (before it, a NoOp is
        #: refused, and a due time that tick() cannot act on would make the timer spin)
        self._next_noop: float | None = None
        self._pending: dict[int, deque[float]] = {}
        self.stats = {"frames_in": 0, "frames_out": 0, "bytes_in": 0, "bytes_out": 0}
        self._fragments = Assembler(self.max_fragmented)
        #: The session streams of a negotiated stateful DEFLATE (sending, receiving).
        self._deflate_out: DeflateCompressor | None = None
        self._deflate_in: DeflateDecompressor | None = None
        # A command whose filter runs off the event loop parks the session (FilterRequested);
        # the frames behind it wait here, in order.
        self._parked: Any = None
        self._backlog: deque[tuple[int, bytes]] = deque()

    # sending
    def _send(self, message: Any) -> None:
        self._send_raw(type(message).CODE, message.build())

    def _send_raw(self, code: int, payload: bytes) -> None:
        """Send one command; a payload above ``max_payload`` goes as BeginFragment +
        NextFragment frames (``Deflate`` with the session stream when stateful DEFLATE was
        negotiated and it is at most 16384 bytes, RequestSucceeded/RequestFailed excepted),
        which the peer reassembles."""
        if self.closed:
            return
        if len(payload) > self.max_payload and code not in _FRAGMENT_CODES:
            mode = wire.CompressionMode.Uncompressed
            if self._deflate_out is not None and code not in _ANSWERS:
                # (> 16384 raw goes uncompressed.) Answers stay readable: a gateway routes
                # them by the command code they answer, the first byte of first_fragment.
                mode = wire.CompressionMode.Deflate
            fragmenter = Fragmenter(self.max_payload + 3, deflate_stream=self._deflate_out)
            self._send_frames(fragmenter.frames(code, payload, mode))
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
        """When :meth:`tick` must be called next (``None``: no timer running, e.g. closed)."""
        if self.closed:
            return None
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
            if self._parked is not None:
                if len(self._backlog) >= _MAX_BACKLOG:
                    return events + self._terminate(
                        code, f"more than {_MAX_BACKLOG} commands behind a filter evaluation"
                    )
                self._backlog.append((code, payload))
                continue
            events.extend(self._guarded_frame(code, payload, now))
        return events

    def _guarded_frame(self, code: int, payload: bytes, now: float) -> list[Event]:
        try:
            return self._frame(code, payload, now)
        except _Terminate as exc:
            return self._terminate(exc.command, exc.reason)
        except (WireError, ConstraintError, PacketError, FragmentError, MetadataError) as exc:
            return self._terminate(code, f"malformed {_name(code)}: {exc}")
        except Exception as exc:  # noqa: BLE001 - hostile input must end the session, not us
            log.exception("unexpected error handling %s", _name(code))
            return self._terminate(code, f"cannot handle {_name(code)}: {exc!r}")

    def filter_done(self, result: Any, now: float) -> list[Event]:
        """The result of a :class:`FilterRequested` run -> events; waiting commands then run."""
        finish, self._parked = self._parked, None
        if finish is None or self.closed:
            return []
        try:
            events: list[Event] = list(finish(result))
        except _Terminate as exc:
            events = self._terminate(exc.command, exc.reason)
        except Exception as exc:  # noqa: BLE001 - as for a frame: end the session, not us
            log.exception("unexpected error finishing a deferred request")
            events = self._terminate(0, f"cannot finish the request: {exc!r}")
        while self._backlog and self._parked is None and not self.closed:
            code, payload = self._backlog.popleft()
            events.extend(self._guarded_frame(code, payload, now))
        return events

    def _frame(self, code: int, payload: bytes, now: float) -> list[Event]:
        if self._fragments.busy and code != CC.NextFragment:
            raise _Terminate(code, f"{_name(code)} interleaved with a fragmented packet")
        shared = _Session.SHARED.get(code)
        if shared is not None:
            return shared(self, code, payload, now)
        if code not in wire.MESSAGES:
            raise _Terminate(code, f"unknown command code {code:#04x}")
        info = wire.MESSAGES[code]
        if info.direction == self.role:
            raise _Terminate(code, f"{info.name} is not sent to a {self.role}")
        return self._command(code, payload, now)

    def _command(self, code: int, payload: bytes, now: float) -> list[Event]:
        """A command sent to this role: its entry in the role's ``COMMANDS``, once the session
        is negotiated (``BEFORE_NEGOTIATION`` excepted)."""
        if self.negotiated is None and code not in self.BEFORE_NEGOTIATION:
            raise _Terminate(code, f"{_name(code)} before session negotiation completed")
        handler = self.COMMANDS.get(code, _Session._not_handled)
        return handler(self, code, payload, now)

    def _not_handled(self, code: int, payload: bytes, now: float) -> list[Event]:
        """A documented refusal: RequestFailed (terminate), the session closes."""
        raise _Terminate(code, f"{_name(code)} is not handled by a {self.role}")

    # frames both roles handle alike (the table SHARED follows them)
    def _request_failed(self, code: int, payload: bytes, now: float) -> list[Event]:
        failed = wire.RequestFailed.parse(payload)
        self._answered(failed.command)
        return self._failed(failed, now)

    def _request_succeeded(self, code: int, payload: bytes, now: float) -> list[Event]:
        ok = wire.RequestSucceeded.parse(payload)
        if ok.command == CC.NoOp:
            self._noop_deadline = None
            if self.keepalive_interval:
                self._next_noop = now + self.keepalive_interval
            return []
        return self._succeeded(ok, now)

    def _noop(self, code: int, payload: bytes, now: float) -> list[Event]:
        if payload:
            raise _Terminate(code, "NoOp carries no payload")
        if self.negotiated is None:
            raise _Terminate(code, "NoOp before session negotiation completed")
        self._succeed(CC.NoOp)
        return []

    #: Frames either role may receive, handled alike; every other code goes through
    #: ``_frame``'s checks (unknown code, wrong direction: the session closes) to the role's
    #: ``COMMANDS``. tests/sttp/test_handler_tables.py checks that every generated code has
    #: a place.
    SHARED: ClassVar[dict[int, FrameHandler]] = {
        CC.RequestSucceeded: _request_succeeded,
        CC.RequestFailed: _request_failed,
        CC.NoOp: _noop,
    }

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

    def _negotiation_done(self, event: NegotiationComplete, now: float) -> list[Event]:
        self.negotiated = event
        self._negotiation_deadline = None
        if self.keepalive_interval:
            self._next_noop = now + self.keepalive_interval
        if event.stateful == "DEFLATE":
            self._deflate_out = DeflateCompressor(level=STREAM_DEFLATE_LEVEL)
            self._deflate_in = DeflateDecompressor()
            self._fragments.deflate_stream = self._deflate_in
        return [event]


def _coerce(value_type: int, value: Any) -> Any:
    """``value`` as the Python form of ``value_type`` (raises when it cannot be)."""
    if value_type in (ValueType.SINGLE, ValueType.DOUBLE):
        return value if type(value) is float else float(value)
    if value_type == ValueType.BOOL:
        return bool(value)
    if value_type in (ValueType.INT64, ValueType.STTP_TIME):
        if isinstance(value, float) and not value.is_integer():
            raise InvalidArgument(f"{value} is not an integer")
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
