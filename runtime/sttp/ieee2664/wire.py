"""Sans-IO framing and small payload codecs of the IEEE 2664 command channel.

Every TCP packet is ``uint32 size`` (big-endian) followed by ``size`` bytes. A command packet is
``command code (u8) + payload``; a response packet is ``response code (u8) + command code (u8) +
uint32 payload length + payload``. A UDP datagram carries one response packet without the size.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from gridbind.errors import RemoteError
from gridbind.generated.sttp import ieee2664 as spec
from gridbind.sttp.codecsupport import WireError
from gridbind.sttp.errors import SttpError

#: Highest protocol version we speak; versions > 1 carry a cache index byte with signal index
#: caches.
PROTOCOL_VERSION = 2
#: The protocol version bits of the operational modes word (``OperationalModes.version``).
VERSION_BITS = 0x1F
#: Packets larger than this are refused (the peer's own limit for commands is 32 KiB; responses
#: such as compressed metadata may be larger).
MAX_PACKET_SIZE = 16 * 1024 * 1024
MAX_COMMAND_SIZE = 1024 * 1024
#: Decompressed metadata / signal index caches above this size are refused (zip-bomb guard).
MAX_INFLATED_SIZE = 64 * 1024 * 1024
#: Command and response codes of the generated spec (the user-defined ranges included).
KNOWN_COMMANDS = frozenset(int(code) for code in spec.ServerCommand)
KNOWN_RESPONSES = frozenset(int(code) for code in spec.ServerResponse)


def is_user_command(code: int) -> bool:
    """True for the 16 user-defined command codes 0xD0-0xDF."""
    return 0xD0 <= code <= 0xDF


def is_user_response(code: int) -> bool:
    """True for the 16 user-defined response codes 0xE0-0xEF."""
    return 0xE0 <= code <= 0xEF


_U32 = struct.Struct(">I")
_CMD_HEAD = struct.Struct(">IB")
_RESP_HEAD = struct.Struct(">IBBI")
_RESP_BODY_HEAD = struct.Struct(">BBI")


class ProtocolError(SttpError, RemoteError, ValueError):
    """The peer broke the IEEE 2664 wire: the session must be closed (message says why)."""


class PacketReader:
    """Splits a TCP byte stream into packets (sans-IO: feed bytes, iterate complete packets).

    ``max_size`` bounds the memory a hostile peer can make us buffer for one packet.
    """

    def __init__(self, max_size: int = MAX_PACKET_SIZE) -> None:
        self._buffer = bytearray()
        self._max = max_size

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Add received bytes and yield every packet they complete (without the size prefix)."""
        buffer = self._buffer
        buffer += data
        offset = 0
        end = len(buffer)
        packets: list[bytes] = []
        while end - offset >= 4:
            (size,) = _U32.unpack_from(buffer, offset)
            if size > self._max:
                raise ProtocolError(f"packet of {size} bytes exceeds the {self._max}-byte limit")
            if end - offset - 4 < size:
                break
            packets.append(bytes(buffer[offset + 4 : offset + 4 + size]))
            offset += 4 + size
        if offset:
            del buffer[:offset]
        return iter(packets)

    @property
    def pending(self) -> int:
        """Bytes received but not yet part of a complete packet."""
        return len(self._buffer)


def command_packet(code: int, payload: bytes = b"") -> bytes:
    """A framed command: size, code, payload."""
    return _CMD_HEAD.pack(len(payload) + 1, code) + payload


def response_packet(code: int, command: int, payload: bytes = b"") -> bytes:
    """A framed response: size, response code, command code, payload length, payload."""
    return _RESP_HEAD.pack(len(payload) + 6, code, command, len(payload)) + payload


def response_body(code: int, command: int, payload: bytes = b"") -> bytes:
    """A response without the TCP size prefix: the form a UDP datagram carries."""
    return _RESP_BODY_HEAD.pack(code, command, len(payload)) + payload


def split_command(packet: bytes) -> tuple[int, bytes]:
    """``(command code, payload)`` of a command packet; refuses empty and unknown codes."""
    if not packet:
        raise ProtocolError("empty command packet")
    code = packet[0]
    if code not in KNOWN_COMMANDS:
        raise ProtocolError(f"unknown server command 0x{code:02X}")
    return code, packet[1:]


def split_response(packet: bytes) -> tuple[int, int, bytes]:
    """``(response code, command code, payload)`` of a response packet.

    The embedded payload length is checked against the packet, as deployed peers write it.
    """
    if len(packet) < 6:
        raise ProtocolError(f"response packet of {len(packet)} bytes is shorter than its header")
    code, command, length = _RESP_BODY_HEAD.unpack_from(packet)
    if code not in KNOWN_RESPONSES:
        raise ProtocolError(f"unknown server response 0x{code:02X}")
    if length != len(packet) - 6:
        raise ProtocolError(
            f"response 0x{code:02X} says {length} payload bytes, has {len(packet) - 6}"
        )
    return code, command, packet[6:]


