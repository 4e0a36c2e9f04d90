"""Run-time helpers of the generated STTP modules (``gridbind.generated.sttp.*``).

The generated code imports only this module, construct and the hand-written codecs its specs
reference; it lives in the runtime so that running a publisher or subscriber needs neither the
generator (``gridbind.codegen``) nor its extra (jinja2, PyYAML, black).
"""

from __future__ import annotations

import enum
import io
import struct
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import construct

from gridbind.sttp.encoding import BitByteError, BitByteReader, BitByteWriter
from gridbind.sttp.errors import SttpError

T = TypeVar("T")

__all__ = [
    "BitByteArray",
    "BitByteRecord",
    "ConstraintError",
    "EnumOf",
    "FixedAscii",
    "FixedRecord",
    "MetadataColumn",
    "FlagsOf",
    "Guid",
    "MessageInfo",
    "NoCase",
    "Record",
    "WireError",
    "build",
    "check",
    "compiled",
    "enum_value",
    "parse",
    "read_record",
]


class WireError(SttpError, ValueError):
    """Bytes that do not parse as the expected structure, or a value that cannot be built."""


class ConstraintError(WireError):
    """A value outside the constraints the spec declares (checked on build and on parse)."""


#: Everything construct (compiled or not) and the hand-written codecs raise on bad input.
_FAILURES = (
    construct.ConstructError,
    struct.error,
    BitByteError,
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    OverflowError,
)


@dataclass(frozen=True, slots=True)
class MessageInfo:
    """Metadata of one command or response code."""

    code: int
    name: str
    kind: str  # "command" | "response"
    direction: str  # "publisher" | "subscriber" | "both"
    response_expected: bool
    channel: str  # "command" | "data"
    type: type


def compiled(subcon: construct.Construct) -> construct.Construct:
    """construct's compiled form of ``subcon`` (faster), or ``subcon`` if it cannot compile."""
    try:
        return subcon.compile()
    except Exception:  # noqa: BLE001 - any compiler limitation means "use the interpreter"
        return subcon


class _ExactStream(io.BytesIO):
    """A stream whose sized reads fail when short.

    construct's compiled parsers read ``Bytes(n)`` as a bare ``io.read(n)``, which would accept
    truncated input; this stream makes every short read an error (size -1 still means "the rest").
    """

    def read(self, size: int | None = -1) -> bytes:
        if size is not None and size < -1:
            raise construct.StreamError(f"negative length {size}")
        data = super().read(size)
        if size is not None and size >= 0 and len(data) != size:
            raise construct.StreamError(f"expected {size} bytes, found {len(data)}")
        return data


def parse(subcon: construct.Construct, data: bytes, name: str) -> Any:
    """Parse all of ``data`` with ``subcon``; leftover bytes and any failure -> WireError."""
    stream = _ExactStream(data)
    try:
        obj = subcon.parse_stream(stream)
    except ConstraintError:
        raise
    except _FAILURES as exc:
        raise WireError(f"{name}: cannot parse {len(data)} bytes: {_short(exc)}") from exc
    left = len(data) - stream.tell()
    if left:
        raise WireError(f"{name}: {left} bytes left over after the structure")
    return obj


def build(subcon: construct.Construct, obj: Any, name: str) -> bytes:
    """Build ``obj`` with ``subcon``; errors -> WireError."""
    try:
        return subcon.build(obj)
    except ConstraintError:
        raise
    except _FAILURES as exc:
        raise WireError(f"{name}: cannot build: {_short(exc)}") from exc


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


class FixedRecord(construct.Construct):
    """A fixed-layout generated dataclass (``struct.Struct`` fast path) embedded in construct."""

    def __init__(self, cls: Any, size: int) -> None:
        super().__init__()
        self.cls = cls
        self.size = size

    def _parse(self, stream: Any, context: Any, path: str) -> Any:
        return self.cls.parse(construct.stream_read(stream, self.size, path))

    def _build(self, obj: Any, stream: Any, context: Any, path: str) -> Any:
        if not isinstance(obj, self.cls):
            raise ConstraintError(f"expected {self.cls.__name__}, got {type(obj).__name__}")
        construct.stream_write(stream, obj.build(), self.size, path)
        return obj

    def _sizeof(self, context: Any, path: str) -> int:
        return self.size


