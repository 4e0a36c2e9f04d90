"""The function table of the filter-expression language; every function is bounded.

Each implementation takes the request's :class:`Budget` first, then the evaluated arguments
(``None`` is NULL). String results are checked against the string cap before they are built.
"""

from __future__ import annotations

import calendar
import math
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from typing import Any

from gridbind.sttp.expressions.budget import Budget, FilterExpressionError
from gridbind.sttp.expressions.regex import regex_search
from gridbind.sttp.expressions.values import (
    DECIMAL,
    as_uuid,
    coerce_pair,
    to_bool,
    to_datetime,
    to_float,
    to_int,
    to_number,
    to_text,
    wrap64,
)

__all__ = ["FUNCTIONS"]

Impl = Callable[..., Any]


def _string(value: Any, name: str, position: str = "first") -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise FilterExpressionError(f"{name}: {position} argument must be a string, got {value!r}")


def _ci(flag: Any) -> bool:
    return False if flag is None else to_bool(flag)


_REFUSE = object()  # a NULL argument that the deployed engines refuse


def _fold(text: str) -> str:
    """``text`` upper-cased character by character, so that indexes still match ``text``."""
    folded = text.upper()
    if len(folded) == len(text):
        return folded  # no character changed length (upper() never shortens)
    return "".join(u if len(u := c.upper()) == 1 else c for c in text)


def _find_all(source: str, probe: str, ignore_case: bool) -> list[int]:
    """Start indexes of the non-overlapping occurrences of ``probe`` (linear: ``str.find``).

    A case-insensitive regular expression would try the probe at every position (quadratic in
    one call that holds the GIL); finding on case-folded copies keeps it linear.
    """
    if ignore_case:
        source, probe = _fold(source), _fold(probe)
    found: list[int] = []
    start = source.find(probe)
    while start >= 0:
        found.append(start)
        start = source.find(probe, start + len(probe))
    return found


def _string_test(
    name: str, test: Callable[[str, str], Any], empty: Any = False, null: Any = None
) -> Impl:
    """A (source, probe[, ignoreCase]) function: NULL source gives ``null``, NULL probe ``empty``."""

    def run(budget: Budget, source: Any, probe: Any, ignore_case: Any = None) -> Any:
        source, probe = _string(source, name), _string(probe, name, "second")
        if source is None:
            return null
        if probe is None:
            if empty is _REFUSE:
                raise FilterExpressionError(f"{name}: the second argument is NULL")
            return empty
        budget.charge_text(source, probe)
        if _ci(ignore_case):
            source, probe = source.upper(), probe.upper()
        return test(source, probe)

    return run


def _nth_index(budget: Budget, source: Any, probe: Any, nth: Any, ignore_case: Any = None) -> Any:
    source, probe = _string(source, "NthIndexOf"), _string(probe, "NthIndexOf", "second")
    if source is None:
        return None
    if probe is None or probe == "":
        return -1
    budget.charge_text(source, probe)
    if _ci(ignore_case):
        source, probe = source.upper(), probe.upper()
    position = -1
    # Each find moves forward, so the loop ends within len(source) rounds whatever nth says.
    for _ in range(max(0, to_int(nth)) + 1):
        position = source.find(probe, position + 1)
        if position < 0:
            return -1
    return position


def _replace(budget: Budget, source: Any, probe: Any, replacement: Any, ci: Any = None) -> Any:
    source = _string(source, "Replace")
    probe = _string(probe, "Replace", "second")
    replacement = _string(replacement, "Replace", "third")
    if source is None:
        return None
    if probe is None:
        raise FilterExpressionError("Replace: the second argument is NULL")
    if probe == "":
        return source
    replacement = replacement or ""
    budget.charge_text(source, probe, replacement)
    found = _find_all(source, probe, True) if _ci(ci) else None
    count = source.count(probe) if found is None else len(found)
    # Size the result before building it, so nested REPLACE cannot grow memory past the cap.
    size = len(source) + count * (len(replacement) - len(probe))
    if size > budget.limits.max_string:
        raise FilterExpressionError(
            f"Replace result of {size} characters exceeds the {budget.limits.max_string} limit"
        )
    if found is None:
        return source.replace(probe, replacement)
    pieces: list[str] = []
    last = 0
    for start in found:
        pieces += (source[last:start], replacement)
        last = start + len(probe)
    pieces.append(source[last:])
    return "".join(pieces)


