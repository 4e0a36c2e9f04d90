"""Publisher metadata for the draft profile: versioned tables and the GetMetadata* answers.

A :class:`MetadataDatabase` holds tables of the three seed types (DataPoint, CDSM, Resource),
each with typed columns (attribute value types 0x00-0x0A) and rows keyed by their first column
(PointID / CDSMID / ResourceID). It has a schema version (a Guid that changes whenever a table or
column is defined) and a revision counter that grows with every row change, so a subscriber can
ask for the changes since a revision (``isUpdateQuery``).

Query text (``GetMetadata.query``) decisions: ``SELECT <*|col, [col with space], ...> FROM
<table> [WHERE <expression>]`` or ``FILTER <table> WHERE <expression>`` or just a table name;
expressions are :mod:`gridbind.sttp.expressions` expressions over the row's columns.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from gridbind.generated.sttp import draft_0_8 as wire
from gridbind.sttp.errors import MetadataError  # one class for both profiles
from gridbind.sttp.expressions import Budget, Dialect, FilterExpressionError, compile_expression

__all__ = ["MetadataDatabase", "MetadataError", "MetaTable", "QueryResult", "attribute", "value_of"]

AVT = wire.AttributeValueType
MRS = wire.MetadataResponseSubCommand

_SELECT = re.compile(
    r"^\s*SELECT\s+(?P<cols>.+?)\s+FROM\s+(?P<table>\[[^\]]+\]|\S+)(?:\s+WHERE\s+(?P<where>.+))?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_FILTER = re.compile(
    r"^\s*FILTER\s+(?P<table>\[[^\]]+\]|\S+)(?:\s+WHERE\s+(?P<where>.+))?\s*$",
    re.IGNORECASE | re.DOTALL,
)
#: Deleted-row history kept for update queries; older revisions get VersionNotCompatible.
MAX_TOMBSTONES = 100_000


def attribute(kind: int, value: Any) -> wire.AttributeValue:
    """A typed AttributeValue; ``None`` is Null whatever the column type."""
    if value is None:
        return wire.AttributeValue(type=AVT.Null, value=None)
    kind = AVT(kind)
    if kind == AVT.String and not isinstance(value, str):
        value = str(value)
    elif kind in (AVT.Single, AVT.Double):
        value = float(value)
    elif kind in (AVT.Int32, AVT.Int64, AVT.Ticks):
        value = int(value)
    elif kind == AVT.Boolean:
        value = bool(value)
    elif kind == AVT.Guid and not isinstance(value, uuid.UUID):
        value = uuid.UUID(str(value))
    elif kind in (AVT.Binary, AVT.Decimal):
        value = bytes(value)
    return wire.AttributeValue(type=kind, value=value)


def value_of(item: wire.AttributeValue) -> Any:
    """The Python value of an AttributeValue (Null is ``None``)."""
    return None if item.type == AVT.Null else item.value


@dataclass
class MetaTable:
    """One metadata table: typed columns, rows keyed by the first column, per-row revisions."""

    name: str
    table_type: wire.TableType
    columns: list[tuple[str, AVT]]
    rows: dict[Any, dict[str, Any]] = field(default_factory=dict)
    row_revision: dict[Any, int] = field(default_factory=dict)
    tombstones: dict[Any, int] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """Name of the identifying column."""
        return self.columns[0][0]

    @property
    def column_names(self) -> list[str]:
        """Column names in order."""
        return [name for name, _ in self.columns]

    def schema(self) -> wire.TableSchema:
        """The wire TableSchema of this table."""
        return wire.TableSchema(
            name=self.name,
            table_type=self.table_type,
            columns=[wire.ColumnSchema(name=n, type=t) for n, t in self.columns],
        )


@dataclass
class QueryResult:
    """What a subscriber received for one GetMetadata: table schema, rows, removed keys."""

    compatible: bool
    table: wire.TableSchema | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)
    removed: list[Any] = field(default_factory=list)


class MetadataDatabase:
    """Versioned metadata tables shared by all connections of a publisher (thread-safe)."""

    def __init__(self) -> None:
        self._tables: dict[str, MetaTable] = {}
        self.schema_version = uuid.uuid4()
        self.revision = 0
        self._oldest_revision = 0
        self._lock = threading.RLock()
        self._listeners: list[Callable[[], None]] = []

    # --- definition ---------------------------------------------------------------------------

    def define_table(
        self, name: str, table_type: int, columns: Sequence[tuple[str, int]]
    ) -> MetaTable:
        """Create or replace a table; its first column identifies rows."""
        if not columns:
            raise MetadataError(f"table {name!r} needs at least its identifying column")
        names = [c[0] for c in columns]
        if len({n.upper() for n in names}) != len(names):
            raise MetadataError(f"table {name!r} has duplicate column names")
        with self._lock:
            table = MetaTable(name, wire.TableType(table_type), [(n, AVT(t)) for n, t in columns])
            self._tables[name.upper()] = table
            self.schema_version = uuid.uuid4()
            self.revision += 1
        self._changed()
        return table

    def define_template(
        self, record_type: type, extra: Sequence[tuple[str, int]] = ()
    ) -> MetaTable:
        """Define a table from a generated Appendix F template record (plus ``extra`` columns)."""
        columns = [(col.name, col.value_type) for col in record_type.COLUMNS]  # type: ignore[attr-defined]
        return self.define_table(
            record_type.TABLE, record_type.TABLE_TYPE, columns + list(extra)  # type: ignore[attr-defined]
        )

    def table(self, name: str) -> MetaTable:
        """The table named ``name`` (case-insensitive)."""
        try:
            return self._tables[name.strip("[]").upper()]
        except KeyError:
            raise MetadataError(f"unknown metadata table {name!r}") from None

    @property
    def tables(self) -> list[MetaTable]:
        """All tables in definition order."""
        return list(self._tables.values())

    def on_change(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` after every change (used to re-check access rights)."""
        self._listeners.append(callback)

    def _changed(self) -> None:
        for callback in list(self._listeners):
            callback()

    # --- rows ---------------------------------------------------------------------------------

    def upsert(self, table_name: str, row: Mapping[str, Any] | Any) -> None:
        """Add or update a row (a mapping by column name, or a template record)."""
        if hasattr(row, "to_row"):
            row = row.to_row()
        self.upsert_many(table_name, [row])

    def upsert_many(self, table_name: str, rows: Iterable[Mapping[str, Any]]) -> None:
        """Add or update several rows as one change."""
        with self._lock:
            table = self.table(table_name)
            known = {n.upper(): n for n in table.column_names}
            self.revision += 1
            for row in rows:
                values: dict[str, Any] = {name: None for name in table.column_names}
                for name, value in row.items():
                    column = known.get(name.upper())
                    if column is None:
                        raise MetadataError(f"table {table.name!r} has no column {name!r}")
                    values[column] = value
                key = values[table.key]
                if key is None:
                    raise MetadataError(f"row of {table.name!r} lacks its key {table.key!r}")
                for name, kind in table.columns:  # fail now, not when a subscriber asks
                    attribute(kind, values[name]).build()
                table.rows[key] = values
                table.row_revision[key] = self.revision
                table.tombstones.pop(key, None)
        self._changed()

    def delete(self, table_name: str, key: Any) -> None:
        """Remove a row (remembered for update queries)."""
        with self._lock:
            table = self.table(table_name)
            if key not in table.rows:
                return
            self.revision += 1
            del table.rows[key]
            del table.row_revision[key]
            table.tombstones[key] = self.revision
            if len(table.tombstones) > MAX_TOMBSTONES:
                oldest = min(table.tombstones, key=table.tombstones.__getitem__)
                self._oldest_revision = table.tombstones.pop(oldest)
        self._changed()

    def related_points(self) -> dict[tuple[str, Any], set[Any]]:
        """The data points each non-DataPoint row is related to, keyed ``(TABLE, key)``.

        A row is related to a data point when (a) the DataPoint row references it through a
        ``<X>TableName`` / ``<X>TableID`` column pair (Appendix F: ``ProducerTableName`` /
        ``ProducerTableID``), (b) one of its own Guid columns holds the point's PointID, or
        (c) transitively, a related row references it through such a pair (a PMU's
        ``SubstationTableName`` / ``SubstationTableID``, a Phasor's ``LineTableName`` /
        ``LineTableID``). A pair without a table name matches the key in any non-DataPoint
        table. Rows missing from the result are related to no data point.
        """
        with self._lock:
            try:
                datapoints = self.table("DataPoint")
            except MetadataError:
                return {}
            others = [t for t in self._tables.values() if t is not datapoints]
            by_name = {t.name.upper(): t for t in others}
            related: dict[tuple[str, Any], set[Any]] = {}

            def targets(table: MetaTable, row: Mapping[str, Any]) -> list[tuple[str, Any]]:
                out = []
                for name_column, id_column in _reference_pairs(table):
                    target_key = row.get(id_column)
                    if target_key is None:
                        continue
                    target_name = str(row.get(name_column) or "").strip("[] ").upper()
                    candidates = [by_name[target_name]] if target_name in by_name else []
                    if not target_name:
                        candidates = others
                    out += [
                        (t.name.upper(), target_key) for t in candidates if target_key in t.rows
                    ]
                return out

            pending: list[tuple[str, Any]] = []
            for point, row in datapoints.rows.items():  # (a)
                for target in targets(datapoints, row):
                    related.setdefault(target, set()).add(point)
                    pending.append(target)
            for table in others:  # (b)
                guid_columns = [n for n, kind in table.columns[1:] if kind == AVT.Guid]
                for key, row in table.rows.items():
                    for column in guid_columns:
                        if row.get(column) in datapoints.rows:
                            related.setdefault((table.name.upper(), key), set()).add(row[column])
                            pending.append((table.name.upper(), key))
            while pending:  # (c)
                source = pending.pop()
                table = by_name[source[0]]
                points = related[source]
                for target in targets(table, table.rows[source[1]]):
                    known = related.setdefault(target, set())
                    if not points <= known:
                        known |= points
                        pending.append(target)
            return related

    def rows(self, table_name: str) -> list[dict[str, Any]]:
        """Copies of the rows of a table."""
        with self._lock:
            return [dict(r) for r in self.table(table_name).rows.values()]

    # --- answers ------------------------------------------------------------------------------

    def schema(self, include_schema: bool) -> wire.MetadataSchema:
        """The GetMetadataSchemaResponse content."""
        with self._lock:
            return wire.MetadataSchema(
                schema_version=self.schema_version,
                revision=self.revision,
                include_schema=include_schema,
                tables=[t.schema() for t in self._tables.values()] if include_schema else [],
            )

    def answer(
        self,
        request: wire.GetMetadata,
        visible: Callable[[MetaTable, Mapping[str, Any]], bool] = lambda t, r: True,
        budget: Budget | None = None,
    ) -> list[wire.MetadataResponseItem]:
        """Response items for a GetMetadata (rows the caller may not see are left out).

        ``budget`` bounds the filter evaluation (a fresh one when None). Raises
        :class:`MetadataError` for a bad query.
        """
        with self._lock:
            zero = uuid.UUID(int=0)
            if request.schema_version != zero and request.schema_version != self.schema_version:
                return [_item(MRS.VersionNotCompatible), _item(MRS.Finished)]
            if request.is_update_query and request.revision < self._oldest_revision:
                return [_item(MRS.VersionNotCompatible), _item(MRS.Finished)]
            table, columns, where = self._parse_query(request.query)
            kinds = dict(table.columns)
            schema = wire.TableSchema(
                name=table.name,
                table_type=table.table_type,
                columns=[wire.ColumnSchema(name=c, type=kinds[c]) for c in columns],
            )
            items = [_item(MRS.DefineTable, schema)]
            since = request.revision if request.is_update_query else -1
            budget = budget or Budget()  # one evaluation budget for the whole request
            for key, row in table.rows.items():
                if table.row_revision[key] <= since or not visible(table, row):
                    continue
                try:
                    if where is not None and not where.matches(row, budget):
                        continue
                except FilterExpressionError as exc:
                    raise MetadataError(str(exc)) from exc
                values = [attribute(kinds[c], row[c]) for c in columns]
                items.append(_item(MRS.DefineRow, wire.MetadataRow(values=values)))
            if request.is_update_query:
                key_kind = kinds[table.key]
                for key, revision in table.tombstones.items():
                    if revision > since:
                        items.append(_item(MRS.UndefineRow, attribute(key_kind, key)))
            items.append(_item(MRS.Finished))
            return items

    def _parse_query(self, text: str) -> tuple[MetaTable, list[str], Any]:
        match = _SELECT.match(text)
        if match:
            table = self.table(match["table"])
            cols_text = match["cols"].strip()
            if cols_text == "*":
                columns = table.column_names
            else:
                known = {n.upper(): n for n in table.column_names}
                columns = []
                for part in cols_text.split(","):
                    name = part.strip().strip("[]`")
                    if name.upper() not in known:
                        raise MetadataError(f"table {table.name!r} has no column {name!r}")
                    columns.append(known[name.upper()])
        else:
            match = _FILTER.match(text) or re.match(
                r"^\s*(?P<table>\[[^\]]+\]|[A-Za-z_][\w]*)\s*(?P<where>)$", text
            )
            if not match:
                raise MetadataError(f"cannot read metadata query {text[:60]!r}")
            table = self.table(match["table"])
            columns = table.column_names
        where = None
        if match["where"]:
            try:
                where = compile_expression(match["where"], Dialect.SQL)
            except FilterExpressionError as exc:
                raise MetadataError(str(exc)) from exc
            upper_names = {n.upper() for n in table.column_names}
            for name in where.columns:
                if name.upper() not in upper_names:
                    raise MetadataError(f"table {table.name!r} has no column {name!r}")
        if table.key not in columns:
            columns = [table.key] + columns  # rows must stay identifiable for updates
        return table, columns, where


