"""Python values <-> MMS ``Data`` of the generated 8-2 classes (IEC 61850-7-2 basic types).

Constructors return :class:`Data` (``gridbind.generated.iec61850_8_2.Data``); readers take a
``Data`` and check its alternative, raising :class:`MmsDataError` (a ``ValueError``) otherwise.

Encodings (mapping notes section 5; one documented choice each):

- BOOLEAN ``<boolean>``; INTn ``<integer>``; INTnU ``<unsigned>`` (never negative).
- FLOAT32/FLOAT64 ``<floating-point>``: the IEC 61850-8-1 MMS layout, i.e. one octet holding the
  exponent width (8 for FLOAT32, 11 for FLOAT64) followed by the IEEE 754 value in big-endian
  order: 5 octets for FLOAT32, 9 for FLOAT64. Decoding checks that the width octet matches the
  length.
- Bit strings ``<bit-string>``: bit 0 is the leftmost character, never empty. Typed flag sets:
  :class:`Quality` (13 bits), :class:`TriggerConditions` (6), :class:`OptFlds` (10),
  :class:`ReasonForInclusion` (7), :class:`CheckConditions` (2).
- TimeStamp ``<utc-time>``: 8 octets = seconds since 1970-01-01 (uint32), fraction of a second
  (uint24, value / 2**24) and one :class:`TimeQuality` octet.
- EntryTime ``<binary-time>``: 6 octets = milliseconds since midnight (uint32) and days since
  1984-01-01 (uint16); 4 octets = time of day only.
- OCTET STRING ``<octet-string>``; VISIBLE STRING ``<visible-string>`` (ASCII 0x20..0x7E);
  UNICODE STRING ``<mMSString>``; structures and arrays of Data.
"""

from __future__ import annotations

import enum
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from gridbind.generated.iec61850_8_2 import scsm_8_2 as m
from gridbind.iec61850.codec import xml_text_problem
from gridbind.iec61850.errors import Iec61850Error

Data = m.Data

__all__ = [
    "Data",
    "MmsDataError",
    "boolean",
    "integer",
    "unsigned",
    "float32",
    "float64",
    "floating_point_octets",
    "floating_point_value",
    "bit_string",
    "octet_string",
    "visible_string",
    "mms_string",
    "structure",
    "array",
    "utc_time",
    "binary_time",
    "to_python",
    "Timestamp",
    "TimeQuality",
    "Validity",
    "Source",
    "Quality",
    "BitFlags",
    "TriggerConditions",
    "OptFlds",
    "ReasonForInclusion",
    "CheckConditions",
    "as_bool",
    "as_int",
    "as_float",
    "as_bits",
    "as_octets",
    "as_str",
    "as_timestamp",
    "as_binary_time",
    "as_items",
]


class MmsDataError(Iec61850Error, ValueError):
    """A Python value that does not fit the MMS type, or Data of another alternative."""


# ----------------------------------------------------------------------------------------------
# simple constructors


def boolean(value: bool) -> Data:
    """BOOLEAN."""
    return Data(choice=bool(value))


def integer(value: int) -> Data:
    """INT8/16/32/64/128 (any Python int)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise MmsDataError(f"integer expects int, got {type(value).__name__}")
    return Data(choice=m.Data.Integer(value=value))


def unsigned(value: int) -> Data:
    """INT8U/16U/32U (and ENUMERATED values when sent as unsigned); never negative."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise MmsDataError(f"unsigned expects int, got {type(value).__name__}")
    if value < 0:
        raise MmsDataError(f"unsigned value {value} is negative")
    return Data(choice=m.Data.Unsigned(value=value))


_FLOAT_LAYOUT = {32: (8, ">f"), 64: (11, ">d")}


def floating_point_octets(value: float, width: int = 32) -> bytes:
    """The 8-1 octets of a FLOAT32 (``width=32``) or FLOAT64: exponent-width octet + IEEE 754 BE."""
    if width not in _FLOAT_LAYOUT:
        raise MmsDataError(f"floating-point width must be 32 or 64, not {width}")
    exponent, fmt = _FLOAT_LAYOUT[width]
    try:
        packed = struct.pack(fmt, value)
    except (OverflowError, struct.error) as exc:
        raise MmsDataError(f"{value!r} does not fit FLOAT{width}: {exc}") from None
    return bytes([exponent]) + packed


def floating_point_value(octets: bytes) -> float:
    """Inverse of :func:`floating_point_octets` (5 or 9 octets, width octet checked)."""
    if len(octets) == 5 and octets[0] == 8:
        return struct.unpack(">f", octets[1:])[0]
    if len(octets) == 9 and octets[0] == 11:
        return struct.unpack(">d", octets[1:])[0]
    raise MmsDataError(
        f"floating-point of {len(octets)} octets with exponent width "
        f"{octets[0] if octets else None} is neither FLOAT32 (5, 8) nor FLOAT64 (9, 11)"
    )


def float32(value: float) -> Data:
    """FLOAT32 (values outside float32 range raise; precision is rounded to float32)."""
    return Data(choice=m.Data.FloatingPoint(value=floating_point_octets(value, 32)))


def float64(value: float) -> Data:
    """FLOAT64."""
    return Data(choice=m.Data.FloatingPoint(value=floating_point_octets(value, 64)))


def _bits_text(bits: str | Iterable[bool | int]) -> str:
    if isinstance(bits, str):
        text = bits
    else:
        text = "".join("1" if b else "0" for b in bits)
    if not text or text.strip("01"):
        raise MmsDataError(f"bit string must be one or more 0/1, got {text!r}")
    return text


def bit_string(bits: str | Iterable[bool | int] | BitFlags) -> Data:
    """CODED ENUM / PACKED LIST: a ``"0101"`` string, booleans, or a :class:`BitFlags` value."""
    if isinstance(bits, BitFlags):
        return Data(choice=m.Data.BitString(value=bits.to_bits()))
    return Data(choice=m.Data.BitString(value=_bits_text(bits)))


def octet_string(value: bytes) -> Data:
    """OCTET STRING (also EntryID, 8 octets)."""
    return Data(choice=m.Data.OctetString(value=bytes(value)))


def visible_string(value: str) -> Data:
    """VISIBLE STRING: printable ASCII only (no TAB, CR or LF: ISO 646 graphic characters)."""
    if not isinstance(value, str):
        raise MmsDataError(f"visible-string expects str, got {type(value).__name__}")
    if any(not " " <= ch <= "~" for ch in value):
        raise MmsDataError(f"visible-string allows ASCII 0x20..0x7E only: {value!r}")
    return Data(choice=m.Data.VisibleString(value=value))


def mms_string(value: str) -> Data:
    """UNICODE STRING (``mMSString``): any text XML 1.0 can carry.

    TAB, LF and CR are kept (CR travels as ``&#13;``); other C0 control characters, lone
    surrogates and U+FFFE/U+FFFF are refused here, before anything is sent (DECISIONS.md 32).
    """
    if not isinstance(value, str):
        raise MmsDataError(f"mMSString expects str, got {type(value).__name__}")
    problem = xml_text_problem(value)
    if problem:
        raise MmsDataError(f"mMSString {value!r}: {problem}")
    return Data(choice=m.Data.MmsString(value=value))


def structure(items: Iterable[Data]) -> Data:
    """A structure of Data components, in order."""
    return Data(choice=m.Structure(data=list(items)))


def array(items: Iterable[Data]) -> Data:
    """An array of Data elements of one type."""
    return Data(choice=m.Array(data=list(items)))


# ----------------------------------------------------------------------------------------------
# time


