"""Publisher metadata as the deployed wire carries it: an ADO.NET-style XML data set.

The XML is a root element (the data set name) holding an inline XSD schema (``xs:schema`` with
``id`` equal to the root name; one ``xs:element`` per table, one per column with an ``xs:`` type
and, for GUIDs, ``msdata:DataType="System.Guid"``) followed by one element per row. The model
here is a small typed table set that the filter-expression evaluator can query directly.

Parsing is for untrusted input: DTDs and entities are refused, the network is never touched, the
size is bounded by the caller's inflate limit.
"""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from lxml import etree

from gridbind.sttp.errors import MetadataError  # one class for both profiles
from gridbind.sttp.expressions import (
    Budget,
    FilterExpressionError,
    FilterStatement,
    parse,
    select_statement_rows,
)

XS_NS = "http://www.w3.org/2001/XMLSchema"
MSDATA_NS = "urn:schemas-microsoft-com:xml-msdata"
_XS = f"{{{XS_NS}}}"
_MSDATA = f"{{{MSDATA_NS}}}"

#: XSD type names we understand; others are kept as strings.
TYPES = (
    "string",
    "guid",
    "boolean",
    "dateTime",
    "float",
    "double",
    "decimal",
    "byte",
    "short",
    "int",
    "long",
    "unsignedByte",
    "unsignedShort",
    "unsignedInt",
    "unsignedLong",
)
_INT_TYPES = {
    "byte",
    "short",
    "int",
    "long",
    "unsignedByte",
    "unsignedShort",
    "unsignedInt",
    "unsignedLong",
}


#: Bound of a received data set: its XML elements plus the cells (rows x columns) of the rows they
#: make. 100 000 signals of :func:`synthetic_pmu_metadata` use about half of it; the worst case
#: costs a few hundred MB and some seconds of CPU (the subscriber parses off its event loop).
MAX_METADATA_CELLS = 4_000_000


def _record(table: DataTable, record: Any) -> dict[str, Any]:
    types = {column.name: column.type for column in table.columns}
    row: dict[str, Any] = {column.name: None for column in table.columns}
    for cell in record:
        if not isinstance(cell.tag, str):
            continue
        column_name = etree.QName(cell).localname
        if column_name not in types:
            continue
        row[column_name] = parse_value(cell.text or "", types[column_name], table.name)
    return row


@dataclass(frozen=True)
class Column:
    """A table column: its name and XSD type (``guid`` for System.Guid strings)."""

    name: str
    type: str = "string"


@dataclass
class DataTable:
    """One metadata table: typed columns and rows (dicts keyed by column name, None = NULL)."""

    name: str
    columns: list[Column]
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def column_names(self) -> list[str]:
        """Column names in schema order (what the filter evaluator resolves against)."""
        return [column.name for column in self.columns]

    def add(self, **values: Any) -> dict[str, Any]:
        """Append a row; unknown column names are refused, missing ones are NULL."""
        names = set(self.column_names)
        unknown = set(values) - names
        if unknown:
            raise MetadataError(f"table {self.name}: unknown columns {sorted(unknown)}")
        row = {column.name: values.get(column.name) for column in self.columns}
        self.rows.append(row)
        return row


