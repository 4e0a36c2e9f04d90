"""Hostile filter expressions end quickly in FilterExpressionError (issue 13), fuzzed too."""

from __future__ import annotations

import time
import uuid
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridbind.sttp.expressions import (
    Budget,
    Dialect,
    FilterExpressionError,
    Limits,
    Table,
    compile_expression,
    evaluate,
    select_rows,
    select_signal_ids,
)


def _table(count: int = 50) -> Table:
    rows = [
        {
            "SignalID": uuid.UUID(int=0x1000 + i),
            "ID": f"PPA:{i + 1}",
            "PointTag": f"PMU{i // 8}:{'FREQ' if i % 2 else 'VPHM'}",
            "SignalType": "FREQ" if i % 2 else "VPHM",
            "Adder": 0.0,
            "Multiplier": Decimal("1.5"),
            "Description": None if i % 5 == 0 else "a" * (i % 7),
        }
        for i in range(count)
    ]
    return Table("ActiveMeasurements", list(rows[0]), rows)


def _ends_quickly(fn, seconds: float = 1.0):
    start = time.monotonic()
    try:
        return fn()
    finally:
        assert time.monotonic() - start < seconds


def test_power_of_a_huge_exponent_is_an_error_not_20_seconds():
    with pytest.raises(FilterExpressionError, match="Power"):
        _ends_quickly(lambda: evaluate("POWER(10, 100000000)"))
    with pytest.raises(FilterExpressionError):
        _ends_quickly(lambda: evaluate("POWER(10.5, 100000000)"))
    assert evaluate("Power(2, 10)") == 1024
    assert evaluate("Power(2, 0.5)") == pytest.approx(Decimal(2).sqrt())


def test_nested_replace_is_capped_before_it_is_built():
    text = "'aaaaaaaaaa'"
    for _ in range(9):
        text = f"Replace({text}, 'a', 'aaaaaaaaaa')"
    with pytest.raises(FilterExpressionError, match="Replace result"):
        _ends_quickly(lambda: evaluate(text))
    concat = "'x'"
    for _ in range(20):
        concat = f"({concat} + {concat})"
    with pytest.raises(FilterExpressionError):
        _ends_quickly(lambda: evaluate(concat))


def test_bitwise_operators_compute_only_their_own_result():
    assert _ends_quickly(lambda: evaluate("1 & 4000000000")) == 0
    assert evaluate("1 & -1") == 1
    assert evaluate("6 | 1") == 7 and evaluate("6 ^ 3") == 5 and evaluate("6 XOR 3") == 5
    assert evaluate("1 << 62") == 1 << 62
    assert evaluate("1 << 63") == -(1 << 63)  # wraps to int64, as C# does
    with pytest.raises(FilterExpressionError, match="shift count"):
        evaluate("1 << 4000000000")
    with pytest.raises(FilterExpressionError, match="shift count"):
        evaluate("1 >> -1")


def test_integers_stay_64_bit():
    assert evaluate("9223372036854775807 + 1") == -(1 << 63)
    assert evaluate("-9223372036854775807 - 2") == (1 << 63) - 1
    big = "9" * 30
    assert evaluate(f"{big} + 1") == Decimal(big) + 1
    with pytest.raises(FilterExpressionError):
        evaluate(f"{big}E999998 * {big}E999998")  # Decimal exponent is bounded


def test_catastrophic_regex_runs_in_linear_time():
    evil = "a" * 50_000
    assert _ends_quickly(lambda: evaluate(f"REGEXMATCH('(a*)*b', '{evil}')")) is False
    assert _ends_quickly(lambda: evaluate(f"REGEXVAL('(a|aa)+$', '{evil}b')")) == ""
    assert evaluate("RegExVal('[0-9]+', 'PPA:42')") == "42"
    with pytest.raises(FilterExpressionError, match="unsupported regular expression"):
        evaluate(r"REGEXMATCH('(a)\1', 'aa')")
    with pytest.raises(FilterExpressionError, match="unsupported regular expression"):
        evaluate("REGEXMATCH('a(?=b)', 'ab')")
    with pytest.raises(FilterExpressionError, match="longer than"):
        evaluate(f"REGEXMATCH('{'a' * 2000}', 'a')")


def test_regex_over_every_row_of_a_table_is_bounded():
    table = _table(2000)
    for row in table.rows:
        row["Description"] = "a" * 30
    text = "FILTER ActiveMeasurements WHERE REGEXMATCH('(a*)*b', Description)"
    assert _ends_quickly(lambda: select_rows([table], text), 2.0) == []


