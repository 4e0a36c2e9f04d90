"""Sans-IO protocol core of an IEEE 2664 data subscriber: bytes in, events and bytes out.

:class:`SubscriberSession` knows nothing about sockets: the asyncio transport in
:mod:`.subscriber` feeds it what arrives on the command channel (``receive``) and the UDP data
channel (``receive_datagram``), sends what it queues (``data_to_send()``: its commands and the
confirmations it owes) and dispatches the events. Responses are dispatched by a handler table
keyed by the generated ``ServerResponse`` codes. Any breach of the wire raises
:class:`ProtocolError`: close the session.
"""

from __future__ import annotations

import struct
import uuid
import zlib
from collections.abc import Callable
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
from gridbind.sttp.ieee2664 import codecs
from gridbind.sttp.ieee2664.cipher import decrypt
from gridbind.sttp.ieee2664.compact import CompactCodec, SignalIndexCache
from gridbind.sttp.ieee2664.events import (
    BaseTimesUpdated,
    BufferBlockReceived,
    CipherKeysUpdated,
    CommandFailed,
    CommandSucceeded,
    ConfigurationChanged,
    DataStartTime,
    Event,
    MeasurementsReceived,
    MetadataArrived,
    MetadataReceived,
    NoOp,
    Notification,
    ProcessingComplete,
    SchemaReceived,
    SessionExpired,
    SubscriptionUpdated,
    UserResponse,
)
from gridbind.sttp.ieee2664.metadata import (
    MAX_METADATA_CELLS,
    DataSet,
    MetadataError,
)
from gridbind.sttp.ieee2664.params import SubscriptionSettings
from gridbind.sttp.ieee2664.statistics import Statistics
from gridbind.sttp.ieee2664.wire import (
    PROTOCOL_VERSION,
    BaseTimes,
    CipherKeys,
    PacketReader,
    ProtocolError,
    build_metadata_filters,
    build_subscribe,
    command_packet,
    decode_message,
    gunzip_bytes,
    is_user_command,
    is_user_response,
    split_response,
)
from gridbind.sttp.measurement import Measurement

_U32 = struct.Struct(">I")


@dataclass
class SubscriberConfig:
    """Operational choices a subscriber requests when it connects."""

    compress_payload: bool = True  # TSSC over TCP (ignored when TSSC is unavailable or UDP)
    compress_metadata: bool = True
    compress_signal_index_cache: bool = True
    version: int = PROTOCOL_VERSION
    receive_internal_metadata: bool = True
    receive_external_metadata: bool = False
    #: accept compact data packets without their measurement count (sttpapi's publisher)
    lenient_compact: bool = True
    #: bound of received metadata: XML elements plus row cells (see ``DataSet.from_xml``)
    max_metadata_cells: int = MAX_METADATA_CELLS


_ResponseHandler = Callable[["SubscriberSession", int, int, bytes, list[Event]], None]
#: The user-defined response codes of the generated spec (0xE0-0xEF).
USER_RESPONSES = tuple(code for code in ServerResponse if is_user_response(code))
#: Responses a publisher may send on the UDP data channel; others there are dropped, counted.
DATAGRAM_RESPONSES = frozenset(
    {ServerResponse.DataPacket, ServerResponse.BufferBlock, ServerResponse.NoOp}
)