@dataclass
class DataSet:
    """A named set of tables (name lookups ignore case, as the deployed peers do)."""

    name: str = "DataSet"
    tables: list[DataTable] = field(default_factory=list)

    def table(self, name: str) -> DataTable | None:
        """The table called ``name`` (any case), or None."""
        for table in self.tables:
            if table.name.upper() == name.upper():
                return table
        return None

    def __getitem__(self, name: str) -> DataTable:
        table = self.table(name)
        if table is None:
            raise KeyError(name)
        return table

    def to_xml(self) -> bytes:
        """The XML data set (UTF-8, with declaration), as sent in METADATA_REFRESH responses."""
        nsmap = {"xs": XS_NS, "msdata": MSDATA_NS}
        root = etree.Element(self.name, nsmap=nsmap)
        schema = etree.SubElement(root, _XS + "schema", id=self.name)
        top = etree.SubElement(schema, _XS + "element", name=self.name)
        top.set(_MSDATA + "IsDataSet", "true")
        choice = etree.SubElement(
            etree.SubElement(top, _XS + "complexType"),
            _XS + "choice",
            minOccurs="0",
            maxOccurs="unbounded",
        )
        for table in self.tables:
            element = etree.SubElement(choice, _XS + "element", name=table.name)
            sequence = etree.SubElement(
                etree.SubElement(element, _XS + "complexType"), _XS + "sequence"
            )
            for column in table.columns:
                node = etree.SubElement(sequence, _XS + "element", name=column.name)
                if column.type == "guid":
                    node.set(_MSDATA + "DataType", "System.Guid")
                    node.set("type", "xs:string")
                else:
                    node.set("type", f"xs:{column.type}")
                node.set("minOccurs", "0")
        for table in self.tables:
            for row in table.rows:
                record = etree.SubElement(root, table.name)
                for column in table.columns:
                    value = row.get(column.name)
                    if value is None:
                        continue
                    etree.SubElement(record, column.name).text = format_value(value, column.type)
        return etree.tostring(root, xml_declaration=True, encoding="utf-8", standalone=True)

    @classmethod
    def from_xml(cls, data: bytes | str, max_cells: int | None = None) -> DataSet:
        """Parse an XML data set; raises :class:`MetadataError` (never resolves entities/DTDs).

        The parse is bounded as well as the inflate before it: records are read one at a time
        (each dropped from the tree once read), and every XML element plus every cell of the rows
        they make (rows x columns of their table) counts against ``max_cells`` (default
        :data:`MAX_METADATA_CELLS`); past it the data set is refused, so a small GZip answer
        cannot cost gigabytes and minutes.
        """
        if isinstance(data, str):
            data = data.encode("utf-8")
        left = MAX_METADATA_CELLS if max_cells is None else max_cells
        events = etree.iterparse(
            io.BytesIO(data),
            events=("start", "end"),
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            huge_tree=False,
            remove_comments=True,
            remove_pis=True,
        )
        dataset: DataSet | None = None
        tables: dict[str, DataTable] = {}
        root = None
        depth = 0
        try:
            for kind, node in events:
                if kind == "start":
                    depth += 1
                    left -= 1
                    if left < 0:
                        raise MetadataError(
                            "metadata has too many XML elements and cells for the bound"
                        )
                    if root is None:
                        root = node
                        docinfo = node.getroottree().docinfo
                        if docinfo.doctype or docinfo.internalDTD is not None:
                            raise MetadataError("metadata XML with a DTD is refused")
                    continue
                depth -= 1
                if depth != 1 or not isinstance(node.tag, str):
                    continue
                if node.tag == _XS + "schema":
                    if dataset is None:
                        dataset = cls._schema(root, node)
                        tables = {table.name: table for table in dataset.tables}
                else:
                    table = tables.get(etree.QName(node).localname)
                    if table is not None:
                        left -= len(table.columns)
                        if left < 0:
                            raise MetadataError(
                                "metadata has too many XML elements and cells for the bound"
                            )
                        table.rows.append(_record(table, node))
                node.clear()
                if root is not None and node.getparent() is root:
                    root.remove(node)
        except etree.XMLSyntaxError as exc:
            raise MetadataError(f"metadata is not well-formed XML: {exc}") from None
        except MetadataError:
            raise
        except ValueError as exc:  # e.g. a tag whose prefix has no namespace ("xs:schema")
            raise MetadataError(f"metadata is not usable XML: {exc}") from None
        if dataset is None:
            name = etree.QName(root).localname if root is not None else ""
            raise MetadataError(f"metadata has no xs:schema with id {name!r}")
        return dataset

    @classmethod
    def _schema(cls, root: Any, schema: Any) -> DataSet:
        name = etree.QName(root).localname
        if schema.get("id") != name:
            raise MetadataError(f"metadata has no xs:schema with id {name!r}")
        dataset = cls(name)
        for table_node in schema.iterfind(
            f"{_XS}element/{_XS}complexType/{_XS}choice/{_XS}element"
        ):
            table_name = table_node.get("name")
            if not table_name:
                continue
            columns = []
            for column_node in table_node.iterfind(f"{_XS}complexType/{_XS}sequence/{_XS}element"):
                column_name = column_node.get("name")
                if not column_name:
                    continue
                xsd = (column_node.get("type") or "xs:string").split(":")[-1]
                if (column_node.get(_MSDATA + "DataType") or "").startswith("System.Guid"):
                    xsd = "guid"
                columns.append(Column(column_name, xsd if xsd in TYPES else "string"))
            dataset.tables.append(DataTable(table_name, columns))
        return dataset

    def filtered(self, filters: str) -> DataSet:
        """A copy keeping, for each ``FILTER <table> WHERE ...`` statement, only matching rows."""
        if not filters.strip():
            return self
        try:
            statements = [s for s in parse(filters) if isinstance(s, FilterStatement)]
            keep: dict[str, list[dict[str, Any]]] = {}
            budget = Budget()  # one evaluation budget for the whole (peer-chosen) request
            for statement in statements:
                table = self.table(statement.table)
                if table is None:
                    raise FilterExpressionError(f"unknown table {statement.table!r}")
                rows = select_statement_rows(self.tables, statement, budget)
                keep.setdefault(table.name, []).extend(dict(row) for row in rows)
        except FilterExpressionError as exc:
            raise MetadataError(f"bad metadata filter: {exc}") from None
        return DataSet(
            self.name,
            [
                DataTable(t.name, t.columns, list(keep[t.name]) if t.name in keep else t.rows)
                for t in self.tables
            ],
        )


