"""Parser of filter expressions: statements, and expressions compiled to closures.

Two dialects share the tokens and the functions and differ in precedence and NULL logic (see the
package docstring): :attr:`Dialect.DEPLOYED` follows the grammar of the deployed engines (GSF's
``FilterExpressionSyntax``), :attr:`Dialect.SQL` the conventional SQL levels the draft profile's
"SQL style expressions" name. Parsing is precedence climbing over per-dialect tables.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gridbind.sttp.expressions import operators as ops
from gridbind.sttp.expressions.budget import (
    DEFAULT_LIMITS,
    Budget,
    FilterExpressionError,
    Limits,
    Scope,
)
from gridbind.sttp.expressions.functions import FUNCTIONS
from gridbind.sttp.expressions.lexer import Token, tokenize

__all__ = [
    "CompiledExpression",
    "Dialect",
    "ExpressionStatement",
    "FilterStatement",
    "IdentifierStatement",
    "Statement",
    "compile_expression",
    "evaluate",
    "parse",
]

log = logging.getLogger(__name__)

#: Most ORDER BY columns of one statement (each one is compared at every one of the sort's
#: n log n comparisons).
MAX_ORDER_KEYS = 16

# Deepest tree of operator nodes: evaluation recurses once per level, so this keeps it far from
# Python's recursion limit (a long chain ``a OR b OR ...`` is one level per operator).
_MAX_TREE_DEPTH = 250

# Errors of Python's own operations that a hostile value could still provoke; evaluation turns
# them into FilterExpressionError (the evaluator checks types first; this is the safety net).
_EVALUATION_ERRORS = (
    TypeError,
    ValueError,
    ArithmeticError,
    AttributeError,
    IndexError,
    KeyError,
    RecursionError,
    # a value that the size caps did not foresee; freed as the exception unwinds
    MemoryError,
)


class Dialect(enum.Enum):
    """Precedence and NULL logic of a profile's filter expressions."""

    #: The deployed engines (GSF C++ / Go / Python ``sttpapi``): the ieee2664 profile.
    DEPLOYED = "deployed"
    #: SQL levels and three-valued logic: the draft profile ("SQL style expressions").
    SQL = "sql"


@dataclass(frozen=True)
class _Grammar:
    logical: dict[str, int]  # AND / OR -> level
    predicate: dict[str, int]  # IN, IS, LIKE, EQ, REL -> level
    value: dict[str, int]  # + - * / % << >> & | ^ -> level
    three_valued: bool
    plain_like_is_equal: bool


_MATH = ("*", "/", "%", "+", "-")
_BITS = ("<<", ">>", "&", "|", "^")
_GRAMMARS = {
    # ANTLR orders left-recursive alternatives from highest to lowest precedence: NOT binds
    # tighter than AND / OR (one level); IN > IS > all comparisons (one level) > LIKE; all of
    # * / % + - on one level, tighter than all bitwise operators (one level).
    Dialect.DEPLOYED: _Grammar(
        logical={"AND": 1, "OR": 1},
        predicate={"LIKE": 1, "EQ": 2, "REL": 2, "IS": 3, "IN": 4},
        value={**{op: 1 for op in _BITS}, **{op: 2 for op in _MATH}},
        three_valued=False,
        plain_like_is_equal=False,
    ),
    Dialect.SQL: _Grammar(
        logical={"OR": 1, "AND": 2},
        predicate={"LIKE": 1, "IN": 1, "IS": 1, "EQ": 2, "REL": 3},
        value={
            **{op: 1 for op in _BITS},
            "+": 2,
            "-": 2,
            "*": 3,
            "/": 3,
            "%": 3,
        },
        three_valued=True,
        plain_like_is_equal=True,
    ),
}

_EQ_OPS = ("=", "==", "===", "!=", "!==", "<>")
_REL_OPS = ("<", "<=", ">", ">=")


