"""Differential test: gridbind selects the rows sttpapi's engine selects, in the same order.

A seeded generator writes many realistic filters over a realistic ActiveMeasurements table
(NULLs, mixed types, precedence without parentheses, TOP, ORDER BY, functions) and compares the
selected IDs with ``sttpapi``'s filter-expression engine. The cases where sttpapi is known to be
wrong (``docs/sttpapi-defects.md``) are kept out of the generator and pinned by tests of their
own below, so a change in either engine shows up.
"""

from __future__ import annotations

import importlib.util
import random
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from gridbind.sttp.expressions import (
    FilterExpressionError,
    Table,
    evaluate,
    select_rows,
    select_signal_ids,
)

from conftest import require

HAVE_STTPAPI = importlib.util.find_spec("sttp") is not None

# column -> sttpapi DataType name
COLUMNS = {
    "SignalID": "GUID",
    "ID": "STRING",
    "PointTag": "STRING",
    "SignalReference": "STRING",
    "Device": "STRING",
    "SignalType": "STRING",
    "Phase": "STRING",
    "Company": "STRING",
    "Description": "STRING",
    "Internal": "BOOLEAN",
    "FramesPerSecond": "INT32",
    "PhasorID": "INT32",
    "Adder": "DOUBLE",
    "Multiplier": "DOUBLE",
    "Longitude": "DECIMAL",
    "UpdatedOn": "DATETIME",
}
SIGNAL_TYPES = ["FREQ", "DFDT", "VPHM", "VPHA", "IPHM", "IPHA", "DIGI", "ALOG", "STAT", "FLAG"]
COMPANIES = ["GPA", "TVA", "Ameren", "dominion", None]
PHASES = ["A", "B", "C", "+", None]
BASE = datetime(2024, 3, 1, 12, 0, 0)