def _split(budget: Budget, source: Any, delimiter: Any, index: Any, ci: Any = None) -> Any:
    source = _string(source, "Split")
    delimiter = _string(delimiter, "Split", "second")
    if source is None:
        return None
    if not delimiter:
        raise FilterExpressionError("Split: the delimiter must not be empty or NULL")
    budget.charge_text(source, delimiter)
    position = to_int(index)
    if not _ci(ci):
        parts = source.split(delimiter)
        return parts[position] if 0 <= position < len(parts) else ""
    bounds = [-len(delimiter)] + _find_all(source, delimiter, True) + [len(source)]
    if not 0 <= position < len(bounds) - 1:
        return ""
    return source[bounds[position] + len(delimiter) : bounds[position + 1]]


def _substr(budget: Budget, source: Any, index: Any, length: Any = None) -> Any:
    source = _string(source, "SubStr")
    if source is None:
        return None
    start = to_int(index)
    if start < 0:
        raise FilterExpressionError(f"SubStr: negative index {start}")
    if length is None:
        return source[start:]
    count = to_int(length)
    if count < 0:
        raise FilterExpressionError(f"SubStr: negative length {count}")
    return source[start : start + count]


def _text_fn(name: str, fn: Callable[[str], str]) -> Impl:
    def run(budget: Budget, value: Any) -> Any:
        text = _string(value, name)
        if text is None:
            return None
        budget.charge_text(text)
        return budget.check_string(fn(text), f"{name} result")

    return run


def _len(budget: Budget, value: Any) -> Any:
    text = _string(value, "Len")
    return None if text is None else len(text)


_TYPE_NAMES: dict[str, type] = {
    "STRING": str,
    "BOOLEAN": bool,
    "INT8": int,
    "INT16": int,
    "INT32": int,
    "INT64": int,
    "UINT8": int,
    "UINT16": int,
    "UINT32": int,
    "UINT64": int,
    "BYTE": int,
    "SBYTE": int,
    "SINGLE": float,
    "DOUBLE": float,
    "DECIMAL": Decimal,
    "GUID": uuid.UUID,
    "DATETIME": datetime,
}


def _convert(budget: Budget, value: Any, type_name: Any) -> Any:
    if value is None:
        return None
    name = str(type_name).upper().removeprefix("SYSTEM.")
    target = _TYPE_NAMES.get(name)
    if target is None:
        raise FilterExpressionError(f"Convert: unknown type {str(type_name)[:40]!r}")
    if target is str:
        return to_text(value, budget.limits.max_string)
    if target is bool:
        return to_bool(value)
    if target is int:
        return to_int(value)
    if target is float:
        return to_float(value)
    if target is Decimal:
        number = to_number(value)
        return Decimal(repr(number)) if isinstance(number, float) else Decimal(number)
    if target is uuid.UUID:
        result = as_uuid(value)
        if result is None:
            raise FilterExpressionError(f"Convert: {str(value)[:40]!r} is not a GUID")
        return result
    return to_datetime(value)


_INTERVALS = {
    "YEAR": "year",
    "MONTH": "month",
    "DAY": "day",
    "DAYOFYEAR": "dayofyear",
    "WEEK": "week",
    "WEEKDAY": "weekday",
    "HOUR": "hour",
    "MINUTE": "minute",
    "SECOND": "second",
    "MILLISECOND": "millisecond",
}
_SECONDS = {
    "day": 86400,
    "dayofyear": 86400,
    "weekday": 86400,
    "week": 7 * 86400,
    "hour": 3600,
    "minute": 60,
    "second": 1,
    "millisecond": 0.001,
}


def _interval(name: Any) -> str:
    key = _INTERVALS.get(str(name).upper())
    if key is None:
        raise FilterExpressionError(f"unknown date interval {str(name)[:40]!r}")
    return key


def _add_months(moment: datetime, count: int) -> datetime:
    months = moment.month - 1 + count
    year = moment.year + months // 12
    month = months % 12 + 1
    if not 1 <= year <= 9999:
        raise FilterExpressionError(f"DateAdd: year {year} out of range")
    # A missing day (Dec 31 minus one month) becomes the month's last day, as in .NET.
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def _date_add(budget: Budget, value: Any, amount: Any, interval: Any) -> Any:
    if value is None:
        return None
    moment = to_datetime(value)
    count = to_int(amount)
    unit = _interval(interval)
    if unit in ("year", "month"):
        return _add_months(moment, count * (12 if unit == "year" else 1))
    return moment + timedelta(seconds=_SECONDS[unit] * count)


def _date_diff(budget: Budget, left: Any, right: Any, interval: Any) -> Any:
    if left is None or right is None:
        return None
    start, end = to_datetime(left), to_datetime(right)
    unit = _interval(interval)
    # Calendar boundaries crossed, as GSF's C++ engine (and SQL Server's DATEDIFF) count them:
    # years and months by their numbers, days by dates; shorter units truncate the duration.
    if unit == "year":
        return end.year - start.year
    if unit == "month":
        return (end.year - start.year) * 12 + end.month - start.month
    if unit in ("day", "dayofyear", "weekday", "week"):
        days = (end.date() - start.date()).days
        return int(days / 7) if unit == "week" else days
    return int((end - start).total_seconds() / _SECONDS[unit])