class NoCase(construct.Construct):
    """The default of a switch without ``default_case``: an unknown code is a clear error."""

    def __init__(self, on: str) -> None:
        super().__init__()
        self.on = on

    def _parse(self, stream: Any, context: Any, path: str) -> Any:
        raise ConstraintError(f"no case for {self.on} = {context.get(self.on)!r}")

    def _build(self, obj: Any, stream: Any, context: Any, path: str) -> Any:
        raise ConstraintError(f"no case for {self.on} = {context.get(self.on)!r}")

    def _sizeof(self, context: Any, path: str) -> int:
        raise construct.SizeofError("unknown case", path=path)


def enum_value(cls: Any, value: int) -> Any:
    """``cls(value)`` for an IntEnum, undefined values as ConstraintError."""
    try:
        return cls(value)
    except ValueError:
        raise ConstraintError(f"{value} is not a {cls.__name__} value") from None


class Record(construct.Adapter):
    """Maps a construct Struct's Container to and from a generated dataclass."""

    def __init__(
        self, subcon: construct.Construct, cls: type[Any], fields: tuple[str, ...]
    ) -> None:
        super().__init__(subcon)
        self.cls = cls
        self.fields = fields

    def _decode(self, obj: Any, context: Any, path: str) -> Any:
        record = self.cls(**{name: obj[name] for name in self.fields})
        record.validate()
        return record

    def _encode(self, obj: Any, context: Any, path: str) -> Any:
        if not isinstance(obj, self.cls):
            raise ConstraintError(f"expected {self.cls.__name__}, got {type(obj).__name__}")
        obj.validate()
        return {name: getattr(obj, name) for name in self.fields}


class EnumOf(construct.Adapter):
    """An integer on the wire, an IntEnum in Python; undefined values are refused."""

    def __init__(self, subcon: construct.Construct, cls: type[enum.IntEnum]) -> None:
        super().__init__(subcon)
        self.cls = cls

    def _decode(self, obj: int, context: Any, path: str) -> Any:
        try:
            return self.cls(obj)
        except ValueError:
            raise ConstraintError(f"{obj} is not a {self.cls.__name__} value") from None

    def _encode(self, obj: Any, context: Any, path: str) -> int:
        try:
            return int(self.cls(obj))
        except (ValueError, TypeError):
            raise ConstraintError(f"{obj!r} is not a {self.cls.__name__} value") from None


class FlagsOf(construct.Adapter):
    """An integer on the wire, an IntFlag in Python (any bits accepted)."""

    def __init__(self, subcon: construct.Construct, cls: type[enum.IntFlag]) -> None:
        super().__init__(subcon)
        self.cls = cls

    def _decode(self, obj: int, context: Any, path: str) -> Any:
        return self.cls(obj)

    def _encode(self, obj: Any, context: Any, path: str) -> int:
        return int(obj)


class Guid(construct.Adapter):
    """16 bytes <-> uuid.UUID; ``dotnet`` uses .NET's mixed-endian order (``UUID.bytes_le``)."""

    def __init__(self, dotnet: bool = False) -> None:
        super().__init__(construct.Bytes(16))
        self.dotnet = dotnet

    def _decode(self, obj: bytes, context: Any, path: str) -> uuid.UUID:
        return uuid.UUID(bytes_le=obj) if self.dotnet else uuid.UUID(bytes=obj)

    def _encode(self, obj: uuid.UUID, context: Any, path: str) -> bytes:
        if not isinstance(obj, uuid.UUID):
            raise ConstraintError(f"expected a UUID, got {type(obj).__name__}")
        return obj.bytes_le if self.dotnet else obj.bytes