class SubscriberSession:
    """Protocol core of a data subscriber (one command channel, optional UDP data channel).

    With ``idle_timeout`` the session keeps time like the publisher's: ``receive(data, now)``
    notes activity, :meth:`next_deadline` says when :meth:`tick` may find the command channel
    idle (SessionExpired: close it).
    """

    def __init__(
        self, config: SubscriberConfig | None = None, *, now: float = 0.0, idle_timeout: float = 0.0
    ) -> None:
        self.config = config or SubscriberConfig()
        self.idle_timeout = idle_timeout
        self._last_rx = now
        self._expired = False
        self.reader = PacketReader()
        self.stats = Statistics()
        self.subscriber_id = uuid.UUID(int=0)
        self.settings: SubscriptionSettings | None = None
        self.caches: list[SignalIndexCache | None] = [None, None]
        self._decoders: list[Any] = [None, None]
        self.compact = CompactCodec()
        self.keys: CipherKeys | None = None
        self.metadata: DataSet | None = None
        self.subscribed = False
        self._out = bytearray()
        self._use_udp = False
        #: False: metadata is parsed inside ``receive`` (MetadataReceived); True: ``receive``
        #: reports MetadataArrived and the caller runs :meth:`decode_metadata` (e.g. in a thread)
        #: then :meth:`metadata_parsed`
        self.defer_metadata = False

    # -- commands: each queues its packet for data_to_send(), as the publisher's answers are
    def operational_modes(self, udp: bool = False) -> int:
        """The operational modes word this subscriber asks for."""
        modes = int(OperationalModes.CompressionGzip) | (self.config.version & 0xFF)
        modes |= OperationalEncoding.Utf8
        if self.config.compress_payload and not udp and codecs.tssc_available():
            modes |= OperationalModes.CompressPayloadData | OperationalModes.CompressionTssc
        if self.config.compress_metadata:
            modes |= OperationalModes.CompressMetadata
        if self.config.compress_signal_index_cache:
            modes |= OperationalModes.CompressSignalIndexCache
        if self.config.receive_internal_metadata:
            modes |= OperationalModes.ReceiveInternalMetadata
        if self.config.receive_external_metadata:
            modes |= OperationalModes.ReceiveExternalMetadata
        return modes

    def start(self, udp: bool = False) -> None:
        """First bytes of a session: DEFINE_OPERATIONAL_MODES (must precede any other command)."""
        self._use_udp = udp
        self.modes = self.operational_modes(udp)
        self._command(ServerCommand.DefineOperationalModes, _U32.pack(self.modes))

    def request_metadata(self, filters: str = "") -> None:
        """METADATA_REFRESH, optionally with ``FILTER <table> WHERE ...`` expressions."""
        self._command(ServerCommand.MetadataRefresh, build_metadata_filters(filters))

    def request_schema(self, selection: bool = False) -> None:
        """GET_PRIMARY_METADATA_SCHEMA, or GET_SIGNAL_SELECTION_SCHEMA (ActiveMeasurements)."""
        self._command(
            ServerCommand.GetSignalSelectionSchema
            if selection
            else ServerCommand.GetPrimaryMetadataSchema
        )

    def subscribe(self, settings: SubscriptionSettings) -> None:
        """SUBSCRIBE with the given parameters; resets TSSC state for the new subscription."""
        self.settings = settings
        self.compact = CompactCodec(
            include_time=settings.include_time,
            millisecond_resolution=settings.use_millisecond_resolution,
        )
        self._decoders = [None, None]
        self._command(ServerCommand.Subscribe, build_subscribe(settings.build()))

    def unsubscribe(self) -> None:
        """UNSUBSCRIBE."""
        self.subscribed = False
        self._command(ServerCommand.Unsubscribe)

    def rotate_cipher_keys(self) -> None:
        """ROTATE_CIPHER_KEYS: ask the publisher for new UDP keys."""
        self._command(ServerCommand.RotateCipherKeys)

    def update_processing_interval(self, interval_ms: int) -> None:
        """UPDATE_PROCESSING_INTERVAL (historical replay pace, ms per frame; -1 default)."""
        self._command(ServerCommand.UpdateProcessingInterval, struct.pack(">i", interval_ms))

    def user_command(self, code: int, payload: bytes = b"") -> None:
        """One of the 16 user-defined commands."""
        if not is_user_command(code):
            raise InvalidArgument(f"0x{code:02X} is not a user command code (0xD0-0xDF)")
        self._command(code, payload)

    def _command(self, code: int, payload: bytes = b"") -> None:
        self._out += command_packet(code, payload)

    def data_to_send(self) -> bytes:
        """Everything queued for the TCP command channel, in order: the commands asked for
        (``start``, ``subscribe``, ...) and the confirmations the session owes; empties the
        queue."""
        out = bytes(self._out)
        self._out.clear()
        return out

    # -- input
    def next_deadline(self) -> float | None:
        """When the command channel counts as idle (None: no idle time-out)."""
        if not self.idle_timeout or self._expired:
            return None
        return self._last_rx + self.idle_timeout

    def tick(self, now: float) -> list[Event]:
        """SessionExpired once nothing (not even a NO_OP keep-alive) arrived for
        ``idle_timeout`` seconds."""
        deadline = self.next_deadline()
        if deadline is None or now < deadline:
            return []
        self._expired = True
        return [SessionExpired(f"nothing received for {self.idle_timeout:g} s")]

    def receive(self, data: bytes, now: float | None = None) -> list[Event]:
        """Bytes from the TCP command channel -> events (``now``: when they arrived)."""
        if now is not None:
            self._last_rx = now
        events: list[Event] = []
        for packet in self.reader.feed(data):
            code, command, payload = split_response(packet)
            if code == ServerResponse.DataPacket:
                self.stats.data_bytes += len(packet) + 4
            else:
                self.stats.command_bytes += len(packet) + 4
            self._response(code, command, payload, events)
        return events

    def receive_datagram(self, datagram: bytes) -> list[Event]:
        """One UDP datagram -> events (undecodable datagrams are counted and dropped)."""
        events: list[Event] = []
        try:
            code, command, payload = split_response(datagram)
        except ProtocolError:
            self.stats.dropped_packets += 1
            return events
        self.stats.data_bytes += len(datagram)
        if code == ServerResponse.DataPacket:
            try:
                self._data_packet(payload, events, udp=True)
            except ProtocolError:
                self.stats.dropped_packets += 1
        elif code in DATAGRAM_RESPONSES:
            try:
                self._response(code, command, payload, events)
            except ProtocolError:
                self.stats.dropped_packets += 1  # short or badly compressed: dropped, counted
        else:
            self.stats.dropped_packets += 1
        return events

    def _response(self, code: int, command: int, payload: bytes, events: list[Event]) -> None:
        handler = self.RESPONSES.get(code)
        if handler is None:  # only a code the generated spec gained and RESPONSES lacks
            raise ProtocolError(f"unhandled server response 0x{code:02X}")
        handler(self, code, command, payload, events)

    # -- response handlers (the tables SUCCEEDED and RESPONSES follow them)
    def _succeeded(self, code: int, command: int, payload: bytes, events: list[Event]) -> None:
        handler = self.SUCCEEDED.get(command)
        if handler is not None:
            handler(self, code, command, payload, events)
            return
        events.append(CommandSucceeded(command, decode_message(payload)))

    def _metadata_answer(
        self, code: int, command: int, payload: bytes, events: list[Event]
    ) -> None:
        self.stats.metadata_bytes += len(payload)
        if self.defer_metadata:
            events.append(MetadataArrived(payload))
        else:
            events.append(self.metadata_parsed(self.decode_metadata(payload), payload))

    def _schema_answer(self, code: int, command: int, payload: bytes, events: list[Event]) -> None:
        data = gunzip_bytes(payload) if payload[:2] == b"\x1f\x8b" else payload
        try:
            schema = DataSet.from_xml(data, self.config.max_metadata_cells)
        except MetadataError as exc:
            raise ProtocolError(f"bad schema from publisher: {exc}") from None
        events.append(SchemaReceived(command, schema))

    def _subscribe_succeeded(
        self, code: int, command: int, payload: bytes, events: list[Event]
    ) -> None:
        self.subscribed = True
        events.append(CommandSucceeded(command, decode_message(payload)))

    def _unsubscribe_succeeded(
        self, code: int, command: int, payload: bytes, events: list[Event]
    ) -> None:
        self.subscribed = False
        events.append(CommandSucceeded(command, decode_message(payload)))

    #: SUCCEEDED answers that carry more than a status message, by the command they answer;
    #: any other command's SUCCEEDED becomes a CommandSucceeded event.
    SUCCEEDED: ClassVar[dict[int, _ResponseHandler]] = {
        ServerCommand.MetadataRefresh: _metadata_answer,
        ServerCommand.GetPrimaryMetadataSchema: _schema_answer,
        ServerCommand.GetSignalSelectionSchema: _schema_answer,
        ServerCommand.Subscribe: _subscribe_succeeded,
        ServerCommand.Unsubscribe: _unsubscribe_succeeded,
    }

    def _failed(self, code: int, command: int, payload: bytes, events: list[Event]) -> None:
        if command == ServerCommand.Subscribe:
            self.subscribed = False
        events.append(CommandFailed(command, decode_message(payload)))

    def _tcp_data(self, code: int, command: int, payload: bytes, events: list[Event]) -> None:
        self._data_packet(payload, events, udp=False)

    def _cache_update(self, code: int, command: int, payload: bytes, events: list[Event]) -> None:
        events.append(self._signal_index_cache(payload))

    def _base_times(self, code: int, command: int, payload: bytes, events: list[Event]) -> None:
        times = BaseTimes.parse(payload)
        self.compact.base_times = times.offsets
        self.compact.time_index = times.time_index
        self._out += command_packet(ServerCommand.ConfirmUpdateBaseTimes)
        events.append(BaseTimesUpdated(times))

    def _cipher_keys(self, code: int, command: int, payload: bytes, events: list[Event]) -> None:
        self.keys = CipherKeys.parse(payload)
        self._out += command_packet(ServerCommand.ConfirmUpdateCipherKeys)
        events.append(CipherKeysUpdated(self.keys))

    def _start_time(self, code: int, command: int, payload: bytes, events: list[Event]) -> None:
        if len(payload) < 8:
            raise ProtocolError("DATA_START_TIME payload too short")
        events.append(DataStartTime(struct.unpack_from(">q", payload)[0]))

    def _complete(self, code: int, command: int, payload: bytes, events: list[Event]) -> None:
        events.append(ProcessingComplete(decode_message(payload)))

    def _notified(self, code: int, command: int, payload: bytes, events: list[Event]) -> None:
        message = decode_message(payload)
        self._out += command_packet(
            ServerCommand.ConfirmNotification, struct.pack(">I", zlib.crc32(payload))
        )
        events.append(Notification(message))

    def _block(self, code: int, command: int, payload: bytes, events: list[Event]) -> None:
        events.append(self._buffer_block(payload))

    def _changed(self, code: int, command: int, payload: bytes, events: list[Event]) -> None:
        events.append(ConfigurationChanged())

    def _noop(self, code: int, command: int, payload: bytes, events: list[Event]) -> None:
        events.append(NoOp())

    def _user_response(self, code: int, command: int, payload: bytes, events: list[Event]) -> None:
        events.append(UserResponse(code, command, payload))

    #: What each response of the generated spec does on a subscriber: one entry per
    #: ``ServerResponse`` (tests/sttp/test_handler_tables.py fails for a code without one).
    #: Unknown codes never get here: ``split_response`` refuses them (the session closes).
    RESPONSES: ClassVar[dict[int, _ResponseHandler]] = {
        ServerResponse.Succeeded: _succeeded,
        ServerResponse.Failed: _failed,
        ServerResponse.DataPacket: _tcp_data,
        ServerResponse.UpdateSignalIndexCache: _cache_update,
        ServerResponse.UpdateBaseTimes: _base_times,
        ServerResponse.UpdateCipherKeys: _cipher_keys,
        ServerResponse.DataStartTime: _start_time,
        ServerResponse.ProcessingComplete: _complete,
        ServerResponse.BufferBlock: _block,
        ServerResponse.Notify: _notified,
        ServerResponse.ConfigurationChanged: _changed,
        ServerResponse.NoOp: _noop,
        # the 16 user-defined responses go to the application as UserResponse events
        **dict.fromkeys(USER_RESPONSES, _user_response),
    }

    def decode_metadata(self, payload: bytes) -> DataSet:
        """The data set of a METADATA_REFRESH answer (inflate and parse, both bounded).

        Touches no session state, so a transport may run it off its event loop
        (:attr:`defer_metadata`); raises :class:`ProtocolError`."""
        data = payload
        if self.config.compress_metadata and payload[:2] == b"\x1f\x8b":
            data = gunzip_bytes(payload)
        try:
            return DataSet.from_xml(data, self.config.max_metadata_cells)
        except MetadataError as exc:
            raise ProtocolError(f"bad metadata from publisher: {exc}") from None

    def metadata_parsed(self, metadata: DataSet, payload: bytes) -> MetadataReceived:
        """Take a decoded data set as the session's metadata."""
        self.metadata = metadata
        return MetadataReceived(metadata, len(payload))

    def _signal_index_cache(self, payload: bytes) -> SubscriptionUpdated:
        index = 0
        if self.config.version > 1:
            if not payload:
                raise ProtocolError("empty signal index cache update")
            index = 1 if payload[0] == 1 else 0
            # sttpapi writes 0xFF as a placeholder for an uncompressed cache; treat it as 0,
            # which is where it then sends data.
            payload = payload[1:]
        if self.config.compress_signal_index_cache and payload[:2] == b"\x1f\x8b":
            payload = gunzip_bytes(payload)
        cache = SignalIndexCache.parse(payload)
        self.subscriber_id = cache.subscriber_id
        self.caches[index] = cache
        self._decoders[index] = None
        if self.config.version > 1:
            self._out += command_packet(ServerCommand.ConfirmUpdateSignalIndexCache)
        return SubscriptionUpdated(cache, index)

    def _buffer_block(self, payload: bytes) -> BufferBlockReceived:
        if len(payload) < 9:
            raise ProtocolError("BUFFER_BLOCK payload too short")
        (sequence,) = _U32.unpack_from(payload)
        flags = payload[4]
        body = payload[5:]
        if flags & BufferBlockFlags.RequireConfirmation:
            self._out += command_packet(ServerCommand.ConfirmBufferBlock, payload[:4])
        (index,) = struct.unpack_from(">i", body)
        data = body[4:]
        if flags & BufferBlockFlags.Compressed:
            data = gunzip_bytes(data)
        cache = self.caches[1 if flags & BufferBlockFlags.CacheIndex else 0]
        signal = cache.by_index.get(index) if cache else None
        return BufferBlockReceived(sequence, signal, data)

    def _data_packet(self, payload: bytes, events: list[Event], udp: bool) -> None:
        if len(payload) < 5:
            raise ProtocolError("DATA_PACKET payload too short")
        flags = payload[0]
        body = payload[1:]
        if udp and self.keys is not None:
            key, iv = self.keys.keys[1 if flags & DataPacketFlags.CipherIndex else 0]
            body = decrypt(key, iv, body)
        if len(body) < 4:
            raise ProtocolError("DATA_PACKET payload too short")
        (count,) = _U32.unpack_from(body)
        cache_index = 1 if flags & DataPacketFlags.CacheIndex else 0
        cache = self.caches[cache_index]
        if cache is None:
            self.stats.dropped_packets += 1
            return
        self.stats.data_packets += 1
        if flags & DataPacketFlags.Compressed:
            measurements = self._tssc(cache_index, cache, bytes(body[4:]), count)
            if measurements is None:
                self.stats.dropped_packets += 1
                return
        elif flags & DataPacketFlags.Compact:
            try:
                measurements = self.compact.decode(body[4:], count, cache)
            except ProtocolError:
                if not self.config.lenient_compact:
                    raise
                # sttpapi's publisher omits the count of compact packets; such a packet is
                # measurements from the first byte on. Accept it only if it parses exactly.
                measurements = self.compact.decode(body, None, cache)
        else:
            raise ProtocolError("non-compact (full) measurement format is not supported")
        self.stats.measurements += len(measurements)
        if measurements:
            events.append(MeasurementsReceived(measurements))

    def _tssc(
        self, cache_index: int, cache: SignalIndexCache, block: bytes, count: int
    ) -> list[Measurement] | None:
        decoder = self._decoders[cache_index]
        if decoder is None:
            decoder = self._decoders[cache_index] = codecs.new_decoder()
        # Valid runtime indexes are those of the cache: no more point states than that.
        decoder.max_points = max(len(cache.by_index), 1)
        sequence_error, decode_error = codecs.tssc_errors()
        try:
            # The declared count bounds the decoding work (checked against the block's size
            # before any decoding): a hostile block cannot amplify into millions of rows.
            columns = decoder.decode(block, count)
        except sequence_error:
            return None  # joined mid-stream or lost a packet: wait for the publisher's reset
        except decode_error as exc:
            raise ProtocolError(f"bad TSSC block: {exc}") from None
        signals = cache.by_index
        try:
            return [
                Measurement(signals[index], value, stamp, flags)
                for index, stamp, flags, value in zip(
                    columns.ids, columns.timestamps, columns.flags, columns.values, strict=True
                )
            ]
        except KeyError as exc:
            raise ProtocolError(f"runtime index {exc} is not in the signal index cache") from None
