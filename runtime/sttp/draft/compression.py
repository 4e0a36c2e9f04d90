"""DEFLATE for STTP packets (seed v0.8.23, "Compression"): stateless per packet or stateful.

The seed names DEFLATE (RFC 1951, *raw*: no zlib or gzip wrapper, i.e. zlib ``wbits=-15``) as the
always-available algorithm, usable in two modes:

* stateless: every packet is compressed on its own from the default initial state
  (:func:`deflate` / :func:`inflate`), one final DEFLATE block sequence per packet;
* stateful: one compression stream per session; each packet is the output up to a sync flush
  (:class:`DeflateCompressor` / :class:`DeflateDecompressor`), so it ends with the empty stored
  block ``00 00 FF FF`` and decodes as soon as it arrives. (Project decision, the draft does not
  say how packets are delimited inside the stream; the flush marker is kept, not stripped.)

Limits from the seed: compression may not grow a packet by more than :data:`MAX_EXPANSION`
(1024) bytes, and a packet that would inflate past :data:`MAX_INFLATED` (16384) bytes is a
decompression failure. Inflation is bounded with ``max_length``, so a hostile packet (a "zip
bomb") costs at most the limit in memory. Senders refuse packets above the limit too, since the
receiver would refuse them. Fragmented packets (:mod:`gridbind.sttp.draft.fragments`) keep the same
16384-byte limit: larger ones are sent uncompressed.
"""

from __future__ import annotations

import zlib

from gridbind.errors import RemoteError
from gridbind.sttp.errors import InvalidArgument, SttpError

__all__ = [
    "MAX_EXPANSION",
    "MAX_INFLATED",
    "CompressionError",
    "DecompressionError",
    "DeflateCompressor",
    "DeflateDecompressor",
    "deflate",
    "inflate",
]

#: Compressed output may exceed the input by at most this many bytes.
MAX_EXPANSION = 1024
#: Inflating a packet past this many bytes is a decompression failure.
MAX_INFLATED = 16384
#: Raw DEFLATE (RFC 1951), 32 KiB window.
WBITS = -15
_SYNC_MARKER = b"\x00\x00\xff\xff"


class CompressionError(SttpError, ValueError):
    """A packet cannot be compressed within the seed's limits."""


class DecompressionError(CompressionError, RemoteError):
    """A packet is not valid DEFLATE data, is truncated, or inflates past the limit."""


def _check_level(level: int) -> None:
    if not -1 <= level <= 9:
        raise InvalidArgument(f"DEFLATE level must be -1..9, not {level}")


def _check_input(data: bytes, max_size: int) -> None:
    if len(data) > max_size:
        raise CompressionError(
            f"packet of {len(data)} bytes exceeds the {max_size}-byte limit a receiver inflates"
        )


def _check_expansion(raw: int, compressed: bytes) -> bytes:
    if len(compressed) > raw + MAX_EXPANSION:  # DEFLATE's worst case is far below this
        raise CompressionError(f"compression grew {raw} bytes to {len(compressed)}")
    return compressed


def deflate(data: bytes, *, level: int = -1, max_size: int = MAX_INFLATED) -> bytes:
    """Stateless: compress one packet from the default initial state (raw RFC 1951)."""
    _check_level(level)
    _check_input(data, max_size)
    compressor = zlib.compressobj(level, zlib.DEFLATED, WBITS)
    return _check_expansion(len(data), compressor.compress(data) + compressor.flush())


def inflate(data: bytes, *, max_size: int = MAX_INFLATED) -> bytes:
    """Stateless: decompress one packet made by :func:`deflate`.

    Raises :class:`DecompressionError` for invalid or truncated data, data after the end of the
    DEFLATE stream, or output beyond ``max_size`` bytes (never allocating more than that).
    """
    decompressor = zlib.decompressobj(WBITS)
    try:
        out = decompressor.decompress(data, max_size + 1)
    except zlib.error as exc:
        raise DecompressionError(f"invalid DEFLATE data: {exc}") from None
    if len(out) > max_size:
        raise DecompressionError(f"packet inflates past the {max_size}-byte limit")
    if not decompressor.eof:
        raise DecompressionError("DEFLATE data truncated (no final block)")
    if decompressor.unused_data:
        raise DecompressionError(
            f"{len(decompressor.unused_data)} bytes follow the end of the DEFLATE data"
        )
    return out


class DeflateCompressor:
    """Stateful (per session) DEFLATE: each :meth:`compress` returns one packet's data,
    sync-flushed so the peer's :class:`DeflateDecompressor` can inflate it on arrival."""

    def __init__(self, *, level: int = -1, max_size: int = MAX_INFLATED) -> None:
        _check_level(level)
        self.max_size = max_size
        self._compressor = zlib.compressobj(level, zlib.DEFLATED, WBITS)

    def compress(self, packet: bytes) -> bytes:
        """Compress the next packet of the session."""
        _check_input(packet, self.max_size)
        out = self._compressor.compress(packet) + self._compressor.flush(zlib.Z_SYNC_FLUSH)
        return _check_expansion(len(packet), out)


class DeflateDecompressor:
    """Stateful (per session) inflation of :class:`DeflateCompressor` packets.

    Any error leaves the stream unusable (the history no longer matches the peer's), so every
    later call raises too: the session must be closed or renegotiated.
    """

    def __init__(self, *, max_size: int = MAX_INFLATED) -> None:
        self.max_size = max_size
        self._decompressor = zlib.decompressobj(WBITS)
        self._failed: str | None = None

    def decompress(self, packet: bytes) -> bytes:
        """Inflate the next packet of the session."""
        if self._failed is not None:
            raise DecompressionError(
                f"DEFLATE stream unusable after an earlier error: {self._failed}"
            )
        try:
            return self._decompress(packet)
        except DecompressionError as exc:
            self._failed = str(exc)
            raise

    def _decompress(self, packet: bytes) -> bytes:
        if not packet.endswith(_SYNC_MARKER):
            raise DecompressionError("stateful DEFLATE packet truncated (no sync flush at its end)")
        try:
            out = self._decompressor.decompress(packet, self.max_size + 1)
        except zlib.error as exc:
            raise DecompressionError(f"invalid DEFLATE data: {exc}") from None
        if len(out) > self.max_size or self._decompressor.unconsumed_tail:
            raise DecompressionError(f"packet inflates past the {self.max_size}-byte limit")
        if self._decompressor.eof:
            raise DecompressionError("stateful DEFLATE stream was finished by the peer")
        return out
