"""TSSC, the Time-Series Special Compression of STTP: one sans-IO codec, two code tables.

TSSC compresses a stream of measurements ``(point id, timestamp, flags, value)`` by keeping, per
point, the last flags and the last three float32 bit patterns, and for the whole stream the last
two timestamps and the four smallest time deltas seen. Each element is sent as a 5-bit *code word*
followed by the bits that changed; each point adapts how many prefix bits its most frequent codes
cost (the *adaptive code statistics*). The codes of a measurement are written with the coder of
the point that came before it, so the decoder always knows which coder to read with.

Two code tables exist and the algorithm is otherwise identical:

* :data:`SEED` (profile ``draft-0.8``): codes 0..28 of the seed's Appendix E, 16-bit point ids
  (PointIDXOR4/8/12/16).
* :data:`DEPLOYED` (profile ``ieee2664``): codes 0..31 as spoken by the Grid Protection Alliance
  APIs (``sttpapi``, openPDC): PointIDXOR20/24/32 inserted after PointIDXOR16 and every later code
  shifted by 3, 32-bit point ids.

Blocks are framed as deployed STTP frames them: one version byte (85), a big-endian uint16
sequence number, then the TSSC payload ending with its end-of-stream code. Sequence number 0 means
"encoder state was reset": the decoder resets itself on it. Numbers then run 1, 2, ... 65535, 1, ...
(never back to 0 except after a reset). A decoder that sees any other number than the one it
expects raises :class:`TsscSequenceError` and keeps its state, so the caller can request a reset.

The hot loops exist twice with byte-identical output: the compiled core ``gridbind.sttp._tssc``
(used automatically when it was built) and a pure-Python fallback. Choose with the
``implementation`` argument (``"auto"``, ``"c"``, ``"python"``) or force the fallback everywhere
with the environment variable ``GRIDBIND_TSSC_PURE=1``.

Typical use (columnar, the fast path)::

    enc = TsscEncoder(DEPLOYED)
    for block in enc.encode(ids, timestamps, flags, values):   # list[TsscBlock]
        send(block.count, block.data)

    dec = TsscDecoder(DEPLOYED)
    cols = dec.decode(block.data)       # TsscColumns of array.array: ids, timestamps, flags, values

Per measurement: ``enc.add(id, ts, flags, value)`` returns ``False`` when the block is full, then
``enc.finish()`` returns the framed block; ``dec.decode(data).rows()`` yields tuples.
"""

from __future__ import annotations

import os
import struct
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from gridbind.errors import RemoteError
from gridbind.sttp.errors import InvalidArgument, SttpError

__all__ = [
    "DEPLOYED",
    "SEED",
    "TSSC_VERSION",
    "CodeTable",
    "TsscBlock",
    "TsscColumns",
    "TsscDecodeError",
    "TsscDecoder",
    "TsscEncoder",
    "TsscError",
    "TsscSequenceError",
    "TsscVersionError",
    "available_implementations",
    "default_implementation",
    "next_sequence_number",
    "table_for_profile",
]

#: The version byte that opens every deployed TSSC block.
TSSC_VERSION = 85
#: Bytes of block header: version byte + uint16 sequence number.
HEADER_SIZE = 3
#: The encoder refuses a measurement when fewer bytes than this remain in the block (as deployed);
#: one measurement needs at most 4 code bytes + 4 id + 9 timestamp + 5 flags + 4 value bytes.
BLOCK_HEADROOM = 100
DEFAULT_MAX_BLOCK_SIZE = 32768
#: Most measurements a decoder accepts in one block: what a deployed-size (32 KiB) block holds
#: at one bit per measurement. Blocks are decoded only up to their declared count.
MAX_BLOCK_MEASUREMENTS = 8 * DEFAULT_MAX_BLOCK_SIZE
#: Most distinct point ids a decoder keeps state for.
MAX_POINTS = 1 << 18
MIN_MAX_BLOCK_SIZE = BLOCK_HEADROOM + HEADER_SIZE + 1

_MASK32 = 0xFFFFFFFF
_MASK64 = 0xFFFFFFFFFFFFFFFF
_INT64_MAX = (1 << 63) - 1
_F32 = struct.Struct("<f")
_U32 = struct.Struct("<I")


# --------------------------------------------------------------------------------------------
# Errors


class TsscError(SttpError, ValueError):
    """Base class of TSSC errors (bad input to the encoder, bad blocks to the decoder)."""


class TsscDecodeError(TsscError, RemoteError):
    """A block is truncated, corrupted or was not produced by a matching encoder.

    After this error the decoder's state no longer matches the encoder's: the decoder refuses
    further blocks until one with sequence number 0 (an encoder reset) arrives or
    :meth:`TsscDecoder.reset` is called.
    """


class TsscVersionError(TsscDecodeError):
    """The block's version byte is not :data:`TSSC_VERSION`."""


