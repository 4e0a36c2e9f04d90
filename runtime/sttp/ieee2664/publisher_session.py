"""Sans-IO protocol core of one IEEE 2664 subscriber connection on the publisher side.

:class:`PublisherSession` knows nothing about sockets: the asyncio transport in
:mod:`.publisher` feeds it what arrives (``receive``) and the time (``tick`` at
``next_deadline``), sends what it queues (``data_to_send()`` for the TCP command channel,
``datagrams_to_send()`` for UDP) and dispatches the events. Commands are dispatched by a handler
table keyed by the generated ``ServerCommand`` codes. Any breach of the wire raises
:class:`ProtocolError`: close the session.
"""

from __future__ import annotations

import math
import struct
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from gridbind.generated.sttp.ieee2664 import (
    BufferBlockFlags,
    DataPacketFlags,
    OperationalEncoding,
    OperationalModes,
    ServerCommand,
    ServerResponse,
)
from gridbind.sttp.errors import InvalidArgument
from gridbind.sttp.expressions import (
    FilterExpressionError,
    evaluation_result,
    select_signal_ids,
)
from gridbind.sttp.ieee2664 import codecs
from gridbind.sttp.ieee2664.cipher import encrypt, new_cipher_keys, new_key_pair
from gridbind.sttp.ieee2664.compact import CompactCodec, SignalIndexCache
from gridbind.sttp.ieee2664.events import (
    CipherKeysActivated,
    Confirmed,
    Event,
    FilterRequested,
    KeysRotationRequested,
    MetadataRequested,
    ModesDefined,
    ProcessingIntervalChanged,
    ReplayDue,
    SessionExpired,
    Subscribed,
    Unsubscribed,
    UserCommand,
)
from gridbind.sttp.ieee2664.metadata import (
    DataSet,
    DataTable,
    MetadataError,
    iter_signal_keys,
)
from gridbind.sttp.ieee2664.params import SettingsError, SubscriptionSettings
from gridbind.sttp.ieee2664.publisher_state import PublisherState
from gridbind.sttp.ieee2664.statistics import Statistics
from gridbind.sttp.ieee2664.wire import (
    MAX_COMMAND_SIZE,
    VERSION_BITS,
    BaseTimes,
    CipherKeys,
    PacketReader,
    ProtocolError,
    encode_message,
    gzip_bytes,
    is_user_command,
    is_user_response,
    parse_metadata_filters,
    parse_subscribe,
    response_body,
    response_packet,
    split_command,
)
from gridbind.sttp.measurement import Measurement

_U32 = struct.Struct(">I")
_DATA_HEAD = struct.Struct(">BI")  # flags, count
# Commands a subscriber may pipeline behind a filter being evaluated off the event loop.
_MAX_BACKLOG = 64
#: The subscriber's confirmations (CONFIRM_*): they answer what this side sent, queue no
#: answer and wait for nothing, so they are handled at once, never held (nor counted) behind
#: a filter evaluation or a full send queue.
_CONFIRMATIONS = frozenset(code for code in ServerCommand if code.name.startswith("Confirm"))
#: Measurements per compact data packet; keeps every packet (and UDP datagram, at most 17 bytes
#: per measurement plus AES padding) under 32 KiB: the deployed publishers' MaxPacketSize (the
#: C++ API splits compact packets at 32768 bytes on TCP and UDP alike) and sttpapi's datagram
#: receive buffer. Smaller datagrams do not lower loopback loss (receive-buffer overflow while
#: the receiver is busy); a larger receive buffer does, see ``Subscriber.udp_receive_buffer``.
COMPACT_CHUNK = 1800


@dataclass
class SessionTiming:
    """The periods a publisher session keeps by itself (seconds; 0 / None: off)."""

    #: NO_OP keep-alive period
    noop_interval: float = 0.0
    #: a connection must define its operational modes within this (then SessionExpired)
    negotiation_timeout: float = 0.0
    #: period of UDP cipher key rotation (encrypted UDP subscriptions)
    cipher_rotation_interval: float | None = None


_CommandHandler = Callable[["PublisherSession", ServerCommand, bytes, list[Event]], None]
#: The user-defined command codes of the generated spec (0xD0-0xDF).
USER_COMMANDS = tuple(code for code in ServerCommand if is_user_command(code))


