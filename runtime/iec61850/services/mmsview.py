"""The MMS view of the server model (IEC 61850-8-1 mapping, reused by 8-2), in the generated
classes: :class:`~gridbind.generated.iec61850_8_2.TypeDescription` and ``Data``.

This is the one place where model values become MMS Data and back (mapping notes section 5):
FLOAT32/64 in the 8-1 floating-point layout (:mod:`gridbind.iec61850.mmsdata`), Timestamp as the
8 utc-time octets, EntryTime as binary-time (days since 1984), coded enums (Dbpos...) as bit
strings. A variable length string or octet string has a negative size in its type description
(MMS convention: "up to n").

The LN is one structured NamedVariable whose first level is the FCs in the 8-1 order; names join
with ``$`` (``GGIO1$ST$Ind1$stVal``).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from gridbind.generated.iec61850_8_2 import scsm_8_2 as m

from ..mmsdata import MmsDataError, floating_point_octets, floating_point_value
from ..model import (
    BTYPE_KIND,
    DataAccessError,
    DataAttribute,
    DataObject,
    LogicalDevice,
    LogicalNode,
    ModelError,
    ServerModel,
    Timestamp,
    children_with_fc,
)

__all__ = [
    "type_of_btype",
    "type_description",
    "td_kind",
    "data_value",
    "python_value",
    "data_matches",
    "domain_variable_names",
    "domain_list_names",
    "page_names",
    "timestamp_octets",
    "timestamp_of_octets",
    "binary_time_octets",
    "timestamp_of_binary_time",
]

_TD = m.TypeDescription
_BOOLEAN_TD = _TD(choice=_TD.Boolean())
_UTC_TD = _TD(choice=_TD.UtcTime())
_TD_KIND = {
    _TD.Structure: "structure",
    _TD.Array: "array",
    _TD.Boolean: "boolean",
    _TD.Integer: "integer",
    _TD.Unsigned: "unsigned",
    _TD.FloatingPoint: "floating-point",
    _TD.BitString: "bit-string",
    _TD.OctetString: "octet-string",
    _TD.VisibleString: "visible-string",
    _TD.MmsString: "mMSString",
    _TD.UtcTime: "utc-time",
    bool: "binary-time",
}
_DATA_KIND = {
    m.Structure: "structure",
    m.Array: "array",
    bool: "boolean",
    m.Data.Integer: "integer",
    m.Data.Unsigned: "unsigned",
    m.Data.FloatingPoint: "floating-point",
    m.Data.BitString: "bit-string",
    m.Data.OctetString: "octet-string",
    m.Data.VisibleString: "visible-string",
    m.Data.MmsString: "mMSString",
    m.Data.UtcTime: "utc-time",
    m.Data.BinaryTime: "binary-time",
}


def td_kind(td: m.TypeDescription) -> str:
    """The alternative name of a type description (``structure``, ``boolean``...)."""
    return _TD_KIND[type(td.choice)]


def data_kind(data: m.Data) -> str | None:
    return _DATA_KIND.get(type(data.choice))


def _inline(spec: m.TypeSpecification) -> m.TypeDescription:
    """The type description of ``spec``; descriptions built from the model are always inline."""
    td = spec.choice
    assert isinstance(td, m.TypeDescription), "model type descriptions never name a type"
    return td


def _components(td: m.TypeDescription) -> list[tuple[str, m.TypeDescription]]:
    structure = td.choice
    assert isinstance(structure, _TD.Structure), "caller checked the kind"
    return [
        (seq.component_name or "", _inline(seq.component_type))
        for seq in structure.components.sequence
    ]


def _structure_td(items: list[tuple[str, m.TypeDescription]]) -> m.TypeDescription:
    seq = _TD.Structure.Components.Sequence
    return _TD(
        choice=_TD.Structure(
            components=_TD.Structure.Components(
                sequence=[
                    seq(component_name=n, component_type=m.TypeSpecification(choice=t))
                    for n, t in items
                ]
            )
        )
    )


def type_of_btype(btype: str) -> m.TypeDescription:
    """The MMS type description of a basic type."""
    kind, size = BTYPE_KIND[btype]
    if kind == "bool":
        return _BOOLEAN_TD
    if kind == "int":
        return _TD(choice=_TD.Integer(value=size))
    if kind == "uint":
        return _TD(choice=_TD.Unsigned(value=size))
    if kind == "enum":
        return _TD(choice=_TD.Integer(value=8))
    if kind in ("coded", "bits"):
        return _TD(choice=_TD.BitString(value=size))
    if kind == "float":
        return _TD(
            choice=_TD.FloatingPoint(
                format_width=32 if size == 32 else 64, exponent_width=8 if size == 32 else 11
            )
        )
    if kind == "str":
        return _TD(choice=_TD.VisibleString(value=-size))
    if kind == "ustr":
        return _TD(choice=_TD.MmsString(value=-size))
    if kind == "bytes":
        return _TD(choice=_TD.OctetString(value=8 if btype == "EntryID" else -size))
    if kind == "time":
        return _TD(choice=True) if btype == "EntryTime" else _UTC_TD
    raise ModelError(DataAccessError.TYPE_UNSUPPORTED, f"no MMS type for {btype}")


def type_description(node: Any, fc: str) -> m.TypeDescription:
    """Type of ``node`` seen through ``fc`` (``fc == ""`` on an LN: all its FCs)."""
    if isinstance(node, LogicalNode) and not fc:
        return _structure_td([(f, type_description(node, f)) for f in node.fcs()])
    if isinstance(node, DataAttribute):
        if node.elements:
            return _TD(
                choice=_TD.Array(
                    number_of_elements=len(node.elements),
                    element_type=m.TypeSpecification(choice=type_description(node.elements[0], fc)),
                )
            )
        if node.children:
            return _structure_td(
                [(c.name, type_description(c, fc)) for c in node.children.values()]
            )
        return type_of_btype(node.btype)
    if isinstance(node, DataObject) and node.elements:  # SDO array
        return _TD(
            choice=_TD.Array(
                number_of_elements=len(node.elements),
                element_type=m.TypeSpecification(choice=type_description(node.elements[0], fc)),
            )
        )
    return _structure_td([(c.name, type_description(c, fc)) for c in children_with_fc(node, fc)])


# ---------------------------------------------------------------- time
_EPOCH_1984 = 441763200  # 1984-01-01T00:00:00Z in Unix seconds


def timestamp_octets(ts: Timestamp) -> bytes:
    """The 8 utc-time octets of a Timestamp."""
    return ts.to_octets()


def timestamp_of_octets(raw: bytes) -> Timestamp:
    """A Timestamp of 8 utc-time octets (an invalid TimeAccuracy is a ``ModelError``)."""
    try:
        return Timestamp.from_octets(raw)
    except MmsDataError as exc:
        raise ModelError(DataAccessError.OBJECT_VALUE_INVALID, str(exc)) from None


def binary_time_octets(ts: Timestamp) -> bytes:
    """EntryTime as 6 binary-time octets; times before 1984 (an unset EntryTime) become 1984."""
    t = min(max(0.0, ts.to_float() - _EPOCH_1984), 65535 * 86400.0)
    days = min(65535, int(t // 86400))
    ms = min(86_399_999, int(round((t - days * 86400) * 1000)))
    return ms.to_bytes(4, "big") + days.to_bytes(2, "big")


def timestamp_of_binary_time(raw: bytes) -> Timestamp:
    ms = int.from_bytes(raw[:4], "big")
    days = int.from_bytes(raw[4:6], "big") if len(raw) == 6 else 0
    return Timestamp.from_float(_EPOCH_1984 + days * 86400 + ms / 1000)


# ---------------------------------------------------------------- values
def _basic_data(model: ServerModel, attr: DataAttribute, fc: str, editor: Hashable) -> m.Data:
    if fc == "SE" and attr.values_by_sg is not None and model.sg_value_index(attr, "SE"):
        # GetEditSGValue: the editor's edit buffer (SetEditSGValue not yet confirmed), else the
        # group being edited.
        value = model.edit_value(attr, editor)
    else:
        value = model.get_value(attr, fc)
    kind, size = BTYPE_KIND[attr.btype]
    if kind == "bool":
        return m.Data(choice=value)
    if kind in ("int", "enum"):
        return m.Data(choice=m.Data.Integer(value=value))
    if kind == "uint":
        return m.Data(choice=m.Data.Unsigned(value=value))
    if kind == "float":
        return m.Data(choice=m.Data.FloatingPoint(value=floating_point_octets(value, size)))
    if kind == "coded":
        return m.Data(choice=m.Data.BitString(value=format(value, f"0{size}b")))
    if kind == "bits":
        return m.Data(choice=m.Data.BitString(value=value))
    if kind == "str":
        return m.Data(choice=m.Data.VisibleString(value=value))
    if kind == "ustr":
        return m.Data(choice=m.Data.MmsString(value=value))
    if kind == "bytes":
        return m.Data(choice=m.Data.OctetString(value=value))
    if kind == "time":
        if attr.btype == "EntryTime":
            return m.Data(choice=m.Data.BinaryTime(value=binary_time_octets(value)))
        return m.Data(choice=m.Data.UtcTime(value=timestamp_octets(value)))
    raise ModelError(DataAccessError.TYPE_UNSUPPORTED, f"no MMS value for {attr.btype}")


def data_value(model: ServerModel, node: Any, fc: str, editor: Hashable = None) -> m.Data:
    """The Data value of ``node`` seen through ``fc``; ``editor`` (the reader's association
    key) sees its own unconfirmed setting group edits in FC SE."""
    if isinstance(node, LogicalNode) and not fc:
        return m.Data(
            choice=m.Structure(data=[data_value(model, node, f, editor) for f in node.fcs()])
        )
    if isinstance(node, DataAttribute):
        if node.elements:
            return m.Data(
                choice=m.Array(data=[data_value(model, e, fc, editor) for e in node.elements])
            )
        if node.children:
            return m.Data(
                choice=m.Structure(
                    data=[data_value(model, c, fc, editor) for c in node.children.values()]
                )
            )
        return _basic_data(model, node, fc, editor)
    if isinstance(node, DataObject) and node.elements:  # SDO array
        return m.Data(
            choice=m.Array(data=[data_value(model, e, fc, editor) for e in node.elements])
        )
    return m.Data(
        choice=m.Structure(
            data=[data_value(model, c, fc, editor) for c in children_with_fc(node, fc)]
        )
    )


def python_value(attr: DataAttribute, data: m.Data) -> Any:
    """The Python value of a Data written to a basic attribute (type-checked by kind)."""
    expected = type_of_btype(attr.btype)
    kind = data_kind(data)
    want = td_kind(expected)
    if kind != want:
        raise ModelError(
            DataAccessError.TYPE_INCONSISTENT,
            f"{attr.reference()}: expected {want}, got {kind}",
        )
    # The kinds matched, so the type of ``data.choice`` picks the branch.
    choice = data.choice
    btype_kind = BTYPE_KIND[attr.btype][0]
    if isinstance(choice, m.Data.BitString):
        size = expected.choice
        assert isinstance(size, _TD.BitString), "kinds matched above"
        if len(choice.value) != size.value:
            raise ModelError(
                DataAccessError.TYPE_INCONSISTENT,
                f"{attr.reference()}: expected {size.value} bits, got {len(choice.value)}",
            )
        if btype_kind == "coded":
            return int(choice.value, 2)
        return choice.value
    if isinstance(choice, bool):
        return choice
    if isinstance(choice, m.Data.FloatingPoint):
        try:
            return floating_point_value(choice.value)
        except MmsDataError as exc:
            raise ModelError(DataAccessError.TYPE_INCONSISTENT, str(exc)) from None
    if isinstance(choice, m.Data.UtcTime):
        return timestamp_of_octets(choice.value)
    if isinstance(choice, m.Data.BinaryTime):
        return timestamp_of_binary_time(choice.value)
    assert not isinstance(choice, m.Structure | m.Array) and choice is not None, "basic kind"
    return choice.value


def data_matches(node: Any, fc: str, data: m.Data) -> None:
    """Raise ``type-inconsistent`` unless ``data`` has the shape of ``node`` in ``fc``."""
    td = type_description(node, fc)
    _match(td, data, node.reference() if hasattr(node, "reference") else "")


def _match(td: m.TypeDescription, data: m.Data, where: str) -> None:
    want, got = td_kind(td), data_kind(data)
    if want != got:
        raise ModelError(DataAccessError.TYPE_INCONSISTENT, f"{where}: expected {want}, got {got}")
    choice = data.choice
    if isinstance(choice, m.Structure):
        comps = _components(td)
        items = choice.data
        if len(items) != len(comps):
            raise ModelError(
                DataAccessError.TYPE_INCONSISTENT,
                f"{where}: structure of {len(comps)} components, got {len(items)}",
            )
        for (name, sub), item in zip(comps, items, strict=True):
            _match(sub, item, f"{where}.{name}")
    elif isinstance(choice, m.Array):
        arr = td.choice
        assert isinstance(arr, _TD.Array), "kinds matched above"
        if len(choice.data) != arr.number_of_elements:
            raise ModelError(DataAccessError.TYPE_INCONSISTENT, f"{where}: array length")
        for item in choice.data:
            _match(_inline(arr.element_type), item, where)


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