class TsscSequenceError(TsscError, RemoteError):
    """A block arrived out of sequence (lost or repeated block): ask the publisher to reset.

    ``expected`` is the sequence number the decoder waits for, ``received`` the block's (``None``
    when the decoder refuses everything but a reset after a decode error).
    """

    def __init__(self, message: str, expected: int, received: int | None) -> None:
        super().__init__(message)
        self.expected = expected
        self.received = received


# --------------------------------------------------------------------------------------------
# Code tables


@dataclass(frozen=True)
class CodeTable:
    """A TSSC code-word table.

    The tables differ only by the point-id XOR codes: code 0 is EndOfStream, codes
    ``1..len(id_xor_widths)`` are PointIDXOR<w> for each width ``w`` (in bits), and the
    remaining codes follow in a fixed order starting right after them (see :attr:`codes`).
    """

    name: str
    profile: str
    id_bits: int
    id_xor_widths: tuple[int, ...]
    codes: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = ["END_OF_STREAM"] + [f"POINT_ID_XOR{w}" for w in self.id_xor_widths]
        names += [f"TIME_DELTA{i}_FORWARD" for i in range(1, 5)]
        names += [f"TIME_DELTA{i}_REVERSE" for i in range(1, 5)]
        names += ["TIMESTAMP2", "TIME_XOR_7BIT", "FLAGS2", "FLAGS_7BIT32"]
        names += ["VALUE1", "VALUE2", "VALUE3", "VALUE_ZERO"]
        names += [f"VALUE_XOR{w}" for w in range(4, 33, 4)]
        if len(names) > 32:
            raise InvalidArgument("a TSSC code table has at most 32 codes (5-bit code words)")
        object.__setattr__(self, "codes", {name: code for code, name in enumerate(names)})

    def __getattr__(self, name: str) -> int:
        codes = self.__dict__.get("codes", {})
        if name in codes:
            return codes[name]
        raise AttributeError(name)

    @property
    def id_codes(self) -> int:
        """Number of PointIDXOR codes (4 for the seed, 7 deployed)."""
        return len(self.id_xor_widths)

    @property
    def max_code(self) -> int:
        """The highest valid code word."""
        return len(self.codes) - 1

    @property
    def max_id(self) -> int:
        """The largest point id the table can carry."""
        return (1 << self.id_bits) - 1


#: Seed draft v0.8.23, Appendix E: codes 0..28, 16-bit point ids.
SEED = CodeTable("seed", "draft-0.8", 16, (4, 8, 12, 16))
#: Deployed STTP (IEEE 2664, GPA APIs, sttpapi): codes 0..31, 32-bit point ids.
DEPLOYED = CodeTable("deployed", "ieee2664", 32, (4, 8, 12, 16, 20, 24, 32))


def table_for_profile(profile: str) -> CodeTable:
    """The code table of an STTP wire profile (``"draft-0.8"`` or ``"ieee2664"``)."""
    for table in (SEED, DEPLOYED):
        if table.profile == profile:
            return table
    raise InvalidArgument(f"no TSSC code table for profile {profile!r}")


def next_sequence_number(sequence: int) -> int:
    """The sequence number of the block after ``sequence`` (65535 is followed by 1, never 0)."""
    return 1 if sequence >= 0xFFFF else sequence + 1


# --------------------------------------------------------------------------------------------
# Implementation selection

try:
    from gridbind.sttp import _tssc as _ctssc  # type: ignore[attr-defined]
except ImportError:  # the compiler was missing at install time: the fallback does the work
    _ctssc = None


def available_implementations() -> tuple[str, ...]:
    """Implementations usable in this process: ``"c"`` when the compiled core was built, and
    ``"python"`` always."""
    return ("c", "python") if _ctssc is not None else ("python",)


def default_implementation() -> str:
    """What ``implementation="auto"`` picks: ``"c"`` if built, unless ``GRIDBIND_TSSC_PURE`` is
    set to a true value (1, true, yes)."""
    forced = os.environ.get("GRIDBIND_TSSC_PURE", "").strip().lower() in {"1", "true", "yes"}
    return "python" if forced or _ctssc is None else "c"


def _resolve(implementation: str) -> str:
    if implementation == "auto":
        return default_implementation()
    if implementation == "c":
        if _ctssc is None:
            raise RuntimeError("the compiled TSSC core gridbind.sttp._tssc is not built")
        return "c"
    if implementation == "python":
        return "python"
    raise InvalidArgument(f"unknown TSSC implementation {implementation!r} (auto, c, python)")


# --------------------------------------------------------------------------------------------
# Public results


class TsscBlock(NamedTuple):
    """One encoded block: ``count`` measurements in ``data`` (header + payload)."""

    # Public field name: shadowing tuple.count is intended (block.count is the number of rows).
    count: int  # type: ignore[assignment]
    data: bytes

    @property
    def sequence_number(self) -> int:
        """The block's sequence number (0 = first block after an encoder reset)."""
        return int.from_bytes(self.data[1:3], "big")


