"""Operator nodes: each builds a closure ``run(scope) -> value`` that charges the budget once."""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from gridbind.sttp.expressions.budget import FilterExpressionError, Scope
from gridbind.sttp.expressions.values import (
    DECIMAL,
    coerce_pair,
    is_number,
    numeric_pair,
    to_bool,
    to_int,
    to_number,
    to_text,
    wrap64,
)

__all__ = [
    "Eval",
    "arith",
    "bitwise",
    "compare",
    "in_list",
    "is_null",
    "like",
    "logical",
    "unary",
]

#: A compiled node: evaluates against one row's scope.
Eval = Callable[[Scope], Any]


def logical(left: Eval, right: Eval, is_and: bool, three_valued: bool) -> Eval:
    """AND / OR. ``three_valued``: SQL's (``NULL AND FALSE`` is FALSE); otherwise the deployed
    engines' rule: both sides are evaluated and a NULL on either side gives NULL."""
    if three_valued:

        def sql(scope: Scope) -> Any:
            scope.budget.charge()
            lhs = left(scope)
            lhs = None if lhs is None else to_bool(lhs)
            if lhs is (not is_and):
                return lhs  # FALSE AND x, TRUE OR x
            rhs = right(scope)
            rhs = None if rhs is None else to_bool(rhs)
            if lhs is None:
                return rhs if rhs is (not is_and) else None
            return rhs

        return sql

    def deployed(scope: Scope) -> Any:
        scope.budget.charge()
        lhs, rhs = left(scope), right(scope)
        if lhs is None or rhs is None:
            return None
        return (to_bool(lhs) and to_bool(rhs)) if is_and else (to_bool(lhs) or to_bool(rhs))

    return deployed


def unary(op: str, inner: Eval) -> Eval:
    """Prefix ``-``, ``+``, ``~`` and ``NOT`` / ``!``."""

    def run(scope: Scope) -> Any:
        scope.budget.charge()
        value = inner(scope)
        if value is None:
            return None
        if op == "NOT":
            if isinstance(value, bool) or not is_number(value):
                return not to_bool(value)
            return wrap64(~to_int(value))
        if op == "~":
            if isinstance(value, bool):
                return not value
            return wrap64(~to_int(value))
        number = to_number(value)
        if op == "+":
            return number
        if isinstance(number, int):
            return wrap64(-number)
        return -number

    return run


def compare(op: str, left: Eval, right: Eval) -> Eval:
    """``=``, ``==``, ``===`` (exact), ``!=``, ``!==``, ``<>``, ``<``, ``<=``, ``>``, ``>=``."""
    exact = op in ("===", "!==")

    def run(scope: Scope) -> Any:
        scope.budget.charge()
        lhs, rhs = left(scope), right(scope)
        if lhs is None or rhs is None:
            return None
        if type(lhs) is not type(rhs):
            try:
                lhs, rhs = coerce_pair(lhs, rhs)
            except FilterExpressionError:
                if isinstance(lhs, str) or isinstance(rhs, str):
                    # Text that does not convert to the other side's type is unequal to it
                    # (and neither less nor greater), as in the deployed engines.
                    return op in ("!=", "!==", "<>")
                raise
        if isinstance(lhs, str):
            if len(lhs) + len(rhs) > 256:
                scope.budget.charge_text(lhs, rhs)
            if not exact:
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
            raise FilterExpressionError(f"cannot order {type(lhs).__name__} values") from None

    return run


def _decimal_op(op: str, a: Decimal, b: Decimal) -> Decimal:
    if op == "+":
        return DECIMAL.add(a, b)
    if op == "-":
        return DECIMAL.subtract(a, b)
    if op == "*":
        return DECIMAL.multiply(a, b)
    if op == "/":
        return DECIMAL.divide(a, b)
    return DECIMAL.remainder(a, b)  # sign of the dividend, as C#'s %


