"""Filter-expression speed, next to sttpapi's engine, and the cost of a hostile filter.

Usage: ``.venv/bin/python bench/sttp_filters.py [--rows 10000] [--repeat 3]``

Prints, for a few typical filters over a synthetic ActiveMeasurements table, the rows per second
gridbind's engine evaluates (and sttpapi's, when installed), then how long a hostile filter runs
before its budget ends it (steps or seconds) and what that costs: the request fails alone, in a
worker thread, while the event loop keeps serving the other subscribers.
"""

from __future__ import annotations

import argparse
import time
import uuid
from datetime import UTC, datetime

from gridbind.sttp.expressions import FilterExpressionError, Table, select_rows

TYPES = ["FREQ", "DFDT", "VPHM", "VPHA", "IPHM", "IPHA", "DIGI", "ALOG"]
FILTERS = [
    "FILTER ActiveMeasurements WHERE SignalType = 'FREQ'",
    "FILTER ActiveMeasurements WHERE SignalType LIKE 'VPH%' AND FramesPerSecond >= 30",
    "FILTER ActiveMeasurements WHERE Device IN ('PMU1', 'PMU7', 'PMU9') OR Len(PointTag) > 30",
    "FILTER ActiveMeasurements WHERE Contains(PointTag, 'PH', true) ORDER BY PointTag DESC",
    "FILTER ActiveMeasurements WHERE RegExMatch('^GPA_PMU[0-9]+-V', PointTag)",
]
HOSTILE = {
    "6000-item IN list": "FILTER ActiveMeasurements WHERE PointTag IN ("
    + ", ".join(f"'x{i}'" for i in range(6000))
    + ")",
    "Power(10, 100000000)": "FILTER ActiveMeasurements WHERE Power(10, 100000000) > 1",
    "(a*)*b on 30000 a": "FILTER ActiveMeasurements WHERE RegExMatch('(a*)*b', '"
    + "a" * 30_000
    + "')",
}


def rows(count: int) -> list[dict]:
    stamp = datetime(2024, 1, 1, tzinfo=UTC)
    return [
        {
            "SignalID": uuid.UUID(int=i + 1),
            "ID": f"PPA:{i + 1}",
            "PointTag": f"GPA_PMU{i // 8}-{TYPES[i % 8]}",
            "SignalType": TYPES[i % 8],
            "Device": f"PMU{i // 8}",
            "FramesPerSecond": 30 if i % 3 else 60,
            "Adder": 0.0,
            "Multiplier": 1.0,
            "Description": None if i % 5 == 0 else f"signal {i}",
            "UpdatedOn": stamp,
        }
        for i in range(count)
    ]


def sttpapi_table(data: list[dict]):
    try:
        from sttp.data.dataset import DataSet
        from sttp.data.datatype import DataType
    except ImportError:
        return None
    kinds = {
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
    dataset = DataSet()
    table = dataset.create_table("ActiveMeasurements")
    for name, kind in kinds.items():
        table.add_column(table.create_column(name, kind))
    for row in data:
        out = table.create_row()
        for index, name in enumerate(kinds):
            value = row[name]
            out[index] = value.replace(tzinfo=None) if isinstance(value, datetime) else value
        table.add_row(out)
    dataset.add_table(table)
    return dataset


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    data = rows(args.rows)
    table = Table("ActiveMeasurements", list(data[0]), data)
    dataset = sttpapi_table(data)
    print(f"{args.rows} rows; rows evaluated per second (best of {args.repeat})")
    for text in FILTERS:
        ours = best(lambda text=text: select_rows([table], text), args.repeat)
        line = f"  gridbind {args.rows / ours:>10,.0f}"
        if dataset is not None:
            from sttp.data.filterexpressionparser import FilterExpressionParser

            def theirs(text: str = text) -> None:
                FilterExpressionParser.select_datarows(
                    dataset, text, "ActiveMeasurements", None, True
                )

            line += f"   sttpapi {args.rows / best(theirs, args.repeat):>10,.0f}"
        print(f"{line}   {text[32:]}")
    print("hostile filters: time until the budget (2 million steps or 2 s) ends them")
    for name, text in HOSTILE.items():
        start = time.perf_counter()
        try:
            select_rows([table], text)
            outcome = "no match"
        except FilterExpressionError as exc:
            outcome = str(exc)[:60]
        print(f"  {time.perf_counter() - start:6.3f} s  {name}: {outcome}")


if __name__ == "__main__":
    main()