@dataclass(frozen=True, slots=True)
class TsscColumns:
    """Decoded measurements as columns: ``ids`` (uint32), ``timestamps`` (int64 ticks),
    ``flags`` (uint32) and ``values`` (float32), all ``array.array`` of equal length."""

    ids: array
    timestamps: array
    flags: array
    values: array

    def __len__(self) -> int:
        return len(self.ids)

    def rows(self) -> Iterator[tuple[int, int, int, float]]:
        """The measurements as ``(id, timestamp, flags, value)`` tuples."""
        return zip(self.ids, self.timestamps, self.flags, self.values, strict=True)

    def value_bits(self) -> array:
        """The values' exact float32 bit patterns (NaN payloads included) as uint32."""
        bits = array("I")
        bits.frombytes(self.values.tobytes())
        return bits


# --------------------------------------------------------------------------------------------
# Column normalisation (one conversion per batch, so the cores see fixed machine types)


def _typed_view(column: Any, typecode: str, formats: tuple[str, ...], problem: str) -> Any:
    """``column`` as a contiguous 1-D memoryview of ``array`` items of ``typecode``.

    A buffer whose format is in ``formats`` (see :func:`_formats`) is taken as it is (copied only
    when it is not contiguous); anything else goes through ``array(typecode, column)``, and what
    that refuses raises :class:`TsscError` ``"<problem>: <reason>"``.
    """
    try:
        view = memoryview(column)
    except TypeError:
        view = None
    if view is not None and view.ndim == 1 and view.format in formats:
        return view if view.c_contiguous else memoryview(array(typecode, view.tolist()))
    try:
        return memoryview(array(typecode, column))
    except (OverflowError, TypeError) as exc:
        raise TsscError(f"{problem}: {exc}") from None


def _formats(typecode: str, *candidates: str) -> tuple[str, ...]:
    """The buffer formats among ``candidates`` whose items are as wide as ``typecode``'s here
    (``L`` is 4 or 8 bytes depending on the platform)."""
    size = array(typecode).itemsize
    return tuple(code for code in candidates if array(code).itemsize == size)


_U32_FORMATS = _formats("I", "I", "L")
_I64_FORMATS = _formats("q", "q", "l")


def float32_bits(value: float) -> int:
    """The float32 bit pattern of ``value`` (rounded to nearest; out of range -> +-inf)."""
    try:
        return _U32.unpack(_F32.pack(value))[0]
    except OverflowError:
        return 0x7F800000 if value > 0 else 0xFF800000


# --------------------------------------------------------------------------------------------
# Pure-Python core (the reference the compiled core is tested against)


def _i64(x: int) -> int:
    x &= _MASK64
    return x - (1 << 64) if x >> 63 else x


class _Point:
    """Per-point state: predicted next id, last flags/values, adaptive coder of the next codes."""

    __slots__ = (
        "next_id",
        "flags1",
        "flags2",
        "v1",
        "v2",
        "v3",
        "stats",
        "sent",
        "startup",
        "mode",
        "m1",
        "m2",
        "m3",
    )

    def __init__(self, value1: int) -> None:
        self.next_id = 0
        self.flags1 = self.flags2 = 0
        self.v1 = self.v2 = self.v3 = 0
        self.stats = [0] * 32
        self.sent = 0
        self.startup = 0
        # Startup: mode 4 with VALUE1/2/3 as the 1-, 2- and 3-bit codes.
        self.mode = 4
        self.m1, self.m2, self.m3 = value1, value1 + 1, value1 + 2

    def count(self, code: int) -> None:
        self.sent += 1
        self.stats[code] += 1
        if self.startup == 0:
            if self.sent > 5:
                self.startup = 1
                self.adapt()
        elif self.startup == 1:
            if self.sent > 20:
                self.startup = 2
                self.adapt()
        elif self.sent > 100:
            self.adapt()

    def adapt(self) -> None:
        c1, n1, c2, n2, c3, n3 = 0, 0, 1, 0, 2, 0
        total = 0
        stats = self.stats
        for code in range(32):
            n = stats[code]
            total += n
            if n > n3:
                if n > n1:
                    c3, n3, c2, n2, c1, n1 = c2, n2, c1, n1, code, n
                elif n > n2:
                    c3, n3, c2, n2 = c2, n2, code, n
                else:
                    c3, n3 = code, n
        self.stats = [0] * 32
        size1 = total * 5
        size2 = n1 + (total - n1) * 6
        size3 = n1 + n2 * 2 + (total - n1 - n2) * 7
        size4 = n1 + n2 * 2 + n3 * 3 + (total - n1 - n2 - n3) * 8
        smallest = min(size1, size2, size3, size4)
        if smallest == size1:
            self.mode = 1
        elif smallest == size2:
            self.mode, self.m1 = 2, c1
        elif smallest == size3:
            self.mode, self.m1, self.m2 = 3, c1, c2
        else:
            self.mode, self.m1, self.m2, self.m3 = 4, c1, c2, c3
        self.sent = 0


