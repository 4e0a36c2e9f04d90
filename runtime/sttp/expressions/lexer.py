"""Tokens of the filter-expression language (one compiled regular expression, linear scan)."""

from __future__ import annotations

import decimal
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from gridbind.sttp.expressions.budget import FilterExpressionError

__all__ = [
    "DECIMAL",
    "Token",
    "decimal_literal",
    "tokenize",
    "parse_datetime",
    "INT64_MIN",
    "INT64_MAX",
]

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1

#: Decimal context of every Decimal operation and literal: .NET's 28 digits, a bounded exponent,
#: traps on (a literal such as ``1e999999999`` is refused, not kept with a huge exponent).
DECIMAL = decimal.Context(
    prec=28,
    Emax=999_999,
    Emin=-999_999,
    traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow],
)


def decimal_literal(raw: str) -> Decimal:
    """A Decimal from number text, created in :data:`DECIMAL`."""
    try:
        return DECIMAL.create_decimal(raw)
    except decimal.DecimalException:
        raise FilterExpressionError(f"number {raw[:24]!r} does not fit a decimal") from None


KEYWORDS = frozenset(
    {
        "AND",
        "ASC",
        "BINARY",
        "BY",
        "DESC",
        "FILTER",
        "IN",
        "IS",
        "LIKE",
        "NOT",
        "NULL",
        "OR",
        "ORDER",
        "TOP",
        "WHERE",
        "XOR",
        "TRUE",
        "FALSE",
    }
)

_HEX = "[0-9a-fA-F]"
_GUID_BODY = rf"{_HEX}{{8}}-?{_HEX}{{4}}-?{_HEX}{{4}}-?{_HEX}{{4}}-?{_HEX}{{12}}"
# The remaining tokens, tried after _FIRST and the measurement key (see below).
_TOKEN_RE = re.compile(
    r"""
    (?P<string>'(?:[^']|'')*')
  | (?P<tag>"[A-Za-z0-9\-!_.@\#$:]+")
  | (?P<hex>0[xX][0-9a-fA-F]+)
  | (?P<number>(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)
  | (?P<ident>`[^`]+`|\[[^\]]+\]|[A-Za-z_][A-Za-z_0-9]*)
  | (?P<op>===|!==|==|!=|<>|<=|>=|<<|>>|&&|\|\||[;,()+\-*/%<>=!~&|^])
    """,
    re.VERBOSE,
)
_DIGITS = re.compile(r"[0-9]+")
# Measurement keys (``SOURCE:123``) are found apart from the token expression: a regular
# expression alternative would rescan the whole run of acronym characters at every token inside
# it (``a-a-a-...`` made tokenizing quadratic); the run's end is found once and cached.
_FIRST = re.compile(
    r"""
    (?P<ws>[ \t\r\n\v]+|--[^\r\n]*|/\*.*?(?:\*/|\Z))
  | (?P<guid>'(?:GUIDB)'|\{(?:GUIDB)\}|(?:GUIDB)(?![0-9a-zA-Z_]))
  | (?P<datetime>\#[^\#]+\#)
    """.replace("GUIDB", _GUID_BODY),
    re.VERBOSE | re.DOTALL,
)
_ACRONYM_RUN = re.compile(r"[A-Za-z0-9\-!_.@#$]+")
_MKEY_TAIL = re.compile(r":[0-9]+(?![0-9A-Za-z_])")


@dataclass(frozen=True)
class Token:
    """One token: ``kind`` is guid, mkey, string, tag, datetime, int, number, ident, kw, op, end."""

    kind: str
    text: str
    value: Any
    pos: int


def _integer(raw: str, base: int) -> Any:
    # Python refuses int() of more than 4300 digits; the length cap keeps us well inside that
    # for hex, and a decimal literal past int64 becomes a Decimal as in the deployed engines.
    if base == 10 and len(raw) > 19:
        return decimal_literal(raw)
    value = int(raw, base)
    if value > INT64_MAX:
        if base == 16 and value <= (1 << 64) - 1:
            return value - (1 << 64)  # 0xFFFF... is a negative int64, as in C#
        return Decimal(value) if base == 10 else _too_big(raw)
    return value


def _too_big(raw: str) -> Any:
    raise FilterExpressionError(f"integer literal {raw[:24]!r} does not fit 64 bits")


def tokenize(text: str, max_length: int) -> list[Token]:
    """Tokens of ``text`` followed by an ``end`` token."""
    if len(text) > max_length:
        raise FilterExpressionError(f"filter expression longer than {max_length} chars")
    tokens: list[Token] = []
    pos = 0
    run_end = 0  # end of the acronym-character run that contains pos (when pos < run_end)
    key_end = -1  # end of the measurement key that the run ends with (-1: it does not)
    while pos < len(text):
        match = _FIRST.match(text, pos)
        if match is None:
            if pos >= run_end:
                run = _ACRONYM_RUN.match(text, pos)
                run_end = run.end() if run else pos
                tail = _MKEY_TAIL.match(text, run_end) if run else None
                key_end = tail.end() if tail else -1
            if pos < run_end and key_end >= 0:
                raw = text[pos:key_end]
                tokens.append(Token("mkey", raw, raw, pos))
                pos = key_end
                continue
            match = _TOKEN_RE.match(text, pos)
        if match is None:
            raise FilterExpressionError(f"unexpected character {text[pos]!r} at position {pos}")
        kind = match.lastgroup or ""
        raw = match.group()
        if kind == "ws":
            pass
        elif kind == "guid":
            tokens.append(Token("guid", raw, uuid.UUID(raw.strip("'{}")), pos))
        elif kind == "string":
            tokens.append(Token("string", raw, raw[1:-1].replace("''", "'"), pos))
        elif kind == "tag":
            tokens.append(Token("tag", raw, raw[1:-1], pos))
        elif kind == "datetime":
            tokens.append(Token("datetime", raw, parse_datetime(raw[1:-1], pos), pos))
        elif kind == "hex":
            tokens.append(Token("int", raw, _integer(raw[2:], 16), pos))
        elif kind == "number":
            if _DIGITS.fullmatch(raw):
                value = _integer(raw, 10)
                tokens.append(Token("int" if isinstance(value, int) else "number", raw, value, pos))
            else:
                # Literals with a fraction or exponent are Decimal, as in the deployed engines.
                tokens.append(Token("number", raw, decimal_literal(raw), pos))
        elif kind == "ident":
            if raw[0] in "`[":
                tokens.append(Token("ident", raw, raw[1:-1], pos))
            elif raw.upper() in KEYWORDS:
                tokens.append(Token("kw", raw, raw.upper(), pos))
            else:
                tokens.append(Token("ident", raw, raw, pos))
        else:
            tokens.append(Token("op", raw, raw, pos))
        pos = match.end()
    tokens.append(Token("end", "", None, len(text)))
    return tokens


def parse_datetime(text: str, pos: int = 0) -> datetime:
    """A date/time literal or string (ISO 8601 or US ``m/d/Y [H:M[:S]]``), UTC when no zone."""
    value = text.strip()
    if len(value) > 64:
        raise FilterExpressionError(f"invalid date/time {text[:24]!r}... at position {pos}")
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        for fmt in ("%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M", "%m/%d/%Y"):
            try:
                moment = datetime.strptime(value, fmt)
                break
            except ValueError:
                continue
        else:
            raise FilterExpressionError(
                f"invalid date/time literal #{text}# at position {pos}"
            ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment
