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


def _big_source() -> str:
    big = "'a'"
    for _ in range(4):  # 65536 characters, built by the expression itself
        big = f"Replace({big}, 'a', '{'a' * 16}')"
    return big


@pytest.mark.parametrize(
    "function", ["Replace({big}, '{probe}', 'x', true)", "Split({big}, '{probe}', 0, true)"]
)
def test_case_insensitive_replace_and_split_are_linear(function):
    # The reviewer's case: a case-insensitive regular expression tried the 1500-character probe
    # at each of 65536 positions (0.5 s per call, 3 s for a 2 KB expression).
    call = function.format(big=_big_source(), probe="a" * 1500 + "b")
    text = f"Len({call}) + Len({call}) + Len({call}) + Len({call})"
    start = time.monotonic()
    assert compile_expression(text).evaluate() == 4 * 65536
    assert time.monotonic() - start < 0.5


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Replace('aXbxc', 'x', '-', true)", "a-b-c"),
        ("Replace('aXbxc', 'x', '-')", "aXb-c"),
        ("Replace('xxx', 'XX', 'y', true)", "yx"),
        ("Replace('Straße STRASSE', 'sse', '_', true)", "Straße STRA_"),
        ("Replace('İx İX', 'x', '-', true)", "İ- İ-"),
        ("Split('a,B,c', 'b', 1, true)", ",c"),
        ("Split('aXbxc', 'x', 2, true)", "c"),
        ("Split('aXbxc', 'x', 0, true)", "a"),
        ("Split('aXbxc', 'x', 3, true)", ""),
        ("Split('abc', 'x', 0, true)", "abc"),
        ("Split('aXbxc', 'x', 1)", "c"),
    ],
)
def test_case_insensitive_replace_and_split_results(text, expected):
    assert compile_expression(text).evaluate() == expected
