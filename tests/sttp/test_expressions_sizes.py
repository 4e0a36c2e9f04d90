"""Sizes a filter expression can make the evaluator build are bounded before they are built."""

from __future__ import annotations

import time

import pytest

from gridbind.sttp.expressions import FilterExpressionError, Limits, compile_expression, parse
from gridbind.sttp.expressions.values import to_text


@pytest.mark.parametrize(
    "text",
    [
        "Len('' + 1e99999999) > 0",  # 100 million characters before the fix
        "Len('' + 1e999999) > 0",  # within the context's exponent, past the string cap
        "Len(1e999999 + '') > 0",
        "Len(Convert(1e999999, 'System.String')) > 0",
    ],
)
def test_text_of_a_huge_decimal_is_refused_before_it_is_built(text):
    start = time.monotonic()
    with pytest.raises(FilterExpressionError):
        compile_expression(text).evaluate()
    assert time.monotonic() - start < 0.5


def test_decimal_literals_are_created_in_the_bounded_context():
    with pytest.raises(FilterExpressionError, match="does not fit a decimal"):
        parse("FILTER T WHERE A = 1e999999999")
    # 28 significant digits, as .NET's decimal
    parse("FILTER T WHERE A = 1.23456789012345678901234567890123")
    assert compile_expression(
        "1.23456789012345678901234567890123 = 1.234567890123456789012345679"
    ).evaluate()
    value = compile_expression("1.23456789012345678901234567890123").evaluate()
    assert len(value.as_tuple().digits) == 28


def test_concatenation_cap_is_checked_on_both_operands_before_building():
    limits = Limits(max_string=100)
    long = "'" + "x" * 90 + "'"
    with pytest.raises(FilterExpressionError, match="concatenation"):
        compile_expression(f"'' + {long} + {long}", limits=limits).evaluate()
    with pytest.raises(FilterExpressionError, match="concatenation"):
        compile_expression(f"{long} + ({long} + '')", limits=limits).evaluate()
    assert compile_expression(f"'' + {long}", limits=limits).evaluate() == "x" * 90


def test_to_text_of_decimals():
    from decimal import Decimal

    assert to_text(Decimal("1E+2")) == "100"
    assert to_text(Decimal("-0.001")) == "-0.001"
    with pytest.raises(FilterExpressionError):
        to_text(Decimal("1E+200"), max_size=100)
    assert to_text(Decimal("NaN")) == "NaN"