_DT_RE = re.compile(
    r"^\s*(\d{4})-(\d\d)-(\d\d)(?:[T ](\d\d):(\d\d)(?::(\d\d)(?:\.(\d*))?)?)?\s*(Z|[+-]\d\d:?\d\d)?\s*$"
)


def parse_datetime(text: str) -> datetime:
    """An XSD/ISO date-time, tolerant of ``.000``, a bare ``.`` and offsets; result in UTC."""
    match = _DT_RE.match(text)
    if match is None:
        raise MetadataError(f"bad date/time {text!r}")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    digits = (fraction or "")[:7].ljust(7, "0")
    try:
        moment = datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int(digits) // 10,
            tzinfo=UTC,
        )
    except ValueError as exc:
        raise MetadataError(f"bad date/time {text!r}: {exc}") from None
    if zone and zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        hours, minutes = int(zone[1:3]), int(zone[-2:])
        if hours > 14 or minutes > 59:
            raise MetadataError(f"bad date/time {text!r}: UTC offset out of range")
        try:
            moment -= sign * timedelta(hours=hours, minutes=minutes)
        except OverflowError:
            # 0001-01-01T00:00:00+01:00 is before the first representable instant (and
            # 9999-12-31T23:59:59-01:00 after the last): refuse it as the metadata error it is.
            raise MetadataError(f"bad date/time {text!r}: outside years 1-9999 in UTC") from None
    return moment


def format_datetime(moment: datetime) -> str:
    """XSD date-time in UTC; the fraction is written only when non-zero (never ``.000``)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


def format_value(value: Any, xsd: str) -> str:
    """Text of one cell."""
    if xsd == "boolean":
        return "true" if value else "false"
    if xsd == "dateTime" and isinstance(value, datetime):
        return format_datetime(value)
    if xsd in ("double", "float") and isinstance(value, float):
        return repr(value)
    return str(value)


def parse_value(text: str, xsd: str, table: str = "") -> Any:
    """Typed value of one cell's text."""
    try:
        if xsd == "string":
            return text
        if xsd == "guid":
            return uuid.UUID(text.strip().strip("{}"))
        if xsd == "boolean":
            return text.strip().lower() in ("true", "1")
        if xsd == "dateTime":
            return parse_datetime(text)
        if xsd in _INT_TYPES:
            return int(text.strip())
        if xsd in ("float", "double"):
            return float(text.strip())
        if xsd == "decimal":
            return Decimal(text.strip())
    except (ValueError, InvalidOperation) as exc:
        raise MetadataError(f"table {table}: {text[:40]!r} is not a valid {xsd}: {exc}") from None
    return text


# ------------------------------------------------------------------------- source metadata model

