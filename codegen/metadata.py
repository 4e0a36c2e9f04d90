"""STTP metadata templates (specs/sttp/templates/*.yaml, Appendix F) -> typed record classes.

Each template file is one table: its name, table type (DataPoint, CDSM, Resource) and columns with
an attribute name, a restriction ("Defining": Integer, Float, Date, Time, DateTime, Duration,
Boolean, Binary, String, Guid) and whether it may be null. Adding a template is adding a file:
``gridbind codegen all`` turns every file into a dataclass in ``generated/sttp/templates.py``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from gridbind.codegen.errors import SpecError
from gridbind.codegen.render import header, render_template, write_python
from gridbind.codegen.spec import PathT, format_path, load_yaml

#: Restriction -> (Python type, preferred AttributeValueType code, accepted codes) per "Defining".
RESTRICTIONS: dict[str, tuple[str, int, tuple[int, ...]]] = {
    "Integer": ("int", 0x06, (0x00, 0x02, 0x03, 0x04, 0x05, 0x06)),
    "Float": ("float", 0x03, (0x00, 0x02, 0x03, 0x04, 0x05, 0x06)),
    "Date": ("int", 0x08, (0x00, 0x08)),
    "Time": ("int", 0x08, (0x00, 0x08)),
    "DateTime": ("int", 0x08, (0x00, 0x08)),
    "Duration": ("int", 0x08, (0x00, 0x08)),
    "Boolean": ("bool", 0x0A, (0x00, 0x0A)),
    "Binary": ("bytes", 0x09, (0x00, 0x09)),
    "String": ("str", 0x01, tuple(range(0x0B))),
    "Guid": ("uuid.UUID", 0x07, (0x00, 0x07)),
}
TABLE_TYPES = {"DataPoint": 0, "CDSM": 1, "Resource": 2}


def field_name(attribute: str) -> str:
    """``Nominal Voltage`` -> ``nominal_voltage``, ``CDSMTag`` -> ``cdsm_tag``."""
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", attribute.strip())
    text = re.sub(r"\W+", "_", text).strip("_").lower()
    return re.sub(r"_+", "_", text)


def class_name(table: str) -> str:
    """``PMU`` -> ``PmuRecord``, ``VIPair`` -> ``ViPairRecord``."""
    return "".join(part.capitalize() for part in field_name(table).split("_")) + "Record"


def _load(path: Path, display: str) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(display, "", f"cannot read: {exc}") from None
    data, lines = load_yaml(text, display)

    def error(where: PathT, reason: str) -> SpecError:
        probe = where
        while probe not in lines and probe:
            probe = probe[:-1]
        return SpecError(display, f"{lines.get(probe, 1)}:{format_path(where)}", reason)

    if not isinstance(data, dict):
        raise error((), "a template is a mapping")
    for key in data:
        if key not in ("table", "table_type", "doc", "decision", "columns"):
            raise error(
                (key,), f"unknown key {key!r} (allowed: columns, decision, doc, table, table_type)"
            )
    table = data.get("table")
    if not isinstance(table, str) or not table.strip():
        raise error(("table",), "missing required key 'table'")
    table_type = data.get("table_type")
    if table_type not in TABLE_TYPES:
        raise error(("table_type",), f"table_type must be one of {', '.join(TABLE_TYPES)}")
    columns = data.get("columns")
    if not isinstance(columns, list) or not columns:
        raise error(("columns",), "columns must be a non-empty list")
    out_columns = []
    seen: set[str] = set()
    for index, column in enumerate(columns):
        where: PathT = ("columns", index)
        if not isinstance(column, dict):
            raise error(where, "a column is a mapping")
        for key in column:
            if key not in ("name", "type", "nullable", "doc", "decision"):
                raise error(where + (key,), f"unknown key {key!r}")
        name = column.get("name")
        if not isinstance(name, str) or not name.strip():
            raise error(where + ("name",), "missing required key 'name'")
        py_name = field_name(name)
        if not py_name.isidentifier() or py_name in seen:
            raise error(where + ("name",), f"column {name!r} clashes or is not usable ({py_name})")
        seen.add(py_name)
        restriction = column.get("type")
        if restriction not in RESTRICTIONS:
            raise error(
                where + ("type",),
                f"unknown type {restriction!r} (known: {', '.join(RESTRICTIONS)})",
            )
        nullable = column.get("nullable", True)
        if not isinstance(nullable, bool):
            raise error(where + ("nullable",), "nullable must be true or false")
        py, code, accepts = RESTRICTIONS[restriction]
        doc = " ".join(str(column.get("doc", "")).split())
        decision = " ".join(str(column.get("decision", "")).split())
        out_columns.append(
            {
                "name": name,
                "field": py_name,
                "restriction": restriction,
                "py": py,
                "code": f"{code:#04x}",
                "accepts": "("
                + ", ".join(f"{c:#04x}" for c in accepts)
                + ("," if len(accepts) == 1 else "")
                + ")",
                "nullable": nullable,
                "doc": (doc + (f" Decision: {decision}" if decision else "")).replace('"', "'"),
            }
        )
    return {
        "table": table,
        "class": class_name(table),
        "table_type": table_type,
        "table_type_code": TABLE_TYPES[table_type],
        "doc": " ".join(str(data.get("doc", "")).split()).replace('"', "'") or table,
        "source": display,
        "columns": out_columns,
    }


def generate(templates: list[Path], out_file: Path, root: Path) -> Path:
    """Compile the template files into one module ``out_file``."""
    tables = []
    names: dict[str, str] = {}
    for path in sorted(templates):
        try:
            display = path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            display = path.as_posix()
        table = _load(path, display)
        if table["table"] in names:
            raise SpecError(
                display,
                "1:table",
                f"table {table['table']!r} is also defined in {names[table['table']]}",
            )
        names[table["table"]] = display
        tables.append(table)
    source = render_template(
        "sttp_templates.py.j2", {"header": header("specs/sttp/templates"), "tables": tables}
    )
    return write_python(out_file, source)