def arith(op: str, left: Eval, right: Eval) -> Eval:
    """``+`` (also string concatenation), ``-``, ``*``, ``/``, ``%``."""

    def run(scope: Scope) -> Any:
        budget = scope.budget
        budget.charge()
        lhs, rhs = left(scope), right(scope)
        if lhs is None or rhs is None:
            return None
        if op == "+" and (isinstance(lhs, str) or isinstance(rhs, str)):
            cap = budget.limits.max_string
            lhs, rhs = to_text(lhs, cap), to_text(rhs, cap)
            if len(lhs) + len(rhs) > cap:
                raise FilterExpressionError(
                    f"concatenation of {len(lhs) + len(rhs)} characters exceeds the {cap} limit"
                )
            budget.charge_text(lhs, rhs)
            return lhs + rhs
        a, b = numeric_pair(lhs, rhs)
        if op == "%" and not isinstance(a, int):
            raise FilterExpressionError("% needs integer operands")
        if b == 0 and op in ("/", "%"):
            raise FilterExpressionError("division by zero")
        if isinstance(a, int):
            if op == "+":
                return wrap64(a + b)
            if op == "-":
                return wrap64(a - b)
            if op == "*":
                return wrap64(a * b)
            quotient = abs(a) // abs(b) * (1 if (a < 0) == (b < 0) else -1)
            return wrap64(quotient) if op == "/" else wrap64(a - b * quotient)
        if isinstance(a, Decimal):
            return _decimal_op(op, a, b)
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        return a / b if op == "/" else math.fmod(a, b)

    return run


def bitwise(op: str, left: Eval, right: Eval) -> Eval:
    """``<<``, ``>>``, ``&``, ``|``, ``^`` / ``XOR`` on 64-bit integers (or booleans)."""

    def run(scope: Scope) -> Any:
        scope.budget.charge()
        lhs, rhs = left(scope), right(scope)
        if lhs is None or rhs is None:
            return None
        if isinstance(lhs, bool) and isinstance(rhs, bool) and op in ("&", "|", "^"):
            return (lhs and rhs) if op == "&" else (lhs or rhs) if op == "|" else lhs != rhs
        if not (isinstance(lhs, int) and isinstance(rhs, int)):  # bool is an int here
            raise FilterExpressionError(f"{op} needs integer operands")
        a, b = int(lhs), int(rhs)
        if op == "&":
            return a & b
        if op == "|":
            return a | b
        if op == "^":
            return a ^ b
        if not 0 <= b <= 63:
            raise FilterExpressionError(f"shift count {b} out of range 0-63")
        return wrap64(a << b) if op == "<<" else a >> b

    return run


def in_list(left: Eval, items: list[Eval], exact: bool, negate: bool) -> Eval:
    """``x [NOT] IN [BINARY] (a, b, ...)``."""

    def run(scope: Scope) -> Any:
        scope.budget.charge()
        value = left(scope)
        if value is None:
            return None
        for item in items:
            scope.budget.charge()
            candidate = item(scope)
            if candidate is None:
                continue
            if type(value) is type(candidate):
                lhs, rhs = value, candidate
            else:
                try:
                    lhs, rhs = coerce_pair(value, candidate)
                except FilterExpressionError:
                    if isinstance(value, str) or isinstance(candidate, str):
                        continue  # unconvertible text is unequal (see compare)
                    raise
            if isinstance(lhs, str):
                scope.budget.charge_text(lhs, rhs)
                if not exact:
                    lhs, rhs = lhs.upper(), rhs.upper()
            if lhs == rhs:
                return not negate
        return negate

    return run


def like_match(value: str, pattern: str, exact: bool, plain_is_equal: bool) -> bool:
    """``value LIKE pattern``: ``%`` / ``*`` wildcards at the start and/or end only.

    ``plain_is_equal``: a pattern without a wildcard tests equality (SQL); otherwise it never
    matches, as in every deployed engine (C++, Go, Python).
    """
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
        raise FilterExpressionError(
            f"LIKE pattern {pattern[:40]!r}: wildcards only at start or end"
        )
    if not exact:
        value, test = value.upper(), test.upper()
    if starts and ends:
        return test in value
    if starts:
        return value.endswith(test)
    if ends:
        return value.startswith(test)
    return plain_is_equal and value == test


def like(left: Eval, pattern: Eval, exact: bool, negate: bool, plain_is_equal: bool) -> Eval:
    """``x [NOT] LIKE [BINARY] pattern``."""

    def run(scope: Scope) -> Any:
        scope.budget.charge()
        value = left(scope)
        if value is None:
            return None
        test = pattern(scope)
        if test is None:
            raise FilterExpressionError("right operand of LIKE is NULL")
        if not isinstance(value, str) or not isinstance(test, str):
            raise FilterExpressionError("LIKE needs string operands")
        scope.budget.charge_text(value, test)
        return like_match(value, test, exact, plain_is_equal) != negate

    return run


def is_null(inner: Eval, is_not: bool) -> Eval:
    """``x IS [NOT] NULL``."""

    def run(scope: Scope) -> bool:
        scope.budget.charge()
        return (inner(scope) is None) != is_not

    return run