def _date_part(budget: Budget, value: Any, interval: Any) -> Any:
    if value is None:
        return None
    moment = to_datetime(value)
    unit = _interval(interval)
    return {
        "year": moment.year,
        "month": moment.month,
        "day": moment.day,
        "dayofyear": moment.timetuple().tm_yday,
        "week": moment.isocalendar()[1],
        "weekday": (moment.weekday() + 1) % 7 + 1,  # Sunday 1 .. Saturday 7 (SQL Server's)
        "hour": moment.hour,
        "minute": moment.minute,
        "second": moment.second,
        "millisecond": moment.microsecond // 1000,
    }[unit]


def _is_numeric(budget: Budget, value: Any) -> bool:
    if value is None or isinstance(value, (uuid.UUID, datetime)):
        return False
    try:
        to_number(value)
        return True
    except FilterExpressionError:
        return False


def _is_integer(budget: Budget, value: Any) -> bool:
    if isinstance(value, bool) or value is None:
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, str) and re.fullmatch(r"\s*[-+]?[0-9]{1,19}\s*", value) is not None


def _is_date(budget: Budget, value: Any) -> bool:
    if isinstance(value, datetime):
        return True
    try:
        to_datetime(value)
        return True
    except FilterExpressionError:
        return False


def _regex_match(budget: Budget, pattern: Any, value: Any) -> Any:
    pattern, value = _string(pattern, "RegExMatch"), _string(value, "RegExMatch", "second")
    if pattern is None or value is None:
        return None
    return regex_search(pattern, value, budget) is not None


def _regex_val(budget: Budget, pattern: Any, value: Any) -> Any:
    pattern, value = _string(pattern, "RegExVal"), _string(value, "RegExVal", "second")
    if pattern is None or value is None:
        return None
    return regex_search(pattern, value, budget) or ""


def _rounding(mode: str, on_float: Callable[[float], float]) -> Impl:
    """Floor / Ceiling: a Decimal stays Decimal (rounded), a float stays float, an int stays."""

    def run(budget: Budget, value: Any) -> Any:
        if value is None:
            return None
        number = to_number(value)
        if isinstance(number, Decimal):
            return number.to_integral_value(rounding=mode, context=DECIMAL)
        if isinstance(number, float):
            return on_float(number) if math.isfinite(number) else number
        return number

    return run


def _round(budget: Budget, value: Any, digits: Any = None) -> Any:
    if value is None:
        return None
    number = to_number(value)
    places = 0 if digits is None else to_int(digits)
    if not 0 <= places <= 28:
        raise FilterExpressionError(f"Round: {places} digits outside 0-28")
    if isinstance(number, int):
        return number
    if isinstance(number, Decimal):
        # Banker's rounding, .NET's default for Math.Round.
        return number.quantize(Decimal(1).scaleb(-places), ROUND_HALF_EVEN, DECIMAL)
    if not math.isfinite(number):
        return number
    return float(round(number, places))


def _abs(budget: Budget, value: Any) -> Any:
    if value is None:
        return None
    number = to_number(value)
    return wrap64(abs(number)) if isinstance(number, int) else abs(number)


def _sqrt(budget: Budget, value: Any) -> Any:
    if value is None:
        return None
    number = to_number(value)
    if isinstance(number, Decimal):
        return DECIMAL.sqrt(number)
    if number < 0:
        raise FilterExpressionError("Sqrt of a negative number")
    return math.sqrt(number)


def _power(budget: Budget, base: Any, exponent: Any) -> Any:
    if base is None or exponent is None:
        return None
    b, e = to_number(base), to_number(exponent)
    if isinstance(b, Decimal) or isinstance(e, Decimal):
        if isinstance(b, float) or isinstance(e, float):
            return _float_power(to_float(b), to_float(e))
        # Bounded context: the exponent cannot make the result's digits or exponent grow.
        return DECIMAL.power(Decimal(b), Decimal(e))
    if isinstance(b, int) and isinstance(e, int):
        # Computed in floating point, as the deployed engines do, and then back to int64.
        result = _float_power(float(b), float(e))
        if not -(2.0**63) <= result < 2.0**63:
            raise FilterExpressionError(f"Power({b}, {e}) does not fit a 64-bit integer")
        return int(result)
    return _float_power(to_float(b), to_float(e))


def _float_power(base: float, exponent: float) -> float:
    try:
        result = math.pow(base, exponent)
    except (OverflowError, ValueError):
        raise FilterExpressionError(f"Power({base}, {exponent}) is out of range") from None
    return result