# ------------------------------------------------------------------------------------- strings


def encode_message(text: str) -> bytes:
    """A status/failure message as deployed publishers send it: UTF-8 bytes, no prefix."""
    return text.encode("utf-8")


def decode_message(payload: bytes) -> str:
    """Decode a status/failure message, tolerating sttpapi's extra int32 length prefix."""
    if len(payload) >= 4:
        (length,) = _U32.unpack_from(payload)
        if length == len(payload) - 4:
            payload = payload[4:]
    return payload.decode("utf-8", errors="replace")


# --------------------------------------------------------------------------------- compression


def gzip_bytes(data: bytes) -> bytes:
    """GZip as the deployed peers expect for metadata and signal index caches."""
    return gzip.compress(data, compresslevel=6, mtime=0)


def gunzip_bytes(data: bytes, limit: int = MAX_INFLATED_SIZE) -> bytes:
    """Inflate a GZip stream, refusing output past ``limit`` bytes (zip-bomb guard)."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise ProtocolError(f"bad GZip data: {exc}") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise ProtocolError(f"GZip data inflates past {limit} bytes")
    if not inflater.eof:
        raise ProtocolError("truncated GZip data")
    return out


# -------------------------------------------------------------------------- subscribe command


def build_subscribe(connection_string: str, flags: int = 0x02) -> bytes:
    """SUBSCRIBE payload: data packet flags byte (COMPACT), uint32 length, UTF-8 parameters."""
    return spec.Subscribe(spec.DataPacketFlags(flags), connection_string).build()


def parse_subscribe(payload: bytes) -> tuple[int, str]:
    """``(flags, connection string)`` of a SUBSCRIBE payload."""
    try:
        message = spec.Subscribe.parse(payload)
    except (WireError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"bad SUBSCRIBE payload: {exc}") from None
    return int(message.flags), message.connection_string


def build_metadata_filters(filters: str) -> bytes:
    """METADATA_REFRESH payload carrying ``;``-separated metadata filter expressions."""
    items = [spec.MetadataFilter(filters)] if filters else []
    return spec.MetadataRefresh(items).build()


def parse_metadata_filters(payload: bytes) -> str:
    """Metadata filter expressions of a METADATA_REFRESH payload ("" when none)."""
    try:
        message = spec.MetadataRefresh.parse(payload)
    except (WireError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"bad METADATA_REFRESH payload: {exc}") from None
    return ";".join(item.text for item in message.filters)


# ----------------------------------------------------------------------------------- base times


@dataclass(frozen=True)
class BaseTimes:
    """The two base time offsets (ticks) and which one is active for new compact measurements."""

    time_index: int
    offsets: tuple[int, int]

    def build(self) -> bytes:
        """UPDATE_BASE_TIMES payload: int32 time index, two int64 offsets."""
        return spec.UpdateBaseTimes(self.time_index, self.offsets[0], self.offsets[1]).build()

    @classmethod
    def parse(cls, payload: bytes) -> BaseTimes:
        """Decode an UPDATE_BASE_TIMES payload."""
        try:
            message = spec.UpdateBaseTimes.parse(payload)
        except WireError as exc:
            raise ProtocolError(f"bad UPDATE_BASE_TIMES payload: {exc}") from None
        index = 0 if message.time_index == 0 else 1
        return cls(index, (message.base_time0, message.base_time1))


# ---------------------------------------------------------------------------------- cipher keys


@dataclass(frozen=True)
class CipherKeys:
    """Even and odd AES key/IV pairs for the UDP data channel, plus the active index."""

    active: int
    keys: tuple[tuple[bytes, bytes], tuple[bytes, bytes]]  # ((key, iv) even, (key, iv) odd)

    def build(self) -> bytes:
        """UPDATE_CIPHER_KEYS payload: active index byte, then int32-length key and IV, twice."""
        (even_key, even_iv), (odd_key, odd_iv) = self.keys
        return spec.UpdateCipherKeys(
            self.active, spec.CipherKeyPair(even_key, even_iv), spec.CipherKeyPair(odd_key, odd_iv)
        ).build()

    @classmethod
    def parse(cls, payload: bytes) -> CipherKeys:
        """Decode an UPDATE_CIPHER_KEYS payload (key sizes must be AES sizes, IVs 16 bytes)."""
        try:
            message = spec.UpdateCipherKeys.parse(payload)
        except WireError as exc:
            raise ProtocolError(f"bad UPDATE_CIPHER_KEYS payload: {exc}") from None
        for pair in (message.even, message.odd):
            if len(pair.key) not in (16, 24, 32):
                raise ProtocolError(f"cipher key of {len(pair.key)} bytes is not an AES key")
        return cls(
            1 if message.active else 0,
            ((message.even.key, message.even.iv), (message.odd.key, message.odd.iv)),
        )
