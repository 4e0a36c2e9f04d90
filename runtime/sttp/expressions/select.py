"""Selecting rows and signal IDs of metadata tables with a filter expression."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cmp_to_key, partial
from typing import Any, Protocol

from gridbind.sttp.expressions.budget import DEFAULT_LIMITS, Budget, FilterExpressionError, Limits
from gridbind.sttp.expressions.parser import (
    Dialect,
    FilterStatement,
    IdentifierStatement,
    Statement,
    parse,
)
from gridbind.sttp.expressions.values import as_uuid

__all__ = [
    "IdFields",
    "Table",
    "TableLike",
    "select_rows",
    "select_signal_ids",
    "select_statement_rows",
]


class TableLike(Protocol):
    """What the evaluator needs from a metadata table."""

    name: str

    @property
    def column_names(self) -> Sequence[str]: ...

    @property
    def rows(self) -> Sequence[Mapping[str, Any]]: ...


@dataclass
class Table:
    """A plain metadata table: a name, its column names and its rows (dicts keyed by column)."""

    name: str
    column_names: list[str]
    rows: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class IdFields:
    """Names of the identifying columns of the primary table (``ActiveMeasurements`` defaults)."""

    signal_id: str = "SignalID"
    measurement_key: str = "ID"
    point_tag: str = "PointTag"


Tables = Mapping[str, TableLike] | Iterable[TableLike]


def _resolve_table(tables: Tables, name: str) -> TableLike:
    items = tables.values() if isinstance(tables, Mapping) else tables
    for table in items:
        if table.name.upper() == name.upper():
            return table
    raise FilterExpressionError(f"unknown table {name[:40]!r}")


def _column_key(table: TableLike, name: str) -> str:
    for column in table.column_names:
        if column.upper() == name.upper():
            return column
    raise FilterExpressionError(f"unknown column {name[:40]!r} in table {table.name!r}")


def _compare_sort(left: Any, right: Any, exact: bool) -> int:
    # NULLs sort first, as in the deployed implementations.
    if left is None or right is None:
        return (left is not None) - (right is not None)
    if isinstance(left, str) and isinstance(right, str) and not exact:
        left, right = left.upper(), right.upper()
    try:
        return (left > right) - (left < right)
    except TypeError:
        left, right = str(left), str(right)
        return (left > right) - (left < right)


def _compare_rows(
    keys: Sequence[tuple[str, bool, bool]],
    budget: Budget,
    left: Mapping[str, Any],
    right: Mapping[str, Any],
) -> int:
    # Charged per comparison and per key compared, so the deadline can stop a running sort.
    for key, asc, exact in keys:
        budget.charge()
        result = _compare_sort(left.get(key), right.get(key), exact)
        if result:
            return result if asc else -result
    return 0


def _deployed_order(statements: list[Statement]) -> list[Statement]:
    named = [s for s in statements if isinstance(s, IdentifierStatement)]
    return named + [s for s in statements if not isinstance(s, IdentifierStatement)]


def _select(
    tables: Tables,
    statements: list[Statement],
    primary_table: str,
    id_fields: IdFields,
    budget: Budget,
) -> list[Mapping[str, Any]]:
    selected: list[Mapping[str, Any]] = []
    seen: set[int] = set()

    def add(row: Mapping[str, Any]) -> None:
        if id(row) not in seen:
            seen.add(id(row))
            selected.append(row)

    for statement in statements:
        if isinstance(statement, IdentifierStatement):
            table = _resolve_table(tables, primary_table)
            column = {
                "signal_id": id_fields.signal_id,
                "measurement_key": id_fields.measurement_key,
                "point_tag": id_fields.point_tag,
            }[statement.kind]
            key = _column_key(table, column)
            wanted = str(statement.value).upper()
            for row in table.rows:
                budget.charge()
                value = row.get(key)
                if value is None:
                    continue
                if statement.kind == "signal_id":
                    if as_uuid(value) == statement.value:
                        add(row)
                        break
                elif str(value).upper() == wanted:
                    add(row)
                    break
            continue
        if isinstance(statement, FilterStatement):
            table = _resolve_table(tables, statement.table)
            where, top, order_by = statement.where, statement.top, statement.order_by
        else:
            table = _resolve_table(tables, primary_table)
            where, top, order_by = statement.where, -1, []
        for name in where.columns:
            _column_key(table, name)
        keys = [(_column_key(table, name), asc, exact) for name, asc, exact in order_by]
        matched: list[Mapping[str, Any]] = []
        for row in table.rows:
            if 0 <= top <= len(matched):
                break
            if where.matches(row, budget):
                matched.append(row)
        if keys:
            budget.charge(len(matched))
            matched.sort(key=cmp_to_key(partial(_compare_rows, keys, budget)))
        for row in matched:
            add(row)
    return selected


def select_statement_rows(
    tables: Tables,
    statement: Statement,
    budget: Budget,
    primary_table: str = "ActiveMeasurements",
    id_fields: IdFields = IdFields(),
) -> list[Mapping[str, Any]]:
    """Rows one parsed statement selects, charging ``budget`` (shared by a request's statements)."""
    return _select(tables, [statement], primary_table, id_fields, budget)


def select_rows(
    tables: Tables,
    text: str,
    primary_table: str = "ActiveMeasurements",
    id_fields: IdFields = IdFields(),
    dialect: Dialect = Dialect.DEPLOYED,
    limits: Limits = DEFAULT_LIMITS,
) -> list[Mapping[str, Any]]:
    """Rows selected by every statement of ``text``, without duplicates.

    Order: first the directly named signals (in statement order), then the rows of each
    ``FILTER`` / bare expression statement in statement order (table order, or ``ORDER BY``),
    as the deployed engines do (they resolve identifiers while parsing, and evaluate the
    expression statements afterwards).

    ``FILTER`` statements name their table; identifiers and bare expressions use
    ``primary_table``. The whole selection shares one :class:`Budget` of ``limits``. Raises
    only :class:`FilterExpressionError` (unknown tables or columns, non-boolean conditions,
    exhausted budget, ...).
    """
    statements = _deployed_order(parse(text, dialect, limits))
    return _select(tables, statements, primary_table, id_fields, Budget(limits))


def select_signal_ids(
    tables: Tables,
    text: str,
    primary_table: str = "ActiveMeasurements",
    id_fields: IdFields = IdFields(),
    dialect: Dialect = Dialect.DEPLOYED,
    limits: Limits = DEFAULT_LIMITS,
) -> list[uuid.UUID]:
    """Signal IDs selected by ``text``: directly named GUIDs plus the selected rows' ``SignalID``.

    Directly named GUIDs are kept even when no metadata row names them, as the deployed
    publishers do; the order is that of :func:`select_rows`; the first occurrence of a duplicate
    wins.
    """
    result: list[uuid.UUID] = []
    seen: set[uuid.UUID] = set()

    def add(value: Any) -> None:
        signal = as_uuid(value)
        if signal is not None and signal.int != 0 and signal not in seen:
            seen.add(signal)
            result.append(signal)

    budget = Budget(limits)
    key: str | None = None
    for statement in _deployed_order(parse(text, dialect, limits)):
        if isinstance(statement, IdentifierStatement) and statement.kind == "signal_id":
            add(statement.value)
            continue
        for row in _select(tables, [statement], primary_table, id_fields, budget):
            if key is None:
                key = {name.upper(): name for name in row}.get(id_fields.signal_id.upper())
                if key is None:
                    raise FilterExpressionError(
                        f"the selected rows have no {id_fields.signal_id!r} column"
                    )
            add(row.get(key))
    return result
