"""STTP filter expressions: a parser and evaluator over metadata rows.

The deployed STTP family selects signals and metadata with a small SQL-like language, e.g.::

    FILTER ActiveMeasurements WHERE SignalType='FREQ'
    FILTER TOP 10 ActiveMeasurements WHERE SignalType LIKE 'VPH%' ORDER BY PointTag DESC
    {E4BBFE6A-35BD-4E5B-92C9-11FF913E7877}; PPA:15; "DOM_GPLAINS-BUS1:VH"

A filter expression is a ``;``-separated list of statements. Each statement is one of

- ``FILTER [TOP n] <table> WHERE <expression> [ORDER BY col [ASC|DESC], ...]``;
- an identifier: a signal ID (GUID), a measurement key (``SOURCE:123``) or a quoted point tag
  (``"TAG"``), matched against the primary table's ``SignalID``/``ID``/``PointTag`` columns;
- a bare boolean expression, evaluated against the primary table.

Expression semantics follow the deployed implementations: string comparison, ``LIKE``, ``IN`` and
the string functions ignore case unless the exact-match forms (``===``, ``!==``, ``BINARY``) are
used; ``NULL`` propagates through operators and a ``NULL`` condition selects nothing; ``LIKE`` takes
``%`` or ``*`` wildcards at the start and/or the end only; ``TOP n`` limits the scan (the first
``n`` matches in table order) and ``ORDER BY`` then sorts them, as the deployed ``sttpapi`` does; a
negative ``TOP`` means no limit.

Besides selection, :func:`compile_expression` / :func:`evaluate` evaluate one expression against a
row, which suits access rules such as the draft profile's ``ALLOW WHERE DataType='BOOL'``::

    rule = compile_expression("DataType = 'BOOL'")
    rule.matches({"DataType": "bool"})   # True

Rows are mappings from column name to a Python value (``None`` is NULL); column names resolve
case-insensitively. Tables are anything with ``name``, ``column_names`` and ``rows`` (see
:class:`Table`).
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from functools import cmp_to_key
from typing import Any, Protocol

__all__ = [
    "CompiledExpression",
    "FilterExpressionError",
    "FilterStatement",
    "IdentifierStatement",
    "ExpressionStatement",
    "IdFields",
    "Table",
    "TableLike",
    "compile_expression",
    "evaluate",
    "parse",
    "select_rows",
    "select_signal_ids",
]

#: Hard bound on expression text, so a hostile subscriber cannot make the publisher parse megabytes.
MAX_EXPRESSION_LENGTH = 65_536
_MAX_DEPTH = 50


class FilterExpressionError(ValueError):
    """A filter expression that does not parse or cannot be evaluated (message says where/why)."""


class TableLike(Protocol):
    """What the evaluator needs from a metadata table."""

    name: str

    @property
    def column_names(self) -> Sequence[str]: ...

    @property
    def rows(self) -> Sequence[Mapping[str, Any]]: ...


@dataclass
class Table:
    """A plain metadata table: a name, its column names and its rows (dicts keyed by column)."""

    name: str
    column_names: list[str]
    rows: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class IdFields:
    """Names of the identifying columns of the primary table (``ActiveMeasurements`` defaults)."""

    signal_id: str = "SignalID"
    measurement_key: str = "ID"
    point_tag: str = "PointTag"


# ----------------------------------------------------------------------------------------- lexer

_KEYWORDS = {
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

_HEX = "[0-9a-fA-F]"
_GUID_BODY = (
    rf"{_HEX}{{8}}-?{_HEX}{{4}}-?{_HEX}{{4}}-?{_HEX}{{4}}-?{_HEX}{{12}}"  # noqa: E501 - one pattern
)
_TOKEN_RE = re.compile(
    r"""
    (?P<ws>[ \t\r\n\v]+|--[^\r\n]*|/\*.*?(?:\*/|\Z))
  | (?P<guid>'(?:GUIDB)'|\{(?:GUIDB)\}|(?:GUIDB)(?![0-9a-zA-Z_]))
  | (?P<datetime>\#[^\#]+\#)
  | (?P<mkey>[A-Za-z0-9\-!_.@\#$]+:[0-9]+(?![0-9A-Za-z_]))
  | (?P<string>'(?:[^']|'')*')
  | (?P<tag>"[A-Za-z0-9\-!_.@\#$:]+")
  | (?P<hex>0[xX][0-9a-fA-F]+)
  | (?P<number>(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)
  | (?P<ident>`[^`]+`|\[[^\]]+\]|[A-Za-z_][A-Za-z_0-9]*)
  | (?P<op>===|!==|==|!=|<>|<=|>=|<<|>>|&&|\|\||[;,()+\-*/%<>=!~&|^])
    """.replace("GUIDB", _GUID_BODY),
    re.VERBOSE | re.DOTALL,
)


@dataclass(frozen=True)
class _Token:
    kind: str  # guid, mkey, string, tag, datetime, int, float, ident, kw, op, end
    text: str
    value: Any
    pos: int


def _tokenize(text: str) -> list[_Token]:
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise FilterExpressionError(f"filter expression longer than {MAX_EXPRESSION_LENGTH} chars")
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if match is None:
            raise FilterExpressionError(f"unexpected character {text[pos]!r} at position {pos}")
        kind = match.lastgroup or ""
        raw = match.group()
        if kind == "ws":
            pass
        elif kind == "guid":
            tokens.append(_Token("guid", raw, uuid.UUID(raw.strip("'{}")), pos))
        elif kind == "mkey":
            tokens.append(_Token("mkey", raw, raw, pos))
        elif kind == "string":
            tokens.append(_Token("string", raw, raw[1:-1].replace("''", "'"), pos))
        elif kind == "tag":
            tokens.append(_Token("tag", raw, raw[1:-1], pos))
        elif kind == "datetime":
            tokens.append(_Token("datetime", raw, _parse_datetime(raw[1:-1], pos), pos))
        elif kind == "hex":
            tokens.append(_Token("int", raw, int(raw, 16), pos))
        elif kind == "number":
            if re.fullmatch(r"[0-9]+", raw):
                tokens.append(_Token("int", raw, int(raw), pos))
            else:
                tokens.append(_Token("float", raw, float(raw), pos))
        elif kind == "ident":
            if raw[0] in "`[":
                tokens.append(_Token("ident", raw, raw[1:-1], pos))
            elif raw.upper() in _KEYWORDS:
                tokens.append(_Token("kw", raw, raw.upper(), pos))
            else:
                tokens.append(_Token("ident", raw, raw, pos))
        else:
            tokens.append(_Token("op", raw, raw, pos))
        pos = match.end()
    tokens.append(_Token("end", "", None, len(text)))
    return tokens


def _parse_datetime(text: str, pos: int = 0) -> datetime:
    value = text.strip()
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
            raise FilterExpressionError(f"invalid date/time literal #{text}# at position {pos}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment


# ----------------------------------------------------------------------------------- statements

#: A compiled node: evaluates against a row given a column resolver.
_Eval = Callable[[Mapping[str, Any]], Any]


@dataclass
class CompiledExpression:
    """One boolean or value expression, compiled for repeated evaluation against rows."""

    text: str
    columns: tuple[str, ...]
    _fn: _Eval = field(repr=False)

    def evaluate(self, row: Mapping[str, Any] | None = None) -> Any:
        """Value of the expression for ``row`` (``None`` means NULL)."""
        try:
            return self._fn(_RowView(row or {}))
        except RecursionError:
            raise FilterExpressionError(f"expression {self.text[:40]!r}... is too long") from None

    def matches(self, row: Mapping[str, Any] | None = None) -> bool:
        """True when the expression is a true boolean for ``row`` (NULL and false select nothing).

        A non-boolean result raises :class:`FilterExpressionError`, as a WHERE clause must be boolean.
        """
        value = self.evaluate(row)
        if value is None:
            return False
        if not isinstance(value, bool):
            raise FilterExpressionError(
                f"expression {self.text!r} gives {type(value).__name__}, not a boolean"
            )
        return value


@dataclass
class FilterStatement:
    """``FILTER [TOP n] table WHERE condition [ORDER BY ...]``."""

    table: str
    where: CompiledExpression
    top: int = -1
    order_by: list[tuple[str, bool, bool]] = field(default_factory=list)  # (column, asc, exact)


@dataclass
class IdentifierStatement:
    """A directly named signal: ``kind`` is ``"signal_id"``, ``"measurement_key"`` or ``"point_tag"``."""

    kind: str
    value: Any


@dataclass
class ExpressionStatement:
    """A bare condition applied to the primary table."""

    where: CompiledExpression


Statement = FilterStatement | IdentifierStatement | ExpressionStatement


class _RowView:
    """Case-insensitive column access over a row mapping (built once per row evaluation)."""

    __slots__ = ("_row", "_upper")

    def __init__(self, row: Mapping[str, Any]) -> None:
        self._row = row
        self._upper: dict[str, str] | None = None

    def get(self, name: str) -> Any:
        row = self._row
        if name in row:
            return row[name]
        if self._upper is None:
            self._upper = {key.upper(): key for key in row}
        key = self._upper.get(name.upper())
        if key is None:
            raise FilterExpressionError(f"unknown column {name!r}")
        return row[key]


def parse(text: str) -> list[Statement]:
    """Parse a filter expression into its statements; raises :class:`FilterExpressionError`."""
    try:
        return _Parser(text).statements()
    except RecursionError:
        raise FilterExpressionError("filter expression nested too deeply") from None


def compile_expression(text: str) -> CompiledExpression:
    """Compile one expression (no ``FILTER`` clause), e.g. ``"SignalType = 'FREQ' AND Enabled"``."""
    try:
        return _Parser(text).expression_only()
    except RecursionError:
        raise FilterExpressionError("expression nested too deeply") from None


def evaluate(text: str, row: Mapping[str, Any] | None = None) -> Any:
    """Evaluate one expression against ``row`` (convenience for one-off checks)."""
    return compile_expression(text).evaluate(row)


def _resolve_table(tables: Mapping[str, TableLike] | Iterable[TableLike], name: str) -> TableLike:
    items = tables.values() if isinstance(tables, Mapping) else tables
    for table in items:
        if table.name.upper() == name.upper():
            return table
    raise FilterExpressionError(f"unknown table {name!r}")


def _check_columns(table: TableLike, names: Iterable[str]) -> None:
    known = {column.upper() for column in table.column_names}
    for name in names:
        if name.upper() not in known:
            raise FilterExpressionError(f"unknown column {name!r} in table {table.name!r}")


def _column_key(table: TableLike, name: str) -> str:
    for column in table.column_names:
        if column.upper() == name.upper():
            return column
    raise FilterExpressionError(f"unknown column {name!r} in table {table.name!r}")


def select_rows(
    tables: Mapping[str, TableLike] | Iterable[TableLike],
    text: str,
    primary_table: str = "ActiveMeasurements",
    id_fields: IdFields = IdFields(),
) -> list[Mapping[str, Any]]:
    """Rows selected by every statement of ``text``, in statement order, without duplicates.

    ``FILTER`` statements name their table; identifiers and bare expressions use
    ``primary_table``. Raises :class:`FilterExpressionError` for unknown tables or columns, and
    for conditions that are not boolean.
    """
    selected: list[Mapping[str, Any]] = []
    seen: set[int] = set()

    def add(row: Mapping[str, Any]) -> None:
        if id(row) not in seen:
            seen.add(id(row))
            selected.append(row)

    for statement in parse(text):
        if isinstance(statement, IdentifierStatement):
            table = _resolve_table(tables, primary_table)
            column = {
                "signal_id": id_fields.signal_id,
                "measurement_key": id_fields.measurement_key,
                "point_tag": id_fields.point_tag,
            }[statement.kind]
            key = _column_key(table, column)
            for row in table.rows:
                value = row.get(key)
                if value is None:
                    continue
                if statement.kind == "signal_id":
                    if _as_uuid(value) == statement.value:
                        add(row)
                        break
                elif str(value).upper() == str(statement.value).upper():
                    add(row)
                    break
            continue
        if isinstance(statement, FilterStatement):
            table = _resolve_table(tables, statement.table)
            where, top, order_by = statement.where, statement.top, statement.order_by
        else:
            table = _resolve_table(tables, primary_table)
            where, top, order_by = statement.where, -1, []
        _check_columns(table, where.columns)
        _check_columns(table, (term[0] for term in order_by))
        matched: list[Mapping[str, Any]] = []
        for row in table.rows:
            if 0 <= top <= len(matched):
                break
            if where.matches(row):
                matched.append(row)
        if order_by:
            keys = [(_column_key(table, name), asc, exact) for name, asc, exact in order_by]

            def compare(
                left: Mapping[str, Any], right: Mapping[str, Any], keys: list = keys
            ) -> int:
                for key, asc, exact in keys:
                    result = _compare_sort(left.get(key), right.get(key), exact)
                    if result:
                        return result if asc else -result
                return 0

            matched.sort(key=cmp_to_key(compare))
        for row in matched:
            add(row)
    return selected


def select_signal_ids(
    tables: Mapping[str, TableLike] | Iterable[TableLike],
    text: str,
    primary_table: str = "ActiveMeasurements",
    id_fields: IdFields = IdFields(),
) -> list[uuid.UUID]:
    """Signal IDs selected by ``text``: directly named GUIDs plus the selected rows' ``SignalID``.

    Directly named GUIDs are kept even when no metadata row names them, as the deployed
    publishers do; duplicates are removed, order is kept.
    """
    result: list[uuid.UUID] = []
    seen: set[uuid.UUID] = set()

    def add(value: Any) -> None:
        signal = _as_uuid(value)
        if signal is not None and signal.int != 0 and signal not in seen:
            seen.add(signal)
            result.append(signal)

    statements = parse(text)
    for statement in statements:
        if isinstance(statement, IdentifierStatement) and statement.kind == "signal_id":
            add(statement.value)
    rows = select_rows(tables, text, primary_table, id_fields)
    if rows:
        table = None
        for row in rows:
            if table is None:
                table = {key.upper(): key for key in row}
            key = table.get(id_fields.signal_id.upper())
            if key is not None:
                add(row.get(key))
    return result


def _as_uuid(value: Any) -> uuid.UUID | None:
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str):
        try:
            return uuid.UUID(value.strip("{}' "))
        except ValueError:
            return None
    return None


def _compare_sort(left: Any, right: Any, exact: bool) -> int:
    # NULLs sort first, as in the deployed implementations.
    if left is None or right is None:
        return (left is not None) - (right is not None)
    if isinstance(left, str) and isinstance(right, str) and not exact:
        left, right = left.upper(), right.upper()
    try:
        return (left > right) - (left < right)
    except TypeError:
        left, right = str(left), str(right)
        return (left > right) - (left < right)


# ---------------------------------------------------------------------------------------- parser


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.index = 0
        self.columns: list[str] = []
        self.depth = 0

    # -- token helpers
    @property
    def tok(self) -> _Token:
        return self.tokens[self.index]

    def advance(self) -> _Token:
        token = self.tokens[self.index]
        if token.kind != "end":
            self.index += 1
        return token

    def at_kw(self, *words: str) -> bool:
        return self.tok.kind == "kw" and self.tok.value in words

    def at_op(self, *ops: str) -> bool:
        return self.tok.kind == "op" and self.tok.value in ops

    def expect_op(self, op: str) -> None:
        if not self.at_op(op):
            self.fail(f"expected {op!r}")
        self.advance()

    def expect_kw(self, word: str) -> None:
        if not self.at_kw(word):
            self.fail(f"expected {word}")
        self.advance()

    def fail(self, message: str) -> None:
        token = self.tok
        found = "end of expression" if token.kind == "end" else repr(token.text)
        raise FilterExpressionError(f"{message} at position {token.pos}, found {found}")

    # -- statements
    def statements(self) -> list[Statement]:
        result: list[Statement] = []
        while True:
            while self.at_op(";"):
                self.advance()
            if self.tok.kind == "end":
                break
            result.append(self.statement())
            if self.tok.kind != "end" and not self.at_op(";"):
                self.fail("expected ';' or end of expression")
        if not result:
            raise FilterExpressionError("empty filter expression")
        return result

    def statement(self) -> Statement:
        nxt = self.tokens[self.index + 1]
        ends = nxt.kind == "end" or (nxt.kind == "op" and nxt.value == ";")
        if self.tok.kind == "mkey":
            return IdentifierStatement("measurement_key", self.advance().value)
        if self.tok.kind == "tag":
            return IdentifierStatement("point_tag", self.advance().value)
        if self.tok.kind == "guid" and ends:
            return IdentifierStatement("signal_id", self.advance().value)
        if self.at_kw("FILTER"):
            return self.filter_statement()
        return ExpressionStatement(self.compiled(self.expression))

    def compiled(self, rule: Callable[[], _Eval]) -> CompiledExpression:
        start_index = self.index
        self.columns = []
        fn = rule()
        start = self.tokens[start_index].pos
        end = self.tok.pos
        return CompiledExpression(self.text[start:end].strip(), tuple(self.columns), fn)

    def filter_statement(self) -> FilterStatement:
        self.expect_kw("FILTER")
        top = -1
        if self.at_kw("TOP"):
            self.advance()
            sign = 1
            if self.at_op("-", "+"):
                sign = -1 if self.advance().value == "-" else 1
            if self.tok.kind != "int":
                self.fail("expected an integer TOP limit")
            top = sign * self.advance().value
        if self.tok.kind != "ident":
            self.fail("expected a table name")
        table = self.advance().value
        self.expect_kw("WHERE")
        where = self.compiled(self.expression)
        order_by: list[tuple[str, bool, bool]] = []
        if self.at_kw("ORDER"):
            self.advance()
            self.expect_kw("BY")
            while True:
                exact = False
                if self.at_kw("BINARY") or self.at_op("==="):
                    self.advance()
                    exact = True
                if self.tok.kind != "ident":
                    self.fail("expected an ORDER BY column")
                column = self.advance().value
                asc = True
                if self.at_kw("ASC", "DESC"):
                    asc = self.advance().value == "ASC"
                order_by.append((column, asc, exact))
                if not self.at_op(","):
                    break
                self.advance()
        return FilterStatement(table, where, top, order_by)

    def expression_only(self) -> CompiledExpression:
        expression = self.compiled(self.expression)
        if self.tok.kind != "end":
            self.fail("unexpected text after expression")
        return expression

    # -- expressions, lowest precedence first
    def expression(self) -> _Eval:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            self.fail("expression nested too deeply")
        try:
            return self.or_expr()
        finally:
            self.depth -= 1

    def or_expr(self) -> _Eval:
        left = self.and_expr()
        while self.at_kw("OR") or self.at_op("||"):
            self.advance()
            left = _logical(left, self.and_expr(), is_and=False)
        return left

    def and_expr(self) -> _Eval:
        left = self.not_expr()
        while self.at_kw("AND") or self.at_op("&&"):
            self.advance()
            left = _logical(left, self.not_expr(), is_and=True)
        return left

    def not_expr(self) -> _Eval:
        if self.at_kw("NOT") or self.at_op("!"):
            self.advance()
            self.depth += 1
            if self.depth > _MAX_DEPTH:
                self.fail("expression nested too deeply")
            inner = self.not_expr()
            self.depth -= 1
            return _unary("NOT", inner)
        return self.predicate()

    def predicate(self) -> _Eval:
        left = self.equality()
        while True:
            negate = False
            if (self.at_kw("NOT") or self.at_op("!")) and self.tokens[self.index + 1].kind == "kw":
                if self.tokens[self.index + 1].value in ("IN", "LIKE"):
                    self.advance()
                    negate = True
            if self.at_kw("IN"):
                self.advance()
                exact = self.exact_modifier()
                self.expect_op("(")
                items = [self.expression()]
                while self.at_op(","):
                    self.advance()
                    items.append(self.expression())
                self.expect_op(")")
                left = _in_list(left, items, exact, negate)
            elif self.at_kw("LIKE"):
                self.advance()
                exact = self.exact_modifier()
                left = _like(left, self.equality(), exact, negate)
            elif self.at_kw("IS"):
                self.advance()
                is_not = False
                if self.at_kw("NOT") or self.at_op("!"):
                    self.advance()
                    is_not = True
                self.expect_kw("NULL")
                left = _is_null(left, is_not)
            elif negate:
                self.fail("expected IN or LIKE after NOT")
            else:
                return left

    def exact_modifier(self) -> bool:
        if self.at_kw("BINARY") or self.at_op("==="):
            self.advance()
            return True
        return False

    def equality(self) -> _Eval:
        left = self.relational()
        while self.at_op("=", "==", "===", "!=", "!==", "<>"):
            op = self.advance().value
            left = _compare(op, left, self.relational())
        return left

    def relational(self) -> _Eval:
        left = self.bitwise()
        while self.at_op("<", "<=", ">", ">="):
            op = self.advance().value
            left = _compare(op, left, self.bitwise())
        return left

    def bitwise(self) -> _Eval:
        left = self.additive()
        while self.at_op("<<", ">>", "&", "|", "^") or self.at_kw("XOR"):
            op = self.advance().value
            left = _arith("^" if op == "XOR" else op, left, self.additive())
        return left

    def additive(self) -> _Eval:
        left = self.multiplicative()
        while self.at_op("+", "-"):
            op = self.advance().value
            left = _arith(op, left, self.multiplicative())
        return left

    def multiplicative(self) -> _Eval:
        left = self.unary()
        while self.at_op("*", "/", "%"):
            op = self.advance().value
            left = _arith(op, left, self.unary())
        return left

    def unary(self) -> _Eval:
        if self.at_op("-", "+", "~", "!") or self.at_kw("NOT"):
            op = self.advance().value
            self.depth += 1
            if self.depth > _MAX_DEPTH:
                self.fail("expression nested too deeply")
            inner = self.unary()
            self.depth -= 1
            return _unary("NOT" if op == "!" else op, inner)
        return self.primary()

    def primary(self) -> _Eval:
        token = self.tok
        if token.kind in ("int", "float", "string", "guid", "datetime"):
            self.advance()
            value = token.value
            return lambda row: value
        if token.kind == "kw" and token.value in ("TRUE", "FALSE"):
            self.advance()
            value = token.value == "TRUE"
            return lambda row: value
        if token.kind == "kw" and token.value == "NULL":
            self.advance()
            return lambda row: None
        if token.kind == "op" and token.value == "(":
            self.advance()
            inner = self.expression()
            self.expect_op(")")
            return inner
        if token.kind == "ident":
            self.advance()
            if self.at_op("(") and token.text[0] not in "`[":
                return self.function(token)
            name = token.value
            self.columns.append(name)
            return lambda row: row.get(name)
        self.fail("expected a value, column or function")
        raise AssertionError  # unreachable: fail raises

    def function(self, token: _Token) -> _Eval:
        name = token.value.upper()
        spec = _FUNCTIONS.get(name)
        if spec is None:
            raise FilterExpressionError(f"unknown function {token.value!r} at position {token.pos}")
        self.expect_op("(")
        args: list[_Eval] = []
        if not self.at_op(")"):
            args.append(self.expression())
            while self.at_op(","):
                self.advance()
                args.append(self.expression())
        self.expect_op(")")
        low, high, impl = spec
        if not low <= len(args) <= high:
            expected = str(low) if low == high else f"{low}-{high}"
            raise FilterExpressionError(
                f"function {token.value} takes {expected} arguments, got {len(args)}"
            )
        label = token.value

        def call(row: Any) -> Any:
            values = [arg(row) for arg in args]
            try:
                return impl(*values)
            except FilterExpressionError:
                raise
            except (TypeError, ValueError, ArithmeticError, re.error) as exc:
                raise FilterExpressionError(f"{label}: {exc}") from None

        return call


# ------------------------------------------------------------------------------------ evaluation


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


def _coerce_pair(left: Any, right: Any) -> tuple[Any, Any]:
    """Bring two non-NULL operands to one comparable type, as the deployed evaluator does."""
    if type(left) is type(right):
        return left, right
    if _is_number(left) and _is_number(right):
        if isinstance(left, Decimal) or isinstance(right, Decimal):
            return Decimal(str(left)), Decimal(str(right))
        return left, right
    if isinstance(left, bool) or isinstance(right, bool):
        return _to_bool(left), _to_bool(right)
    if isinstance(left, uuid.UUID) or isinstance(right, uuid.UUID):
        lhs, rhs = _as_uuid(left), _as_uuid(right)
        if lhs is None or rhs is None:
            raise FilterExpressionError(f"cannot compare {left!r} with {right!r} as GUIDs")
        return lhs, rhs
    if isinstance(left, datetime) or isinstance(right, datetime):
        return _to_datetime(left), _to_datetime(right)
    if isinstance(left, str) and _is_number(right):
        return _to_number(left), right
    if isinstance(right, str) and _is_number(left):
        return left, _to_number(right)
    return str(left), str(right)


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if _is_number(value):
        return value != 0
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("true", "1", "yes"):
            return True
        if text in ("false", "0", "no", ""):
            return False
    raise FilterExpressionError(f"cannot convert {value!r} to a boolean")


def _to_number(value: Any) -> int | float:
    if _is_number(value):
        return value
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return (
                int(text, 0)
                if re.fullmatch(r"[-+]?(0[xX][0-9a-fA-F]+|[0-9]+)", text)
                else float(text)
            )
        except ValueError:
            pass
    raise FilterExpressionError(f"cannot convert {value!r} to a number")


def _to_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, str):
        return _parse_datetime(value)
    raise FilterExpressionError(f"cannot convert {value!r} to a date/time")


def _logical(left: _Eval, right: _Eval, is_and: bool) -> _Eval:
    def run(row: Any) -> Any:
        lhs = left(row)
        lhs = None if lhs is None else _to_bool(lhs)
        if is_and and lhs is False:
            return False
        if not is_and and lhs is True:
            return True
        rhs = right(row)
        rhs = None if rhs is None else _to_bool(rhs)
        if lhs is None or rhs is None:
            if is_and and rhs is False:
                return False
            if not is_and and rhs is True:
                return True
            return None
        return rhs

    return run


def _unary(op: str, inner: _Eval) -> _Eval:
    def run(row: Any) -> Any:
        value = inner(row)
        if value is None:
            return None
        if op == "NOT":
            if isinstance(value, bool) or not _is_number(value):
                return not _to_bool(value)
            return ~int(value)
        if op == "~":
            if isinstance(value, bool):
                return not value
            return ~int(_to_number(value))
        number = _to_number(value)
        return -number if op == "-" else number

    return run


def _compare(op: str, left: _Eval, right: _Eval) -> _Eval:
    exact = op in ("===", "!==")

    def run(row: Any) -> Any:
        lhs, rhs = left(row), right(row)
        if lhs is None or rhs is None:
            return None
        lhs, rhs = _coerce_pair(lhs, rhs)
        if isinstance(lhs, str) and not exact:
            lhs, rhs = lhs.upper(), rhs.upper()
        if op in ("=", "==", "==="):
            return lhs == rhs
        if op in ("!=", "!==", "<>"):
            return lhs != rhs
        try:
            if op == "<":
                return lhs < rhs
            if op == "<=":
                return lhs <= rhs
            if op == ">":
                return lhs > rhs
            return lhs >= rhs
        except TypeError:
            raise FilterExpressionError(f"cannot order {lhs!r} and {rhs!r}") from None

    return run


def _arith(op: str, left: _Eval, right: _Eval) -> _Eval:
    def run(row: Any) -> Any:
        lhs, rhs = left(row), right(row)
        if lhs is None or rhs is None:
            return None
        if op == "+" and (isinstance(lhs, str) or isinstance(rhs, str)):
            return f"{lhs}{rhs}"
        if op in ("<<", ">>", "&", "|", "^"):
            if isinstance(lhs, bool) and isinstance(rhs, bool) and op in ("&", "|", "^"):
                return {"&": lhs and rhs, "|": lhs or rhs, "^": lhs != rhs}[op]
            a, b = int(_to_number(lhs)), int(_to_number(rhs))
            if op in ("<<", ">>") and not 0 <= b <= 64:
                raise FilterExpressionError(f"shift count {b} out of range")
            return {"<<": a << b, ">>": a >> b, "&": a & b, "|": a | b, "^": a ^ b}[op]
        a, b = _to_number(lhs), _to_number(rhs)
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if b == 0:
            raise FilterExpressionError("division by zero")
        if op == "/":
            if isinstance(a, int) and isinstance(b, int):
                return int(a / b)  # integer division truncates toward zero, as in C#
            return a / b
        return (
            math.fmod(a, b)
            if isinstance(a, float) or isinstance(b, float)
            else int(math.fmod(a, b))
        )

    return run


def _equal_values(lhs: Any, rhs: Any, exact: bool) -> bool:
    lhs, rhs = _coerce_pair(lhs, rhs)
    if isinstance(lhs, str) and not exact:
        return lhs.upper() == rhs.upper()
    return lhs == rhs


def _in_list(left: _Eval, items: list[_Eval], exact: bool, negate: bool) -> _Eval:
    def run(row: Any) -> Any:
        value = left(row)
        if value is None:
            return None
        found = False
        for item in items:
            candidate = item(row)
            if candidate is not None and _equal_values(value, candidate, exact):
                found = True
                break
        return found != negate

    return run


def _like_match(value: str, pattern: str, exact: bool) -> bool:
    test = pattern.replace("%", "*")
    starts = test.startswith("*")
    ends = test.endswith("*")
    if starts:
        test = test[1:]
    if ends and test:
        test = test[:-1]
    if not test:
        return True
    if "*" in test:
        raise FilterExpressionError(f"LIKE pattern {pattern!r}: wildcards only at start or end")
    if not exact:
        value, test = value.upper(), test.upper()
    if starts and ends:
        return test in value
    if starts:
        return value.endswith(test)
    if ends:
        return value.startswith(test)
    return value == test


def _like(left: _Eval, pattern: _Eval, exact: bool, negate: bool) -> _Eval:
    def run(row: Any) -> Any:
        value = left(row)
        if value is None:
            return None
        test = pattern(row)
        if test is None:
            raise FilterExpressionError("right operand of LIKE is NULL")
        if not isinstance(value, str) or not isinstance(test, str):
            raise FilterExpressionError("LIKE needs string operands")
        return _like_match(value, test, exact) != negate

    return run


def _is_null(inner: _Eval, is_not: bool) -> _Eval:
    return lambda row: (inner(row) is None) != is_not


# ------------------------------------------------------------------------------------- functions


def _str_arg(value: Any, name: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise FilterExpressionError(f"{name} needs a string argument, got {value!r}")


def _ci(flag: Any) -> bool:
    return False if flag is None else _to_bool(flag)


def _null_if_none(fn: Callable[..., Any]) -> Callable[..., Any]:
    def run(*args: Any) -> Any:
        if args and args[0] is None:
            return None
        return fn(*args)

    return run


def _string_test(test: Callable[[str, str], Any], empty: Any = False) -> Callable[..., Any]:
    def run(source: Any, probe: Any, ignore_case: Any = None) -> Any:
        _str_arg(source, "string function")
        _str_arg(probe, "string function")
        if source is None:
            return None
        if probe is None:
            return empty
        if _ci(ignore_case):
            source, probe = source.upper(), probe.upper()
        return test(source, probe)

    return run


def _nth_index(source: Any, probe: Any, nth: Any, ignore_case: Any = None) -> Any:
    if source is None:
        return None
    if probe is None:
        return -1
    if _ci(ignore_case):
        source, probe = source.upper(), probe.upper()
    position = -1
    for _ in range(int(_to_number(nth)) + 1):
        position = source.find(probe, position + 1)
        if position < 0:
            return -1
    return position


def _replace(source: Any, probe: Any, replacement: Any, ignore_case: Any = None) -> Any:
    if source is None:
        return None
    if probe is None or probe == "":
        return source
    replacement = "" if replacement is None else str(replacement)
    if _ci(ignore_case):
        return re.sub(re.escape(probe), lambda _m: replacement, source, flags=re.IGNORECASE)
    return source.replace(probe, replacement)


def _split(source: Any, delimiter: Any, index: Any, ignore_case: Any = None) -> Any:
    if source is None:
        return None
    parts = (
        re.split(re.escape(delimiter), source, flags=re.IGNORECASE)
        if _ci(ignore_case)
        else source.split(delimiter)
    )
    position = int(_to_number(index))
    return parts[position] if 0 <= position < len(parts) else None


def _substr(source: Any, index: Any, length: Any = None) -> Any:
    if source is None:
        return None
    start = int(_to_number(index))
    if length is None:
        return source[start:]
    return source[start : start + int(_to_number(length))]


_TYPE_NAMES = {
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


def _convert(value: Any, type_name: Any) -> Any:
    if value is None:
        return None
    name = str(type_name).upper().removeprefix("SYSTEM.")
    target = _TYPE_NAMES.get(name)
    if target is None:
        raise FilterExpressionError(f"Convert: unknown type {type_name!r}")
    if target is str:
        return str(value)
    if target is bool:
        return _to_bool(value)
    if target is int:
        return int(_to_number(value))
    if target is float:
        return float(_to_number(value))
    if target is Decimal:
        return Decimal(str(value))
    if target is uuid.UUID:
        result = _as_uuid(value)
        if result is None:
            raise FilterExpressionError(f"Convert: {value!r} is not a GUID")
        return result
    return _to_datetime(value)


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


def _interval(name: Any) -> str:
    key = _INTERVALS.get(str(name).upper())
    if key is None:
        raise FilterExpressionError(f"unknown date interval {name!r}")
    return key


def _date_add(value: Any, amount: Any, interval: Any) -> Any:
    if value is None:
        return None
    moment = _to_datetime(value)
    count = int(_to_number(amount))
    unit = _interval(interval)
    if unit in ("year", "month"):
        months = moment.month - 1 + count * (12 if unit == "year" else 1)
        year = moment.year + months // 12
        return moment.replace(year=year, month=months % 12 + 1)
    seconds = {
        "day": 86400,
        "dayofyear": 86400,
        "weekday": 86400,
        "week": 7 * 86400,
        "hour": 3600,
        "minute": 60,
        "second": 1,
        "millisecond": 0.001,
    }[unit]
    return moment + timedelta(seconds=seconds * count)


def _date_diff(left: Any, right: Any, interval: Any) -> Any:
    if left is None or right is None:
        return None
    start, end = _to_datetime(left), _to_datetime(right)
    unit = _interval(interval)
    if unit == "year":
        return end.year - start.year
    if unit == "month":
        return (end.year - start.year) * 12 + end.month - start.month
    seconds = (end - start).total_seconds()
    divisor = {
        "day": 86400,
        "dayofyear": 86400,
        "weekday": 86400,
        "week": 7 * 86400,
        "hour": 3600,
        "minute": 60,
        "second": 1,
        "millisecond": 0.001,
    }[unit]
    return int(seconds / divisor)


def _date_part(value: Any, interval: Any) -> Any:
    if value is None:
        return None
    moment = _to_datetime(value)
    unit = _interval(interval)
    return {
        "year": moment.year,
        "month": moment.month,
        "day": moment.day,
        "dayofyear": moment.timetuple().tm_yday,
        "week": moment.isocalendar()[1],
        "weekday": (moment.weekday() + 1) % 7,
        "hour": moment.hour,
        "minute": moment.minute,
        "second": moment.second,
        "millisecond": moment.microsecond // 1000,
    }[unit]


def _is_numeric(value: Any) -> bool:
    if value is None:
        return False
    try:
        _to_number(value)
        return True
    except FilterExpressionError:
        return False


def _is_integer(value: Any) -> bool:
    if isinstance(value, bool) or value is None:
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, str) and re.fullmatch(r"\s*[-+]?[0-9]+\s*", value) is not None


def _is_date(value: Any) -> bool:
    if isinstance(value, datetime):
        return True
    try:
        _to_datetime(value)
        return True
    except FilterExpressionError:
        return False


def _regex(pattern: Any, value: Any) -> Any:
    if pattern is None or value is None:
        return None
    if len(str(pattern)) > 1024:
        raise FilterExpressionError("regular expression longer than 1024 chars")
    return re.search(str(pattern), str(value))


def _round(value: Any, digits: Any = None) -> Any:
    number = _to_number(value)
    if digits is None:
        return float(round(number)) if isinstance(number, float) else number
    return round(number, int(_to_number(digits)))


def _number_fn(fn: Callable[[Any], Any]) -> Callable[..., Any]:
    return _null_if_none(lambda value: fn(_to_number(value)))


def _coalesce(*values: Any) -> Any:
    for value in values:
        if value is not None:
            return value
    return None


def _iif(test: Any, when_true: Any, when_false: Any) -> Any:
    return when_true if test is not None and _to_bool(test) else when_false


def _extreme(pick: Callable[..., Any]) -> Callable[..., Any]:
    def run(*values: Any) -> Any:
        present = [value for value in values if value is not None]
        if not present:
            return None
        first = present[0]
        result = first
        for value in present[1:]:
            lhs, rhs = _coerce_pair(result, value)
            result = value if pick(rhs, lhs) else result
        return result

    return run


def _strcmp(left: Any, right: Any, ignore_case: Any = None) -> Any:
    if left is None and right is None:
        return 0
    if left is None:
        return -1
    if right is None:
        return 1
    if _ci(ignore_case):
        left, right = left.upper(), right.upper()
    return (left > right) - (left < right)


#: name -> (min args, max args, implementation over evaluated argument values)
_FUNCTIONS: dict[str, tuple[int, int, Callable[..., Any]]] = {
    "ABS": (1, 1, _number_fn(abs)),
    "CEILING": (1, 1, _number_fn(lambda n: float(math.ceil(n)) if isinstance(n, float) else n)),
    "FLOOR": (1, 1, _number_fn(lambda n: float(math.floor(n)) if isinstance(n, float) else n)),
    "ROUND": (1, 2, _null_if_none(_round)),
    "SQRT": (1, 1, _number_fn(lambda n: math.sqrt(n))),
    "POWER": (
        2,
        2,
        lambda b, e: None if b is None or e is None else _to_number(b) ** _to_number(e),
    ),
    "COALESCE": (2, 64, _coalesce),
    "ISNULL": (2, 2, _coalesce),
    "IIF": (3, 3, _iif),
    "CONVERT": (2, 2, _convert),
    "CONTAINS": (2, 3, _string_test(lambda s, t: t in s)),
    "STARTSWITH": (2, 3, _string_test(lambda s, t: s.startswith(t))),
    "ENDSWITH": (2, 3, _string_test(lambda s, t: s.endswith(t))),
    "INDEXOF": (2, 3, _string_test(lambda s, t: s.find(t), empty=-1)),
    "LASTINDEXOF": (2, 3, _string_test(lambda s, t: s.rfind(t), empty=-1)),
    "NTHINDEXOF": (3, 4, _nth_index),
    "STRCOUNT": (2, 3, _string_test(lambda s, t: s.count(t) if t else 0, empty=0)),
    "STRCMP": (2, 3, _strcmp),
    "REPLACE": (3, 4, _replace),
    "SPLIT": (3, 4, _split),
    "SUBSTR": (2, 3, _substr),
    "LEN": (1, 1, _null_if_none(lambda s: len(str(s)))),
    "LOWER": (1, 1, _null_if_none(lambda s: str(s).lower())),
    "UPPER": (1, 1, _null_if_none(lambda s: str(s).upper())),
    "TRIM": (1, 1, _null_if_none(lambda s: str(s).strip())),
    "TRIMLEFT": (1, 1, _null_if_none(lambda s: str(s).lstrip())),
    "TRIMRIGHT": (1, 1, _null_if_none(lambda s: str(s).rstrip())),
    "REVERSE": (1, 1, _null_if_none(lambda s: str(s)[::-1])),
    "REGEXMATCH": (2, 2, lambda p, v: None if p is None or v is None else bool(_regex(p, v))),
    "REGEXVAL": (
        2,
        2,
        lambda p, v: None if p is None or v is None else ((m := _regex(p, v)) and m.group()) or "",
    ),
    "ISDATE": (1, 1, _is_date),
    "ISINTEGER": (1, 1, _is_integer),
    "ISGUID": (1, 1, lambda v: v is not None and _as_uuid(v) is not None),
    "ISNUMERIC": (1, 1, _is_numeric),
    "MAXOF": (2, 64, _extreme(lambda new, old: new > old)),
    "MINOF": (2, 64, _extreme(lambda new, old: new < old)),
    "NOW": (0, 0, lambda: datetime.now().astimezone()),
    "UTCNOW": (0, 0, lambda: datetime.now(timezone.utc)),
    "DATEADD": (3, 3, _date_add),
    "DATEDIFF": (3, 3, _date_diff),
    "DATEPART": (2, 2, _date_part),
}