class TimeQuality(int):
    """The TimeQuality octet of a TimeStamp (7-2): an ``int`` (the octet) with its three flags
    and the 5-bit accuracy as attributes.

    ``accuracy`` is the number of significant fraction bits (0..24), 31 = unspecified; the
    constructor refuses 25..30. Octet layout (8-1): bit 7 LeapSecondsKnown, 6 ClockFailure,
    5 ClockNotSynchronized, 4..0 TimeAccuracy. Being the octet, it compares, formats and
    serialises as one (``ts.quality == 0``, ``f"{ts.quality:02X}"``).
    """

    __slots__ = ()

    def __new__(
        cls,
        leap_seconds_known: bool = False,
        clock_failure: bool = False,
        clock_not_synchronized: bool = False,
        accuracy: int = 31,
    ) -> TimeQuality:
        if not (0 <= accuracy <= 24 or accuracy == 31):
            raise MmsDataError(f"TimeAccuracy {accuracy} is neither 0..24 nor 31")
        return int.__new__(
            cls,
            (0x80 if leap_seconds_known else 0)
            | (0x40 if clock_failure else 0)
            | (0x20 if clock_not_synchronized else 0)
            | accuracy,
        )

    @property
    def leap_seconds_known(self) -> bool:
        return bool(self & 0x80)

    @property
    def clock_failure(self) -> bool:
        return bool(self & 0x40)

    @property
    def clock_not_synchronized(self) -> bool:
        return bool(self & 0x20)

    @property
    def accuracy(self) -> int:
        return self & 0x1F

    def to_octet(self) -> int:
        """The octet value."""
        return int(self)

    @classmethod
    def from_octet(cls, octet: int) -> TimeQuality:
        """The octet as received (an accuracy of 25..30, which the constructor refuses, is
        kept as the peer sent it)."""
        if not 0 <= octet <= 0xFF:
            raise MmsDataError(f"TimeQuality octet {octet} outside 0..255")
        return int.__new__(cls, octet)

    def __repr__(self) -> str:
        return (
            f"TimeQuality(leap_seconds_known={self.leap_seconds_known}, "
            f"clock_failure={self.clock_failure}, "
            f"clock_not_synchronized={self.clock_not_synchronized}, accuracy={self.accuracy})"
        )


#: The TimeQuality of a time stamp nothing is known about (all flags clear, accuracy 0).
NO_TIME_QUALITY = TimeQuality()