def test_wrong_argument_types_are_filter_errors_not_attribute_errors():
    for text in (
        "SPLIT(1, 1, 0)",
        "SPLIT('a,b', '', 0)",
        "Replace(1, 'a', 'b')",
        "Contains(1, 'a')",
        "SubStr('abc', -1)",
        "SubStr('abc', 1, -1)",
        "DateAdd(#2024-01-01#, 9223372036854775807, 'Day')",
        "DateAdd(#2024-01-01#, 99999, 'Year')",
        "Convert('x', 'System.Int32')",
        "Convert(1e300, 'System.Int64')",
        "Round(1.5, 100)",
        "NthIndexOf('aaa', 'a', 'x')",
        "StrCmp(1, 2)",
        "MaxOf(1, #2024-01-01#)",
        "1 + #2024-01-01#",
        "Sqrt(-1)",
        "1 / 0",
        "1.0 % 0",
    ):
        with pytest.raises(FilterExpressionError):
            evaluate(text)


def test_step_budget_ends_a_request_across_rows():
    table = _table(500)
    limits = Limits(max_steps=2_000)
    text = "FILTER ActiveMeasurements WHERE Len(PointTag) + Len(ID) + 1 > 0"
    with pytest.raises(FilterExpressionError, match="budget of 2000 steps"):
        select_rows([table], text, limits=limits)
    assert len(select_rows([table], text)) == 500  # the default budget is ample


def test_deadline_ends_a_slow_request():
    table = _table(3000)
    clause = " + ".join(["Len(Replace(PointTag, 'P', 'QQ'))"] * 40)
    text = f"FILTER ActiveMeasurements WHERE {clause} > 0"
    limits = Limits(max_seconds=0.05, max_steps=10**9)
    with pytest.raises(FilterExpressionError, match="budget of 0.05 s"):
        _ends_quickly(lambda: select_signal_ids([table], text, limits=limits), 1.0)


def test_budget_is_shared_by_the_rows_of_one_request():
    where = compile_expression("Len(PointTag) > 0")
    budget = Budget(Limits(max_steps=300))
    with pytest.raises(FilterExpressionError, match="steps"):
        for row in _table(200).rows:
            where.matches(row, budget)


def test_length_and_nesting_limits():
    with pytest.raises(FilterExpressionError, match="longer than"):
        evaluate("1" + " + 1" * 20_000)
    with pytest.raises(FilterExpressionError, match="nested too deeply"):
        evaluate("(" * 60 + "1" + ")" * 60)
    with pytest.raises(FilterExpressionError, match="nested too deeply"):
        evaluate("- " * 60 + "1")
    with pytest.raises(FilterExpressionError, match="too long"):
        evaluate(" OR ".join(["True"] * 400))
    assert evaluate(" OR ".join(["False"] * 200) + " OR True") is True


@pytest.mark.parametrize("unit", ["a-", "1.", "a.b", "x!", "@1"])
def test_tokenizing_is_linear_in_the_expression_length(unit):
    # A measurement-key alternative of the token expression used to rescan the whole run of
    # acronym characters at every token inside it: 64 KiB of "a-" took seconds.
    text = unit * (60_000 // len(unit))
    with pytest.raises(FilterExpressionError):
        _ends_quickly(lambda: select_rows([_table(2)], text), 2.0)
    assert [r["ID"] for r in select_rows([_table(4)], "PPA:2;PPA:3; x-1.y:4")] == ["PPA:2", "PPA:3"]


# ----------------------------------------------------------------------------------- fuzzing

_COLUMNS = ["SignalID", "ID", "PointTag", "SignalType", "Adder", "Multiplier", "Description"]
_FUNCTIONS = {
    "Abs": 1,
    "Ceiling": 1,
    "Floor": 1,
    "Round": 2,
    "Sqrt": 1,
    "Power": 2,
    "Coalesce": 2,
    "IsNull": 2,
    "IIf": 3,
    "Convert": 2,
    "Contains": 3,
    "StartsWith": 2,
    "EndsWith": 2,
    "IndexOf": 2,
    "LastIndexOf": 2,
    "NthIndexOf": 3,
    "StrCount": 2,
    "StrCmp": 3,
    "Replace": 4,
    "Split": 3,
    "SubStr": 3,
    "Len": 1,
    "Lower": 1,
    "Upper": 1,
    "Trim": 1,
    "Reverse": 1,
    "RegExMatch": 2,
    "RegExVal": 2,
    "IsDate": 1,
    "IsInteger": 1,
    "IsGuid": 1,
    "IsNumeric": 1,
    "MaxOf": 3,
    "MinOf": 2,
    "DateAdd": 3,
    "DateDiff": 3,
    "DatePart": 2,
    "UtcNow": 0,
}
_BINARY = ["+", "-", "*", "/", "%", "<<", ">>", "&", "|", "^", "XOR", "AND", "OR", "&&", "||"]
_BINARY += ["=", "==", "===", "!=", "!==", "<>", "<", "<=", ">", ">=", "LIKE", "NOT LIKE"]

_literals = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.decimals(allow_nan=False, allow_infinity=False, places=3).map(lambda d: str(abs(d))),
    st.sampled_from(
        [
            "NULL",
            "True",
            "false",
            "'VPHM'",
            "'%PH%'",
            "'*'",
            "'(a*)*b'",
            "'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'",
            "'System.Int32'",
            "'System.Decimal'",
            "'Month'",
            "'Day'",
            "#2024-12-31#",
            "{00000000-0000-0000-0000-000000001001}",
            "0xFFFFFFFFFFFFFFFF",
            "4000000000",
            "100000000",
            "-1",
        ]
    ),
    st.text(alphabet="ab%*().,:'", max_size=12).map(lambda s: "'" + s.replace("'", "''") + "'"),
    st.sampled_from(_COLUMNS),
)