def _update_deltas(state: list[int], previous: int, timestamp: int) -> None:
    """Keep the four smallest distinct time deltas (int64 wrap-around as deployed)."""
    delta = _i64(previous - timestamp)
    if delta < 0:
        delta = _i64(-delta)  # abs(INT64_MIN) stays INT64_MIN, as in the deployed code
    d1, d2, d3, d4 = state
    if delta < d4 and delta != d1 and delta != d2 and delta != d3:
        if delta < d1:
            state[:] = [delta, d1, d2, d3]
        elif delta < d2:
            state[:] = [d1, delta, d2, d3]
        elif delta < d3:
            state[:] = [d1, d2, delta, d3]
        else:
            state[3] = delta


class _PyCoreState:
    """What the pure-Python encoder and decoder cores share: the numbers of the codes after the
    ``id_codes`` PointIDXOR codes (see :class:`CodeTable`) and the stream state both keep in
    step (per-point state, the last point, the last two timestamps, the four smallest deltas)."""

    def __init__(self, id_codes: int, id_bits: int) -> None:
        self._id_mask = (1 << id_bits) - 1
        base = id_codes + 1
        self._td = base  # TIME_DELTA1_FORWARD; reverse codes are td+4..td+7
        self._ts2 = base + 8
        self._txor = base + 9
        self._f2 = base + 10
        self._f7 = base + 11
        self._v1 = base + 12
        self._vzero = base + 15
        self._vxor4 = base + 16
        self._vxor32 = base + 23
        self.reset()

    def reset(self) -> None:
        self._points: dict[int, _Point] = {}
        self._last = _Point(self._v1)
        self._ts1 = 0
        self._ts2v = 0
        self._deltas = [_INT64_MAX] * 4


