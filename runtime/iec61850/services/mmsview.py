"""The MMS view of the server model (IEC 61850-8-1 mapping, reused by 8-2).

Neutral forms, one per MMS construct, so that the mapping rules live here and the PDU classes
live in the codec:

- a *type description* is a tuple: ``("structure", [(name, td), ...])``, ``("array", n, td)``,
  ``("boolean",)``, ``("integer", bits)``, ``("unsigned", bits)``,
  ``("floating-point", 32|64)``, ``("bit-string", n)``, ``("octet-string", n)``,
  ``("visible-string", n)``, ``("mMSString", n)``, ``("utc-time",)``, ``("binary-time", True)``;
  a negative ``n`` means "variable length up to -n" (MMS convention);
- a *Data* value is ``(kind, value)`` with the same kinds: structure/array values are lists of
  Data; ``floating-point`` is ``(kind, float, 32|64)``; bit strings are ``0``/``1`` strings;
  ``utc-time``/``binary-time`` hold a :class:`~gridbind.iec61850.model.Timestamp`.

The LN is one structured NamedVariable whose first level is the FCs in the 8-1 order; names join
with ``$`` (``GGIO1$ST$Ind1$stVal``).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from ..model import (
    BTYPE_KIND,
    DataAccessError,
    DataAttribute,
    DataObject,
    LogicalDevice,
    LogicalNode,
    ModelError,
    ServerModel,
    children_with_fc,
)

__all__ = [
    "type_of_btype",
    "type_description",
    "data_value",
    "python_value",
    "domain_variable_names",
    "page_names",
]

TypeDesc = tuple
Data = tuple


def type_of_btype(btype: str) -> TypeDesc:
    """The MMS type description of a basic type."""
    kind, size = BTYPE_KIND[btype]
    if kind == "bool":
        return ("boolean",)
    if kind == "int":
        return ("integer", size)
    if kind == "uint":
        return ("unsigned", size)
    if kind == "enum":
        return ("integer", 8)
    if kind in ("coded", "bits"):
        return ("bit-string", size)
    if kind == "float":
        return ("floating-point", size)
    if kind == "str":
        return ("visible-string", -size)
    if kind == "ustr":
        return ("mMSString", -size)
    if kind == "bytes":
        return ("octet-string", 8 if btype == "EntryID" else -size)
    if kind == "time":
        return ("binary-time", True) if btype == "EntryTime" else ("utc-time",)
    raise ModelError(DataAccessError.TYPE_UNSUPPORTED, f"no MMS type for {btype}")


def type_description(node: Any, fc: str) -> TypeDesc:
    """Type of ``node`` seen through ``fc`` (``fc == ""`` on an LN: all its FCs)."""
    if isinstance(node, LogicalNode) and not fc:
        return ("structure", [(f, type_description(node, f)) for f in node.fcs()])
    if isinstance(node, DataAttribute):
        if node.elements:
            return ("array", len(node.elements), type_description(node.elements[0], fc))
        if node.children:
            return (
                "structure",
                [(c.name, type_description(c, fc)) for c in node.children.values()],
            )
        return type_of_btype(node.btype)
    if isinstance(node, DataObject) and node.elements:  # SDO array
        return ("array", len(node.elements), type_description(node.elements[0], fc))
    return ("structure", [(c.name, type_description(c, fc)) for c in children_with_fc(node, fc)])


def _basic_data(model: ServerModel, attr: DataAttribute, fc: str, editor: Hashable) -> Data:
    if fc == "SE" and attr.values_by_sg is not None and model.sg_value_index(attr, "SE"):
        # GetEditSGValue: the editor's edit buffer (SetEditSGValue not yet confirmed), else the
        # group being edited.
        value = model.edit_value(attr, editor)
    else:
        value = model.get_value(attr, fc)
    td = type_of_btype(attr.btype)
    kind = td[0]
    if kind == "floating-point":
        return (kind, value, td[1])
    if kind == "bit-string" and BTYPE_KIND[attr.btype][0] == "coded":
        return (kind, format(value, "02b"))
    return (kind, value)


def data_value(model: ServerModel, node: Any, fc: str, editor: Hashable = None) -> Data:
    """The Data value of ``node`` seen through ``fc``; ``editor`` (the reader's association
    key) sees its own unconfirmed setting group edits in FC SE."""
    if isinstance(node, LogicalNode) and not fc:
        return ("structure", [data_value(model, node, f, editor) for f in node.fcs()])
    if isinstance(node, DataAttribute):
        if node.elements:
            return ("array", [data_value(model, e, fc, editor) for e in node.elements])
        if node.children:
            return (
                "structure",
                [data_value(model, c, fc, editor) for c in node.children.values()],
            )
        return _basic_data(model, node, fc, editor)
    if isinstance(node, DataObject) and node.elements:  # SDO array
        return ("array", [data_value(model, e, fc, editor) for e in node.elements])
    return ("structure", [data_value(model, c, fc, editor) for c in children_with_fc(node, fc)])


def python_value(attr: DataAttribute, data: Data) -> Any:
    """The Python value of a Data written to a basic attribute (type-checked by kind)."""
    expected = type_of_btype(attr.btype)
    kind = data[0] if data else None
    if kind != expected[0]:
        raise ModelError(
            DataAccessError.TYPE_INCONSISTENT,
            f"{attr.reference()}: expected {expected[0]}, got {kind}",
        )
    value = data[1]
    btype_kind = BTYPE_KIND[attr.btype][0]
    if kind == "bit-string":
        if len(value) != expected[1]:
            raise ModelError(
                DataAccessError.TYPE_INCONSISTENT,
                f"{attr.reference()}: expected {expected[1]} bits, got {len(value)}",
            )
        if btype_kind == "coded":
            return int(value, 2)
    return value


def data_matches(node: Any, fc: str, data: Data) -> None:
    """Raise ``type-inconsistent`` unless ``data`` has the shape of ``node`` in ``fc``."""
    td = type_description(node, fc)
    _match(td, data, node.reference() if hasattr(node, "reference") else "")


def _match(td: TypeDesc, data: Data, where: str) -> None:
    if not data or data[0] != td[0]:
        raise ModelError(
            DataAccessError.TYPE_INCONSISTENT,
            f"{where}: expected {td[0]}, got {data[0] if data else None}",
        )
    if td[0] == "structure":
        if len(data[1]) != len(td[1]):
            raise ModelError(
                DataAccessError.TYPE_INCONSISTENT,
                f"{where}: structure of {len(td[1])} components, got {len(data[1])}",
            )
        for (name, sub), item in zip(td[1], data[1]):
            _match(sub, item, f"{where}.{name}")
    elif td[0] == "array":
        if len(data[1]) != td[1]:
            raise ModelError(DataAccessError.TYPE_INCONSISTENT, f"{where}: array length")
        for item in data[1]:
            _match(td[2], item, where)


# ---------------------------------------------------------------- names
def _variable_names(prefix: str, node: Any, fc: str, out: list[str]) -> None:
    for child in (
        node.children.values() if isinstance(node, DataAttribute) else children_with_fc(node, fc)
    ):
        name = f"{prefix}${child.name}"
        out.append(name)
        if isinstance(child, (DataObject, DataAttribute)):
            _variable_names(name, child, fc, out)


def domain_variable_names(ld: LogicalDevice) -> list[str]:
    """Every NamedVariable name of a domain (LN, LN$FC, LN$FC$DO, ...), sorted."""
    names: list[str] = []
    for ln in ld.children.values():
        names.append(ln.name)
        for fc in ln.fcs():
            prefix = f"{ln.name}${fc}"
            names.append(prefix)
            _variable_names(prefix, ln, fc, names)
    return sorted(names)


def domain_list_names(ld: LogicalDevice) -> list[str]:
    """Every persistent NamedVariableList (data set) of a domain: ``LN$DSName``, sorted."""
    return sorted(f"{ln.name}${ds}" for ln in ld.children.values() for ds in ln.datasets)


def page_names(
    names: list[str], continue_after: str | None, budget: int, per_name: int = 26
) -> tuple[list[str], bool]:
    """Names after ``continue_after`` that fit in ``budget`` octets; and whether more follow.

    ``per_name`` is the XER overhead of one ``<Identifier>`` element.
    """
    if continue_after:
        # Sorted lists: everything strictly greater (the client's last name may be gone).
        start = next((i for i, n in enumerate(names) if n > continue_after), len(names))
    else:
        start = 0
    out: list[str] = []
    used = 0
    for name in names[start:]:
        cost = len(name) + per_name
        if out and used + cost > budget:
            return out, True
        out.append(name)
        used += cost
    return out, False
