"""Values as the ``gridbind iec61850`` commands print them, and the same text read back.

Every printed value is JSON, and writing that exact text back gives the same value:

============== ================================================= ============================
type           printed                                           also accepted when writing
============== ================================================= ============================
BOOLEAN        ``true``                                          -
INTn / INTnU   ``42``                                            -
Enum           ``"on"`` (the name, when the SCL is known)        the ordinal ``1``
FLOAT32        ``0.1``: the shortest decimal that gives the      any number
               same 32-bit float
FLOAT64        ``0.1`` (Python's shortest round-trip repr)       any number
OCTET STRING   ``"00AB10"`` (hex, upper case)                    ``"0x00ab10"``, spaces
strings        ``"text"`` (control characters XML cannot carry  -
               are refused before anything is sent)
Timestamp      ``"2024-05-01T12:00:00.500000000Z"``, then        seconds since 1970 as a
               `` quality=0A`` when the TimeQuality octet is set  number
bit strings    ``"0000000000000"`` (Quality, TrgOps, Dbpos ...)  -
structure      ``{"mag": {"f": 1.5}, "q": "0000000000000", ...}``  -
array          ``[1, 2, 3]``                                     -
============== ================================================= ============================

Where the type expects text, a bare word is taken as that text too (``off`` for ``"off"``), so
a shell's quote removal does no harm. Nanoseconds (9 digits) identify each 2**-24 s step of a Timestamp exactly. The type of each value
comes from the SCL (:func:`type_from_model`: names of enums, FLOAT32 vs FLOAT64) or, without it,
from the server's type description (:func:`type_from_description`: enums as ordinals).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import re
import struct
from dataclasses import dataclass
from typing import Any

from gridbind.errors import LocalError
from gridbind.iec61850.errors import Iec61850Error

from .codec import xml_text_problem
from .mmsdata import TimeQuality
from .model import BTYPE_KIND, DataAttribute, Timestamp, children_with_fc

__all__ = [
    "ValueType",
    "ValueTextError",
    "type_from_model",
    "type_from_description",
    "to_json",
    "format_value",
    "parse_value",
    "shortest_float32",
    "timestamp_text",
    "parse_timestamp",
]


class ValueTextError(Iec61850Error, LocalError, ValueError):
    """A text that is not a value of the expected type."""


@dataclass(frozen=True)
class ValueType:
    """What the CLI knows about a value's type: ``kind`` is one of bool, int, enum, float32,
    float64, bytes, vstr (VISIBLE STRING), str (UNICODE STRING), time, bits, struct, array,
    any."""

    kind: str
    names: tuple[tuple[int, str], ...] = ()
    members: tuple[tuple[str, ValueType], ...] = ()
    element: ValueType | None = None


ANY = ValueType("any")
_BASIC = {
    "bool": "bool",
    "int": "int",
    "uint": "int",
    "str": "vstr",
    "ustr": "str",
    "bytes": "bytes",
    "time": "time",
    "bits": "bits",
    "coded": "bits",
}


def type_from_model(node: Any, fc: str) -> ValueType:
    """The type of a model node (an SCL-loaded DataObject/DataAttribute/LogicalNode) in ``fc``."""
    if isinstance(node, DataAttribute):
        if node.elements:
            return ValueType("array", element=type_from_model(node.elements[0], fc))
        if not node.children:
            kind, bits = BTYPE_KIND.get(node.btype, ("struct", 0))
            if kind == "enum":
                names = tuple(sorted(node.enum.values.items())) if node.enum else ()
                return ValueType("enum", names=names)
            if kind == "float":
                return ValueType("float32" if bits == 32 else "float64")
            return ValueType(_BASIC.get(kind, "any"))
    members = tuple(
        (child.name, type_from_model(child, fc)) for child in children_with_fc(node, fc)
    )
    return ValueType("struct", members=members)


def type_from_description(td: Any) -> ValueType:
    """The type of an MMS type description as the client returns it (no enum names)."""
    if isinstance(td, tuple):
        kind = td[0]
        if kind == "structure":
            return ValueType(
                "struct", members=tuple((n, type_from_description(t)) for n, t in td[1])
            )
        if kind == "array":
            return ValueType("array", element=type_from_description(td[2]))
        if kind == "floating-point":
            return ValueType("float32" if td[1] == 32 else "float64")
        return ValueType(_MMS_KIND.get(kind, "any"))
    choice = getattr(td, "choice", None)  # a generated TypeDescription
    if choice is None:
        return ANY
    if isinstance(choice, bool):  # binary-time's only content is a BOOLEAN (with date)
        return ValueType("time")
    name = type(choice).__name__
    if name == "Structure" and hasattr(choice, "components"):
        return ValueType(
            "struct",
            members=tuple(
                (c.component_name, _of_specification(c.component_type))
                for c in choice.components.sequence
            ),
        )
    if name == "Array" and hasattr(choice, "element_type"):
        return ValueType("array", element=_of_specification(choice.element_type))
    if name == "FloatingPoint" and hasattr(choice, "format_width"):
        return ValueType("float32" if choice.format_width == 32 else "float64")
    return ValueType(_TYPED_KIND.get(name, "any"))


def _of_specification(spec: Any) -> ValueType:
    """A TypeSpecification: a type description (a type name cannot be resolved here)."""
    inner = getattr(spec, "choice", None)
    if type(inner).__name__ == "TypeDescription":
        return type_from_description(inner)
    return ANY


_MMS_KIND = {
    "boolean": "bool",
    "integer": "int",
    "unsigned": "int",
    "bit-string": "bits",
    "octet-string": "bytes",
    "visible-string": "vstr",
    "mMSString": "str",
    "utc-time": "time",
    "binary-time": "time",
}
_TYPED_KIND = {
    "Boolean": "bool",
    "Integer": "int",
    "Unsigned": "int",
    "BitString": "bits",
    "OctetString": "bytes",
    "VisibleString": "vstr",
    "MmsString": "str",
    "UtcTime": "time",
    "BinaryTime": "time",
}


# ---------------------------------------------------------------------------------------------
# printing


def shortest_float32(value: float) -> float:
    """The float with the shortest decimal form that is the same 32-bit float as ``value``."""
    if not math.isfinite(value):
        return value
    try:
        target = struct.pack(">f", value)
    except OverflowError:
        return value
    for digits in range(1, 10):
        candidate = float(f"{value:.{digits}g}")
        try:
            if struct.pack(">f", candidate) == target:
                return candidate
        except OverflowError:
            continue
    return value


_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)


def timestamp_text(ts: Timestamp) -> str:
    """``2024-05-01T12:00:00.500000000Z`` (+ `` quality=0A`` when the quality octet is set)."""
    nanos = round(ts.fraction * 1_000_000_000 / (1 << 24))
    when = _EPOCH + _dt.timedelta(seconds=ts.seconds)
    text = when.strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}Z"
    return text + (f" quality={ts.quality:02X}" if ts.quality else "")


def to_json(value: Any, vt: ValueType = ANY) -> Any:
    """A value as the JSON data the CLI prints (see the module table)."""
    kind = vt.kind
    if isinstance(value, Exception):
        return {"error": str(value)}
    if kind == "struct" and isinstance(value, dict):
        types = dict(vt.members)
        return {k: to_json(v, types.get(k, ANY)) for k, v in value.items()}
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        if kind == "struct" and len(vt.members) == len(value):
            return [to_json(v, t) for v, (_, t) in zip(value, vt.members, strict=True)]
        element = vt.element if kind == "array" and vt.element else ANY
        return [to_json(v, element) for v in value]
    if isinstance(value, Timestamp):
        return timestamp_text(value)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex().upper()
    if kind == "enum" and isinstance(value, int) and not isinstance(value, bool):
        return dict(vt.names).get(value, value)
    if kind == "float32" and isinstance(value, float):
        return shortest_float32(value)
    return value


def format_value(value: Any, vt: ValueType = ANY) -> str:
    """The JSON text of a value (indented for structures and lists)."""
    data = to_json(value, vt)
    return json.dumps(data, indent=1 if isinstance(data, (dict, list)) else None)


# ---------------------------------------------------------------------------------------------
# reading back

_TIMESTAMP = re.compile(
    r"(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?Z(?:\s+quality=([0-9A-Fa-f]{2}))?"
)


def parse_timestamp(text: str) -> Timestamp:
    """The inverse of :func:`timestamp_text` (fewer fraction digits are fine)."""
    found = _TIMESTAMP.fullmatch(text.strip())
    if not found:
        raise ValueTextError(
            f"timestamp must look like 2024-05-01T12:00:00.5Z [quality=0A], not {text!r}"
        )
    day, clock, digits, quality = found.groups()
    when = _dt.datetime.fromisoformat(f"{day}T{clock}+00:00")
    seconds = int((when - _EPOCH).total_seconds())
    if not 0 <= seconds < 1 << 32:
        raise ValueTextError(f"timestamp {text!r} is outside 1970..2106")
    nanos = int((digits or "0").ljust(9, "0"))
    fraction = min(round(nanos * (1 << 24) / 1_000_000_000), (1 << 24) - 1)
    return Timestamp(seconds, fraction, TimeQuality.from_octet(int(quality, 16) if quality else 0))


def from_json(data: Any, vt: ValueType = ANY) -> Any:
    """JSON data (as printed) -> the Python value the client writes."""
    kind = vt.kind
    if kind == "struct":
        if isinstance(data, dict):
            types = dict(vt.members)
            unknown = sorted(set(data) - set(types))
            if unknown and vt.members:
                raise ValueTextError(f"no member(s) {unknown}; members: {list(types)}")
            return {k: from_json(v, types.get(k, ANY)) for k, v in data.items()}
        if isinstance(data, list) and len(data) == len(vt.members):
            return [from_json(v, t) for v, (_, t) in zip(data, vt.members, strict=True)]
        return data
    if kind == "array" and isinstance(data, list):
        return [from_json(v, vt.element or ANY) for v in data]
    if kind == "enum":
        if isinstance(data, str):
            for ordinal, name in vt.names:
                if name == data:
                    return ordinal
            raise ValueTextError(
                f"{data!r} is not one of {[n for _, n in vt.names]} (or give the ordinal)"
            )
        return data
    if kind in ("float32", "float64") and isinstance(data, int) and not isinstance(data, bool):
        return float(data)
    if kind == "bytes" and isinstance(data, str):
        digits = "".join(data.split())
        digits = digits[2:] if digits[:2].lower() == "0x" else digits
        try:
            return bytes.fromhex(digits)
        except ValueError:
            raise ValueTextError(f"octet string must be hex digits, not {data!r}") from None
    if kind == "time":
        if isinstance(data, str):
            return parse_timestamp(data)
        if isinstance(data, (int, float)) and not isinstance(data, bool):
            return Timestamp.from_float(float(data))
    if kind == "vstr" and isinstance(data, str):
        bad = next((c for c in data if not " " <= c <= "~"), None)
        if bad is not None:
            raise ValueTextError(
                f"a VISIBLE STRING holds ASCII 0x20..0x7E only, not U+{ord(bad):04X}: {data!r}"
            )
    if kind in ("str", "any") and isinstance(data, str):
        # Refused here, before sending: written raw it would end the whole XMPP stream.
        problem = xml_text_problem(data)
        if problem:
            raise ValueTextError(f"{data!r}: {problem}")
    if kind == "any" and isinstance(data, str) and _TIMESTAMP.fullmatch(data.strip()):
        return parse_timestamp(data)
    return data


def parse_value(text: str, vt: ValueType = ANY) -> Any:
    """A value as typed on the command line (JSON, as printed) -> the Python value to write."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        # A bare word where the type expects text (a shell ate the quotes): `off`, `00AB`.
        if vt.kind not in _TEXT_KINDS:
            raise ValueTextError(
                f"value must be JSON as printed (strings in quotes): {text!r}"
            ) from None
        data = text
    return from_json(data, vt)


_TEXT_KINDS = frozenset({"enum", "bytes", "time", "str", "vstr", "bits"})
