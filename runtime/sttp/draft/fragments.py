"""Draft-0.8 fragmentation: BeginFragment / NextFragment splitting and assembly (sans-IO).

A packet larger than the negotiated maximum (at most 65535 bytes with the 3-byte frame header) is
sent as one BeginFragment (total fragment size, total raw size, the fragmented command's code, the
compression mode, first fragment) followed by NextFragment commands until the total is reached.
Fragments of one packet are never interleaved with any other command.

The payload structures are the generated ``BeginFragment`` / ``NextFragment`` classes of
:mod:`gridbind.generated.sttp.draft_0_8`; this module adds the state machine.

Project decisions where the draft is silent:

* ``Deflate`` compresses the whole packet payload once (raw RFC 1951, see
  :mod:`gridbind.sttp.draft.compression`) before splitting: statelessly by default, or as the next
  packet of a session stream when the :class:`Fragmenter` / :class:`Assembler` is given one
  (``deflate_stream``: a :class:`~gridbind.sttp.draft.compression.DeflateCompressor` /
  :class:`~gridbind.sttp.draft.compression.DeflateDecompressor`, for a negotiated stateful DEFLATE on
  a reliable channel; both ends must agree, ``compressionMode`` cannot tell them apart). With
  compression the packet is always sent as a BeginFragment, even when it fits, because only
  BeginFragment carries the mode.
* The seed's limits apply to every compressed packet: a packet that would decompress to more
  than :data:`~gridbind.sttp.draft.compression.MAX_INFLATED` (16384) bytes is a decompression failure.
  So the :class:`Fragmenter` deflates a packet only when its raw size is at most 16384 bytes;
  a larger packet asked for ``Deflate`` is sent uncompressed (``compressionMode`` none). The
  :class:`Assembler` refuses a compressed BeginFragment declaring a ``totalRawSize`` above
  16384, and DEFLATE data that inflates to more (or less) than its declared size, without
  inflating more than 16384 bytes.
* ``Tssc`` fragments carry data the caller already compressed with its session's TSSC encoder;
  they are assembled unchanged and handed back with their mode and declared raw size (at most
  16384, so the Fragmenter refuses a larger ``raw_size``: TSSC data cannot be sent raw).
* ``max_size`` (default 16 MiB) bounds the declared sizes of every packet (compressed ones are
  held to 16384 raw bytes as above), so a hostile BeginFragment cannot make the receiver
  reserve more than that.

Fragment order: NextFragment carries no offset or index (on the wire it is only the fragment
bytes), so the assembler cannot tell reordered or swapped fragments of the same size from the
right order. Reordering is only detectable downstream: for ``Deflate`` through decompression
(the swapped stream usually fails to inflate or inflates to another size, both
:class:`FragmentError`; stored, incompressible blocks can still inflate to permuted bytes of
the right size), otherwise only through the validation of the reassembled command (parsing,
TSSC decoding).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NoReturn

from gridbind.errors import RemoteError
from gridbind.generated.sttp.draft_0_8 import (
    BeginFragment,
    Command,
    CommandCode,
    CompressionMode,
    NextFragment,
    WireError,
)
from gridbind.sttp.draft.compression import (
    MAX_INFLATED,
    DecompressionError,
    DeflateCompressor,
    DeflateDecompressor,
    deflate,
    inflate,
)
from gridbind.sttp.errors import InvalidArgument, SttpError

__all__ = ["Assembler", "FragmentError", "Fragmenter", "Packet"]

MAX_PACKET_SIZE = 65535
FRAME_HEADER = 3
BEGIN_HEADER = 10  # total_fragment_size, total_raw_size (int32), command code, compression mode
DEFAULT_MAX_SIZE = 16 * 1024 * 1024
_INT32_MAX = 0x7FFFFFFF
_FRAGMENT_CODES = (CommandCode.BeginFragment, CommandCode.NextFragment)


class FragmentError(SttpError, RemoteError, ValueError):
    """A fragment sequence is malformed: interleaved, out of order, overlong, truncated, too
    large (a compressed packet above 16384 raw bytes), or its compressed data does not inflate
    to the declared size."""


@dataclass(frozen=True, slots=True)
class Packet:
    """A complete command payload (reassembled and inflated when it came in fragments)."""

    command_code: int
    payload: bytes
    compression: CompressionMode = CompressionMode.Uncompressed
    raw_size: int | None = None
    """Declared uncompressed size (only meaningful for ``Tssc`` pass-through payloads)."""
    fragmented: bool = False


def _frame(code: int, payload: bytes) -> bytes:
    return Command(command_code=code, payload=payload).build()


class Fragmenter:
    """Splits command payloads into frames no larger than ``max_packet_size`` bytes.

    With ``deflate_stream``, ``Deflate`` packets are compressed as the next packets of that
    session stream (stateful DEFLATE) instead of one by one; the frames must then be sent in
    the order they are made, and every one of them (the peer's history follows the stream);
    after a :class:`~gridbind.sttp.draft.compression.CompressionError` from the stream the session
    must end, since the stream already holds the refused packet.
    """

    def __init__(
        self,
        max_packet_size: int = MAX_PACKET_SIZE,
        *,
        deflate_level: int = -1,
        deflate_stream: DeflateCompressor | None = None,
    ) -> None:
        if not FRAME_HEADER + BEGIN_HEADER + 1 <= max_packet_size <= MAX_PACKET_SIZE:
            raise InvalidArgument(f"max_packet_size must be 14..{MAX_PACKET_SIZE}")
        self.max_packet_size = max_packet_size
        self.deflate_level = deflate_level
        self.deflate_stream = deflate_stream

    def split(
        self,
        command_code: int,
        payload: bytes,
        compression: CompressionMode = CompressionMode.Uncompressed,
        *,
        raw_size: int | None = None,
    ) -> list[tuple[int, bytes]]:
        """``(command code, payload)`` pairs to send in order: the payload itself when it fits
        uncompressed, else one BeginFragment and as many NextFragment as needed.

        ``Deflate`` is applied only to payloads of at most 16384 bytes (what a receiver may
        inflate); a larger payload is sent uncompressed instead. ``raw_size`` is required for
        ``Tssc`` (``payload`` is already TSSC data) and may not exceed 16384."""
        compression = CompressionMode(compression)
        if command_code in _FRAGMENT_CODES:
            raise FragmentError("fragment commands cannot themselves be fragmented")
        if compression is CompressionMode.Deflate and len(payload) > MAX_INFLATED:
            compression = CompressionMode.Uncompressed  # the receiver would refuse to inflate it
        if compression is CompressionMode.Uncompressed:
            if FRAME_HEADER + len(payload) <= self.max_packet_size:
                return [(command_code, payload)]
            data, raw = payload, len(payload)
        elif compression is CompressionMode.Deflate:
            if self.deflate_stream is not None:
                data = self.deflate_stream.compress(payload)
            else:
                data = deflate(payload, level=self.deflate_level)
            raw = len(payload)
        else:
            if raw_size is None:
                raise InvalidArgument("Tssc fragments need the raw_size of the data points")
            if raw_size > MAX_INFLATED:
                raise FragmentError(
                    f"Tssc packet of {raw_size} raw bytes exceeds the {MAX_INFLATED}-byte "
                    "limit a receiver decompresses"
                )
            data, raw = payload, raw_size
        if len(data) > _INT32_MAX or raw > _INT32_MAX:
            raise FragmentError("packet too large for BeginFragment's int32 sizes")
        first = self.max_packet_size - FRAME_HEADER - BEGIN_HEADER
        rest = self.max_packet_size - FRAME_HEADER
        begin = BeginFragment(
            total_fragment_size=len(data),
            total_raw_size=raw,
            command_code=command_code,
            compression_mode=compression,
            first_fragment=data[:first],
        )
        out = [(int(CommandCode.BeginFragment), begin.build())]
        for offset in range(first, len(data), rest):
            chunk = NextFragment(fragment=data[offset : offset + rest])
            out.append((int(CommandCode.NextFragment), chunk.build()))
        return out

    def frames(
        self,
        command_code: int,
        payload: bytes,
        compression: CompressionMode = CompressionMode.Uncompressed,
        *,
        raw_size: int | None = None,
    ) -> list[bytes]:
        """:meth:`split` as serialized Command frames."""
        return [
            _frame(code, body)
            for code, body in self.split(command_code, payload, compression, raw_size=raw_size)
        ]


class Assembler:
    """Reassembles fragmented packets from the stream of received commands.

    Feed every received command (:meth:`feed` or :meth:`feed_frame`); complete packets come
    back (other commands pass straight through), ``None`` while a fragmented packet is in
    progress. Errors raise :class:`FragmentError` and drop the partial packet; the connection
    should then be closed. Call :meth:`close` when the stream ends: it raises if a packet is
    incomplete.

    With ``deflate_stream`` (stateful DEFLATE), ``Deflate`` packets are inflated as the next
    packets of that session stream; after an error the stream stays unusable.
    """

    def __init__(
        self,
        max_size: int = DEFAULT_MAX_SIZE,
        *,
        deflate_stream: DeflateDecompressor | None = None,
    ) -> None:
        self.max_size = max_size
        self.deflate_stream = deflate_stream
        self._begin: BeginFragment | None = None
        self._chunks: list[bytes] = []
        self._received = 0

    @property
    def busy(self) -> bool:
        """Whether a fragmented packet is being assembled."""
        return self._begin is not None

    def feed_frame(self, frame: bytes) -> Packet | None:
        """:meth:`feed` for one serialized Command frame."""
        try:
            command = Command.parse(frame)
        except WireError as exc:
            self._abort()
            raise FragmentError(f"bad command frame: {exc}") from None
        return self.feed(command.command_code, command.payload)

    def feed(self, command_code: int, payload: bytes) -> Packet | None:
        """Process one received command; returns the packet it completes, if any."""
        if command_code == CommandCode.BeginFragment:
            if self._begin is not None:
                self._fail("BeginFragment while another fragmented packet is incomplete")
            return self._start(payload)
        if command_code == CommandCode.NextFragment:
            if self._begin is None:
                self._fail("NextFragment without a BeginFragment (out of order)")
            try:
                fragment = NextFragment.parse(payload).fragment
            except WireError as exc:
                self._fail(f"bad NextFragment: {exc}")
            if not fragment:
                self._fail("empty NextFragment")
            return self._add(fragment)
        if self._begin is not None:
            self._fail(
                f"command {command_code:#04x} interleaved with an incomplete fragmented packet"
            )
        return Packet(command_code, payload)

    def close(self) -> None:
        """The stream ended: raises :class:`FragmentError` if a packet was left incomplete."""
        if self._begin is not None:
            total = self._begin.total_fragment_size
            self._fail(f"fragmented packet truncated: {self._received} of {total} bytes")

    def _start(self, payload: bytes) -> Packet | None:
        try:
            begin = BeginFragment.parse(payload)
        except WireError as exc:
            self._fail(f"bad BeginFragment: {exc}")
        if begin.command_code in _FRAGMENT_CODES:
            self._fail("a fragmented packet cannot contain a fragment command")
        if begin.total_fragment_size > self.max_size or begin.total_raw_size > self.max_size:
            self._fail(
                f"fragmented packet of {begin.total_fragment_size} bytes "
                f"({begin.total_raw_size} raw) exceeds the {self.max_size}-byte limit"
            )
        if (
            begin.compression_mode is not CompressionMode.Uncompressed
            and begin.total_raw_size > MAX_INFLATED
        ):
            self._fail(
                f"compressed ({begin.compression_mode.name}) fragmented packet declares "
                f"{begin.total_raw_size} raw bytes, above the {MAX_INFLATED}-byte "
                "decompression limit"
            )
        if (
            begin.compression_mode is CompressionMode.Uncompressed
            and begin.total_raw_size != begin.total_fragment_size
        ):
            self._fail("uncompressed fragmented packet with different raw and fragment sizes")
        self._begin = begin
        self._chunks = []
        self._received = 0
        return self._add(begin.first_fragment)

    def _add(self, fragment: bytes) -> Packet | None:
        assert self._begin is not None
        total = self._begin.total_fragment_size
        if self._received + len(fragment) > total:
            self._fail(
                f"fragments overlong: {self._received + len(fragment)} bytes for a "
                f"{total}-byte packet"
            )
        self._chunks.append(fragment)
        self._received += len(fragment)
        if self._received < total:
            return None
        begin = self._begin
        data = b"".join(self._chunks)
        self._abort()
        mode = begin.compression_mode
        if mode is CompressionMode.Deflate:
            # Inflate up to the seed's limit (not just the declaration) so an overlong stream
            # is reported with its size; nothing past 16384 bytes is ever allocated.
            try:
                if self.deflate_stream is not None:
                    data = self.deflate_stream.decompress(data)
                else:
                    data = inflate(data, max_size=MAX_INFLATED)
            except DecompressionError as exc:
                raise FragmentError(f"fragmented packet does not inflate: {exc}") from None
            if len(data) > begin.total_raw_size:
                raise FragmentError(
                    f"fragmented packet inflates to {len(data)} bytes, more than the "
                    f"{begin.total_raw_size} its BeginFragment declares"
                )
            if len(data) != begin.total_raw_size:
                raise FragmentError(
                    f"fragmented packet inflates to {len(data)} bytes, "
                    f"BeginFragment says {begin.total_raw_size}"
                )
            return Packet(begin.command_code, data, mode, len(data), True)
        return Packet(begin.command_code, data, mode, begin.total_raw_size, True)

    def _abort(self) -> None:
        self._begin = None
        self._chunks = []
        self._received = 0

    def _fail(self, message: str) -> NoReturn:
        self._abort()
        raise FragmentError(message)