class _PyEncoderCore(_PyCoreState):
    """Pure-Python encoder core; same methods as the compiled ``_tssc.Encoder``."""

    def __init__(self, id_codes: int, id_bits: int) -> None:
        super().__init__(id_codes, id_bits)
        self._widths = (4, 8, 12, 16) if id_codes == 4 else (4, 8, 12, 16, 20, 24, 32)
        self._id_bits = id_bits
        self.begin(DEFAULT_MAX_BLOCK_SIZE - HEADER_SIZE)

    def begin(self, capacity: int) -> None:
        self._buf = bytearray(capacity + 64)
        self._cap = capacity
        self._pos = 0
        self._bidx = -1
        self._cache = 0
        self._nbits = 0
        self.count = 0

    # bit stream: a byte is reserved in the output when its first bit is written, so bits and
    # whole bytes interleave exactly as the decoder will consume them
    def _bits(self, value: int, length: int) -> None:
        if self._bidx < 0:
            self._bidx = self._pos
            self._pos += 1
        self._cache = (self._cache << length) | value
        self._nbits += length
        if self._nbits > 7:
            self._drain()

    def _drain(self) -> None:
        buf = self._buf
        while self._nbits > 7:
            self._nbits -= 8
            buf[self._bidx] = (self._cache >> self._nbits) & 0xFF
            if self._nbits > 0:
                self._bidx = self._pos
                self._pos += 1
            else:
                self._bidx = -1
        self._cache &= (1 << self._nbits) - 1

    def _code(self, code: int) -> None:
        # Mode n gives the point's n - 1 most frequent codes the prefixes 1, 01, 001; any other
        # code is n - 1 zeros and its 5 bits.
        pt = self._last
        mode = pt.mode
        if mode > 1 and code == pt.m1:
            self._bits(1, 1)
        elif mode > 2 and code == pt.m2:
            self._bits(1, 2)
        elif mode > 3 and code == pt.m3:
            self._bits(1, 3)
        else:
            self._bits(code, 4 + mode)
        pt.count(code)

    def _xor(self, code: int, width: int, changed: int) -> None:
        self._code(code)
        if width & 4:
            self._bits(changed & 15, 4)
            changed >>= 4
        buf, pos = self._buf, self._pos
        for i in range(width >> 3):
            buf[pos + i] = (changed >> (8 * i)) & 0xFF
        self._pos = pos + (width >> 3)

    def _varint(self, value: int, limit: int) -> None:
        buf, pos = self._buf, self._pos
        for _ in range(limit):
            if value < 128:
                break
            buf[pos] = (value & 0x7F) | 0x80
            value >>= 7
            pos += 1
        buf[pos] = value
        self._pos = pos + 1

    def add(self, pid: int, ts: int, flags: int, vbits: int) -> bool:
        if self._cap - self._pos < BLOCK_HEADROOM:
            return False
        if not 0 <= pid <= self._id_mask:
            raise TsscError(f"point id {pid} does not fit {self._id_bits} bits")
        if not (-(1 << 63) <= ts <= _INT64_MAX and 0 <= flags <= _MASK32 and 0 <= vbits <= _MASK32):
            raise OverflowError("timestamp must fit int64, flags and value bits uint32")
        points = self._points
        pt = points.get(pid)
        if pt is None:
            pt = _Point(self._v1)
            pt.next_id = (pid + 1) & self._id_mask
            points[pid] = pt
        last = self._last
        if last.next_id != pid:
            changed = pid ^ last.next_id
            code = 0
            for width in self._widths:
                code += 1
                if changed < (1 << width):
                    break
            self._xor(code, width, changed)
            last.next_id = pid
        if self._ts1 != ts:
            self._timestamp(ts)
        if pt.flags1 != flags:
            if pt.flags2 == flags:
                self._code(self._f2)
            else:
                self._code(self._f7)
                self._varint(flags, 4)
            pt.flags2 = pt.flags1
            pt.flags1 = flags
        if pt.v1 == vbits:
            self._code(self._v1)
        elif pt.v2 == vbits:
            self._code(self._v1 + 1)
            pt.v2 = pt.v1
            pt.v1 = vbits
        else:
            if pt.v3 == vbits:
                self._code(self._v1 + 2)
            elif vbits == 0:
                self._code(self._vzero)
            else:
                changed = vbits ^ pt.v1
                width = 4
                while changed >= (1 << width):
                    width += 4
                self._xor(self._vxor4 + (width >> 2) - 1, width, changed)
            pt.v3 = pt.v2
            pt.v2 = pt.v1
            pt.v1 = vbits
        self._last = pt
        self.count += 1
        return True

    def _timestamp(self, ts: int) -> None:
        ts1 = self._ts1
        deltas = self._deltas
        if self._ts2v == ts:
            self._code(self._ts2)
        else:
            # TIME_DELTAn_FORWARD is ts == _i64(ts1 + deltas[n - 1]), that is the delta equals
            # _i64(ts - ts1) (deltas are int64); _REVERSE likewise with ts1 - deltas[n - 1].
            if ts1 < ts:
                delta, first = _i64(ts - ts1), self._td
            else:
                delta, first = _i64(ts1 - ts), self._td + 4
            if delta in deltas:
                self._code(first + deltas.index(delta))
            else:
                self._code(self._txor)
                self._varint((ts ^ ts1) & _MASK64, 8)
        _update_deltas(self._deltas, ts1, ts)
        self._ts2v = ts1
        self._ts1 = ts

    def add_columns(self, ids: Any, timestamps: Any, flags: Any, vbits: Any, start: int) -> int:
        add = self.add
        n = len(ids)
        i = start
        while i < n and add(ids[i], timestamps[i], flags[i], vbits[i]):
            i += 1
        return i

    def finish(self) -> bytes:
        if self._nbits > 0:
            self._code(0)  # END_OF_STREAM only when bits are pending, as deployed
            if self._nbits > 0:
                self._buf[self._bidx] = (self._cache << (8 - self._nbits)) & 0xFF
        data = bytes(self._buf[: self._pos])
        self.begin(self._cap)
        return data


class _Truncated(Exception):
    pass


