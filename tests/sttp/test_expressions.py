"""Filter-expression parser/evaluator: semantics, errors, and agreement with sttpapi's evaluator."""

from __future__ import annotations

import importlib.util
import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridbind.sttp.expressions import (
    Dialect,
    FilterExpressionError,
    FilterStatement,
    IdentifierStatement,
    Table,
    compile_expression,
    evaluate,
    parse,
    select_rows,
    select_signal_ids,
)

from conftest import require

SIGNAL_TYPES = ["FREQ", "DFDT", "VPHM", "VPHA", "IPHM", "IPHA", "DIGI", "ALOG"]


def _rows(count: int = 40) -> list[dict]:
    rows = []
    for i in range(count):
        rows.append(
            {
                "SignalID": uuid.UUID(int=0x1000 + i),
                "ID": f"PPA:{i + 1}",
                "PointTag": f"GPA_PMU{i // 8}:{SIGNAL_TYPES[i % 8]}",
                "SignalType": SIGNAL_TYPES[i % 8],
                "Device": f"PMU{i // 8}",
                "FramesPerSecond": 30 if i % 3 else 60,
                "Adder": 0.0,
                "Multiplier": 1.0 + i / 10,
                "Description": None if i % 5 == 0 else f"Signal {i}",
                "UpdatedOn": datetime(2024, 1, 1, 0, 0, i % 60, tzinfo=UTC),
            }
        )
    return rows


@pytest.fixture(scope="module")
def table() -> Table:
    rows = _rows()
    return Table("ActiveMeasurements", list(rows[0]), rows)


def ids(rows) -> list[str]:
    return [row["ID"] for row in rows]


def test_filter_where_string_equality_ignores_case(table):
    rows = select_rows([table], "FILTER ActiveMeasurements WHERE SignalType = 'freq'")
    assert ids(rows) == ["PPA:1", "PPA:9", "PPA:17", "PPA:25", "PPA:33"]
    exact = select_rows([table], "FILTER ActiveMeasurements WHERE SignalType === 'freq'")
    assert exact == []


def test_top_order_by_like_in_and_null(table):
    rows = select_rows(
        [table],
        "FILTER TOP 3 ActiveMeasurements WHERE SignalType LIKE 'VPH%' ORDER BY ID DESC",
    )
    # TOP limits the scan (first three VPH rows), ORDER BY sorts them: sttpapi's semantics.
    assert ids(rows) == ["PPA:4", "PPA:3", "PPA:11"]
    rows = select_rows(
        [table],
        "FILTER ActiveMeasurements WHERE Device IN ('pmu1') AND NOT SignalType IN ('FREQ', 'DFDT')",
    )
    assert ids(rows) == [f"PPA:{i}" for i in range(11, 17)]
    rows = select_rows([table], "FILTER ActiveMeasurements WHERE Description IS NULL")
    assert ids(rows) == [
        "PPA:1",
        "PPA:6",
        "PPA:11",
        "PPA:16",
        "PPA:21",
        "PPA:26",
        "PPA:31",
        "PPA:36",
    ]
    assert select_rows([table], "FILTER TOP 0 ActiveMeasurements WHERE True") == []
    assert len(select_rows([table], "FILTER TOP -1 ActiveMeasurements WHERE True")) == 40


def test_identifiers_and_statement_union_without_duplicates(table):
    guid = table.rows[4]["SignalID"]
    text = f"PPA:2; \"GPA_PMU0:VPHM\"; {{{guid}}}; FILTER ActiveMeasurements WHERE ID = 'PPA:2'"
    assert ids(select_rows([table], text)) == ["PPA:2", "PPA:3", "PPA:5"]
    stray = uuid.UUID(int=7)
    assert select_signal_ids([table], f"{stray}; PPA:1") == [stray, table.rows[0]["SignalID"]]
    statements = parse(f"{guid}; FILTER TOP 2 T WHERE A > 1 ORDER BY B")
    assert isinstance(statements[0], IdentifierStatement) and statements[0].value == guid
    assert isinstance(statements[1], FilterStatement) and statements[1].top == 2


def test_operators_functions_and_nulls():
    sql = Dialect.SQL
    assert evaluate("1 + 2 * 3", dialect=sql) == 7
    assert evaluate("1 + 2 * 3") == 9  # the deployed grammar: + - * / on one level
    assert evaluate("(1 + 2) * 3 % 4") == 1
    # Shifts and bitwise operators share one precedence level, left to right, as in the grammar.
    assert evaluate("0x10 | 1 << 2") == 68
    assert evaluate("7 / 2") == 3 and evaluate("7.0 / 2") == 3.5
    assert evaluate("'a' + 'b'") == "ab"
    assert evaluate("NULL = 1") is None and evaluate("NULL IS NULL") is True
    assert evaluate("NULL AND False", dialect=sql) is False
    assert evaluate("NULL OR True", dialect=sql) is True
    assert evaluate("NULL AND False") is None and evaluate("NULL OR True") is None
    assert evaluate("Coalesce(NULL, NULL, 3)") == 3
    assert evaluate("IIf(Len('abc') = 3, Upper('x'), 'no')") == "X"
    assert evaluate("Contains('Hello', 'ELL')") is False
    assert evaluate("Contains('Hello', 'ELL', true)") is True
    assert evaluate("RegExMatch('^V', 'VPHM')") is True
    assert evaluate("SubStr('abcdef', 2, 3)") == "cde"
    assert evaluate("Replace('aXbx', 'x', '-', true)") == "a-b-"
    assert evaluate("Convert('42', 'System.Int32') + 1") == 43
    assert evaluate("DatePart(#2024-03-05T01:02:03Z#, 'Month')") == 3
    assert evaluate("DateDiff(#2024-01-01#, #2024-01-03#, 'Day')") == 2
    assert evaluate("MaxOf(3, 9, 4)") == 9 and evaluate("MinOf(3, 9, 4)") == 3
    assert evaluate("IsGuid('{00000000-0000-0000-0000-000000000001}')") is True
    assert evaluate(
        "'00000000-0000-0000-0000-000000000001' = {00000000-0000-0000-0000-000000000001}"
    )
    assert evaluate("-- comment\n 1 /* block */ + 1") == 2