def _coalesce(budget: Budget, *values: Any) -> Any:
    for value in values:
        if value is not None:
            return value
    return None


def _iif(budget: Budget, test: Any, when_true: Any, when_false: Any) -> Any:
    if test is not None and not isinstance(test, bool):
        raise FilterExpressionError("IIf: the first argument must be a boolean")
    return when_true if test else when_false


def _extreme(bigger: bool) -> Impl:
    def run(budget: Budget, *values: Any) -> Any:
        present = [value for value in values if value is not None]
        if not present:
            return None
        result = present[0]
        for value in present[1:]:
            lhs, rhs = coerce_pair(result, value)
            try:
                if (rhs > lhs) if bigger else (rhs < lhs):
                    result = value
            except TypeError:
                raise FilterExpressionError("MaxOf/MinOf: values cannot be ordered") from None
        return result

    return run


def _strcmp(budget: Budget, left: Any, right: Any, ignore_case: Any = None) -> Any:
    left, right = _string(left, "StrCmp"), _string(right, "StrCmp", "second")
    if left is None or right is None:
        return None
    budget.charge_text(left, right)
    if _ci(ignore_case):
        left, right = left.upper(), right.upper()
    return (left > right) - (left < right)


def _strcount(source: str, probe: str) -> int:
    return source.count(probe) if probe else 0


def _now(budget: Budget) -> datetime:
    return datetime.now().astimezone()


def _utc_now(budget: Budget) -> datetime:
    return datetime.now(UTC)


def _is_guid(budget: Budget, value: Any) -> bool:
    return value is not None and as_uuid(value) is not None


def _is_null(budget: Budget, value: Any, fallback: Any) -> Any:
    return fallback if value is None else value


#: name -> (min args, max args, implementation(budget, *values))
FUNCTIONS: dict[str, tuple[int, int, Impl]] = {
    "ABS": (1, 1, _abs),
    "CEILING": (1, 1, _rounding(ROUND_CEILING, lambda n: float(math.ceil(n)))),
    "FLOOR": (1, 1, _rounding(ROUND_FLOOR, lambda n: float(math.floor(n)))),
    "ROUND": (1, 2, _round),
    "SQRT": (1, 1, _sqrt),
    "POWER": (2, 2, _power),
    "COALESCE": (2, 64, _coalesce),
    "ISNULL": (2, 2, _is_null),
    "IIF": (3, 3, _iif),
    "CONVERT": (2, 2, _convert),
    "CONTAINS": (2, 3, _string_test("Contains", lambda s, t: t in s)),
    "STARTSWITH": (2, 3, _string_test("StartsWith", lambda s, t: s.startswith(t))),
    "ENDSWITH": (2, 3, _string_test("EndsWith", lambda s, t: s.endswith(t))),
    "INDEXOF": (2, 3, _string_test("IndexOf", lambda s, t: s.find(t), empty=_REFUSE)),
    "LASTINDEXOF": (2, 3, _string_test("LastIndexOf", lambda s, t: s.rfind(t), empty=_REFUSE)),
    "NTHINDEXOF": (3, 4, _nth_index),
    "STRCOUNT": (2, 3, _string_test("StrCount", _strcount, empty=0, null=0)),
    "STRCMP": (2, 3, _strcmp),
    "REPLACE": (3, 4, _replace),
    "SPLIT": (3, 4, _split),
    "SUBSTR": (2, 3, _substr),
    "LEN": (1, 1, _len),
    "LOWER": (1, 1, _text_fn("Lower", str.lower)),
    "UPPER": (1, 1, _text_fn("Upper", str.upper)),
    "TRIM": (1, 1, _text_fn("Trim", str.strip)),
    "TRIMLEFT": (1, 1, _text_fn("TrimLeft", str.lstrip)),
    "TRIMRIGHT": (1, 1, _text_fn("TrimRight", str.rstrip)),
    "REVERSE": (1, 1, _text_fn("Reverse", lambda s: s[::-1])),
    "REGEXMATCH": (2, 2, _regex_match),
    "REGEXVAL": (2, 2, _regex_val),
    "ISDATE": (1, 1, _is_date),
    "ISINTEGER": (1, 1, _is_integer),
    "ISGUID": (1, 1, _is_guid),
    "ISNUMERIC": (1, 1, _is_numeric),
    "MAXOF": (2, 64, _extreme(bigger=True)),
    "MINOF": (2, 64, _extreme(bigger=False)),
    "NOW": (0, 0, _now),
    "UTCNOW": (0, 0, _utc_now),
    "DATEADD": (3, 3, _date_add),
    "DATEDIFF": (3, 3, _date_diff),
    "DATEPART": (2, 2, _date_part),
}