DEVICE_DETAIL = [
    Column("NodeID", "guid"),
    Column("UniqueID", "guid"),
    Column("OriginalSource"),
    Column("IsConcentrator", "boolean"),
    Column("Acronym"),
    Column("Name"),
    Column("AccessID", "int"),
    Column("ParentAcronym"),
    Column("ProtocolName"),
    Column("FramesPerSecond", "int"),
    Column("CompanyAcronym"),
    Column("VendorAcronym"),
    Column("VendorDeviceName"),
    Column("Longitude", "decimal"),
    Column("Latitude", "decimal"),
    Column("InterconnectionName"),
    Column("ContactList"),
    Column("Enabled", "boolean"),
    Column("UpdatedOn", "dateTime"),
]
MEASUREMENT_DETAIL = [
    Column("DeviceAcronym"),
    Column("ID"),
    Column("SignalID", "guid"),
    Column("PointTag"),
    Column("SignalReference"),
    Column("SignalAcronym"),
    Column("PhasorSourceIndex", "int"),
    Column("Description"),
    Column("Internal", "boolean"),
    Column("Enabled", "boolean"),
    Column("UpdatedOn", "dateTime"),
]
PHASOR_DETAIL = [
    Column("ID", "int"),
    Column("DeviceAcronym"),
    Column("Label"),
    Column("Type"),
    Column("Phase"),
    Column("DestinationPhasorID", "int"),
    Column("SourceIndex", "int"),
    Column("UpdatedOn", "dateTime"),
]
SCHEMA_VERSION = [Column("VersionNumber", "int")]
ACTIVE_MEASUREMENTS = [
    Column("SourceNodeID", "guid"),
    Column("ID"),
    Column("SignalID", "guid"),
    Column("PointTag"),
    Column("AlternateTag"),
    Column("SignalReference"),
    Column("Internal", "int"),
    Column("Subscribed", "int"),
    Column("Device"),
    Column("DeviceID", "int"),
    Column("FramesPerSecond", "int"),
    Column("Protocol"),
    Column("ProtocolType"),
    Column("SignalType"),
    Column("EngineeringUnits"),
    Column("PhasorID", "int"),
    Column("PhasorType"),
    Column("Phase"),
    Column("Adder", "double"),
    Column("Multiplier", "double"),
    Column("Company"),
    Column("Longitude", "decimal"),
    Column("Latitude", "decimal"),
    Column("Description"),
    Column("UpdatedOn", "dateTime"),
]


def empty_source_metadata() -> DataSet:
    """The publisher metadata tables deployed peers exchange (no rows)."""
    return DataSet(
        "DataSet",
        [
            DataTable("DeviceDetail", list(DEVICE_DETAIL)),
            DataTable("MeasurementDetail", list(MEASUREMENT_DETAIL)),
            DataTable("PhasorDetail", list(PHASOR_DETAIL)),
            DataTable("SchemaVersion", list(SCHEMA_VERSION), [{"VersionNumber": 14}]),
        ],
    )


def _protocol_type(protocol: str) -> str:
    upper = (protocol or "").upper()
    if upper in ("STREAMING TELEMETRY TRANSPORT PROTOCOL", "STTP") or upper.startswith(
        ("GATEWAY", "MODBUS", "DNP")
    ):
        return "Measurement"
    return "Frame"


def _units(signal_type: str) -> str:
    upper = (signal_type or "").upper()
    if upper == "IPHM":
        return "Amps"
    if upper == "VPHM":
        return "Volts"
    if upper == "FREQ":
        return "Hz"
    if upper.endswith("PHA"):
        return "Degrees"
    return ""