def _ast(leaves):
    def extend(children):
        unary = st.tuples(st.sampled_from(["-", "NOT ", "~", "!"]), children).map(
            lambda t: f"{t[0]}({t[1]})"
        )
        binary = st.tuples(children, st.sampled_from(_BINARY), children).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"
        )
        suffix = st.tuples(children, st.sampled_from(["IS NULL", "IS NOT NULL"])).map(
            lambda t: f"({t[0]} {t[1]})"
        )
        in_list = st.tuples(children, st.lists(children, min_size=1, max_size=3)).map(
            lambda t: f"({t[0]} IN ({', '.join(t[1])}))"
        )
        call = st.sampled_from(sorted(_FUNCTIONS)).flatmap(
            lambda name: st.lists(
                children, min_size=_FUNCTIONS[name], max_size=_FUNCTIONS[name]
            ).map(lambda args: f"{name}({', '.join(args)})")
        )
        return st.one_of(unary, binary, suffix, in_list, call)

    return st.recursive(leaves, extend, max_leaves=12)


_FUZZ_TABLE = _table(6)
_FUZZ_LIMITS = Limits(max_seconds=1.0)


def _expected(exc: FilterExpressionError) -> None:
    # "cannot evaluate" is the evaluator's safety net for Python errors it did not foresee:
    # still the documented type, but the fuzzer treats it as a bug to fix.
    assert not str(exc).startswith("cannot evaluate"), exc


def _select_bounded(text: str, dialect: Dialect) -> None:
    start = time.monotonic()
    try:
        select_signal_ids([_FUZZ_TABLE], text, dialect=dialect, limits=_FUZZ_LIMITS)
    except FilterExpressionError as exc:
        _expected(exc)
    assert time.monotonic() - start < 3.0, text


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_ast(_literals), st.sampled_from(list(Dialect)))
def test_fuzzed_expression_trees_raise_only_filter_expression_error(tree, dialect):
    _select_bounded(f"FILTER ActiveMeasurements WHERE {tree}", dialect)
    start = time.monotonic()
    try:
        evaluate(tree, _FUZZ_TABLE.rows[1], dialect=dialect, limits=_FUZZ_LIMITS)
    except FilterExpressionError as exc:
        _expected(exc)
    assert time.monotonic() - start < 3.0, tree


_TOKENS = [
    "FILTER",
    "TOP",
    "5",
    "-1",
    "ActiveMeasurements",
    "WHERE",
    "ORDER",
    "BY",
    "DESC",
    "BINARY",
    "IN",
    "IS",
    "NOT",
    "NULL",
    "LIKE",
    "(",
    ")",
    ",",
    ";",
    "'x'",
    "'%a'",
    "PPA:1",
    '"PMU0:FREQ"',
    "#2024-01-01#",
    "{00000000-0000-0000-0000-000000001001}",
    "1.5e3",
    "0x7F",
    "[PointTag]",
    "`ID`",
    "/* c */",
    "-- c\n",
    *_BINARY,
    *_COLUMNS,
    *(name + "(" for name in _FUNCTIONS),
]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_TOKENS), max_size=25), st.sampled_from(list(Dialect)))
def test_fuzzed_token_soup_raises_only_filter_expression_error(tokens, dialect):
    _select_bounded(" ".join(tokens), dialect)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_fuzzed_unicode_text_raises_only_filter_expression_error(text):
    _select_bounded(text, Dialect.DEPLOYED)