class PublisherSession:
    """Protocol core of one subscriber connection on the publisher side.

    Time comes in as ``now`` (seconds of any monotonic clock): the session's own periods
    (keep-alive, negotiation time-out, throttled publication, cipher key rotation and the
    switch to unconfirmed keys) are deadlines; the transport calls :meth:`tick` at
    :meth:`next_deadline`, as the draft-0.8 session core does.
    """

    def __init__(
        self,
        state: PublisherState,
        peer_host: str = "127.0.0.1",
        *,
        now: float = 0.0,
        timing: SessionTiming | None = None,
    ) -> None:
        self.state = state
        self.peer_host = peer_host
        self.timing = timing or SessionTiming()
        self._now = now
        self._deadlines: dict[str, float] = {}
        if self.timing.negotiation_timeout:
            self._deadlines["negotiation"] = now + self.timing.negotiation_timeout
        if self.timing.noop_interval:
            self._deadlines["noop"] = now + self.timing.noop_interval
        #: latest measurement per signal of a throttled subscription, sent at each interval
        self._latest: dict[uuid.UUID, Measurement] = {}
        #: set by the transport while the subscriber lags: throttled data is dropped, counted
        self.hold_data = False
        #: measurements dropped by the session because the subscriber lagged
        self.dropped_measurements = 0
        self._replay_sent_at = now
        self.reader = PacketReader(max_size=MAX_COMMAND_SIZE)
        self.stats = Statistics()
        self.subscriber_id = uuid.uuid4()
        self.modes = 0
        self.version = 0
        self.validated = False
        self.settings: SubscriptionSettings | None = None
        self.subscribed = False
        self.cache: SignalIndexCache | None = None
        self.cache_index = 1  # flips before first use, so the first cache is index 0
        self.udp_target: tuple[str, int] | None = None
        self.keys: CipherKeys | None = None
        self._pending_keys: CipherKeys | None = None
        self._encoder: Any = None
        self.compact = CompactCodec()
        self._base_sent = False
        self._pending_base: BaseTimes | None = None
        self._awaiting_cache_confirm = False
        self._buffer_sequence = 0
        self._out = bytearray()
        self._datagrams: list[bytes] = []
        self._inbox: deque[bytes] = deque()
        self._nan_filter = state.config.force_nan_filter
        #: True: filter evaluations become FilterRequested events (the asyncio shell sets it).
        self.defer_filters = False
        self._parked: Callable[[Any, list[Event]], None] | None = None

    # -- time
    def next_deadline(self) -> float | None:
        """When :meth:`tick` has work next (None: nothing scheduled)."""
        return min(self._deadlines.values(), default=None)

    def tick(self, now: float, now_ticks: int | None = None) -> list[Event]:
        """Do what is due at ``now``: keep-alive, throttled publication, key rotation and the
        switch to unconfirmed keys, negotiation time-out. ``now_ticks`` (wall clock, ticks)
        is the reference of the time reasonability check of throttled data."""
        self._now = now
        events: list[Event] = []
        for name, due in sorted(self._deadlines.items(), key=lambda item: item[1]):
            if due <= now and self._deadlines.get(name) == due:
                del self._deadlines[name]
                getattr(self, f"_due_{name}")(now, now_ticks, events)
        return events

    def _due_negotiation(self, now: float, now_ticks: int | None, events: list[Event]) -> None:
        if not self.validated:
            timeout = self.timing.negotiation_timeout
            events.append(SessionExpired(f"no DEFINE_OPERATIONAL_MODES within {timeout:g} s"))

    def _due_noop(self, now: float, now_ticks: int | None, events: list[Event]) -> None:
        self.noop()
        self._deadlines["noop"] = now + self.timing.noop_interval

    def _due_throttle(self, now: float, now_ticks: int | None, events: list[Event]) -> None:
        settings = self.settings
        if not self.subscribed or settings is None or not settings.throttled:
            return
        self._deadlines["throttle"] = now + max(settings.publish_interval, 0.001)
        if self._latest:
            batch = list(self._latest.values())
            self._latest.clear()
            if self.hold_data:
                self.dropped_measurements += self.count_selected(batch)
            else:
                self.publish(batch, now_ticks)

    def _due_rotation(self, now: float, now_ticks: int | None, events: list[Event]) -> None:
        interval = self.timing.cipher_rotation_interval
        if not interval or not self.subscribed or self.keys is None:
            return
        self._deadlines["rotation"] = now + interval
        self.rotate_cipher_keys()

    def _due_replay(self, now: float, now_ticks: int | None, events: list[Event]) -> None:
        events.append(ReplayDue())

    def replay_sent(self, now: float) -> bool:
        """A historical replay batch went out at ``now``: True when the next may follow at
        once, False when it waits for ReplayDue (``processingInterval`` ms per batch, which
        UPDATE_PROCESSING_INTERVAL may change while it waits)."""
        self._replay_sent_at = now
        settings = self.settings
        interval = settings.processing_interval if settings is not None else -1
        if interval <= 0:
            return True
        self._deadlines["replay"] = now + interval / 1000
        return False

    def _due_confirm(self, now: float, now_ticks: int | None, events: list[Event]) -> None:
        if self.activate_pending_keys():
            events.append(CipherKeysActivated())

    def offer(self, measurements: Sequence[Measurement], now_ticks: int | None = None) -> int:
        """Publish now, or, for a throttled subscription, keep the latest value per signal for
        the next interval; returns how many were queued now."""
        settings = self.settings
        if settings is not None and settings.throttled:
            if self.subscribed:
                for measurement in measurements:
                    self._latest[measurement.signal_id] = measurement
            return 0
        return self.publish(measurements, now_ticks)

    @property
    def held_commands(self) -> int:
        """Commands received but not yet handled (see ``receive``'s ``output_limit``)."""
        return len(self._inbox)

    @property
    def filter_pending(self) -> bool:
        """A FilterRequested is out: commands wait until :meth:`filter_done`."""
        return self._parked is not None

    @property
    def ready(self) -> bool:
        """Subscribed, and (UDP) the subscriber confirmed the signal index cache: publishing
        now sends data."""
        return self.subscribed and self.cache is not None and not self._awaiting_cache_confirm

    @property
    def uses_tssc(self) -> bool:
        """True when data goes out TSSC-compressed (asked for, allowed, TCP, available)."""
        return (
            bool(self.modes & OperationalModes.CompressPayloadData)
            and self.state.config.allow_payload_compression
            and self.udp_target is None
            and codecs.tssc_available()
        )

    def data_to_send(self) -> bytes:
        """Bytes for the TCP command channel."""
        out = bytes(self._out)
        self._out.clear()
        return out

    def datagrams_to_send(self) -> list[bytes]:
        """UDP datagrams for :attr:`udp_target`."""
        out = self._datagrams
        self._datagrams = []
        return out

    def _respond(self, code: int, command: int, payload: bytes = b"") -> None:
        packet = response_packet(code, command, payload)
        self.stats.command_bytes += len(packet)
        self._out += packet

    def succeed(self, command: int, message: str) -> None:
        """Send SUCCEEDED with a status message."""
        self._respond(ServerResponse.Succeeded, command, encode_message(message))

    def fail(self, command: int, message: str) -> None:
        """Send FAILED with a reason."""
        self._respond(ServerResponse.Failed, command, encode_message(message))

    def noop(self) -> None:
        """Queue a NO_OP keep-alive."""
        self._respond(ServerResponse.NoOp, ServerCommand.Subscribe)

    def notify(self, message: str) -> None:
        """Queue a NOTIFY for the subscriber (it confirms with CONFIRM_NOTIFICATION)."""
        self._respond(ServerResponse.Notify, ServerCommand.Subscribe, encode_message(message))

    def configuration_changed(self) -> None:
        """Tell the subscriber that metadata changed."""
        self._respond(ServerResponse.ConfigurationChanged, ServerCommand.Subscribe)

    def user_response(self, code: int, command: int, payload: bytes = b"") -> None:
        """Queue one of the 16 user-defined responses."""
        if not is_user_response(code):
            raise InvalidArgument(f"0x{code:02X} is not a user response code (0xE0-0xEF)")
        self._respond(code, command, payload)

    def data_start_time(self, ticks: int) -> None:
        """Queue DATA_START_TIME (first timestamp of a temporal subscription)."""
        self._respond(
            ServerResponse.DataStartTime, ServerCommand.Subscribe, struct.pack(">q", ticks)
        )

    def processing_complete(self, message: str = "historical replay complete") -> None:
        """Queue PROCESSING_COMPLETE (end of a temporal subscription)."""
        self._respond(
            ServerResponse.ProcessingComplete, ServerCommand.Subscribe, encode_message(message)
        )

    # -- input
    def receive(
        self, data: bytes, output_limit: int | None = None, now: float | None = None
    ) -> list[Event]:
        """Bytes from the subscriber -> events (responses are queued in ``data_to_send``).

        With ``output_limit``, commands stop being handled once that many bytes of answers
        are queued; the rest wait (:attr:`held_commands`) for a later call, e.g.
        ``receive(b"", limit)`` once the subscriber read its answers: a client that does not
        read cannot make the publisher produce without bound. Commands behind a filter being
        evaluated off the event loop wait too (at most ``_MAX_BACKLOG`` of them).
        """
        if now is not None:
            self._now = now
        events: list[Event] = []
        inbox = self._inbox
        inbox.extend(bytes(packet) for packet in self.reader.feed(data))
        while inbox:
            if self._parked is not None:
                self._confirmations(events)
                if len(inbox) > _MAX_BACKLOG:
                    raise ProtocolError(
                        f"more than {_MAX_BACKLOG} commands behind a filter evaluation"
                    )
                break
            if output_limit is not None and len(self._out) > output_limit:
                self._confirmations(events)
                break
            self._packet(inbox.popleft(), events)
        return events

    def _confirmations(self, events: list[Event]) -> None:
        """Handle the held confirmations now; the other held commands keep their order."""
        if not self.validated:
            return  # _packet refuses them then; let the commands ahead be refused first
        held = self._inbox
        if not any(split_command(packet)[0] in _CONFIRMATIONS for packet in held):
            return
        kept = [packet for packet in held if split_command(packet)[0] not in _CONFIRMATIONS]
        confirmations = [packet for packet in held if split_command(packet)[0] in _CONFIRMATIONS]
        held.clear()
        held.extend(kept)
        for packet in confirmations:
            self._packet(packet, events)

    def _packet(self, packet: bytes, events: list[Event]) -> None:
        self.stats.command_bytes += len(packet) + 4
        code, payload = split_command(packet)
        if not self.validated and code != ServerCommand.DefineOperationalModes:
            raise ProtocolError(
                f"command 0x{code:02X} before DEFINE_OPERATIONAL_MODES; closing the session"
            )
        self._command(code, payload, events)

    # -- filter evaluation off the event loop (defer_filters)
    def _evaluate(
        self,
        work: Callable[[], Any],
        finish: Callable[[Any, list[Event]], None],
        events: list[Event],
    ) -> None:
        """Run ``work`` (a bounded filter evaluation) now, or park until the shell ran it."""

        def run() -> Any:
            return evaluation_result(work, (FilterExpressionError, MetadataError))

        if not self.defer_filters:
            finish(run(), events)
            return
        self._parked = finish
        events.append(FilterRequested(run))

    def filter_done(self, result: Any) -> list[Event]:
        """The result of a :class:`FilterRequested` run -> events (then waiting commands run)."""
        events: list[Event] = []
        finish, self._parked = self._parked, None
        if finish is None:
            return events
        finish(result, events)
        while self._inbox and self._parked is None:
            self._packet(self._inbox.popleft(), events)
        return events

    def _command(self, code: int, payload: bytes, events: list[Event]) -> None:
        handler = self.COMMANDS.get(code)
        if handler is None:  # only a code the generated spec gained and COMMANDS lacks
            self.fail(code, f"Command 0x{code:02X} is not supported by this publisher.")
            return
        handler(self, ServerCommand(code), payload, events)

    # -- command handlers (the table COMMANDS follows them)
    def _not_supported(self, code: ServerCommand, payload: bytes, events: list[Event]) -> None:
        """A documented refusal: FAILED, the session goes on (CONNECT is never sent to a
        publisher; it only names the refused connection in a FAILED)."""
        self.fail(code, f"Command 0x{code:02X} is not supported by this publisher.")

    def _unsubscribe(self, code: ServerCommand, payload: bytes, events: list[Event]) -> None:
        self.subscribed = False
        self.cache = None
        self._latest.clear()
        for name in ("throttle", "rotation", "confirm", "replay"):
            self._deadlines.pop(name, None)
        self.succeed(code, "Client unsubscribed.")
        events.append(Unsubscribed())

    def _rotate_keys(self, code: ServerCommand, payload: bytes, events: list[Event]) -> None:
        if self.udp_target is None or not self.state.config.encrypt_udp:
            self.fail(code, "Cipher keys are only used with an encrypted UDP data channel.")
            return
        self.rotate_cipher_keys()
        self.succeed(code, "New cipher keys sent.")
        events.append(KeysRotationRequested())

    def _processing_interval(
        self, code: ServerCommand, payload: bytes, events: list[Event]
    ) -> None:
        if len(payload) < 4:
            self.fail(code, "Processing interval payload too short.")
            return
        (interval,) = struct.unpack_from(">i", payload)
        if self.settings is not None:
            self.settings.processing_interval = interval
        if "replay" in self._deadlines:  # a waiting replay batch goes at the new pace
            self._deadlines["replay"] = self._replay_sent_at + max(interval, 0) / 1000
        self.succeed(code, f"New processing interval of {interval} assigned.")
        events.append(ProcessingIntervalChanged(interval))

    def _cache_confirmed(self, code: ServerCommand, payload: bytes, events: list[Event]) -> None:
        self._awaiting_cache_confirm = False
        events.append(Confirmed(code, payload))

    def _keys_confirmed(self, code: ServerCommand, payload: bytes, events: list[Event]) -> None:
        if self._pending_keys is not None:
            self.keys = self._pending_keys
            self._pending_keys = None
        events.append(Confirmed(code, payload))

    def _base_confirmed(self, code: ServerCommand, payload: bytes, events: list[Event]) -> None:
        if self._pending_base is not None:
            self._apply_base(self._pending_base)
            self._pending_base = None
        events.append(Confirmed(code, payload))

    def _confirmed(self, code: ServerCommand, payload: bytes, events: list[Event]) -> None:
        events.append(Confirmed(code, payload))

    def _schema(self, code: ServerCommand, payload: bytes, events: list[Event]) -> None:
        source = (
            self.state.metadata.tables
            if code == ServerCommand.GetPrimaryMetadataSchema
            else [self.state.active]
        )
        xml = DataSet("DataSet", [DataTable(t.name, t.columns) for t in source]).to_xml()
        compressed = bool(self.modes & OperationalModes.CompressMetadata)
        self._respond(ServerResponse.Succeeded, code, gzip_bytes(xml) if compressed else xml)

    def _user_command(self, code: ServerCommand, payload: bytes, events: list[Event]) -> None:
        events.append(UserCommand(code, payload))

    def _define_modes(self, code: ServerCommand, payload: bytes, events: list[Event]) -> None:
        if len(payload) < 4:
            self.fail(ServerCommand.DefineOperationalModes, "Operational modes payload too short.")
            raise ProtocolError("DEFINE_OPERATIONAL_MODES payload too short")
        (modes,) = _U32.unpack_from(payload)
        version = modes & VERSION_BITS
        encoding = modes & OperationalModes.EncodingMask
        if not 1 <= version <= 3:
            self.fail(
                ServerCommand.DefineOperationalModes,
                f"Protocol version {version} is not supported (1-3).",
            )
            raise ProtocolError(f"subscriber asked for protocol version {version}")
        if encoding != OperationalEncoding.Utf8:
            self.fail(
                ServerCommand.DefineOperationalModes, "Only UTF-8 string encoding is supported."
            )
            raise ProtocolError("subscriber asked for a UTF-16 string encoding")
        self.modes, self.version, self.validated = modes, version, True
        self._deadlines.pop("negotiation", None)
        self.succeed(
            ServerCommand.DefineOperationalModes,
            f"STTP v{version} client connection accepted: requested operational modes applied.",
        )
        events.append(ModesDefined(modes, version))

    def _metadata_refresh(self, code: ServerCommand, payload: bytes, events: list[Event]) -> None:
        command = code
        if not self.state.config.allow_metadata_refresh:
            self.fail(command, "Meta-data refresh has been disallowed by the publisher.")
            return
        try:
            filters = parse_metadata_filters(payload)
        except (ProtocolError, UnicodeDecodeError) as exc:
            self.fail(command, f"Bad metadata filter: {exc}")
            return
        compressed = bool(self.modes & OperationalModes.CompressMetadata)
        if not filters:
            self._metadata_answer(filters, self.state.metadata_xml(compressed), events)
            return
        metadata = self.state.metadata

        def work() -> bytes:
            xml = metadata.filtered(filters).to_xml()
            return gzip_bytes(xml) if compressed else xml

        self._evaluate(work, lambda data, out: self._metadata_answer(filters, data, out), events)

    def _metadata_answer(self, filters: str, data: Any, events: list[Event]) -> None:
        command = ServerCommand.MetadataRefresh
        if isinstance(data, (MetadataError, FilterExpressionError)):
            self.fail(command, str(data))
            return
        self._respond(ServerResponse.Succeeded, command, data)
        self.stats.metadata_bytes += len(data)
        events.append(MetadataRequested(filters))

    def _subscribe(self, code: ServerCommand, payload: bytes, events: list[Event]) -> None:
        _flags, text = parse_subscribe(payload)
        try:
            settings = SubscriptionSettings.parse(text)
        except SettingsError as exc:
            self.fail(ServerCommand.Subscribe, f"Bad connection string: {exc}")
            return
        expression = (
            settings.filter_expression.strip() or "FILTER ActiveMeasurements WHERE ID IS NOT NULL"
        )
        active = self.state.active
        self._evaluate(
            lambda: select_signal_ids([active], expression),
            lambda signals, out: self._subscribed(settings, signals, out),
            events,
        )

    def _subscribed(
        self, settings: SubscriptionSettings, signals: Any, events: list[Event]
    ) -> None:
        command = ServerCommand.Subscribe
        if isinstance(signals, FilterExpressionError):
            self.fail(command, f"Bad filter expression: {signals}")
            return
        disabled = self.state.disabled
        if disabled:
            signals = [signal for signal in signals if signal not in disabled]
        temporal = bool(settings.start_time)
        if temporal and not self.state.config.supports_temporal:
            self.fail(
                command, "This publisher does not offer historical replay (temporal subscriptions)."
            )
            return
        self.settings = settings
        self._nan_filter = self.state.config.force_nan_filter or (
            settings.request_nan_value_filter and self.state.config.allow_nan_filter
        )
        self.cache_index ^= 1
        self.cache = SignalIndexCache.from_signals(
            self.subscriber_id, iter_signal_keys(self.state.active, signals)
        )
        self.udp_target = (self.peer_host, settings.udp_port) if settings.udp_port else None
        self._encoder = None
        self.compact = CompactCodec(settings.include_time, settings.use_millisecond_resolution)
        self._base_sent = False
        self._pending_base = None
        cache_bytes = self.cache.build()
        if self.modes & OperationalModes.CompressSignalIndexCache:
            cache_bytes = gzip_bytes(cache_bytes)
        if self.version > 1:
            cache_bytes = bytes([self.cache_index]) + cache_bytes
        if self.udp_target is not None and self.state.config.encrypt_udp:
            # Keys go before the signal index cache: once the subscriber confirms the cache
            # (and UDP data starts) it has processed the keys too.
            self.keys = None
            self._pending_keys = None  # an unconfirmed rotation of the old subscription is moot
            self.rotate_cipher_keys()
        self.succeed(command, f"Client subscribed to {len(signals)} signals.")
        self._respond(ServerResponse.UpdateSignalIndexCache, command, cache_bytes)
        self._awaiting_cache_confirm = self.udp_target is not None and self.version > 1
        self.subscribed = True
        self._latest.clear()
        for name in ("throttle", "rotation", "replay"):
            self._deadlines.pop(name, None)
        if settings.throttled:
            self._deadlines["throttle"] = self._now + max(settings.publish_interval, 0.001)
        interval = self.timing.cipher_rotation_interval
        if interval and self.udp_target is not None and self.state.config.encrypt_udp:
            self._deadlines["rotation"] = self._now + interval
        events.append(Subscribed(settings, signals, temporal))

    #: What each command of the generated spec does on a publisher: one entry per
    #: ``ServerCommand`` (tests/sttp/test_handler_tables.py fails for a code without one).
    #: Unknown codes never get here (``split_command`` refuses them: the session closes), nor
    #: does anything before DEFINE_OPERATIONAL_MODES (``_packet``: the session closes).
    COMMANDS: ClassVar[dict[int, _CommandHandler]] = {
        ServerCommand.Connect: _not_supported,
        ServerCommand.MetadataRefresh: _metadata_refresh,
        ServerCommand.Subscribe: _subscribe,
        ServerCommand.Unsubscribe: _unsubscribe,
        ServerCommand.RotateCipherKeys: _rotate_keys,
        ServerCommand.UpdateProcessingInterval: _processing_interval,
        ServerCommand.DefineOperationalModes: _define_modes,
        ServerCommand.ConfirmNotification: _confirmed,
        ServerCommand.ConfirmBufferBlock: _confirmed,
        ServerCommand.ConfirmUpdateBaseTimes: _base_confirmed,
        ServerCommand.ConfirmUpdateSignalIndexCache: _cache_confirmed,
        ServerCommand.ConfirmUpdateCipherKeys: _keys_confirmed,
        ServerCommand.GetPrimaryMetadataSchema: _schema,
        ServerCommand.GetSignalSelectionSchema: _schema,
        # the 16 user-defined commands go to the application as UserCommand events
        **dict.fromkeys(USER_COMMANDS, _user_command),
    }

    def rotate_cipher_keys(self) -> None:
        """Send new keys; packets switch to them once the subscriber confirms."""
        if self.keys is None:
            keys = new_cipher_keys(0)
            self.keys = keys
        else:
            fresh = 1 - self.keys.active
            pairs = list(self.keys.keys)
            pairs[fresh] = new_key_pair()
            keys = CipherKeys(fresh, (pairs[0], pairs[1]))
            self._pending_keys = keys
            # Switch after cipher_confirm_timeout if the subscriber never confirms.
            timeout = self.state.config.cipher_confirm_timeout
            if timeout is not None:
                self._deadlines["confirm"] = self._now + timeout
        self._respond(ServerResponse.UpdateCipherKeys, ServerCommand.Subscribe, keys.build())

    @property
    def pending_keys(self) -> CipherKeys | None:
        """Keys sent by a rotation and not yet in use (awaiting confirmation)."""
        return self._pending_keys

    def activate_pending_keys(self) -> bool:
        """Switch to rotated keys the subscriber has not confirmed; False when none pending.

        The update carried both key pairs (the one in use unchanged), so a subscriber that
        processed it decrypts either index; one that did not cannot decrypt either way."""
        if self._pending_keys is None:
            return False
        self.keys, self._pending_keys = self._pending_keys, None
        return True

    # -- publishing
    def count_selected(self, measurements: Sequence[Measurement]) -> int:
        """How many of ``measurements`` this subscription selects (for loss accounting)."""
        if not self.subscribed or self.cache is None:
            return 0
        by_signal = self.cache.by_signal
        return sum(1 for measurement in measurements if measurement.signal_id in by_signal)

    def publish(self, measurements: Sequence[Measurement], now_ticks: int | None = None) -> int:
        """Encode the subscribed part of ``measurements``; returns how many were queued."""
        if not self.subscribed or self.cache is None or self._awaiting_cache_confirm:
            return 0
        by_signal = self.cache.by_signal
        settings = self.settings
        assert settings is not None
        selected: list[tuple[int, Measurement]] = []
        nan_filter = self._nan_filter
        check_time = settings.enable_time_reasonability_check and now_ticks is not None
        low = high = 0
        if check_time:
            assert now_ticks is not None
            low = now_ticks - int(settings.lag_time * 10_000_000)
            high = now_ticks + int(settings.lead_time * 10_000_000)
        for measurement in measurements:
            index = by_signal.get(measurement.signal_id)
            if index is None:
                continue
            if nan_filter and math.isnan(measurement.value):
                continue
            if check_time and not low <= measurement.timestamp <= high:
                continue
            selected.append((index, measurement))
        if not selected:
            return 0
        if self.uses_tssc:
            self._publish_tssc(selected)
        else:
            self._publish_compact(selected)
        self.stats.measurements += len(selected)
        return len(selected)

    def _flags(self, compressed: bool) -> int:
        flags = DataPacketFlags.Compressed if compressed else DataPacketFlags.Compact
        if self.cache_index:
            flags |= DataPacketFlags.CacheIndex
        return int(flags)

    def _publish_tssc(self, selected: list[tuple[int, Measurement]]) -> None:
        if self._encoder is None:
            self._encoder = codecs.new_encoder()
        flags = self._flags(True)
        ids = [index for index, _ in selected]
        stamps = [measurement.timestamp for _, measurement in selected]
        states = [measurement.flags for _, measurement in selected]
        values = [measurement.value for _, measurement in selected]
        for block in self._encoder.encode(ids, stamps, states, values):
            body = _DATA_HEAD.pack(flags, block.count) + block.data
            packet = response_packet(ServerResponse.DataPacket, ServerCommand.Subscribe, body)
            self._out += packet
            self.stats.data_packets += 1
            self.stats.data_bytes += len(packet)

    def _publish_compact(self, selected: list[tuple[int, Measurement]]) -> None:
        settings = self.settings
        assert settings is not None
        if settings.include_time and self.state.config.use_base_time_offsets:
            if not self._base_sent:
                first = selected[0][1].timestamp
                self._announce_base(BaseTimes(0, (first - first % 10_000_000, 0)))
                self._base_sent = True
            elif self._pending_base is None:
                self._maybe_rotate_base(selected[-1][1].timestamp)
        encode = self.compact.encode
        for start in range(0, len(selected), COMPACT_CHUNK):
            chunk = selected[start : start + COMPACT_CHUNK]
            flags = self._flags(False)
            body = b"".join(encode(index, measurement) for index, measurement in chunk)
            rest = _U32.pack(len(chunk)) + body
            if (
                self.udp_target is not None
                and self.keys is not None
                and self.state.config.encrypt_udp
            ):
                if self.keys.active:
                    flags |= DataPacketFlags.CipherIndex
                key, iv = self.keys.keys[self.keys.active]
                rest = encrypt(key, iv, rest)
            payload = bytes([flags]) + rest
            self.stats.data_packets += 1
            if self.udp_target is not None:
                datagram = response_body(
                    ServerResponse.DataPacket, ServerCommand.Subscribe, payload
                )
                self._datagrams.append(datagram)
                self.stats.data_bytes += len(datagram)
            else:
                packet = response_packet(
                    ServerResponse.DataPacket, ServerCommand.Subscribe, payload
                )
                self._out += packet
                self.stats.data_bytes += len(packet)

    def _announce_base(self, times: BaseTimes) -> None:
        """Send new base times. On TCP they apply at once (the stream keeps them in order); on
        UDP, datagrams can overtake the command channel, so they apply when the subscriber
        confirms (a subscriber that never confirms gets full 8-byte timestamps)."""
        self._respond(ServerResponse.UpdateBaseTimes, ServerCommand.Subscribe, times.build())
        if self.udp_target is None:
            self._apply_base(times)
        else:
            self._pending_base = times

    def _apply_base(self, times: BaseTimes) -> None:
        self.compact.base_times = times.offsets
        self.compact.time_index = times.time_index

    def _maybe_rotate_base(self, latest: int) -> None:
        codec = self.compact
        base = codec.base_times[codec.time_index]
        # Rotate well before the 32-bit tick offset (~7 minutes) runs out.
        if base and latest - base < 3_000_000_000:
            return
        fresh = 1 - codec.time_index if base else codec.time_index
        bases = list(codec.base_times)
        bases[fresh] = latest - latest % 10_000_000
        self._announce_base(BaseTimes(fresh, (bases[0], bases[1])))

    def buffer_block(self, signal_id: uuid.UUID, data: bytes, confirm: bool = True) -> bool:
        """Queue a BUFFER_BLOCK for a subscribed signal; False when it is not subscribed."""
        if not self.subscribed or self.cache is None:
            return False
        index = self.cache.by_signal.get(signal_id)
        if index is None:
            return False
        flags = BufferBlockFlags.RequireConfirmation if confirm else BufferBlockFlags(0)
        if self.cache_index:
            flags |= BufferBlockFlags.CacheIndex
        body = _U32.pack(self._buffer_sequence) + bytes([flags]) + struct.pack(">i", index) + data
        self._buffer_sequence = (self._buffer_sequence + 1) & 0xFFFFFFFF
        self._respond(ServerResponse.BufferBlock, ServerCommand.Subscribe, body)
        return True