class FixedAscii(construct.Adapter):
    """Fixed-width ASCII, right-padded; parse strips the padding."""

    def __init__(self, size: int, pad: str) -> None:
        super().__init__(construct.Bytes(size))
        self.size = size
        self.pad = pad

    def _decode(self, obj: bytes, context: Any, path: str) -> str:
        try:
            return obj.decode("ascii").rstrip(self.pad)
        except UnicodeDecodeError:
            raise ConstraintError(f"fixed-width text {obj!r} is not ASCII") from None

    def _encode(self, obj: str, context: Any, path: str) -> bytes:
        try:
            data = obj.encode("ascii")
        except (UnicodeEncodeError, AttributeError):
            raise ConstraintError(f"{obj!r} is not ASCII text") from None
        if len(data) > self.size:
            raise ConstraintError(f"{obj!r} is longer than {self.size} characters")
        if data.endswith(self.pad.encode("ascii")):
            # would not survive the strip on parse
            raise ConstraintError(f"{obj!r} ends with the padding character {self.pad!r}")
        return data.ljust(self.size, self.pad.encode("ascii"))


class BitByteRecord(construct.Construct):
    """The rest of the payload as one Bit-Byte-Block holding exactly one record of ``cls``."""

    def __init__(self, cls: Any) -> None:
        super().__init__()
        self.cls = cls

    def _parse(self, stream: Any, context: Any, path: str) -> Any:
        reader = BitByteReader(construct.stream_read_entire(stream, path))
        record = self.cls.read(reader)
        if not reader.at_end():
            raise BitByteError(f"{self.cls.__name__}: data left after the record")
        return record

    def _build(self, obj: Any, stream: Any, context: Any, path: str) -> Any:
        writer = BitByteWriter()
        obj.write(writer)
        block = writer.finish()
        construct.stream_write(stream, block, len(block), path)
        return obj

    def _sizeof(self, context: Any, path: str) -> int:
        raise construct.SizeofError("a Bit-Byte-Block has no fixed size", path=path)


class BitByteArray(construct.Construct):
    """The rest of the payload as one Bit-Byte-Block of consecutive ``cls`` records."""

    def __init__(self, cls: Any) -> None:
        super().__init__()
        self.cls = cls

    def _parse(self, stream: Any, context: Any, path: str) -> list[Any]:
        reader = BitByteReader(construct.stream_read_entire(stream, path))
        items = []
        while not reader.at_end():
            before = reader.position()
            items.append(self.cls.read(reader))
            if reader.position() == before:
                raise BitByteError(f"{self.cls.__name__} record consumed nothing")
        return items

    def _build(self, obj: Any, stream: Any, context: Any, path: str) -> Any:
        writer = BitByteWriter()
        for item in obj:
            item.write(writer)
        block = writer.finish()
        construct.stream_write(stream, block, len(block), path)
        return obj

    def _sizeof(self, context: Any, path: str) -> int:
        raise construct.SizeofError("a Bit-Byte-Block has no fixed size", path=path)


def read_record(cls: Any, data: bytes) -> Any:
    """Parse ``data`` as one Bit-Byte-Block holding one ``cls`` record; errors -> WireError."""
    return parse(BitByteRecord(cls), data, cls.__name__)


def check(ok: bool, message: Callable[[], str]) -> None:
    """Raise ConstraintError with ``message()`` unless ``ok``."""
    if not ok:
        raise ConstraintError(message())


@dataclass(frozen=True, slots=True)
class MetadataColumn:
    """One column of a metadata template (see ``gridbind.generated.sttp.templates``)."""

    name: str  # attribute name as the table defines it
    field: str  # Python attribute of the record
    restriction: (
        str  # Integer, Float, Date, Time, DateTime, Duration, Boolean, Binary, String, Guid
    )
    value_type: int  # preferred AttributeValueType code
    accepts: tuple[int, ...]  # AttributeValueType codes a value may arrive as
    nullable: bool
    py: type

    def check(self, value: Any, table: str) -> None:
        """Raise ConstraintError unless ``value`` fits this column."""
        if value is None:
            if not self.nullable:
                raise ConstraintError(f"{table}.{self.name} may not be null")
            return
        ok = isinstance(value, self.py) and not (self.py is int and isinstance(value, bool))
        if self.py is float and isinstance(value, int) and not isinstance(value, bool):
            ok = True
        if not ok:
            raise ConstraintError(
                f"{table}.{self.name} is {self.restriction} ({self.py.__name__}), "
                f"not {type(value).__name__}"
            )
