"""Value conversions of the evaluator: NULL is ``None``; numbers are int (64-bit), Decimal, float.

Integers wrap to signed 64 bits (the widest integer of the deployed engines), so no operator
can build a huge Python int; Decimal arithmetic runs in :data:`DECIMAL` (28 digits, bounded
exponent, errors trapped); a Decimal or float is turned into an int only when it fits 64 bits.
"""

from __future__ import annotations

import math
import re
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from gridbind.sttp.expressions.budget import DEFAULT_LIMITS, FilterExpressionError
from gridbind.sttp.expressions.lexer import (
    DECIMAL,
    INT64_MAX,
    INT64_MIN,
    decimal_literal,
    parse_datetime,
)

__all__ = [
    "DECIMAL",
    "as_uuid",
    "coerce_pair",
    "is_number",
    "to_bool",
    "to_datetime",
    "to_int",
    "to_number",
    "to_text",
    "wrap64",
]


_INT_TEXT = re.compile(r"\s*[-+]?(0[xX][0-9a-fA-F]{1,16}|[0-9]{1,19})\s*")
_FLOAT_TEXT = re.compile(r"\s*[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]{1,4})?\s*")


def wrap64(value: int) -> int:
    """``value`` wrapped to a signed 64-bit integer (two's complement, as C# does unchecked)."""
    if INT64_MIN <= value <= INT64_MAX:
        return value
    return ((value - INT64_MIN) & 0xFFFF_FFFF_FFFF_FFFF) + INT64_MIN


def is_number(value: Any) -> bool:
    """True for int, float and Decimal values (not for booleans)."""
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


def to_bool(value: Any) -> bool:
    """A boolean from a boolean, number or ``true``/``false`` text."""
    if isinstance(value, bool):
        return value
    if is_number(value):
        return value != 0
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("true", "1", "yes"):
            return True
        if text in ("false", "0", "no", ""):
            return False
    raise FilterExpressionError(f"cannot convert {_show(value)} to a boolean")


def to_number(value: Any) -> int | float | Decimal:
    """A number from a number, boolean or numeric text."""
    if is_number(value):
        return value
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, str) and len(value) <= 64:
        if _INT_TEXT.fullmatch(value):
            return wrap64(int(value.strip(), 0) if "x" in value.lower() else int(value))
        if _FLOAT_TEXT.fullmatch(value):
            return decimal_literal(value.strip())
    raise FilterExpressionError(f"cannot convert {_show(value)} to a number")


def to_int(value: Any) -> int:
    """An int64 from a number (truncating toward zero) or numeric text."""
    number = to_number(value)
    if isinstance(number, int):
        return number
    if isinstance(number, float):
        if not math.isfinite(number) or abs(number) >= 2.0**63:
            raise FilterExpressionError(f"{number!r} does not fit a 64-bit integer")
        return int(number)
    if not number.is_finite() or number.adjusted() > 18:
        raise FilterExpressionError(f"{number} does not fit a 64-bit integer")
    result = int(number)
    if not INT64_MIN <= result <= INT64_MAX:
        raise FilterExpressionError(f"{number} does not fit a 64-bit integer")
    return result


def to_datetime(value: Any) -> datetime:
    """A timezone-aware datetime from a datetime or date/time text."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        return parse_datetime(value)
    raise FilterExpressionError(f"cannot convert {_show(value)} to a date/time")


def to_text(value: Any, max_size: int = DEFAULT_LIMITS.max_string) -> str:
    """Text of a value; a Decimal in plain notation (``1E+2`` is ``100``, as .NET writes it).

    A Decimal whose plain text would exceed ``max_size`` characters is refused before its text
    is built (``1E+999999`` would be a million characters, built while holding the GIL).
    """
    if isinstance(value, str):
        return value
    if isinstance(value, Decimal):
        if value.is_finite():
            sign, digits, exponent = value.as_tuple()
            size = len(digits) + abs(int(exponent)) + 2
            if size > max_size:
                raise FilterExpressionError(
                    f"text of the number {value:.3e} exceeds the {max_size} character limit"
                )
        return format(value, "f")
    return str(value)


def as_uuid(value: Any) -> uuid.UUID | None:
    """A UUID from a UUID or GUID text (``{...}`` and quotes allowed), else ``None``."""
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str) and len(value) <= 64:
        try:
            return uuid.UUID(value.strip("{}' "))
        except ValueError:
            return None
    return None


def to_float(value: Any) -> float:
    """A float from any number (Decimal overflow becomes an error, not infinity)."""
    number = to_number(value)
    result = float(number)
    if math.isinf(result) and not (isinstance(number, float) and math.isinf(number)):
        raise FilterExpressionError(f"{number} does not fit a double")
    return result


def numeric_pair(left: Any, right: Any) -> tuple[Any, Any]:
    """Two numbers brought to one type: float beats Decimal beats int (the deployed order)."""
    lhs, rhs = to_number(left), to_number(right)
    if isinstance(lhs, float) or isinstance(rhs, float):
        return to_float(lhs), to_float(rhs)
    if isinstance(lhs, Decimal) or isinstance(rhs, Decimal):
        return Decimal(lhs), Decimal(rhs)
    return lhs, rhs


def coerce_pair(left: Any, right: Any) -> tuple[Any, Any]:
    """Bring two non-NULL operands to one comparable type, as the deployed evaluator does."""
    if type(left) is type(right):
        return left, right
    if is_number(left) and is_number(right):
        return numeric_pair(left, right)
    if isinstance(left, bool) or isinstance(right, bool):
        # A boolean meets a number as 0 / 1 (the deployed engines widen it), text as a boolean.
        if is_number(left) or is_number(right):
            return (
                numeric_pair(int(left), right)
                if isinstance(left, bool)
                else (numeric_pair(left, int(right)))
            )
        return to_bool(left), to_bool(right)
    if isinstance(left, uuid.UUID) or isinstance(right, uuid.UUID):
        lhs, rhs = as_uuid(left), as_uuid(right)
        if lhs is None or rhs is None:
            raise FilterExpressionError(
                f"cannot compare {_show(left)} with {_show(right)} as GUIDs"
            )
        return lhs, rhs
    if isinstance(left, datetime) or isinstance(right, datetime):
        return to_datetime(left), to_datetime(right)
    if isinstance(left, str) and is_number(right):
        return numeric_pair(left, right)
    if isinstance(right, str) and is_number(left):
        return numeric_pair(left, right)
    return str(left), str(right)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
