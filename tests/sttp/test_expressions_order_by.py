"""ORDER BY is bounded: a few keys, and every comparison of the sort charges the budget."""

from __future__ import annotations

import time

import pytest

from gridbind.sttp.expressions import BudgetExceeded, FilterExpressionError, Limits, select_rows
from gridbind.sttp.expressions.select import Table


def _table(rows: int) -> Table:
    return Table("T", ["A", "B"], [{"A": i % 7, "B": f"r{i}"} for i in range(rows)])


def test_more_than_sixteen_order_by_keys_are_refused():
    text = "FILTER T WHERE TRUE ORDER BY " + ", ".join(["A"] * 5000)
    start = time.monotonic()
    with pytest.raises(FilterExpressionError, match="ORDER BY columns"):
        select_rows([_table(2000)], text)
    assert time.monotonic() - start < 1.0
    sixteen = "FILTER T WHERE TRUE ORDER BY " + ", ".join(["A"] * 15 + ["B DESC"])
    rows = select_rows([_table(20)], sixteen)
    assert [r["B"] for r in rows[:3]] == ["r7", "r14", "r0"]


def test_the_sort_charges_each_comparison():
    table = _table(5000)
    # The scan alone fits the steps; sorting 5000 rows by two keys (~60000 comparisons) does not.
    limits = Limits(max_steps=40_000)
    assert len(select_rows([table], "FILTER T WHERE TRUE", limits=limits)) == 5000
    with pytest.raises(BudgetExceeded):
        select_rows([table], "FILTER T WHERE TRUE ORDER BY A, B", limits=limits)
