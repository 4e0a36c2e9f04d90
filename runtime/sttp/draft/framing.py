"""Command/Response frames of the draft profile: ``uint8 code, uint16 length, payload``.

The length counts the whole packet (3 header bytes included), so a frame is at most 65535 bytes
and a length below 3 is malformed. :class:`FrameReader` is sans-IO: feed bytes, get frames.
"""

from __future__ import annotations

import struct

from gridbind.sttp.errors import SttpError

__all__ = ["FrameError", "FrameReader", "HEADER_SIZE", "MAX_PAYLOAD", "encode_frame"]

HEADER_SIZE = 3
#: Largest payload a frame can carry (the uint16 length includes the header).
MAX_PAYLOAD = 0xFFFF - HEADER_SIZE
_HEADER = struct.Struct(">BH")


class FrameError(SttpError, ValueError):
    """A frame header that cannot be valid (length below the header size)."""


def encode_frame(code: int, payload: bytes = b"") -> bytes:
    """One frame around ``payload``; raises :class:`FrameError` when it does not fit."""
    if len(payload) > MAX_PAYLOAD:
        raise FrameError(f"payload of {len(payload)} bytes exceeds the frame limit {MAX_PAYLOAD}")
    return _HEADER.pack(code, len(payload) + HEADER_SIZE) + payload


class FrameReader:
    """Splits a byte stream into ``(code, payload)`` frames; memory is bounded by one frame."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """Add ``data``; return every complete frame. Raises :class:`FrameError` on a bad header."""
        self._buffer += data
        frames: list[tuple[int, bytes]] = []
        buffer = self._buffer
        start = 0
        end = len(buffer)
        while end - start >= HEADER_SIZE:
            code, length = _HEADER.unpack_from(buffer, start)
            if length < HEADER_SIZE:
                del buffer[:start]
                raise FrameError(f"frame length {length} is below the {HEADER_SIZE}-byte header")
            if end - start < length:
                break
            frames.append((code, bytes(buffer[start + HEADER_SIZE : start + length])))
            start += length
        del buffer[:start]
        return frames

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame held back."""
        return len(self._buffer)