def _reference_pairs(table: MetaTable) -> list[tuple[str, str]]:
    """``(<X>TableName, <X>TableID)`` column pairs of ``table``: references to other rows."""
    names = {n.upper(): n for n in table.column_names}
    pairs = []
    for upper, name in names.items():
        if upper.endswith("TABLENAME"):
            id_column = names.get(upper[: -len("NAME")] + "ID")
            if id_column is not None:
                pairs.append((name, id_column))
    return pairs


def _item(sub: int, body: Any = None) -> wire.MetadataResponseItem:
    return wire.MetadataResponseItem(sub_command=MRS(sub), body=body)


def _incompatible(result: QueryResult, body: Any) -> None:
    result.compatible = False


def _define_table(result: QueryResult, body: Any) -> None:
    result.table = cast(wire.TableSchema, body)


def _define_row(result: QueryResult, body: Any) -> None:
    if result.table is None:
        return  # a row before its table's definition has no column names: skipped
    names = [c.name for c in result.table.columns]
    values = cast(wire.MetadataRow, body).values
    if len(names) != len(values):
        raise MetadataError(f"row of {len(values)} values for {len(names)} columns")
    result.rows.append({n: value_of(v) for n, v in zip(names, values, strict=True)})


def _undefine_row(result: QueryResult, body: Any) -> None:
    result.removed.append(value_of(cast(wire.AttributeValue, body)))


def _finished(result: QueryResult, body: Any) -> None:
    """Nothing to add: the subscriber session ends an answer at its Finished item."""


#: What each MetadataResponseSubCommand item adds to a :class:`QueryResult` (one entry per
#: generated sub-command; tests/sttp/test_handler_tables.py checks it).
RESULT_ITEMS: dict[int, Callable[[QueryResult, Any], None]] = {
    MRS.VersionNotCompatible: _incompatible,
    MRS.DefineTable: _define_table,
    MRS.DefineRow: _define_row,
    MRS.UndefineRow: _undefine_row,
    MRS.Finished: _finished,
}


def decode_result(items: list[wire.MetadataResponseItem]) -> QueryResult:
    """Turn the streamed response items of one GetMetadata into a :class:`QueryResult`."""
    result = QueryResult(compatible=True)
    for item in items:
        step = RESULT_ITEMS.get(item.sub_command)
        if step is not None:  # the codec parses no other sub-command
            step(result, item.body)
    return result