@dataclass
class CompiledExpression:
    """One boolean or value expression, compiled for repeated evaluation against rows."""

    text: str
    columns: tuple[str, ...]
    _fn: ops.Eval = field(repr=False)
    limits: Limits = field(default=DEFAULT_LIMITS, repr=False)

    def evaluate(self, row: Mapping[str, Any] | None = None, budget: Budget | None = None) -> Any:
        """Value of the expression for ``row`` (``None`` means NULL).

        ``budget`` is the request's; pass one budget to all rows of a request (a fresh one per
        call otherwise). Raises only :class:`FilterExpressionError`.
        """
        scope = Scope(row or {}, budget or Budget(self.limits))
        try:
            return self._fn(scope)
        except FilterExpressionError:
            raise
        except _EVALUATION_ERRORS as exc:
            log.debug("filter expression %r: %r", self.text[:80], exc)
            raise FilterExpressionError(
                f"cannot evaluate {self.text[:40]!r}: {type(exc).__name__}: {str(exc)[:80]}"
            ) from None

    def matches(self, row: Mapping[str, Any] | None = None, budget: Budget | None = None) -> bool:
        """True when the expression is a true boolean for ``row`` (NULL and false select nothing).

        A non-boolean result raises :class:`FilterExpressionError`, as a WHERE clause must be boolean.
        """
        value = self.evaluate(row, budget)
        if value is None:
            return False
        if not isinstance(value, bool):
            raise FilterExpressionError(
                f"expression {self.text[:60]!r} gives {type(value).__name__}, not a boolean"
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

#: A parsed node: its closure and the depth of its tree.
_Node = tuple[ops.Eval, int]


def parse(
    text: str, dialect: Dialect = Dialect.DEPLOYED, limits: Limits = DEFAULT_LIMITS
) -> list[Statement]:
    """Parse a filter expression into its statements; raises :class:`FilterExpressionError`."""
    return _Parser(text, dialect, limits).statements()


def compile_expression(
    text: str, dialect: Dialect = Dialect.DEPLOYED, limits: Limits = DEFAULT_LIMITS
) -> CompiledExpression:
    """Compile one expression (no ``FILTER`` clause), e.g. ``"SignalType = 'FREQ' AND Enabled"``."""
    return _Parser(text, dialect, limits).expression_only()


def evaluate(
    text: str,
    row: Mapping[str, Any] | None = None,
    dialect: Dialect = Dialect.DEPLOYED,
    limits: Limits = DEFAULT_LIMITS,
) -> Any:
    """Evaluate one expression against ``row`` (convenience for one-off checks)."""
    return compile_expression(text, dialect, limits).evaluate(row)


class _Parser:
    def __init__(self, text: str, dialect: Dialect, limits: Limits) -> None:
        if not isinstance(text, str):
            raise FilterExpressionError("a filter expression must be text")
        self.text = text
        self.limits = limits
        self.grammar = _GRAMMARS[dialect]
        self.tokens = tokenize(text, limits.max_length)
        self.index = 0
        self.columns: list[str] = []
        self.depth = 0

    # -- token helpers
    @property
    def tok(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        if token.kind != "end":
            self.index += 1
        return token

    def at_kw(self, *words: str) -> bool:
        return self.tok.kind == "kw" and self.tok.value in words

    def at_op(self, *symbols: str) -> bool:
        return self.tok.kind == "op" and self.tok.value in symbols

    def expect_op(self, symbol: str) -> None:
        if not self.at_op(symbol):
            self.fail(f"expected {symbol!r}")
        self.advance()

    def expect_kw(self, word: str) -> None:
        if not self.at_kw(word):
            self.fail(f"expected {word}")
        self.advance()

    def fail(self, message: str) -> None:
        token = self.tok
        found = "end of expression" if token.kind == "end" else repr(token.text[:40])
        raise FilterExpressionError(f"{message} at position {token.pos}, found {found}")

    def nest(self) -> None:
        self.depth += 1
        if self.depth > self.limits.max_depth:
            self.fail("expression nested too deeply")

    def node(self, fn: ops.Eval, *children: _Node) -> _Node:
        depth = 1 + max((child[1] for child in children), default=0)
        if depth > _MAX_TREE_DEPTH:
            self.fail(f"expression too long (more than {_MAX_TREE_DEPTH} nested operations)")
        return fn, depth

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
        return ExpressionStatement(self.compiled())

    def compiled(self) -> CompiledExpression:
        start_index = self.index
        self.columns = []
        fn, _depth = self.expression()
        start = self.tokens[start_index].pos
        end = self.tok.pos
        text = self.text[start:end].strip()
        return CompiledExpression(text, tuple(self.columns), fn, self.limits)

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
        where = self.compiled()
        order_by: list[tuple[str, bool, bool]] = []
        if self.at_kw("ORDER"):
            self.advance()
            self.expect_kw("BY")
            while True:
                exact = self.exact_modifier()
                if self.tok.kind != "ident":
                    self.fail("expected an ORDER BY column")
                column = self.advance().value
                asc = True
                if self.at_kw("ASC", "DESC"):
                    asc = self.advance().value == "ASC"
                order_by.append((column, asc, exact))
                if len(order_by) > MAX_ORDER_KEYS:
                    self.fail(f"more than {MAX_ORDER_KEYS} ORDER BY columns")
                if not self.at_op(","):
                    break
                self.advance()
        return FilterStatement(table, where, top, order_by)

    def expression_only(self) -> CompiledExpression:
        expression = self.compiled()
        if self.tok.kind != "end":
            self.fail("unexpected text after expression")
        return expression

    # -- expressions
    def expression(self) -> _Node:
        self.nest()
        try:
            return self.logical(1)
        finally:
            self.depth -= 1

    def logical_op(self) -> str | None:
        if self.at_kw("AND") or self.at_op("&&"):
            return "AND"
        if self.at_kw("OR") or self.at_op("||"):
            return "OR"
        return None

    def logical(self, level: int) -> _Node:
        left = self.negation()
        while (op := self.logical_op()) is not None:
            op_level = self.grammar.logical[op]
            if op_level < level:
                break
            self.advance()
            right = self.logical(op_level + 1)
            fn = ops.logical(left[0], right[0], op == "AND", self.grammar.three_valued)
            left = self.node(fn, left, right)
        return left

    def negation(self) -> _Node:
        if self.at_kw("NOT") or self.at_op("!"):
            self.advance()
            self.nest()
            inner = self.negation()
            self.depth -= 1
            return self.node(ops.unary("NOT", inner[0]), inner)
        return self.predicate(1)

    def predicate_op(self) -> str | None:
        token = self.tok
        if token.kind == "kw":
            if token.value in ("IN", "IS", "LIKE"):
                return token.value
            if token.value == "NOT":
                nxt = self.tokens[self.index + 1]
                if nxt.kind == "kw" and nxt.value in ("IN", "LIKE"):
                    return nxt.value
        elif token.kind == "op":
            if token.value in _EQ_OPS:
                return "EQ"
            if token.value in _REL_OPS:
                return "REL"
            if token.value == "!":
                nxt = self.tokens[self.index + 1]
                if nxt.kind == "kw" and nxt.value in ("IN", "LIKE"):
                    return nxt.value
        return None

    def predicate(self, level: int) -> _Node:
        left = self.value(1)
        while (kind := self.predicate_op()) is not None:
            op_level = self.grammar.predicate[kind]
            if op_level < level:
                break
            negate = False
            if self.at_kw("NOT") or self.at_op("!"):
                self.advance()
                negate = True
            if kind == "IN":
                self.advance()
                exact = self.exact_modifier()
                self.expect_op("(")
                items = [self.expression()]
                while self.at_op(","):
                    self.advance()
                    items.append(self.expression())
                self.expect_op(")")
                fn = ops.in_list(left[0], [item[0] for item in items], exact, negate)
                left = self.node(fn, left, *items)
            elif kind == "IS":
                self.advance()
                is_not = False
                if self.at_kw("NOT") or self.at_op("!"):
                    self.advance()
                    is_not = True
                self.expect_kw("NULL")
                left = self.node(ops.is_null(left[0], is_not), left)
            elif kind == "LIKE":
                self.advance()
                exact = self.exact_modifier()
                right = self.predicate(op_level + 1)
                fn = ops.like(left[0], right[0], exact, negate, self.grammar.plain_like_is_equal)
                left = self.node(fn, left, right)
            else:
                symbol = self.advance().value
                right = self.predicate(op_level + 1)
                left = self.node(ops.compare(symbol, left[0], right[0]), left, right)
        return left

    def exact_modifier(self) -> bool:
        if self.at_kw("BINARY") or self.at_op("==="):
            self.advance()
            return True
        return False

    def value_op(self) -> str | None:
        if self.tok.kind == "op" and self.tok.value in self.grammar.value:
            return self.tok.value
        if self.at_kw("XOR"):
            return "^"
        return None

    def value(self, level: int) -> _Node:
        left = self.unary()
        while (symbol := self.value_op()) is not None:
            op_level = self.grammar.value[symbol]
            if op_level < level:
                break
            self.advance()
            right = self.value(op_level + 1)
            if symbol in _MATH:
                fn = ops.arith(symbol, left[0], right[0])
            else:
                fn = ops.bitwise(symbol, left[0], right[0])
            left = self.node(fn, left, right)
        return left

    def unary(self) -> _Node:
        if self.at_op("-", "+", "~", "!") or self.at_kw("NOT"):
            symbol = self.advance().value
            self.nest()
            inner = self.unary()
            self.depth -= 1
            return self.node(ops.unary("NOT" if symbol == "!" else symbol, inner[0]), inner)
        return self.primary()

    def primary(self) -> _Node:
        token = self.tok
        if token.kind in ("int", "number", "string", "guid", "datetime"):
            self.advance()
            value = token.value
            return (lambda scope: value), 1
        if token.kind == "kw" and token.value in ("TRUE", "FALSE"):
            self.advance()
            flag = token.value == "TRUE"
            return (lambda scope: flag), 1
        if token.kind == "kw" and token.value == "NULL":
            self.advance()
            return (lambda scope: None), 1
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
            return (lambda scope: scope.get(name)), 1
        self.fail("expected a value, column or function")
        raise AssertionError  # unreachable: fail raises

    def function(self, token: Token) -> _Node:
        name = token.value.upper()
        spec = FUNCTIONS.get(name)
        if spec is None:
            raise FilterExpressionError(
                f"unknown function {token.value[:40]!r} at position {token.pos}"
            )
        self.expect_op("(")
        args: list[_Node] = []
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
        arg_fns = [arg[0] for arg in args]

        def call(scope: Scope) -> Any:
            budget = scope.budget
            budget.charge()
            values = [arg(scope) for arg in arg_fns]
            try:
                return impl(budget, *values)
            except FilterExpressionError:
                raise
            except _EVALUATION_ERRORS as exc:
                raise FilterExpressionError(f"{label}: {str(exc)[:80]}") from None

        return self.node(call, *args)