def test_access_rule_style_expression():
    rule = compile_expression("DataType='BOOL'")
    assert rule.columns == ("DataType",)
    assert rule.matches({"datatype": "bool"})
    assert not rule.matches({"DataType": "FLOAT"})
    assert not rule.matches({"DataType": None})
    with pytest.raises(FilterExpressionError, match="not a boolean"):
        compile_expression("1 + 1").matches({})


@pytest.mark.parametrize(
    "text,message",
    [
        ("", "empty"),
        ("FILTER ActiveMeasurements WHERE", "expected a value"),
        ("FILTER ActiveMeasurements SignalType = 1", "expected WHERE"),
        ("FILTER ActiveMeasurements WHERE Nope = 1", "unknown column"),
        ("FILTER Nope WHERE 1 = 1", "unknown table"),
        ("FILTER ActiveMeasurements WHERE Foo(1)", "unknown function"),
        ("FILTER ActiveMeasurements WHERE Len(1, 2)", "takes 1 arguments"),
        ("FILTER ActiveMeasurements WHERE 1 / 0 = 1", "division by zero"),
        ("FILTER ActiveMeasurements WHERE SignalType LIKE 'a*b'", "wildcards"),
        ("FILTER ActiveMeasurements WHERE " + "(" * 300 + "1", "nested too deeply"),
        ("FILTER ActiveMeasurements WHERE SignalType = 'x' $", "unexpected character"),
        ("FILTER ActiveMeasurements WHERE " + "1 + " * 3000 + "1 = 1", "too long"),
        ("FILTER ActiveMeasurements WHERE 'x' " * 5000, "longer than"),
    ],
)
def test_bad_expressions_give_clear_errors(table, text, message):
    with pytest.raises(FilterExpressionError, match=message):
        select_rows([table], text)


@settings(max_examples=300, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from(list("FILTER WHEROPTAcivMsum=<>!'\"();,%*-+0123456789#{}:[]`.")),
        max_size=60,
    )
)
def test_fuzzed_text_only_raises_filter_expression_error(text):
    rows = _rows(3)
    table = Table("ActiveMeasurements", list(rows[0]), rows)
    try:
        select_rows([table], text)
    except FilterExpressionError:
        pass


HAVE_STTPAPI = importlib.util.find_spec("sttp") is not None


def _sttpapi_select(rows: list[dict], text: str) -> list[str]:

    from sttp.data.dataset import DataSet
    from sttp.data.datatype import DataType
    from sttp.data.filterexpressionparser import FilterExpressionParser

    dataset = DataSet()
    table = dataset.create_table("ActiveMeasurements")
    types = {
        "SignalID": DataType.GUID,
        "ID": DataType.STRING,
        "PointTag": DataType.STRING,
        "SignalType": DataType.STRING,
        "Device": DataType.STRING,
        "FramesPerSecond": DataType.INT32,
        "Adder": DataType.DOUBLE,
        "Multiplier": DataType.DOUBLE,
        "Description": DataType.STRING,
        "UpdatedOn": DataType.DATETIME,
    }
    for name, kind in types.items():
        table.add_column(table.create_column(name, kind))
    for row in rows:
        out = table.create_row()
        for index, name in enumerate(types):
            out[index] = row[name]
        table.add_row(out)
    dataset.add_table(table)
    selected, err = FilterExpressionParser.select_datarows(
        dataset, text, "ActiveMeasurements", None, True
    )
    assert err is None, err
    return [row[1] for row in selected]


@pytest.mark.sttpapi
@pytest.mark.parametrize(
    "text",
    [
        "FILTER ActiveMeasurements WHERE SignalType='FREQ'",
        "FILTER TOP 5 ActiveMeasurements WHERE SignalType LIKE '%PH%'",
        "FILTER ActiveMeasurements WHERE FramesPerSecond > 30 OR Device = 'pmu2'",
        "FILTER ActiveMeasurements WHERE Multiplier * 10 >= 25 AND Multiplier < 3.05",
        "FILTER ActiveMeasurements WHERE SignalType IN ('VPHM', 'IPHA') ORDER BY PointTag DESC",
        "FILTER ActiveMeasurements WHERE Len(PointTag) > 12 AND NOT SignalType LIKE 'D*'",
        "FILTER ActiveMeasurements WHERE Description IS NOT NULL AND Contains(Description, '1')",
        "PPA:4; PPA:7; FILTER ActiveMeasurements WHERE SignalType = 'DIGI'",
    ],
)
def test_agrees_with_sttpapi(table, text):
    require(HAVE_STTPAPI, "sttpapi")
    rows = [dict(row, Description=row["Description"] or None) for row in table.rows]
    assert ids(select_rows([table], text)) == _sttpapi_select(rows, text)
