"""Codes and bit fields of the deployed IEEE 2664 STTP wire (as spoken by sttpapi / openPDC).

These mirror ``specs/sttp/ieee2664.yaml``; the runtime keeps its own copy so the hot data path does
not depend on generated code (see the profile README for why).
"""

from __future__ import annotations

from enum import IntEnum, IntFlag


class ServerCommand(IntEnum):
    """Commands a subscriber sends to a publisher (first byte after the uint32 packet size)."""

    CONNECT = 0x00  # only ever echoed in a failure response, never sent
    METADATA_REFRESH = 0x01
    SUBSCRIBE = 0x02
    UNSUBSCRIBE = 0x03
    ROTATE_CIPHER_KEYS = 0x04
    UPDATE_PROCESSING_INTERVAL = 0x05
    DEFINE_OPERATIONAL_MODES = 0x06
    CONFIRM_NOTIFICATION = 0x07
    CONFIRM_BUFFER_BLOCK = 0x08
    CONFIRM_UPDATE_BASE_TIMES = 0x09
    CONFIRM_UPDATE_SIGNAL_INDEX_CACHE = 0x0A
    CONFIRM_UPDATE_CIPHER_KEYS = 0x0B
    GET_PRIMARY_METADATA_SCHEMA = 0x0C
    GET_SIGNAL_SELECTION_SCHEMA = 0x0D
    USER_COMMAND_00 = 0xD0
    USER_COMMAND_15 = 0xDF


class ServerResponse(IntEnum):
    """Responses a publisher sends (first byte of a response packet, then the command code)."""

    SUCCEEDED = 0x80
    FAILED = 0x81
    DATA_PACKET = 0x82
    UPDATE_SIGNAL_INDEX_CACHE = 0x83
    UPDATE_BASE_TIMES = 0x84
    UPDATE_CIPHER_KEYS = 0x85
    DATA_START_TIME = 0x86
    PROCESSING_COMPLETE = 0x87
    BUFFER_BLOCK = 0x88
    NOTIFY = 0x89
    CONFIGURATION_CHANGED = 0x8A
    USER_RESPONSE_00 = 0xE0
    USER_RESPONSE_15 = 0xEF
    NO_OP = 0xFF


def is_user_command(code: int) -> bool:
    """True for the 16 user-defined command codes 0xD0-0xDF."""
    return 0xD0 <= code <= 0xDF


def is_user_response(code: int) -> bool:
    """True for the 16 user-defined response codes 0xE0-0xEF."""
    return 0xE0 <= code <= 0xEF


KNOWN_COMMANDS = frozenset(int(code) for code in ServerCommand) | frozenset(range(0xD0, 0xE0))
KNOWN_RESPONSES = frozenset(int(code) for code in ServerResponse) | frozenset(range(0xE0, 0xF0))


class OperationalModes(IntFlag):
    """The uint32 a subscriber sends with DEFINE_OPERATIONAL_MODES."""

    VERSION_MASK = 0x000000FF
    PRESTANDARD_VERSION_MASK = 0x0000001F
    COMPRESSION_GZIP = 0x00000020  # legacy CompressionModes.GZIP bit
    COMPRESSION_TSSC = 0x00000040  # legacy CompressionModes.TSSC bit
    ENCODING_MASK = 0x00000300
    IMPLEMENTATION_EXTENSION_MASK = 0x00FF0000
    RECEIVE_EXTERNAL_METADATA = 0x02000000
    RECEIVE_INTERNAL_METADATA = 0x04000000
    COMPRESS_PAYLOAD_DATA = 0x20000000
    COMPRESS_SIGNAL_INDEX_CACHE = 0x40000000
    COMPRESS_METADATA = 0x80000000


class OperationalEncoding(IntEnum):
    """String encodings selectable by the operational modes (IEEE 2664 allows only UTF-8)."""

    UTF16LE = 0x00000000
    UTF16BE = 0x00000100
    UTF8 = 0x00000200


class DataPacketFlags(IntFlag):
    """First byte of a DATA_PACKET payload."""

    NO_FLAGS = 0x00
    COMPACT = 0x02
    CIPHER_INDEX = 0x04
    COMPRESSED = 0x08
    CACHE_INDEX = 0x10


class CompactStateFlags(IntFlag):
    """The one-byte state flags of a compact measurement."""

    DATA_RANGE = 0x01
    DATA_QUALITY = 0x02
    TIME_QUALITY = 0x04
    SYSTEM_ISSUE = 0x08
    CALCULATED_VALUE = 0x10
    ALARM_VALUE = 0x20
    BASE_TIME_OFFSET = 0x40
    TIME_INDEX = 0x80


class BufferBlockFlags(IntFlag):
    """Flags byte of a BUFFER_BLOCK response (after its uint32 sequence number)."""

    NO_FLAGS = 0x00
    REQUIRE_CONFIRMATION = 0x01
    KEY_INDEX = 0x04
    COMPRESSED = 0x08
    CACHE_INDEX = 0x10


#: TSSC payload version byte in deployed STTP (the draft's TSSC has none).
TSSC_VERSION = 85
#: Highest protocol version we speak; versions > 1 carry a cache index byte with signal index caches.
PROTOCOL_VERSION = 2
#: Packets larger than this are refused (the peer's own limit for commands is 32 KiB; responses
#: such as compressed metadata may be larger).
MAX_PACKET_SIZE = 16 * 1024 * 1024
MAX_COMMAND_SIZE = 1024 * 1024
#: Decompressed metadata / signal index caches above this size are refused (zip-bomb guard).
MAX_INFLATED_SIZE = 64 * 1024 * 1024