class _PyDecoderCore(_PyCoreState):
    """Pure-Python decoder core; same methods as the compiled ``_tssc.Decoder``."""

    # the block being read; set by decode()
    _data: bytes
    _pos: int
    _end: int
    _nbits: int
    _cache: int

    def __init__(self, id_codes: int, id_bits: int) -> None:
        super().__init__(id_codes, id_bits)
        self._id_codes = id_codes

    def _bit(self) -> int:
        if self._nbits == 0:
            if self._pos >= self._end:
                raise _Truncated
            self._cache = self._data[self._pos]
            self._pos += 1
            self._nbits = 8
        self._nbits -= 1
        return (self._cache >> self._nbits) & 1

    def _nbits_value(self, count: int) -> int:
        value = 0
        for _ in range(count):
            value = (value << 1) | self._bit()
        return value

    def _byte(self) -> int:
        if self._pos >= self._end:
            raise _Truncated
        self._pos += 1
        return self._data[self._pos - 1]

    def _code(self) -> int:
        # the prefix code of the encoder's _code
        pt = self._last
        mode = pt.mode
        bit = self._bit
        if mode > 1 and bit():
            code = pt.m1
        elif mode > 2 and bit():
            code = pt.m2
        elif mode > 3 and bit():
            code = pt.m3
        else:
            code = self._nbits_value(5)
        pt.count(code)
        return code

    def _xor(self, width: int) -> int:
        value = 0
        shift = 0
        if width & 4:
            value = self._nbits_value(4)
            shift = 4
        for _ in range(width >> 3):
            value |= self._byte() << shift
            shift += 8
        return value

    def _varint(self, limit: int) -> int:
        value = 0
        shift = 0
        for _ in range(limit):
            byte = self._byte()
            value |= (byte & 0x7F) << shift
            if byte < 128:
                return value
            shift += 7
        return value | (self._byte() << shift)

    def decode(
        self, payload: bytes, limit: int = -1, max_points: int = -1
    ) -> tuple[int, bytes, bytes, bytes, bytes]:
        self._data = payload
        self._pos = 0
        self._end = len(payload)
        self._nbits = 0
        self._cache = 0
        self._max_points = max_points
        ids, stamps, flag_col, values = array("I"), array("q"), array("I"), array("I")
        try:
            while self._decode_one(ids, stamps, flag_col, values):
                if 0 <= limit < len(ids):
                    raise ValueError(f"TSSC block holds more than {limit} measurements")
        except _Truncated:
            raise ValueError(
                f"TSSC block truncated at byte {self._pos} of {self._end} "
                f"after {len(ids)} measurements"
            ) from None
        if self._pos != self._end:
            raise ValueError(
                f"{self._end - self._pos} bytes follow the end-of-stream code "
                f"after {len(ids)} measurements"
            )
        return len(ids), ids.tobytes(), stamps.tobytes(), flag_col.tobytes(), values.tobytes()

    def _bad(self, what: str, code: int) -> ValueError:
        return ValueError(f"invalid TSSC code {code} for {what} at byte {self._pos}")

    def _decode_one(self, ids: array, stamps: array, flag_col: array, values: array) -> bool:
        if self._pos >= self._end and self._nbits == 0:
            return False
        last = self._last
        code = self._code()
        if code == 0:
            return False
        if code <= self._id_codes:
            width = (4, 8, 12, 16, 20, 24, 32)[code - 1]
            last.next_id ^= self._xor(width)
            code = self._code()
            if code < self._td:
                raise self._bad("a timestamp, flags or value", code)
        pid = last.next_id
        pt = self._points.get(pid)
        if pt is None:
            if 0 <= self._max_points <= len(self._points):
                raise ValueError(
                    f"TSSC stream names more than {self._max_points} distinct point ids"
                )
            pt = _Point(self._v1)
            pt.next_id = (pid + 1) & self._id_mask
            self._points[pid] = pt
        if code <= self._txor:
            ts = self._timestamp(code)
            code = self._code()
            if code < self._f2:
                raise self._bad("flags or a value", code)
        else:
            ts = self._ts1
        if code <= self._f7:
            if code == self._f2:
                flags = pt.flags2
            else:
                flags = self._varint(4) & _MASK32
            pt.flags2 = pt.flags1
            pt.flags1 = flags
            code = self._code()
            if code < self._v1:
                raise self._bad("a value", code)
        else:
            flags = pt.flags1
        v1 = self._v1
        if code == v1:
            value = pt.v1
        elif code == v1 + 1:
            value = pt.v2
            pt.v2 = pt.v1
            pt.v1 = value
        else:
            if code == v1 + 2:
                value = pt.v3
            elif code == self._vzero:
                value = 0
            elif code <= self._vxor32:
                value = self._xor((code - self._vxor4 + 1) * 4) ^ pt.v1
            else:
                raise self._bad("a value", code)
            pt.v3 = pt.v2
            pt.v2 = pt.v1
            pt.v1 = value
        self._last = pt
        ids.append(pid)
        stamps.append(ts)
        flag_col.append(flags)
        values.append(value)
        return True

    def _timestamp(self, code: int) -> int:
        ts1 = self._ts1
        offset = code - self._td
        if offset < 4:
            ts = _i64(ts1 + self._deltas[offset])
        elif offset < 8:
            ts = _i64(ts1 - self._deltas[offset - 4])
        elif code == self._ts2:
            ts = self._ts2v
        else:
            ts = _i64(ts1 ^ self._varint(8))
        _update_deltas(self._deltas, ts1, ts)
        self._ts2v = ts1
        self._ts1 = ts
        return ts


def _core_classes(implementation: str) -> tuple[Any, Any]:
    if implementation == "c":
        return _ctssc.Encoder, _ctssc.Decoder
    return _PyEncoderCore, _PyDecoderCore


# --------------------------------------------------------------------------------------------
# Public encoder and decoder


