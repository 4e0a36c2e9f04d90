"""The one error type of filter expressions and the budget that bounds their evaluation.

A filter expression comes from a peer, so every piece of work it can ask for is bounded: the
text's length and nesting when it is parsed; when it is evaluated, a step counter charged by every
operator and function (and by the length of the strings they walk), a wall-clock deadline checked
every :data:`_CHECK_EVERY` steps, and caps on the size of every intermediate value (strings,
integers, decimals). One :class:`Budget` covers one request (a SUBSCRIBE or metadata query against
a whole table), not one row, so a table of many rows cannot multiply it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gridbind.sttp.errors import SttpError

__all__ = ["Budget", "BudgetExceeded", "FilterExpressionError", "Limits", "Scope"]


class FilterExpressionError(SttpError, ValueError):
    """A filter expression that does not parse, exceeds its budget, or cannot be evaluated.

    This is the only exception the expression engine raises; the publishers turn it into a FAILED
    answer to the one subscriber that sent the expression.
    """


class BudgetExceeded(FilterExpressionError):
    """The request used up its steps or its time (a FilterExpressionError like the others)."""


@dataclass(frozen=True)
class Limits:
    """Bounds on the work one filter request may cause (defaults suit a publisher)."""

    #: longest expression text accepted, in characters
    max_length: int = 65_536
    #: deepest nesting of parentheses, operators and function calls
    max_depth: int = 50
    #: operator/function evaluations (plus one per 256 characters walked) per request
    max_steps: int = 2_000_000
    #: wall-clock seconds per request
    max_seconds: float = 2.0
    #: longest intermediate string, in characters
    max_string: int = 65_536
    #: longest regular expression pattern, in characters
    max_pattern: int = 1_024


DEFAULT_LIMITS = Limits()

# How many steps pass between two reads of the clock (a clock read costs ~50 ns, a step ~1 us).
_CHECK_EVERY = 256


class Budget:
    """What is left of one request's :class:`Limits`; every evaluation step charges it."""

    __slots__ = ("limits", "steps", "deadline", "_next_check")

    def __init__(self, limits: Limits = DEFAULT_LIMITS, now: float | None = None) -> None:
        self.limits = limits
        self.steps = limits.max_steps
        start = time.monotonic() if now is None else now
        self.deadline = start + limits.max_seconds
        self._next_check = max(self.steps - _CHECK_EVERY, 0)

    def charge(self, cost: int = 1) -> None:
        """Spend ``cost`` steps; raises :class:`FilterExpressionError` once the budget is gone."""
        self.steps -= cost
        if self.steps <= self._next_check:
            if self.steps <= 0:
                raise BudgetExceeded(
                    f"filter expression exceeds its budget of {self.limits.max_steps} steps"
                )
            if time.monotonic() > self.deadline:
                raise BudgetExceeded(
                    f"filter expression exceeds its budget of {self.limits.max_seconds} s"
                )
            self._next_check = max(self.steps - _CHECK_EVERY, 0)

    def charge_text(self, *texts: str) -> None:
        """Charge for walking strings (one step per 256 characters)."""
        size = 0
        for text in texts:
            size += len(text)
        self.charge(1 + (size >> 8))

    def check_string(self, text: str, what: str = "string") -> str:
        """``text`` if it is within the string cap."""
        if len(text) > self.limits.max_string:
            raise FilterExpressionError(
                f"{what} of {len(text)} characters exceeds the {self.limits.max_string} limit"
            )
        return text


class Scope:
    """One row as the evaluator sees it: case-insensitive columns plus the request's budget."""

    __slots__ = ("_row", "_upper", "budget")

    def __init__(self, row: Mapping[str, Any], budget: Budget) -> None:
        self._row = row
        self._upper: dict[str, str] | None = None
        self.budget = budget

    def get(self, name: str) -> Any:
        """Value of column ``name`` (``None`` is NULL)."""
        row = self._row
        if name in row:
            return row[name]
        if self._upper is None:
            self._upper = {key.upper(): key for key in row}
        key = self._upper.get(name.upper())
        if key is None:
            raise FilterExpressionError(f"unknown column {name!r}")
        return row[key]