def active_measurements(source: DataSet, node_id: uuid.UUID) -> DataTable:
    """The ``ActiveMeasurements`` selection view publishers filter subscriptions against.

    Derived from MeasurementDetail (enabled rows), DeviceDetail and PhasorDetail with the same
    rules as the deployed Python publisher, so the same filter selects the same signals.
    """
    table = DataTable("ActiveMeasurements", list(ACTIVE_MEASUREMENTS))
    devices: dict[str, tuple[int, Mapping[str, Any]]] = {}
    detail = source.table("DeviceDetail")
    for position, row in enumerate(detail.rows if detail else []):
        if row.get("Acronym"):
            devices[row["Acronym"]] = (position, row)
    phasors: dict[tuple[str, int], Mapping[str, Any]] = {}
    phasor_table = source.table("PhasorDetail")
    for row in phasor_table.rows if phasor_table else []:
        if row.get("DeviceAcronym"):
            phasors[(row["DeviceAcronym"], int(row.get("SourceIndex") or 0))] = row
    measurements = source.table("MeasurementDetail")
    for row in measurements.rows if measurements else []:
        if row.get("Enabled") is False or row.get("Enabled") == 0:
            continue
        signal_type = row.get("SignalAcronym") or "CALC"
        out: dict[str, Any] = {
            "SourceNodeID": node_id,
            "ID": row.get("ID"),
            "SignalID": row.get("SignalID"),
            "PointTag": row.get("PointTag"),
            "SignalReference": row.get("SignalReference"),
            "Internal": 1 if row.get("Internal") else 0,
            "Subscribed": 0,
            "Description": row.get("Description"),
            "Adder": 0.0,
            "Multiplier": 1.0,
            "UpdatedOn": row.get("UpdatedOn"),
            "SignalType": signal_type,
            "EngineeringUnits": _units(signal_type),
        }
        acronym = row.get("DeviceAcronym") or ""
        if not acronym:
            out["FramesPerSecond"] = 30
        else:
            out["Device"] = acronym
            if acronym in devices:
                position, device = devices[acronym]
                protocol = device.get("ProtocolName") or ""
                out.update(
                    DeviceID=position,
                    FramesPerSecond=int(device.get("FramesPerSecond") or 30),
                    Company=device.get("CompanyAcronym") or "",
                    Protocol=protocol,
                    ProtocolType=_protocol_type(protocol),
                    Longitude=device.get("Longitude") or Decimal(0),
                    Latitude=device.get("Latitude") or Decimal(0),
                )
            phasor = phasors.get((acronym, int(row.get("PhasorSourceIndex") or 0)))
            if phasor is not None:
                out.update(
                    PhasorID=int(phasor.get("ID") or 0),
                    PhasorType=phasor.get("Type") or "",
                    Phase=phasor.get("Phase") or "",
                )
        table.add(**out)
    return table


def measurement_key(text: str | None) -> tuple[str, int]:
    """``("PPA", 12)`` from a measurement key ``"PPA:12"`` (``("", 0)`` when absent/odd)."""
    if not text or ":" not in text:
        return "", 0
    source, _, number = text.rpartition(":")
    try:
        return source, int(number)
    except ValueError:
        return source, 0


#: Signal types of the synthetic PMU (per device): frequency, df/dt, then phasor magnitude/angle.
PMU_SIGNALS = ("FREQ", "DFDT", "VPHM", "VPHA", "IPHM", "IPHA")
_REFERENCE_SUFFIX = {
    "FREQ": "FQ",
    "DFDT": "DF",
    "VPHM": "PM",
    "VPHA": "PA",
    "IPHM": "PM",
    "IPHA": "PA",
}