class TsscEncoder:
    """Sans-IO TSSC encoder producing framed blocks (version byte, sequence number, payload).

    ``table`` selects the code table (:data:`DEPLOYED` for ieee2664, :data:`SEED` for draft-0.8).
    ``max_block_size`` bounds each framed block in bytes (header included); a block is closed when
    fewer than 100 payload bytes remain, as the deployed encoder does. ``implementation`` is
    ``"auto"`` (compiled core when built), ``"c"`` or ``"python"``.

    The state is shared by all blocks of a session: blocks must be decoded in order by one
    :class:`TsscDecoder`. Call :meth:`reset` (e.g. when the subscriber asks for it) to start over;
    the next block then carries sequence number 0.
    """

    def __init__(
        self,
        table: CodeTable = DEPLOYED,
        *,
        max_block_size: int = DEFAULT_MAX_BLOCK_SIZE,
        implementation: str = "auto",
    ) -> None:
        if not MIN_MAX_BLOCK_SIZE <= max_block_size <= 0x7FFFFFFF:
            raise InvalidArgument(f"max_block_size must be at least {MIN_MAX_BLOCK_SIZE}")
        self.table = table
        self.implementation = _resolve(implementation)
        self.max_block_size = max_block_size
        encoder_class, _ = _core_classes(self.implementation)
        self._core = encoder_class(table.id_codes, table.id_bits)
        self._core.begin(max_block_size - HEADER_SIZE)
        self._sequence = 0

    @property
    def sequence_number(self) -> int:
        """Sequence number the next finished block will carry."""
        return self._sequence

    @property
    def count(self) -> int:
        """Measurements in the block being built."""
        return int(self._core.count)

    def reset(self) -> None:
        """Forget all state (the block being built is discarded); the next block is number 0."""
        self._core.reset()
        self._core.begin(self.max_block_size - HEADER_SIZE)
        self._sequence = 0

    def add(self, point_id: int, timestamp: int, flags: int, value: float) -> bool:
        """Append one measurement to the current block; ``False`` means the block is full (call
        :meth:`finish`, then add it again). ``value`` is rounded to float32."""
        try:
            return bool(self._core.add(point_id, timestamp, flags, float32_bits(value)))
        except (OverflowError, TypeError, ValueError) as exc:
            raise TsscError(f"bad measurement ({point_id}, {timestamp}, {flags}): {exc}") from None

    def add_columns(
        self, ids: Any, timestamps: Any, flags: Any, values: Any, start: int = 0
    ) -> int:
        """Append measurements ``start..`` of the columns until the block is full; returns the
        index of the first measurement not added (``len(ids)`` when all fit).

        Columns may be any sequences; ``array.array``/numpy arrays of uint32 ids, int64
        timestamps, uint32 flags and float32 values are used without conversion.
        """
        cols = _normalise(ids, timestamps, flags, values)
        if not 0 <= start <= len(cols[0]):
            raise InvalidArgument(f"start {start} outside the columns")
        return self._add_normalised(cols, start)

    def _add_normalised(self, cols: tuple[Any, Any, Any, Any], start: int) -> int:
        try:
            return int(self._core.add_columns(*cols, start))
        except ValueError as exc:
            raise TsscError(str(exc)) from None

    def finish(self) -> bytes | None:
        """Close the current block: returns it framed, or ``None`` when it holds no measurement
        (no sequence number is used then)."""
        if self._core.count == 0:
            return None
        payload = self._core.finish()
        header = bytes((TSSC_VERSION, self._sequence >> 8, self._sequence & 0xFF))
        self._sequence = next_sequence_number(self._sequence)
        return header + payload

    def encode(self, ids: Any, timestamps: Any, flags: Any, values: Any) -> list[TsscBlock]:
        """Encode whole columns (plus anything already added) into as many blocks as needed."""
        cols = _normalise(ids, timestamps, flags, values)
        blocks: list[TsscBlock] = []
        n = len(cols[0])
        index = 0
        while index < n:
            index = self._add_normalised(cols, index)
            if index < n:
                count = self._core.count
                data = self.finish()
                if data is None:  # cannot happen with the headroom rule; guards an endless loop
                    raise TsscError("a measurement does not fit an empty block")
                blocks.append(TsscBlock(count, data))
        count = self._core.count
        data = self.finish()
        if data is not None:
            blocks.append(TsscBlock(count, data))
        return blocks

    def encode_measurements(self, rows: Iterable[Sequence[Any]]) -> list[TsscBlock]:
        """:meth:`encode` for ``(id, timestamp, flags, value)`` rows."""
        ids, stamps, flags, values = array("I"), array("q"), array("I"), array("f")
        try:
            for point_id, timestamp, flag, value in rows:
                ids.append(point_id)
                stamps.append(timestamp)
                flags.append(flag)
                values.append(value)
        except (OverflowError, TypeError) as exc:
            raise TsscError(f"bad measurement row: {exc}") from None
        return self.encode(ids, stamps, flags, values)