@dataclass(frozen=True, slots=True)
class Timestamp:
    """A 7-2 TimeStamp: whole seconds since the epoch, 24-bit fraction, and TimeQuality.

    The one TimeStamp type of the package (the server model's values too). ``quality`` may be
    given as the TimeQuality octet (an int); it is kept as a :class:`TimeQuality` (octet 0 when
    not given, as the model stamps its values).
    """

    seconds: int = 0
    fraction: int = 0
    quality: TimeQuality = TimeQuality.from_octet(0)

    def __post_init__(self) -> None:
        if not isinstance(self.quality, TimeQuality):
            object.__setattr__(self, "quality", TimeQuality.from_octet(self.quality))
        if not 0 <= self.seconds <= 0xFFFFFFFF:
            raise MmsDataError(f"TimeStamp seconds {self.seconds} outside 0..2**32-1")
        if not 0 <= self.fraction <= 0xFFFFFF:
            raise MmsDataError(f"TimeStamp fraction {self.fraction} outside 0..2**24-1")

    @classmethod
    def from_float(cls, t: float, quality: TimeQuality | int = 0) -> Timestamp:
        """From seconds since the epoch (``time.time()``); the fraction rounds down."""
        seconds = int(t)
        fraction = min(int((t - seconds) * (1 << 24)), (1 << 24) - 1)
        return cls(seconds, fraction, quality)  # type: ignore[arg-type]

    @classmethod
    def now(cls) -> Timestamp:
        """The current time (TimeQuality octet 0, as the server model stamps its values)."""
        return cls.from_float(time.time())

    def to_float(self) -> float:
        """Seconds since the epoch."""
        return self.seconds + self.fraction / (1 << 24)

    @classmethod
    def from_datetime(cls, when: datetime, quality: TimeQuality = NO_TIME_QUALITY) -> Timestamp:
        """From an aware datetime (naive ones are taken as UTC); fraction rounds down."""
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        delta = when - datetime(1970, 1, 1, tzinfo=UTC)
        micros = delta // timedelta(microseconds=1)
        seconds, micro = divmod(micros, 1_000_000)
        return cls(seconds, (micro << 24) // 1_000_000, quality)

    def to_datetime(self) -> datetime:
        """Aware UTC datetime (fraction rounded to the nearest microsecond)."""
        micro = round(self.fraction * 1_000_000 / (1 << 24))
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(
            seconds=self.seconds, microseconds=micro
        )

    def to_octets(self) -> bytes:
        """The 8 utc-time octets."""
        return (
            self.seconds.to_bytes(4, "big")
            + self.fraction.to_bytes(3, "big")
            + bytes([self.quality.to_octet()])
        )

    @classmethod
    def from_octets(cls, octets: bytes) -> Timestamp:
        """Parse 8 utc-time octets."""
        if len(octets) != 8:
            raise MmsDataError(f"utc-time has 8 octets, not {len(octets)}")
        return cls(
            int.from_bytes(octets[:4], "big"),
            int.from_bytes(octets[4:7], "big"),
            TimeQuality.from_octet(octets[7]),
        )


def utc_time(when: Timestamp | datetime, quality: TimeQuality = NO_TIME_QUALITY) -> Data:
    """TimeStamp ``<utc-time>`` from a :class:`Timestamp` or a datetime (+ quality)."""
    stamp = when if isinstance(when, Timestamp) else Timestamp.from_datetime(when, quality)
    return Data(choice=m.Data.UtcTime(value=stamp.to_octets()))


_BINARY_EPOCH = datetime(1984, 1, 1, tzinfo=UTC)


def binary_time(when: datetime, *, with_date: bool = True) -> Data:
    """EntryTime ``<binary-time>``: 6 octets (ms of day + days since 1984-01-01) or 4 (ms only)."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    delta = when.astimezone(UTC) - _BINARY_EPOCH
    if delta < timedelta(0):
        raise MmsDataError("binary-time cannot express dates before 1984-01-01")
    days = delta.days
    ms = (delta.seconds * 1000) + delta.microseconds // 1000
    if days > 0xFFFF:
        raise MmsDataError("binary-time day count overflows 16 bits")
    octets = ms.to_bytes(4, "big") + (days.to_bytes(2, "big") if with_date else b"")
    return Data(choice=m.Data.BinaryTime(value=octets))


def _binary_time_value(octets: bytes) -> datetime | timedelta:
    if len(octets) not in (4, 6):
        raise MmsDataError(f"binary-time has 4 or 6 octets, not {len(octets)}")
    ms = int.from_bytes(octets[:4], "big")
    if ms >= 86_400_000:
        raise MmsDataError(f"binary-time milliseconds {ms} exceed one day")
    if len(octets) == 4:
        return timedelta(milliseconds=ms)
    days = int.from_bytes(octets[4:6], "big")
    return _BINARY_EPOCH + timedelta(days=days, milliseconds=ms)


# ----------------------------------------------------------------------------------------------
# bit-string flag sets


class BitFlags(enum.Flag):
    """A fixed-width bit string whose bit N is the member with value ``1 << N``.

    ``to_bits()`` gives the XER text (bit 0 leftmost, all positions written);
    ``from_bits()`` accepts exactly the declared width.
    """

    @classmethod
    def width(cls) -> int:
        """Number of bits of the MMS bit string."""
        return len(cls.__members__)

    def to_bits(self) -> str:
        """XER bit-string text."""
        return "".join("1" if self.value >> i & 1 else "0" for i in range(type(self).width()))

    @classmethod
    def from_bits(cls, bits: str | Data) -> BitFlags:
        """Parse the XER text (or a bit-string Data) of exactly :meth:`width` bits."""
        text = as_bits(bits) if isinstance(bits, Data) else bits
        if len(text) != cls.width() or text.strip("01"):
            raise MmsDataError(f"{cls.__name__} needs {cls.width()} bits of 0/1, got {text!r}")
        value = 0
        for i, ch in enumerate(text):
            if ch == "1":
                value |= 1 << i
        return cls(value)


class TriggerConditions(BitFlags):
    """TrgOps (6 bits)."""

    RESERVED = 1 << 0
    DATA_CHANGE = 1 << 1
    QUALITY_CHANGE = 1 << 2
    DATA_UPDATE = 1 << 3
    INTEGRITY = 1 << 4
    GENERAL_INTERROGATION = 1 << 5


class OptFlds(BitFlags):
    """Report control block OptFlds (10 bits)."""

    RESERVED = 1 << 0
    SEQUENCE_NUMBER = 1 << 1
    REPORT_TIME_STAMP = 1 << 2
    REASON_FOR_INCLUSION = 1 << 3
    DATA_SET_NAME = 1 << 4
    DATA_REFERENCE = 1 << 5
    BUFFER_OVERFLOW = 1 << 6
    ENTRY_ID = 1 << 7
    CONF_REVISION = 1 << 8
    SEGMENTATION = 1 << 9


class ReasonForInclusion(BitFlags):
    """ReasonCode of reports and logs (7 bits)."""

    RESERVED = 1 << 0
    DATA_CHANGE = 1 << 1
    QUALITY_CHANGE = 1 << 2
    DATA_UPDATE = 1 << 3
    INTEGRITY = 1 << 4
    GENERAL_INTERROGATION = 1 << 5
    APPLICATION_TRIGGER = 1 << 6


class CheckConditions(BitFlags):
    """Check of control services (2 bits)."""

    SYNCHROCHECK = 1 << 0
    INTERLOCK_CHECK = 1 << 1


class Validity(enum.IntEnum):
    """Quality.validity (2 bits, bit 0 leftmost: good 00, invalid 01, reserved 10, questionable 11)."""

    GOOD = 0
    INVALID = 1
    RESERVED = 2
    QUESTIONABLE = 3


class Source(enum.IntEnum):
    """Quality.source."""

    PROCESS = 0
    SUBSTITUTED = 1


_VALIDITY_BITS = {
    Validity.GOOD: "00",
    Validity.INVALID: "01",
    Validity.RESERVED: "10",
    Validity.QUESTIONABLE: "11",
}
_QUALITY_FLAGS = (
    "overflow",
    "out_of_range",
    "bad_reference",
    "oscillatory",
    "failure",
    "old_data",
    "inconsistent",
    "inaccurate",
)


@dataclass(frozen=True, slots=True)
class Quality:
    """7-2 Quality, a 13-bit bit string: validity (2), eight detail flags, source, test,
    operatorBlocked."""

    validity: Validity = Validity.GOOD
    overflow: bool = False
    out_of_range: bool = False
    bad_reference: bool = False
    oscillatory: bool = False
    failure: bool = False
    old_data: bool = False
    inconsistent: bool = False
    inaccurate: bool = False
    source: Source = Source.PROCESS
    test: bool = False
    operator_blocked: bool = False

    def to_bits(self) -> str:
        """13-character XER text."""
        flags = "".join("1" if getattr(self, name) else "0" for name in _QUALITY_FLAGS)
        tail = f"{int(self.source)}{int(self.test)}{int(self.operator_blocked)}"
        return _VALIDITY_BITS[Validity(self.validity)] + flags + tail

    def to_data(self) -> Data:
        """As ``<bit-string>``."""
        return Data(choice=m.Data.BitString(value=self.to_bits()))

    @classmethod
    def from_bits(cls, bits: str | Data) -> Quality:
        """Parse 13 bits (XER text or bit-string Data)."""
        text = as_bits(bits) if isinstance(bits, Data) else bits
        if len(text) != 13 or text.strip("01"):
            raise MmsDataError(f"Quality needs 13 bits of 0/1, got {text!r}")
        validity = {v: k for k, v in _VALIDITY_BITS.items()}[text[:2]]
        flags = {name: text[2 + i] == "1" for i, name in enumerate(_QUALITY_FLAGS)}
        return cls(
            validity=validity,
            source=Source(int(text[10])),
            test=text[11] == "1",
            operator_blocked=text[12] == "1",
            **flags,
        )


# ----------------------------------------------------------------------------------------------
# readers


def _alt(data: Data, *kinds: type, what: str) -> Any:
    if not isinstance(data, Data):
        raise MmsDataError(f"expected Data, got {type(data).__name__}")
    if not isinstance(data.choice, kinds) or (bool not in kinds and isinstance(data.choice, bool)):
        raise MmsDataError(f"expected {what}, got {_name(data.choice)}")
    return data.choice


def _name(choice: Any) -> str:
    return "boolean" if isinstance(choice, bool) else type(choice).__name__


def as_bool(data: Data) -> bool:
    """``<boolean>`` -> bool."""
    return _alt(data, bool, what="boolean")


def as_int(data: Data) -> int:
    """``<integer>`` or ``<unsigned>`` -> int."""
    return _alt(data, m.Data.Integer, m.Data.Unsigned, what="integer or unsigned").value


def as_float(data: Data) -> float:
    """``<floating-point>`` -> float (FLOAT32 values widen exactly to float)."""
    return floating_point_value(_alt(data, m.Data.FloatingPoint, what="floating-point").value)


def as_bits(data: Data) -> str:
    """``<bit-string>`` -> its 0/1 text."""
    return _alt(data, m.Data.BitString, what="bit-string").value


def as_octets(data: Data) -> bytes:
    """``<octet-string>`` -> bytes."""
    return _alt(data, m.Data.OctetString, what="octet-string").value


def as_str(data: Data) -> str:
    """``<visible-string>`` or ``<mMSString>`` -> str."""
    return _alt(data, m.Data.VisibleString, m.Data.MmsString, what="string").value


def as_timestamp(data: Data) -> Timestamp:
    """``<utc-time>`` -> :class:`Timestamp`."""
    return Timestamp.from_octets(_alt(data, m.Data.UtcTime, what="utc-time").value)


def as_binary_time(data: Data) -> datetime | timedelta:
    """``<binary-time>`` -> datetime (6 octets) or time of day as timedelta (4 octets)."""
    return _binary_time_value(_alt(data, m.Data.BinaryTime, what="binary-time").value)


def as_items(data: Data) -> list[Data]:
    """``<structure>`` or ``<array>`` -> its Data items."""
    return list(_alt(data, m.Structure, m.Array, what="structure or array").data)


def to_python(data: Data) -> Any:
    """Generic view: bool, int, float, str (bit strings stay ``"0101"`` text), bytes,
    :class:`Timestamp`, datetime/timedelta, and lists (structure) / tuples (array)."""
    choice = data.choice
    if isinstance(choice, bool):
        return choice
    if isinstance(choice, m.Structure):
        return [to_python(item) for item in choice.data]
    if isinstance(choice, m.Array):
        return tuple(to_python(item) for item in choice.data)
    if isinstance(choice, (m.Data.Integer, m.Data.Unsigned)):
        return choice.value
    if isinstance(choice, m.Data.FloatingPoint):
        return floating_point_value(choice.value)
    if isinstance(choice, m.Data.UtcTime):
        return Timestamp.from_octets(choice.value)
    if isinstance(choice, m.Data.BinaryTime):
        return _binary_time_value(choice.value)
    if isinstance(
        choice,
        (m.Data.BitString, m.Data.VisibleString, m.Data.MmsString, m.Data.OctetString),
    ):
        return choice.value
    raise MmsDataError(f"Data without a known alternative: {choice!r}")