def synthetic_pmu_metadata(
    signal_count: int,
    device_size: int = 10,
    updated_on: datetime | None = None,
    company: str = "GPA",
    frames_per_second: int = 30,
    seed: int = 0,
) -> tuple[DataSet, list[uuid.UUID]]:
    """Metadata of ``signal_count`` signals grouped into PMUs of ``device_size`` signals.

    Signal IDs are deterministic for a ``seed``; returns the data set and the IDs in order.
    """
    moment = updated_on or datetime(2026, 1, 1, 0, 0, 0, 123000, tzinfo=UTC)
    metadata = empty_source_metadata()
    devices, measurements, phasors = (
        metadata["DeviceDetail"],
        metadata["MeasurementDetail"],
        metadata["PhasorDetail"],
    )
    signals: list[uuid.UUID] = []
    phasor_id = 0
    for index in range(signal_count):
        device_number = index // device_size
        acronym = f"PMU{device_number:04d}"
        if index % device_size == 0:
            devices.add(
                NodeID=uuid.UUID(int=seed << 64 | 0xFFFF),
                UniqueID=uuid.UUID(int=(seed << 64) | (1 << 40) | device_number),
                IsConcentrator=False,
                Acronym=acronym,
                Name=f"Synthetic PMU {device_number}",
                AccessID=device_number,
                ProtocolName="IEEE C37.118-2005",
                FramesPerSecond=frames_per_second,
                CompanyAcronym=company,
                Longitude=Decimal("-85.3") + device_number,
                Latitude=Decimal("35.1"),
                Enabled=True,
                UpdatedOn=moment,
            )
        position = index % device_size
        kind = PMU_SIGNALS[position] if position < 2 else PMU_SIGNALS[2 + (position - 2) % 4]
        source_index = (position - 2) // 2 + 1 if position >= 2 else 0
        if kind in ("VPHM", "IPHM"):
            phasor_id += 1
            phasors.add(
                ID=phasor_id,
                DeviceAcronym=acronym,
                Label=f"{kind[0]}{source_index}",
                Type=kind[0],
                Phase="+",
                DestinationPhasorID=0,
                SourceIndex=source_index,
                UpdatedOn=moment,
            )
        signal = uuid.UUID(int=(seed << 64) | (2 << 40) | index)
        signals.append(signal)
        measurements.add(
            DeviceAcronym=acronym,
            ID=f"PPA:{index + 1}",
            SignalID=signal,
            PointTag=f"{company}_{acronym}:{kind}{source_index or ''}",
            SignalReference=f"{acronym}-{_REFERENCE_SUFFIX[kind]}{source_index or ''}",
            SignalAcronym=kind,
            PhasorSourceIndex=source_index if source_index else None,
            Description=f"{acronym} {kind} {source_index}",
            Internal=True,
            Enabled=True,
            UpdatedOn=moment,
        )
    return metadata, signals


def rows_as_dicts(table: DataTable | None) -> list[dict[str, Any]]:
    """Rows of a table (empty when missing), for comparisons and output."""
    return [dict(row) for row in table.rows] if table else []


def iter_signal_keys(
    table: DataTable, signals: Iterable[uuid.UUID]
) -> list[tuple[uuid.UUID, str, int]]:
    """``(signal, source, key id)`` per signal, keyed from a table with SignalID and ID columns."""
    keys = {row.get("SignalID"): measurement_key(row.get("ID")) for row in table.rows}
    return [(signal, *keys.get(signal, ("", 0))) for signal in signals]


def _field(row: Mapping[str, Any], *names: str) -> Any:
    upper = {key.upper().replace(" ", ""): value for key, value in row.items()}
    for name in names:
        value = upper.get(name.upper().replace(" ", ""))
        if value is not None:
            return value
    return None


def from_data_points(
    rows: Iterable[Mapping[str, Any]], source: str = "STTP", device: str = ""
) -> DataSet:
    """Deployed metadata from rows of the draft profile's DataPoint table (Appendix F template).

    Where the two models overlap: PointID -> SignalID, PointTag, "Signal Type" -> SignalAcronym,
    Description, PositionIndex -> the measurement key ``SOURCE:n`` (n = index + 1), so one
    metadata source serves both profiles.
    """
    metadata = empty_source_metadata()
    table = metadata["MeasurementDetail"]
    for number, row in enumerate(rows, start=1):
        signal = _field(row, "PointID", "SignalID")
        if isinstance(signal, str):
            signal = uuid.UUID(signal)
        if not isinstance(signal, uuid.UUID):
            raise MetadataError(f"data point row {number} has no PointID")
        position = _field(row, "PositionIndex")
        key = int(position) + 1 if isinstance(position, int) else number
        kind = _field(row, "SignalType", "SignalAcronym") or "CALC"
        table.add(
            DeviceAcronym=_field(row, "DeviceAcronym", "Device") or device or None,
            ID=f"{source}:{key}",
            SignalID=signal,
            PointTag=_field(row, "PointTag") or str(signal),
            SignalReference=_field(row, "SignalReference"),
            SignalAcronym=str(kind).upper(),
            Description=_field(row, "Description"),
            Internal=True,
            Enabled=True,
        )
    return metadata