def _normalise(ids: Any, timestamps: Any, flags: Any, values: Any) -> tuple[Any, Any, Any, Any]:
    cols = (
        _typed_view(ids, "I", _U32_FORMATS, "point ids must be integers in 0..2**32-1"),
        _typed_view(timestamps, "q", _I64_FORMATS, "timestamps must be int64 ticks"),
        _typed_view(flags, "I", _U32_FORMATS, "flags must be integers in 0..2**32-1"),
        # values travel as their float32 bit patterns
        _typed_view(values, "f", ("f",), "values must be floats").cast("B").cast("I"),
    )
    n = len(cols[0])
    if any(len(col) != n for col in cols):
        raise TsscError("ids, timestamps, flags and values must have the same length")
    return cols


class TsscDecoder:
    """Sans-IO TSSC decoder of framed blocks (see :class:`TsscEncoder`).

    :meth:`decode` checks the version byte and the sequence number, resets itself on sequence
    number 0 and raises :class:`TsscSequenceError` (state kept) on any unexpected number.
    Truncated or corrupted payloads raise :class:`TsscDecodeError`; the work done per block is
    bounded by its length (every measurement costs at least one bit).
    """

    def __init__(
        self,
        table: CodeTable = DEPLOYED,
        *,
        implementation: str = "auto",
        max_measurements: int = MAX_BLOCK_MEASUREMENTS,
        max_points: int = MAX_POINTS,
    ) -> None:
        self.table = table
        self.implementation = _resolve(implementation)
        _, decoder_class = _core_classes(self.implementation)
        self._core = decoder_class(table.id_codes, table.id_bits)
        self._expected = 0
        self._broken = False
        #: most measurements one block may hold (checked against its declared count before
        #: decoding, and while decoding): the work per block is bounded whatever its size
        self.max_measurements = max_measurements
        #: most distinct point ids the decoder keeps state for (a session may lower it to the
        #: size of its signal index cache)
        self.max_points = max_points

    @property
    def expected_sequence(self) -> int:
        """The sequence number of the next block this decoder accepts (besides 0)."""
        return self._expected

    def reset(self) -> None:
        """Forget all state; the next block must be the encoder's block 0."""
        self._core.reset()
        self._expected = 0
        self._broken = False

    def decode(
        self, block: bytes | bytearray | memoryview, expected_count: int | None = None
    ) -> TsscColumns:
        """Decode one framed block into columns.

        Pass ``expected_count`` when the transport says how many measurements the block holds
        (deployed data packets do): a block cut at a byte boundary between measurements is
        otherwise indistinguishable from a complete block without an end-of-stream code.
        """
        block = bytes(block)
        if len(block) < HEADER_SIZE:
            raise TsscDecodeError(f"TSSC block of {len(block)} bytes has no header")
        if expected_count is not None:
            # Every measurement costs at least one bit: a count the block cannot hold, or more
            # than the bound, is refused before any decoding work.
            room = 8 * (len(block) - HEADER_SIZE)
            if not 0 <= expected_count <= min(room, self.max_measurements):
                self._broken = True
                raise TsscDecodeError(
                    f"TSSC packet declares {expected_count} measurements; a block of "
                    f"{len(block)} bytes holds at most {min(room, self.max_measurements)}"
                )
        if block[0] != TSSC_VERSION:
            raise TsscVersionError(f"TSSC version {block[0]} not supported (expected 85)")
        sequence = (block[1] << 8) | block[2]
        if sequence == 0:
            self.reset()
        elif self._broken:
            raise TsscSequenceError(
                "TSSC decoder lost synchronisation; waiting for a reset (sequence 0)",
                0,
                sequence,
            )
        elif sequence != self._expected:
            raise TsscSequenceError(
                f"TSSC block out of sequence: expected {self._expected}, received {sequence}",
                self._expected,
                sequence,
            )
        columns = self._decode(
            block[HEADER_SIZE:],
            self.max_measurements if expected_count is None else expected_count,
        )
        if expected_count is not None and len(columns) != expected_count:
            self._broken = True
            raise TsscDecodeError(
                f"TSSC block holds {len(columns)} measurements, its packet says {expected_count}"
            )
        self._expected = next_sequence_number(sequence)
        return columns

    def decode_payload(self, payload: bytes | bytearray | memoryview) -> TsscColumns:
        """Decode an unframed TSSC payload (no version/sequence checks), continuing the state."""
        return self._decode(payload, self.max_measurements)

    def _decode(self, payload: bytes | bytearray | memoryview, limit: int) -> TsscColumns:
        try:
            _, ids, stamps, flags, values = self._core.decode(
                bytes(payload), limit, self.max_points
            )
        except ValueError as exc:
            self._broken = True
            raise TsscDecodeError(str(exc)) from None
        return TsscColumns(
            _array("I", ids), _array("q", stamps), _array("I", flags), _array("f", values)
        )

    def decode_measurements(self, block: bytes) -> list[tuple[int, int, int, float]]:
        """:meth:`decode` returning ``(id, timestamp, flags, value)`` tuples."""
        return list(self.decode(block).rows())


def _array(typecode: str, data: bytes) -> array:
    result = array(typecode)
    result.frombytes(data)
    return result