def _rows(count: int = 48, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        kind = SIGNAL_TYPES[rng.randrange(len(SIGNAL_TYPES))]
        device = f"PMU{rng.randrange(6)}_{rng.choice(['BUS', 'LINE'])}{rng.randrange(3)}"
        phasor = kind[:2] in ("VP", "IP")
        rows.append(
            {
                "SignalID": uuid.UUID(int=rng.getrandbits(128)),
                "ID": f"PPA:{i + 1}",
                "PointTag": f"{device}.{kind}{i}",  # the deployed grammar has no ':' in "tags"
                "SignalReference": f"{device}-{kind[:2]}{i % 4}",
                "Device": device,
                "SignalType": kind,
                "Phase": rng.choice(PHASES) if phasor else None,
                "Company": rng.choice(COMPANIES),
                "Description": None if rng.random() < 0.25 else f"{kind} of {device} #{i}",
                "Internal": rng.random() < 0.7,
                "FramesPerSecond": rng.choice([30, 60, 120]),
                "PhasorID": rng.randrange(1, 9) if phasor else None,
                "Adder": rng.choice([0.0, 0.5, -1.25]),
                "Multiplier": rng.choice([1.0, 1.5, 0.001, 100.0]),
                "Longitude": Decimal(f"-{rng.randrange(70, 120)}.{rng.randrange(1000):03d}"),
                "UpdatedOn": BASE + timedelta(days=rng.randrange(-400, 400), seconds=i * 37),
            }
        )
    return rows


ROWS = _rows()


def _gridbind_table() -> Table:
    rows = []
    for row in ROWS:
        copy = dict(row)
        copy["UpdatedOn"] = row["UpdatedOn"].replace(tzinfo=UTC)
        rows.append(copy)
    return Table("ActiveMeasurements", list(COLUMNS), rows)


TABLE = _gridbind_table()


def _sttpapi_dataset() -> Any:
    from sttp.data.dataset import DataSet
    from sttp.data.datatype import DataType

    dataset = DataSet()
    table = dataset.create_table("ActiveMeasurements")
    for name, kind in COLUMNS.items():
        table.add_column(table.create_column(name, getattr(DataType, kind)))
    for row in ROWS:
        out = table.create_row()
        for index, name in enumerate(COLUMNS):
            out[index] = row[name]
        table.add_row(out)
    dataset.add_table(table)
    return dataset


@pytest.fixture(scope="module")
def sttpapi_dataset():
    require(HAVE_STTPAPI, "sttpapi")
    return _sttpapi_dataset()


def sttpapi_select(dataset: Any, text: str) -> list[str] | None:
    """IDs selected by sttpapi, or ``None`` when its engine refuses the expression."""
    from sttp.data.filterexpressionparser import FilterExpressionParser

    try:
        rows, err = FilterExpressionParser.select_datarows(
            dataset, text, "ActiveMeasurements", None, True
        )
    except Exception:  # its engine raises as well as returns errors
        return None
    if err is not None:
        return None
    return [row[1] for row in rows]


def gridbind_select(text: str) -> list[str] | None:
    try:
        return [row["ID"] for row in select_rows([TABLE], text)]
    except FilterExpressionError:
        return None


# ---------------------------------------------------------------------------- the generator

STRING_COLUMNS = ["PointTag", "SignalReference", "Device", "SignalType", "Phase", "Company"]
STRING_COLUMNS += ["Description", "ID"]
NUMBER_COLUMNS = ["FramesPerSecond", "PhasorID", "Adder", "Multiplier", "Longitude"]


class Generator:
    """Seeded random filters over :data:`ROWS` (values drawn from the table itself)."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def pick(self, items):
        return items[self.rng.randrange(len(items))]

    def text_value(self, column: str) -> str:
        values = [row[column] for row in ROWS if row[column] is not None]
        value = self.pick(values)
        if self.rng.random() < 0.3:
            value = value.lower() if self.rng.random() < 0.5 else value.upper()
        return value

    @staticmethod
    def quote(text: str) -> str:
        return "'" + text.replace("'", "''") + "'"

    def number(self) -> str:
        return self.pick(["0", "1", "2", "3", "30", "45", "60", "-1", "0.5", "1.5", "-95.5"])

    def string_predicate(self) -> str:
        column = self.pick(STRING_COLUMNS)
        value = self.text_value(column)
        choice = self.rng.randrange(6)
        if choice == 0:
            op = self.pick(["=", "==", "===", "!=", "!==", "<>", "<", ">", "<=", ">="])
            return f"{column} {op} {self.quote(value)}"
        if choice == 1:
            cut = self.rng.randrange(1, max(2, len(value)))
            form = self.rng.randrange(4)
            wildcard = self.pick(["%", "*"])
            pattern = {
                0: value[:cut] + wildcard,
                1: wildcard + value[cut:],
                2: wildcard + value[cut // 2 : cut] + wildcard,
                3: value,  # no wildcard: never matches in every deployed engine
            }[form]
            binary = " BINARY" if self.rng.random() < 0.2 else ""
            return f"{column} LIKE{binary} {self.quote(pattern)}"
        if choice == 2:
            values = ", ".join(self.quote(self.text_value(column)) for _ in range(3))
            negate = "NOT " if self.rng.random() < 0.3 else ""
            return f"{column} {negate}IN ({values})"
        if choice == 3:
            return f"{column} IS {self.pick(['', 'NOT '])}NULL"
        if choice == 4:
            function = self.pick(
                [
                    f"Len({column}) > {self.rng.randrange(3, 20)}",
                    f"Contains({column}, {self.quote(value[:3])}, true)",
                    f"StartsWith({column}, {self.quote(value[:2])})",
                    f"EndsWith({column}, {self.quote(value[-2:])}, true)",
                    f"IndexOf({column}, {self.quote(value[1:3])}) >= 1",
                    f"Upper({column}) = {self.quote(value.upper())}",
                    f"Lower(Trim({column})) = {self.quote(value.lower())}",
                    f"SubStr({column}, 0, 3) = {self.quote(value[:3])}",
                    f"RegExMatch('^[A-Z]+[0-9]', {column})",
                    f"Coalesce({column}, 'none') = 'none'",
                    f"IsNull({column}, 'n/a') <> 'n/a'",
                    f"Replace({column}, 'PMU', 'X') LIKE 'X%'",
                    f"StrCount({column}, 'U') > 0",
                    f"StrCmp({column}, {self.quote(value)}) < 0",
                    f"Reverse({column}) LIKE {self.quote(value[::-1][:2] + '%')}",
                ]
            )
            return function
        return f"{self.quote(value)} = {column}"

    def number_expression(self) -> str:
        column = self.pick(NUMBER_COLUMNS)
        choice = self.rng.randrange(7)
        if choice == 0:
            return column
        if choice == 1:
            op1, op2 = self.pick(["+", "-", "*"]), self.pick(["+", "-", "*", "/"])
            return f"{column} {op1} {self.number()} {op2} {self.pick(['2', '3', '1.5'])}"
        if choice == 2:
            return f"{self.pick(['Abs', 'Floor', 'Ceiling', 'Round'])}({column})"
        if choice == 3:
            return f"Round({column} * {self.pick(['3', '0.5'])})"
        if choice == 4:
            return f"Coalesce({column}, {self.number()})"
        if choice == 5:
            return f"IIf({column} > {self.number()}, 1, 0)"
        return f"MaxOf({column}, {self.number()})"

    def number_predicate(self) -> str:
        op = self.pick(["=", "!=", "<", "<=", ">", ">="])
        return f"{self.number_expression()} {op} {self.number()}"

    def other_predicate(self) -> str:
        return self.pick(
            [
                "Internal",
                "Internal = True",
                "NOT Internal",
                "Internal <> False",
                f"FramesPerSecond IN (30, {self.pick(['60', '120', '45'])})",
                f"PhasorID IN ({self.rng.randrange(1, 9)}, {self.rng.randrange(1, 9)})",
                f"DatePart(UpdatedOn, 'Month') = {self.rng.randrange(1, 13)}",
                f"DatePart(UpdatedOn, 'Year') >= {self.pick(['2023', '2024', '2025'])}",
                f"UpdatedOn > #{self.pick(['2023-06-01', '2024-03-01', '2024-12-31'])}#",
                f"DateAdd(UpdatedOn, {self.pick(['-1', '1', '12'])}, 'Month') > #2024-06-01#",
                # DateDiff is left out: the deployed engines disagree (see the test below).
                "Convert(FramesPerSecond, 'System.String') = '30'",
                f"IsNumeric(Phase) OR Len(Coalesce(Phase, '')) = {self.rng.randrange(2)}",
                "SignalID = SignalID",
                f"SignalID = {{{self.pick(ROWS)['SignalID']}}}",
            ]
        )

    def predicate(self) -> str:
        kind = self.rng.random()
        if kind < 0.45:
            return self.string_predicate()
        if kind < 0.75:
            return self.number_predicate()
        return self.other_predicate()

    def condition(self, depth: int = 0) -> str:
        count = self.rng.randrange(1, 4 if depth == 0 else 3)
        parts = []
        for _ in range(count):
            if depth < 2 and self.rng.random() < 0.2:
                part = f"({self.condition(depth + 1)})"
            else:
                part = self.predicate()
            if self.rng.random() < 0.15:
                part = f"NOT {part}" if part.startswith("(") else f"NOT ({part})"
            parts.append(part)
        text = parts[0]
        for part in parts[1:]:
            text += f" {self.pick(['AND', 'OR', '&&', '||', 'and', 'or'])} {part}"
        return text

    def filter(self) -> str:
        top = f"TOP {self.rng.randrange(0, 12)} " if self.rng.random() < 0.2 else ""
        text = f"FILTER {top}ActiveMeasurements WHERE {self.condition()}"
        if self.rng.random() < 0.3:
            terms = []
            for column in self.rng.sample(["PointTag", "ID", "SignalType", "Device"], 2):
                terms.append(column + self.pick(["", " ASC", " DESC"]))
            text += " ORDER BY " + ", ".join(terms)
        return text


CASES = 260


@pytest.mark.sttpapi
@pytest.mark.timeout(120)
def test_generated_filters_select_what_sttpapi_selects(sttpapi_dataset):
    generator = Generator(seed=2664)
    compared = 0
    refused_by_sttpapi = []
    for _ in range(CASES):
        text = generator.filter()
        expected = sttpapi_select(sttpapi_dataset, text)
        actual = gridbind_select(text)
        if expected is None:
            refused_by_sttpapi.append(text)
            continue
        assert actual == expected, text
        compared += 1
    # Most generated filters must be comparable, or the test proves little.
    assert compared >= CASES * 0.8, refused_by_sttpapi[:5]


def sttpapi_signal_ids(dataset: Any, text: str) -> list[uuid.UUID] | None:
    """Signal IDs selected by sttpapi's parser (statement lists and identifiers included)."""
    from sttp.data.filterexpressionparser import FilterExpressionParser

    parser, err = FilterExpressionParser.from_dataset(
        dataset, text, "ActiveMeasurements", None, True
    )
    if err is not None:
        return None
    parser.track_filteredrows = False
    parser.track_filteredsignalids = True
    try:
        err = parser.evaluate(True, True)
    except Exception:
        return None
    return None if err is not None else list(parser.filtered_signalids)


@pytest.mark.sttpapi
@pytest.mark.timeout(60)
def test_generated_statement_lists_select_the_same_signals_in_order(sttpapi_dataset):
    generator = Generator(seed=61850)
    compared = 0
    for _ in range(60):
        statements = []
        for _ in range(generator.rng.randrange(1, 4)):
            row = generator.pick(ROWS)
            statements.append(
                generator.pick(
                    [
                        row["ID"],
                        f'"{row["PointTag"]}"',
                        f"{{{row['SignalID']}}}",
                        str(row["SignalID"]),
                        generator.filter(),
                    ]
                )
            )
        text = "; ".join(statements)
        expected = sttpapi_signal_ids(sttpapi_dataset, text)
        if expected is None:
            continue
        assert select_signal_ids([TABLE], text) == expected, text
        compared += 1
    assert compared >= 45


def _plain(value: Any) -> Any:
    """sttpapi's numpy scalars as Python values."""
    return value.item() if hasattr(value, "item") else value


# Value-level agreement on each difference issue 13 found, and on neighbours of it.
AGREEING_VALUES = [
    "1 + 2 * 3",
    "10 - 2 - 3",
    "2 * 3 + 4 * 5",
    "1 | 2 << 1",
    "1 + 1 << 2",
    "True OR False AND False",
    "False AND False OR True",
    "NOT False AND False",
    "NULL AND False",
    "False AND NULL",
    "NULL OR True",
    "True OR NULL",
    "NOT NULL",
    "NULL = NULL",
    "1 = 1 = True",
    "True = 1 < 2",
    "True = 2",
    "1.5 > True",
    "1 = 1 IS NULL",
    "True = 2 IN (1, 2)",
    "NULL IS NULL IS NULL",
    "1 <> 2 <> True",
    "False OR NOT False AND False",
    "1 + 2 << 1 + 1",
    "2 << 1 * 3",
    "5 % 3 * 2",
    "8 / 2 / 2",
    "~1 & 3",
    "'abc' LIKE 'abc'",
    "'abc' LIKE 'ABC%'",
    "'abc' LIKE BINARY 'ABC%'",
    "'abc' LIKE '%C'",
    "'abc' LIKE '*'",
    "Floor(1.5)",
    "Floor(-1.5)",
    "Ceiling(1.25)",
    "Round(2.5)",
    "Round(3.5)",
    "Floor(Convert(1.5, 'System.Decimal'))",
    "Ceiling(Convert(-1.5, 'System.Decimal'))",
    "Round(Convert(2.675, 'System.Decimal'))",
    "DateAdd(#2024-12-31#, -1, 'Month')",
    "DateAdd(#2024-01-31#, 1, 'Month')",
    "DateAdd(#2024-02-29#, 1, 'Year')",
    "DateAdd(#2024-03-31#, -13, 'Month')",
    "7 / 2",
    "-7 / 2",
    "1 & 4000000000",
    "1 & -1",
    "6 XOR 3",
    "Power(2, 10)",
    "1 IN (NULL, 1)",
    "NULL IN (1)",
    "'a' + 1",
    "Len('abc') + 1",
    "IIf(1 > 2, 'x', 'y')",
    "Coalesce(NULL, 'z')",
    "SubStr('abcdef', 2, 3)",
    "IndexOf('abcabc', 'c')",
    "LastIndexOf('abcabc', 'c')",
    "NthIndexOf('abcabc', 'c', 1)",
    "StrCount('abcabc', 'bc')",
    "StrCmp('a', 'B', true)",
    "Replace('aXbx', 'x', '-', true)",
    "Split('a,b,c', ',', 1)",
    "Reverse('abc')",
    "RegExVal('[0-9]+', 'PPA:42')",
    "RegExMatch('^V', 'VPHM')",
    "IsNumeric('1.5')",
    "IsInteger('15')",
    "IsGuid('{00000000-0000-0000-0000-000000000001}')",
    "MaxOf(3, 9, 4)",
    "MinOf(3.5, 9, 4)",
]


@pytest.mark.sttpapi
@pytest.mark.parametrize("text", AGREEING_VALUES)
def test_values_agree_with_sttpapi(sttpapi_dataset, text):
    from sttp.data.filterexpressionparser import FilterExpressionParser

    value, err = FilterExpressionParser.evaluate_expression(text, True)
    assert err is None, err
    expected = _plain(value.value)
    actual = evaluate(text)
    if isinstance(expected, datetime):
        actual = actual.replace(tzinfo=None)
    assert (
        actual == expected
        and type(actual) is type(expected)
        or (
            # sttpapi's Int32 / Int64 are both Python ints here; Decimal vs int only by type name
            isinstance(actual, int)
            and isinstance(expected, int)
            and actual == expected
        )
    ), (actual, expected)


# --------------------------------------------------------- sttpapi defects (not copied)


@pytest.mark.sttpapi
def test_sttpapi_defect_not_like_behaves_as_like(sttpapi_dataset):
    like = "FILTER ActiveMeasurements WHERE SignalType LIKE 'VP%'"
    not_like = "FILTER ActiveMeasurements WHERE SignalType NOT LIKE 'VP%'"
    assert sttpapi_select(sttpapi_dataset, not_like) == sttpapi_select(sttpapi_dataset, like)
    matched = set(gridbind_select(like))
    assert set(gridbind_select(not_like)) == {row["ID"] for row in ROWS} - matched


@pytest.mark.sttpapi
def test_sttpapi_defect_in_over_null_inside_and_or(sttpapi_dataset):
    text = "FILTER ActiveMeasurements WHERE PhasorID IN (1, 2) OR SignalType = 'FREQ'"
    assert sttpapi_select(sttpapi_dataset, text) is None  # sttpapi aborts the whole filter
    # A NULL PhasorID makes the OR NULL (deployed NULL logic), so those rows are not selected.
    expected = [
        r["ID"]
        for r in ROWS
        if r["PhasorID"] is not None and (r["PhasorID"] in (1, 2) or r["SignalType"] == "FREQ")
    ]
    assert gridbind_select(text) == expected


@pytest.mark.sttpapi
def test_sttpapi_defect_modulus_of_negatives_follows_python_not_csharp():
    from sttp.data.filterexpressionparser import FilterExpressionParser

    value, _ = FilterExpressionParser.evaluate_expression("7 % -3", True)
    assert _plain(value.value) == -2  # Python's floor modulus
    assert evaluate("7 % -3") == 1 and evaluate("-7 % 3") == -1  # C#: sign of the dividend


@pytest.mark.sttpapi
def test_round_with_digits_is_a_gridbind_extension(sttpapi_dataset):
    text = "FILTER ActiveMeasurements WHERE Round(Multiplier, 1) = 1.5"
    assert sttpapi_select(sttpapi_dataset, text) is None  # sttpapi: Round takes one argument
    assert gridbind_select(text) == [r["ID"] for r in ROWS if r["Multiplier"] == 1.5]


@pytest.mark.sttpapi
def test_datediff_counts_boundaries_as_the_cpp_engine_not_as_sttpapi():
    """GSF's C++ engine counts calendar boundaries (SQL Server's DATEDIFF); sttpapi counts
    complete months (dateutil's relativedelta) and floors durations to days. gridbind follows
    the C++ engine; the Weekday numbering of DatePart agrees with it too (Sunday 1)."""
    from sttp.data.filterexpressionparser import FilterExpressionParser

    cases = {
        "DateDiff(#2024-01-31#, #2024-02-01#, 'Month')": (1, 0),
        "DateDiff(#2024-12-31#, #2025-01-01#, 'Year')": (1, 0),
        "DateDiff(#2024-01-01 23:00#, #2024-01-02 01:00#, 'Day')": (1, 0),
    }
    for text, (ours, theirs) in cases.items():
        value, err = FilterExpressionParser.evaluate_expression(text, True)
        assert err is None and _plain(value.value) == theirs, text
        assert evaluate(text) == ours, text
    assert evaluate("DatePart(#2024-03-03#, 'Weekday')") == 1  # a Sunday
    assert evaluate("DatePart(#2024-03-09#, 'Weekday')") == 7  # a Saturday


# ------------------------------------------------------------------ value-level, row by row

_TEXTS = ["PointTag", "Device", "SignalType", "Phase", "Company", "Description", "'PMU'"]
_TEXTS += ["'a,b,c'", "'  x '", "''", "NULL"]
_NUMBERS = ["FramesPerSecond", "PhasorID", "Adder", "Multiplier", "Longitude", "0", "1", "2"]
_NUMBERS += ["-3", "1.5", "-2.25", "NULL"]
_DATES = ["UpdatedOn", "#2024-02-29#", "'2024-01-31'"]
_PARTS = ["Year", "Month", "Day", "DayOfYear", "Week", "Hour", "Minute", "Second"]


def _value_forms(rng: random.Random) -> list:
    def t() -> str:
        return rng.choice(_TEXTS)

    def n() -> str:
        return rng.choice(_NUMBERS)

    return [
        lambda: f"{rng.choice(['Len', 'Upper', 'Lower', 'Trim', 'TrimLeft', 'Reverse'])}({t()})",
        lambda: f"SubStr({t()}, {rng.randrange(0, 6)}, {rng.randrange(0, 6)})",
        lambda: f"IndexOf({t()}, 'U')",
        lambda: f"LastIndexOf({t()}, 'u', true)",
        lambda: f"NthIndexOf({t()}, 'U', {rng.randrange(0, 3)})",
        lambda: f"StrCount({t()}, 'U')",
        lambda: f"StrCmp({t()}, {t()}, {rng.choice(['true', 'false'])})",
        lambda: f"Contains({t()}, 'mu', true)",
        lambda: f"StartsWith({t()}, 'P')",
        lambda: f"Replace({t()}, 'U', 'uu')",
        lambda: f"Split(Device, '_', {rng.randrange(0, 3)})",
        lambda: f"{rng.choice(['Abs', 'Floor', 'Ceiling', 'Round'])}({n()})",
        lambda: f"Power({n()}, {rng.choice(['2', '0', '-1'])})",
        lambda: f"{n()} {rng.choice(['+', '-', '*', '/'])} {n()}",
        lambda: f"{n()} {rng.choice(['<', '=', '>=', '<>'])} {n()}",
        lambda: f"{rng.choice(['FramesPerSecond', 'PhasorID', '6'])} {rng.choice(['&', '|', '^', '<<', '>>', '%'])} {rng.choice(['1', '2', '3'])}",
        lambda: f"Coalesce({n()}, {n()})",
        lambda: f"IIf({n()} > {n()}, {t()}, {t()})",
        lambda: f"MaxOf({n()}, {n()}, {n()})",
        lambda: f"MinOf({n()}, {n()})",
        lambda: f"Convert({n()}, 'System.{rng.choice(['String', 'Int32', 'Double', 'Decimal'])}')",
        lambda: f"IsNumeric({rng.choice(_TEXTS + _NUMBERS)})",
        lambda: f"IsDate({rng.choice(_TEXTS + _DATES)})",
        lambda: f"DatePart({rng.choice(_DATES)}, '{rng.choice(_PARTS)}')",
        lambda: f"DateAdd({rng.choice(_DATES)}, {rng.choice(['1', '-1', '13'])}, '{rng.choice(_PARTS[:3])}')",
        lambda: f"RegExVal('[A-Z]+[0-9]', {t()})",
        lambda: f"{t()} + {rng.choice(_TEXTS + _NUMBERS)}",
        lambda: f"{t()} {rng.choice(['=', '<', '>', '!=', '==='])} {t()}",
        lambda: f"{t()} LIKE '{rng.choice(['P%', '%0', '*U*', '%', 'PMU'])}'",
        lambda: f"{t()} IN ({rng.choice(_TEXTS + _NUMBERS)}, {t()})",
    ]


def _same(theirs: Any, ours: Any) -> bool:
    theirs = _plain(theirs)
    if isinstance(theirs, datetime):
        ours = ours.replace(tzinfo=None) if isinstance(ours, datetime) else ours
    numbers = (int, float, Decimal)
    if isinstance(theirs, numbers) and isinstance(ours, numbers):
        if isinstance(theirs, bool) or isinstance(ours, bool):
            return theirs is ours
        return abs(float(theirs) - float(ours)) < 1e-9
    return theirs == ours


@pytest.mark.sttpapi
@pytest.mark.timeout(60)
def test_function_and_operator_values_agree_row_by_row(sttpapi_dataset):
    """Where sttpapi gives a value, gridbind gives the same value (it may refuse less)."""
    from sttp.data.filterexpressionparser import FilterExpressionParser

    rng = random.Random(2024)
    forms = _value_forms(rng)
    table = sttpapi_dataset["ActiveMeasurements"]
    compared = 0
    for _ in range(1500):
        text = rng.choice(forms)()
        index = rng.randrange(len(ROWS))
        try:
            value, err = FilterExpressionParser.evaluate_datarowexpression(table[index], text, True)
        except Exception:  # sttpapi raises as well as returns errors
            continue
        if err is not None:
            continue
        try:
            ours = evaluate(text, TABLE.rows[index])
        except FilterExpressionError as exc:
            raise AssertionError(f"{text}: sttpapi gives {value.value!r}, gridbind {exc}") from exc
        assert _same(value.value, ours), (text, ROWS[index]["ID"], value.value, ours)
        compared += 1
    assert compared > 1000
