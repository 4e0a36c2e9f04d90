"""The server data model of an IED: logical devices, logical nodes, data objects, attributes.

Built from SCL by :mod:`gridbind.iec61850.scl` (or by hand), addressed the ACSI way
(``LD/LN.DO.DA`` + functional constraint) and the MMS way (domain ``LD``, item ``LN$FC$DO$DA``).

Values are plain Python values, one representation per basic type (see :data:`BTYPE_KIND`):
``bool``; ``int`` (INTn, INTnU, Enum ordinals, Dbpos/Tcmd codes); ``float``; ``str`` (visible and
Unicode strings, ObjRef); ``bytes`` (Octet64, EntryID); bit strings (Quality, Check, TrgOps,
OptFlds, SV options) as ``str`` of ``0``/``1`` with bit 0 first; Timestamp/EntryTime as
:class:`Timestamp`. Structures are :class:`DataAttribute` trees, never values.

Writes from clients go through :meth:`ServerModel.write`: the per-FC write policy, then a type
check, then the application hooks (``add_write_hook``). Reads from clients pass the application's
read hooks (``add_read_hook``, e.g. a per-originator read policy) through
:meth:`ServerModel.check_read`. Application code updates and reads values with
:meth:`ServerModel.update` / :meth:`ServerModel.read` (no hooks; quality and timestamp of the same
data object follow an update).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import Any, Union

from gridbind.iec61850.errors import Iec61850Error, InvalidArgument

from .mmsdata import Timestamp

__all__ = [
    "FC_ORDER",
    "FCS",
    "BTYPE_KIND",
    "CODED_ENUM_NAMES",
    "DataAccessError",
    "ModelError",
    "Timestamp",
    "EnumType",
    "DataAttribute",
    "DataObject",
    "ControlBlock",
    "DataSet",
    "FCDA",
    "LogicalNode",
    "LogicalDevice",
    "SettingGroupControl",
    "ServiceLimits",
    "DEFAULT_RESV_TMS",
    "ServerModel",
    "quality_bits",
    "GOOD",
]

#: Functional constraints in the 8-1 order of an LN's first structure level (XX is never mapped).
FC_ORDER = (
    "MX", "ST", "CO", "CF", "DC", "SP", "SG", "RP", "LG", "BR",
    "GO", "GS", "SV", "SE", "EX", "MS", "US", "OR", "BL", "SR",
)  # fmt: skip
FCS = frozenset(FC_ORDER)

#: The Python kind of each SCL basic type (``(kind, bits-or-bound)``).
BTYPE_KIND: dict[str, tuple[str, int]] = {
    "BOOLEAN": ("bool", 0),
    "INT8": ("int", 8), "INT16": ("int", 16), "INT24": ("int", 24), "INT32": ("int", 32),
    "INT64": ("int", 64), "INT128": ("int", 128),
    "INT8U": ("uint", 8), "INT16U": ("uint", 16), "INT24U": ("uint", 24), "INT32U": ("uint", 32),
    "FLOAT32": ("float", 32), "FLOAT64": ("float", 64),
    "Enum": ("enum", 0),
    "Dbpos": ("coded", 2), "Tcmd": ("coded", 2),
    "Check": ("bits", 2), "Quality": ("bits", 13), "TrgOps": ("bits", 6), "OptFlds": ("bits", 10),
    "SvOptFlds": ("bits", 5), "LogOptFlds": ("bits", 1),
    "VisString32": ("str", 32), "VisString64": ("str", 64), "VisString65": ("str", 65),
    "VisString129": ("str", 129), "VisString255": ("str", 255),
    "Unicode255": ("ustr", 255), "ObjRef": ("str", 129), "Currency": ("str", 3),
    "Octet64": ("bytes", 64), "Octet6": ("bytes", 6), "EntryID": ("bytes", 8),
    "Timestamp": ("time", 0), "EntryTime": ("time", 0),
    "PhyComAddr": ("struct", 0), "Struct": ("struct", 0),
}  # fmt: skip

#: The names of the coded enumerations' values (7-2/7-3), ordinal = index; SCL writes names.
CODED_ENUM_NAMES: dict[str, tuple[str, ...]] = {
    "Dbpos": ("intermediate-state", "off", "on", "bad-state"),
    "Tcmd": ("stop", "lower", "higher", "reserved"),
}

#: Quality with validity good and no flags.
GOOD = "0" * 13
_VALIDITY = {"good": "00", "invalid": "01", "reserved": "10", "questionable": "11"}
_QUALITY_FLAGS = (
    "overflow", "outOfRange", "badReference", "oscillatory", "failure", "oldData",
    "inconsistent", "inaccurate", "source", "test", "operatorBlocked",
)  # fmt: skip


def quality_bits(validity: str = "good", **flags: bool) -> str:
    """Quality as its 13-bit string: ``quality_bits("invalid", failure=True)``."""
    if validity not in _VALIDITY:
        raise InvalidArgument(f"validity must be one of {sorted(_VALIDITY)}")
    unknown = set(flags) - set(_QUALITY_FLAGS)
    if unknown:
        raise InvalidArgument(f"unknown quality flags {sorted(unknown)}")
    return _VALIDITY[validity] + "".join("1" if flags.get(f) else "0" for f in _QUALITY_FLAGS)


# MMS DataAccessError codes (ISO 9506-2), the per-item failures of read/write.
class DataAccessError:
    OBJECT_INVALIDATED = "object-invalidated"
    HARDWARE_FAULT = "hardware-fault"
    TEMPORARILY_UNAVAILABLE = "temporarily-unavailable"
    OBJECT_ACCESS_DENIED = "object-access-denied"
    OBJECT_UNDEFINED = "object-undefined"
    INVALID_ADDRESS = "invalid-address"
    TYPE_UNSUPPORTED = "type-unsupported"
    TYPE_INCONSISTENT = "type-inconsistent"
    OBJECT_ATTRIBUTE_INCONSISTENT = "object-attribute-inconsistent"
    OBJECT_ACCESS_UNSUPPORTED = "object-access-unsupported"
    OBJECT_NON_EXISTENT = "object-non-existent"
    OBJECT_VALUE_INVALID = "object-value-invalid"


class ModelError(Iec61850Error):
    """An access to the model failed; ``code`` is a :class:`DataAccessError` value."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class EnumType:
    """An SCL EnumType: ordinals and their names."""

    id: str
    values: dict[int, str]

    def ordinal(self, name: str) -> int:
        for ordinal, text in self.values.items():
            if text == name:
                return ordinal
        raise KeyError(name)


def default_value(btype: str, enum: EnumType | None = None) -> Any:
    kind, size = BTYPE_KIND.get(btype, ("struct", 0))
    if kind == "bool":
        return False
    if kind in ("int", "uint", "coded"):
        return 0
    if kind == "enum":
        return min(enum.values) if enum and enum.values else 0
    if kind == "float":
        return 0.0
    if kind == "bits":
        return "0" * size
    if kind in ("str", "ustr"):
        return ""
    if kind == "bytes":
        return b"\x00" * 8 if btype == "EntryID" else b""
    if kind == "time":
        return Timestamp()
    return None


def check_value(btype: str, value: Any, enum: EnumType | None = None) -> Any:
    """Return ``value`` normalised for ``btype``, or raise ``ModelError(type-inconsistent)``."""
    kind, size = BTYPE_KIND.get(btype, ("struct", 0))

    def bad(why: str) -> ModelError:
        return ModelError(DataAccessError.TYPE_INCONSISTENT, f"{btype}: {why} ({value!r})")

    if kind == "bool":
        if not isinstance(value, bool):
            raise bad("expected a boolean")
        return value
    if kind in ("int", "uint", "enum", "coded"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("expected an integer")
        if kind == "int" and not -(1 << (size - 1)) <= value < (1 << (size - 1)):
            raise ModelError(DataAccessError.OBJECT_VALUE_INVALID, f"{btype} out of range: {value}")
        if kind == "uint" and not 0 <= value < (1 << size):
            raise ModelError(DataAccessError.OBJECT_VALUE_INVALID, f"{btype} out of range: {value}")
        if kind == "coded" and not 0 <= value < (1 << size):
            raise ModelError(DataAccessError.OBJECT_VALUE_INVALID, f"{btype} out of range: {value}")
        if kind == "enum" and not -(1 << 31) <= value < (1 << 31):
            raise ModelError(DataAccessError.OBJECT_VALUE_INVALID, f"{btype} out of range: {value}")
        return value
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad("expected a number")
        return float(value)
    if kind == "bits":
        if not isinstance(value, str) or len(value) != size or set(value) - {"0", "1"}:
            raise bad(f"expected {size} bits as a 0/1 string")
        return value
    if kind in ("str", "ustr"):
        if not isinstance(value, str):
            raise bad("expected a string")
        limit = size * (4 if kind == "ustr" else 1)
        if len(value.encode("utf-8" if kind == "ustr" else "ascii", "replace")) > limit:
            raise ModelError(DataAccessError.OBJECT_VALUE_INVALID, f"{btype} too long")
        if kind == "str" and not all(" " <= ch <= "~" for ch in value):
            raise ModelError(DataAccessError.OBJECT_VALUE_INVALID, f"{btype}: not visible ASCII")
        if kind == "ustr" and any(
            (ch < " " and ch not in "\t\n\r") or "\ud800" <= ch <= "\udfff" or ch in "\ufffe\uffff"
            for ch in value
        ):
            raise ModelError(DataAccessError.OBJECT_VALUE_INVALID, f"{btype}: not XML characters")
        return value
    if kind == "bytes":
        if not isinstance(value, (bytes, bytearray)):
            raise bad("expected bytes")
        if len(value) > size:
            raise ModelError(DataAccessError.OBJECT_VALUE_INVALID, f"{btype} too long")
        return bytes(value)
    if kind == "time":
        if not isinstance(value, Timestamp):
            raise bad("expected a Timestamp")
        return value
    raise bad("structures are written member by member")


class DataAttribute:
    """A (basic or structured) data attribute with its FC; arrays hold ``elements``."""

    __slots__ = (
        "name", "fc", "btype", "type_id", "enum", "children", "elements", "count",
        "value", "parent", "trigger", "values_by_sg", "fcset", "val_kind",
    )  # fmt: skip

    def __init__(
        self,
        name: str,
        fc: str,
        btype: str,
        *,
        type_id: str = "",
        enum: EnumType | None = None,
        count: int = 0,
        trigger: frozenset[str] = frozenset(),
    ) -> None:
        self.name = name
        self.fc = fc
        self.btype = btype
        self.type_id = type_id
        self.enum = enum
        self.children: dict[str, DataAttribute] = {}
        self.elements: list[DataAttribute] = []
        self.count = count
        self.value: Any = None if self.is_struct or count else default_value(btype, enum)
        self.parent: Node | None = None
        self.trigger = trigger
        # FC SG/SE attributes keep one value per setting group (index 1..numOfSG).
        self.values_by_sg: dict[int, Any] | None = None
        self.fcset: frozenset[str] | None = None  # cache of fcs_of(); the tree is fixed
        #: SCL valKind (IEC 61850-6): ``Spec``, ``Conf`` (default), ``RO`` or ``Set``.
        self.val_kind = "Conf"

    @property
    def is_struct(self) -> bool:
        return self.btype in ("Struct", "PhyComAddr")

    def add(self, child: DataAttribute) -> DataAttribute:
        child.parent = self
        self.children[child.name] = child
        self.fcset = None
        return child

    def reference(self) -> str:
        return _reference(self)

    def __repr__(self) -> str:
        return f"<DA {self.reference()} [{self.fc}] {self.btype}>"


class DataObject:
    """A data object (CDC instance): data attributes and sub data objects. An SDO array (SCL
    ``count``) holds its ``elements`` (data objects named ``0``, ``1``, ...) and no children."""

    __slots__ = ("name", "cdc", "type_id", "children", "parent", "count", "fcset", "elements")

    def __init__(self, name: str, cdc: str = "", type_id: str = "", count: int = 0) -> None:
        self.name = name
        self.cdc = cdc
        self.type_id = type_id
        self.count = count
        self.children: dict[str, DataObject | DataAttribute] = {}
        self.elements: list[DataObject] = []
        self.parent: Node | None = None
        self.fcset: frozenset[str] | None = None

    def add(self, child: DataObject | DataAttribute) -> DataObject | DataAttribute:
        child.parent = self
        self.children[child.name] = child
        self.fcset = None
        return child

    @property
    def ctl_model(self) -> int | None:
        """The ordinal of ``ctlModel`` (0 status-only ... 4 sbo-with-enhanced-security)."""
        attr = self.children.get("ctlModel")
        return attr.value if isinstance(attr, DataAttribute) else None

    def reference(self) -> str:
        return _reference(self)

    def __repr__(self) -> str:
        return f"<DO {self.reference()} {self.cdc}>"


Node = Union[DataObject, DataAttribute, "ControlBlock", "LogicalNode"]


@dataclass(frozen=True)
class FCDA:
    """A data set member: a functionally constrained data (attribute) reference."""

    ref: str  # LD/LN.DO[.DA...]
    fc: str

    def __str__(self) -> str:
        return f"{self.ref}[{self.fc}]"


@dataclass
class DataSet:
    """A data set; ``persistent`` ones live in an LN (from SCL or CreateDataSet on an LN)."""

    name: str
    members: list[FCDA]
    owner: LogicalNode | None = None
    persistent: bool = True
    deletable: bool = False

    def reference(self) -> str:
        if self.owner is not None:
            return f"{self.owner.reference()}.{self.name}"
        return f"@{self.name}"


class ControlBlock(DataObject):
    """A control block (RCB, LCB, GoCB, MSVCB, SGCB) as a structured attribute of an LN in its FC.

    ``kind`` is ``URCB``, ``BRCB``, ``LCB``, ``GoCB``, ``MSVCB`` or ``SGCB``; ``writable`` names
    the attributes a client may set, ``writable_when_disabled`` those it may set while the
    enable attribute (``enable_attr``) is false. ``config`` holds SCL settings that are no MMS
    attribute (LogControl ``reasonCode``, ``bufTime``).
    """

    __slots__ = ("kind", "fc", "writable", "writable_when_disabled", "enable_attr", "config")

    def __init__(self, name: str, kind: str, fc: str) -> None:
        super().__init__(name, cdc=kind)
        self.kind = kind
        self.fc = fc
        self.writable: frozenset[str] = frozenset()
        self.writable_when_disabled: frozenset[str] = frozenset()
        self.enable_attr: str | None = None
        self.config: dict[str, Any] = {}

    def attr(self, name: str, btype: str, value: Any = None, **kw: Any) -> DataAttribute:
        da = DataAttribute(name, self.fc, btype, **kw)
        if value is not None:
            da.value = check_value(btype, value, da.enum)
        self.add(da)
        return da

    @property
    def dataset_ref(self) -> str:
        attr = self.children.get("DatSet")
        return attr.value if isinstance(attr, DataAttribute) else ""

    def __repr__(self) -> str:
        return f"<{self.kind} {self.reference()}>"


#: Reservation time of an edit setting group when SCL asks for ``ResvTms`` (``SGEdit
#: resvTms="true"``) but its ``SettingControl`` gives no ``resvTms``.
DEFAULT_RESV_TMS = 30


@dataclass
class SettingGroupControl:
    """State of a setting group control block (SGCB, LLN0$SP$SGCB).

    ``editor`` is who called SelectEditSG (7-2 Ed2): the server's association key, or ``None``
    for the local application. Only the editor may SetEditSGValue / ConfirmEditSGValues or
    select another edit group; the reservation ends with SelectEditSG 0, the end of the
    editor's association (:meth:`ServerModel.release_sg_edits`) or, when ``resv_tms`` is set
    (SGCB ``ResvTms``), ``resv_tms`` seconds after SelectEditSG
    (:meth:`ServerModel.expire_sg_reservations`).
    """

    num_of_sg: int
    act_sg: int
    edit_sg: int = 0
    cnf_edit: bool = False
    block: ControlBlock | None = None
    resv_tms: int | None = None
    editor: Hashable | None = None
    reserved_until: float | None = None


class LogicalNode:
    """A logical node: data objects, data sets and control blocks."""

    def __init__(self, ln_class: str, inst: str = "", prefix: str = "", ln_type: str = "") -> None:
        self.ln_class = ln_class
        self.inst = inst
        self.prefix = prefix
        self.ln_type = ln_type
        self.name = f"{prefix}{ln_class}{inst}"
        self.children: dict[str, DataObject] = {}
        self.datasets: dict[str, DataSet] = {}
        self.parent: LogicalDevice | None = None
        self.sgcb: SettingGroupControl | None = None
        self._fcs: list[str] | None = None

    def add(self, child: DataObject) -> DataObject:
        if child.name in self.children:
            raise InvalidArgument(f"{self.name}: duplicate data object {child.name}")
        child.parent = self
        self.children[child.name] = child
        self._fcs = None
        return child

    @property
    def control_blocks(self) -> list[ControlBlock]:
        return [c for c in self.children.values() if isinstance(c, ControlBlock)]

    def reference(self) -> str:
        return f"{self.parent.name}/{self.name}" if self.parent else self.name

    def fcs(self) -> list[str]:
        """The FCs present in this LN, in the 8-1 order (its MMS first structure level)."""
        if self._fcs is None:
            present = {fc for child in self.children.values() for fc in fcs_of(child)}
            self._fcs = [fc for fc in FC_ORDER if fc in present]
        return self._fcs

    def __repr__(self) -> str:
        return f"<LN {self.reference()}>"


class LogicalDevice:
    """A logical device (MMS domain ``name``)."""

    def __init__(self, inst: str, name: str) -> None:
        self.inst = inst
        self.name = name
        self.children: dict[str, LogicalNode] = {}
        self.parent: ServerModel | None = None

    def add(self, ln: LogicalNode) -> LogicalNode:
        if ln.name in self.children:
            raise InvalidArgument(f"{self.name}: duplicate logical node {ln.name}")
        ln.parent = self
        self.children[ln.name] = ln
        return ln

    def __repr__(self) -> str:
        return f"<LD {self.name}>"


def _reference(node: Any) -> str:
    parts: list[str] = []
    while isinstance(node, (DataObject, DataAttribute)):
        parts.append(node.name)
        node = node.parent
    if isinstance(node, LogicalNode):
        parts.append(node.reference())
    return ".".join(reversed(parts))


def fcs_of(node: DataObject | DataAttribute) -> frozenset[str]:
    """Every FC under ``node`` (SG attributes count for SE too: the edit view of settings)."""
    cached = node.fcset
    if cached is not None:
        return cached
    if isinstance(node, DataAttribute):
        result = frozenset({"SG", "SE"} if node.fc in ("SG", "SE") else {node.fc})
    elif isinstance(node, ControlBlock):
        result = frozenset({node.fc})
    else:
        acc: set[str] = set()
        for child in list(node.children.values()) + node.elements[:1]:
            acc |= fcs_of(child)
        result = frozenset(acc)
    node.fcset = result
    return result


def has_fc(node: DataObject | DataAttribute, fc: str) -> bool:
    return fc in fcs_of(node)


def children_with_fc(node: Any, fc: str) -> Iterator[DataObject | DataAttribute]:
    """The children of ``node`` visible in ``fc`` (all children of an attribute structure)."""
    if isinstance(node, DataAttribute):
        yield from node.children.values()
        return
    for child in node.children.values():
        if has_fc(child, fc):
            yield child


def _read_leaves(node: Any, fc: str) -> Iterator[DataAttribute]:
    """The basic attributes a read of ``node`` in ``fc`` returns (array elements included)."""
    if isinstance(node, DataAttribute):
        if node.elements:
            for element in node.elements:
                yield from _read_leaves(element, fc)
        elif node.children:
            for component in node.children.values():
                yield from _read_leaves(component, fc)
        else:
            yield node
        return
    for element in getattr(node, "elements", ()):
        yield from _read_leaves(element, fc)
    for child in children_with_fc(node, fc):
        yield from _read_leaves(child, fc)


WriteHook = Callable[["ServerModel", DataAttribute, str, Any, str], "str | None"]
ReadHook = Callable[["ServerModel", DataAttribute, str, str], "str | None"]
UpdateListener = Callable[[DataAttribute, Any], None]
#: ``listener(attr, old, new)``: what report and log triggers need (dchg/qchg compare old and new).
ChangeListener = Callable[[DataAttribute, Any, Any], None]

#: FCs whose attributes a client may write with SetDataValues (7-2: CF, DC, SP, SV, BL; SE only
#: after SelectEditSG). ST, MX, SG, EX, OR are server-owned; CO goes through the control model;
#: RP/BR/LG/GO/MS through their control blocks.
DEFAULT_WRITABLE_FCS = frozenset({"CF", "DC", "SP", "SV", "BL", "SE", "US"})
#: Selections in one alternateAccess (the peer chooses; a 61850 model is far shallower).
MAX_ACCESS_STEPS = 16
#: SCL valKinds whose attributes no client write may change.
READ_ONLY_VAL_KINDS = frozenset({"RO", "Spec"})
#: Every SCL valKind (tValKindEnum).
VAL_KINDS = frozenset({"Spec", "Conf", "RO", "Set"})


@dataclass
class ServiceLimits:
    """What the SCL ``Services`` element of the IED allows online (IEC 61850-6 tServices).

    ``None`` is "no limit stated"; a model built without SCL ``Services`` has no limits.
    """

    #: DynAssociation max: simultaneous associations.
    max_associations: int | None = None
    #: DynDataSet: CreateDataSet allowed at all, how many dynamic data sets may exist (the
    #: server's persistent ones plus the calling association's own), members per data set.
    dyn_datasets: bool = True
    dyn_datasets_max: int | None = None
    dyn_dataset_attributes: int | None = None
    #: SettingGroups: SGEdit (SelectEditSG & co.), ConfSG (SelectActiveSG), SGEdit resvTms.
    sg_edit: bool = True
    sg_select_active: bool = True
    sg_resv_tms: bool = False
    #: FileHandling: the file services (GetFile, SetFile, DeleteFile, file directory).
    file_handling: bool = True


class ServerModel:
    """An IED's data model with addressing, value updates, write policy and hooks."""

    def __init__(self, ied_name: str) -> None:
        self.ied_name = ied_name
        self.children: dict[str, LogicalDevice] = {}
        self.enum_types: dict[str, EnumType] = {}
        self.jid: str | None = None
        self.limits = ServiceLimits()
        self.writable_fcs: set[str] = set(DEFAULT_WRITABLE_FCS)
        #: The time stamps the server stamps (``t`` of updates, LActTm): an SNTP-fed
        #: ClockSource's ``timestamp`` carries its TimeQuality (see IedServer ``clock=``).
        self.clock: Callable[[], Timestamp] = Timestamp.now
        self._write_hooks: list[WriteHook] = []
        self._read_hooks: list[ReadHook] = []
        self._listeners: list[UpdateListener] = []
        self._change_listeners: list[ChangeListener] = []
        # SetEditSGValue buffers per logical device, until ConfirmEditSGValues or a new
        # SelectEditSG. (Non-persistent data sets live in their association, not here.)
        self._sg_edits: dict[str, dict[DataAttribute, Any]] = {}

    # ---------------------------------------------------------------- structure
    def add(self, ld: LogicalDevice) -> LogicalDevice:
        if ld.name in self.children:
            raise InvalidArgument(f"duplicate logical device {ld.name}")
        ld.parent = self
        self.children[ld.name] = ld
        return ld

    @property
    def logical_devices(self) -> list[LogicalDevice]:
        return list(self.children.values())

    def logical_device(self, name: str) -> LogicalDevice:
        try:
            return self.children[name]
        except KeyError:
            raise ModelError(
                DataAccessError.OBJECT_NON_EXISTENT, f"no logical device {name!r}"
            ) from None

    def logical_node(self, ref: str) -> LogicalNode:
        """``LD/LN`` -> the logical node."""
        ld_name, sep, ln_name = ref.partition("/")
        if not sep:
            raise ModelError(DataAccessError.INVALID_ADDRESS, f"not an LN reference: {ref!r}")
        ld = self.logical_device(ld_name)
        try:
            return ld.children[ln_name]
        except KeyError:
            raise ModelError(
                DataAccessError.OBJECT_NON_EXISTENT, f"no logical node {ref!r}"
            ) from None

    def find(self, ref: str, fc: str | None = None) -> Any:
        """Resolve ``LD/LN[.DO[.SDO][.DA[.BDA]]]``, checking ``fc`` when given.

        Raises :class:`ModelError` with ``object-non-existent`` (no such object, or nothing of
        it in ``fc``) or ``invalid-address`` (malformed reference, FC ``XX`` or unknown FC).
        """
        if fc is not None and fc not in FCS:
            raise ModelError(DataAccessError.INVALID_ADDRESS, f"unknown or unmapped FC {fc!r}")
        if len(ref) > 129:
            raise ModelError(DataAccessError.INVALID_ADDRESS, "ObjectReference longer than 129")
        ln_ref, _, rest = ref.partition(".")
        node: Any = self.logical_node(ln_ref)
        if rest:
            for part in rest.split("."):
                child = node.children.get(part)
                if child is None:
                    raise ModelError(DataAccessError.OBJECT_NON_EXISTENT, f"no object {ref!r}")
                node = child
        if fc is not None and not isinstance(node, LogicalNode) and not has_fc(node, fc):
            raise ModelError(DataAccessError.OBJECT_NON_EXISTENT, f"{ref!r} has nothing in {fc}")
        return node

    def find_mms(self, domain: str, item: str) -> tuple[Any, str]:
        """Resolve an MMS name (domain ``LD``, item ``LN$FC$DO$DA``) -> (node, fc).

        ``LN`` alone gives the LN with fc ``""``; ``LN$FC`` gives the LN with that FC.
        """
        parts = item.split("$")
        if any(not p for p in parts):
            raise ModelError(DataAccessError.INVALID_ADDRESS, f"malformed item {item!r}")
        ld = self.logical_device(domain)
        ln = ld.children.get(parts[0])
        if ln is None:
            raise ModelError(DataAccessError.OBJECT_NON_EXISTENT, f"no LN {domain}/{parts[0]}")
        if len(parts) == 1:
            return ln, ""
        fc = parts[1]
        if fc not in FCS:
            raise ModelError(DataAccessError.OBJECT_NON_EXISTENT, f"FC {fc!r} not mapped")
        if fc not in ln.fcs():
            raise ModelError(
                DataAccessError.OBJECT_NON_EXISTENT, f"{domain}/{parts[0]} has no {fc}"
            )
        node: Any = ln
        for part in parts[2:]:
            child = node.children.get(part)
            if child is None or not (isinstance(child, DataAttribute) or has_fc(child, fc)):
                raise ModelError(DataAccessError.OBJECT_NON_EXISTENT, f"no object {domain}/{item}")
            node = child
        return node, fc

    def select_access(self, node: Any, fc: str, steps: list[tuple]) -> tuple[Any, str]:
        """Apply an MMS alternateAccess (8-2 8.2.6) to a resolved variable: ``steps`` is the
        chain of ``("component", name)`` and ``("index", n)`` selections, outermost first.

        A component selects, in an LN read whole, its FC; in an LN's FC, a data object; in a
        data object or structure, a member (an FCD / FCDA inside the LN); an index selects
        one element of a DA or SDO array. Returns the selected node and its FC.
        """
        if len(steps) > MAX_ACCESS_STEPS:
            raise ModelError(
                DataAccessError.OBJECT_ACCESS_UNSUPPORTED,
                f"alternateAccess deeper than {MAX_ACCESS_STEPS}",
            )
        for step in steps:
            kind = step[0]
            elements = getattr(node, "elements", None)
            if kind == "component":
                name = step[1]
                if elements:
                    raise ModelError(
                        DataAccessError.OBJECT_ATTRIBUTE_INCONSISTENT,
                        f"{name!r}: {node.name} is an array, select an index",
                    )
                if isinstance(node, LogicalNode) and not fc:
                    if name not in node.fcs():
                        raise ModelError(
                            DataAccessError.OBJECT_NON_EXISTENT, f"{node.name} has no {name}"
                        )
                    fc = name
                    continue
                if isinstance(node, DataAttribute) and not node.children:
                    raise ModelError(
                        DataAccessError.OBJECT_ATTRIBUTE_INCONSISTENT,
                        f"component {name!r} of the basic attribute {node.name}",
                    )
                child = node.children.get(name)
                if child is None or not (isinstance(child, DataAttribute) or has_fc(child, fc)):
                    raise ModelError(
                        DataAccessError.OBJECT_NON_EXISTENT, f"no component {name!r} in {fc}"
                    )
                node = child
            elif kind == "index":
                if not elements:
                    raise ModelError(
                        DataAccessError.OBJECT_ATTRIBUTE_INCONSISTENT,
                        f"index {step[1]}: {getattr(node, 'name', node)} is not an array",
                    )
                if not 0 <= step[1] < len(elements):
                    raise ModelError(
                        DataAccessError.OBJECT_NON_EXISTENT,
                        f"no element {step[1]} in {node.name}[0..{len(elements) - 1}]",
                    )
                node = elements[step[1]]
            else:
                raise ModelError(
                    DataAccessError.OBJECT_ACCESS_UNSUPPORTED,
                    f"alternateAccess {kind} is not supported (component and index are)",
                )
        return node, fc

    def walk_attributes(self, node: Any, fc: str) -> Iterator[DataAttribute]:
        """Every basic attribute under ``node`` visible in ``fc``, depth first in model order."""
        if isinstance(node, DataAttribute):
            if not node.children and not node.elements:
                yield node
            for component in node.children.values():
                yield from self.walk_attributes(component, fc)
            return
        for element in getattr(node, "elements", ()):
            yield from self.walk_attributes(element, fc)
        for child in children_with_fc(node, fc):
            yield from self.walk_attributes(child, fc)

    # ---------------------------------------------------------------- values
    def sg_value_index(self, attr: DataAttribute, fc: str) -> int | None:
        """For SG/SE attributes: the setting group whose value ``fc`` sees."""
        if attr.values_by_sg is None:
            return None
        sgcb = self._sgcb_of(attr)
        if sgcb is None:
            return None
        return sgcb.edit_sg if fc == "SE" else sgcb.act_sg

    def get_value(self, attr: DataAttribute, fc: str | None = None) -> Any:
        """The value of a basic attribute as seen through ``fc``."""
        if attr.values_by_sg is not None:
            idx = self.sg_value_index(attr, fc or attr.fc)
            if not idx:
                # SE before any SelectEditSG shows the active group (writes are still refused):
                # a whole-LN read must not fail because nobody is editing settings.
                idx = self.sg_value_index(attr, "SG")
            return attr.values_by_sg.get(idx or 1, attr.value)
        return attr.value

    def _sgcb_of(self, node: Any) -> SettingGroupControl | None:
        while node is not None and not isinstance(node, LogicalDevice):
            node = node.parent
        if node is None:
            return None
        lln0 = node.children.get("LLN0")
        return lln0.sgcb if lln0 is not None else None

    def read(self, ref: str, fc: str) -> Any:
        """The value of a basic attribute, or a dict tree for a structured one."""
        return self.to_python(self.find(ref, fc), fc)

    def to_python(self, node: Any, fc: str) -> Any:
        if isinstance(node, DataAttribute) and not node.children and not node.elements:
            return self.get_value(node, fc)
        if isinstance(node, (DataAttribute, DataObject)) and node.elements:
            return [self.to_python(e, fc) for e in node.elements]
        return {child.name: self.to_python(child, fc) for child in children_with_fc(node, fc)}

    def update(
        self,
        ref: str,
        value: Any,
        *,
        quality: str | None = None,
        timestamp: Timestamp | float | None = None,
        sg: int | None = None,
    ) -> None:
        """Set a basic attribute from application code (no write policy; type-checked).

        ``quality`` and ``timestamp`` go to the ``q`` and ``t`` siblings of the same FC when the
        data object has them; ``timestamp=None`` stamps ``t`` with now. ``sg`` addresses one
        setting group of an SG attribute.
        """
        attr = self.find(ref)
        if not isinstance(attr, DataAttribute) or attr.children or attr.elements:
            raise ModelError(DataAccessError.TYPE_INCONSISTENT, f"{ref} is not a basic attribute")
        self._set(attr, check_value(attr.btype, value, attr.enum), sg)
        parent = attr.parent
        while isinstance(parent, DataAttribute):  # mag.f -> the data object holding q and t
            parent = parent.parent
        if isinstance(parent, DataObject) and attr.name not in ("q", "t"):
            q = parent.children.get("q")
            if isinstance(q, DataAttribute) and q.fc == attr.fc:
                if quality is not None:
                    self._set(q, check_value("Quality", quality))
            elif quality is not None:
                raise ModelError(DataAccessError.OBJECT_NON_EXISTENT, f"{ref}: no quality")
            t = parent.children.get("t")
            if isinstance(t, DataAttribute) and t.fc == attr.fc:
                if isinstance(timestamp, (int, float)):
                    timestamp = Timestamp.from_float(float(timestamp))
                self._set(t, timestamp or self.clock())

    def _set(self, attr: DataAttribute, value: Any, sg: int | None = None) -> None:
        if attr.values_by_sg is not None:
            sgcb = self._sgcb_of(attr)
            idx = sg or (sgcb.act_sg if sgcb else 1)
            old = attr.values_by_sg.get(idx, attr.value)
            attr.values_by_sg[idx] = value
        else:
            old = attr.value
            attr.value = value
        for listener in self._listeners:
            listener(attr, value)
        for change in self._change_listeners:
            change(attr, old, value)

    def add_update_listener(self, listener: UpdateListener) -> None:
        """Call ``listener(attr, value)`` after every value change (reports, logs, UIs)."""
        self._listeners.append(listener)

    def add_change_listener(self, listener: ChangeListener) -> None:
        """Call ``listener(attr, old, new)`` after every value store (also unchanged values: a
        data update ``dupd`` is a trigger of its own)."""
        self._change_listeners.append(listener)

    def add_write_hook(self, hook: WriteHook) -> None:
        """Register ``hook(model, attr, fc, value, originator) -> None | DataAccessError code``.

        Hooks run after the FC policy and the type check, before the value is stored; returning
        an error code (e.g. ``DataAccessError.OBJECT_ACCESS_DENIED``) refuses the write.
        """
        self._write_hooks.append(hook)

    def check_write_hooks(
        self, attr: DataAttribute, fc: str, value: Any, originator: str = ""
    ) -> None:
        """Run the write hooks on one client write (also the SGCB services' writes)."""
        for hook in self._write_hooks:
            code = hook(self, attr, fc, value, originator)
            if code:
                raise ModelError(code, f"refused by the application: {attr.reference()}")

    def add_read_hook(self, hook: ReadHook) -> None:
        """Register ``hook(model, attr, fc, originator) -> None | DataAccessError code``.

        The symmetric of :meth:`add_write_hook` for client reads (GetDataValues,
        GetAllDataValues, GetDataSetValues, GetEditSGValue, control block reads): it is called
        for every basic attribute a read covers (array elements one by one), and one refusal
        (e.g. ``DataAccessError.OBJECT_ACCESS_DENIED``) fails that whole variable, as MMS has no
        partial value. ``originator`` is the client's full JID. Application reads
        (:meth:`read`) and the type/name services (GetDataDefinition, directories) are not
        gated.
        """
        self._read_hooks.append(hook)

    def check_read(self, node: Any, fc: str, originator: str = "") -> None:
        """Raise :class:`ModelError` when a read hook refuses a client's read of ``node``
        through ``fc`` (``fc == ""`` on an LN: all its FCs)."""
        if not self._read_hooks:
            return
        fcs = node.fcs() if isinstance(node, LogicalNode) and not fc else [fc]
        for f in fcs:
            for attr in _read_leaves(node, f):
                for hook in self._read_hooks:
                    code = hook(self, attr, f, originator)
                    if code:
                        raise ModelError(
                            code, f"read refused by the application: {attr.reference()}"
                        )

    def write(
        self,
        attr: DataAttribute,
        fc: str,
        value: Any,
        originator: str = "",
        editor: Hashable = None,
    ) -> None:
        """A client's write of one basic attribute through ``fc`` (policy, type, hooks).

        ``editor`` identifies the writer for FC SE (its association key; ``None``: local)."""
        self.store_write(attr, fc, self.check_write(attr, fc, value, originator, editor))

    def check_write(
        self,
        attr: DataAttribute,
        fc: str,
        value: Any,
        originator: str = "",
        editor: Hashable = None,
    ) -> Any:
        """Everything :meth:`write` checks (policy, type, range, hooks), storing nothing: the
        normalised value, for :meth:`store_write`. A structured write checks all its
        attributes before it stores any. SE writes need ``editor`` to hold the SelectEditSG
        reservation."""
        if fc not in self.writable_fcs and not isinstance(attr.parent, ControlBlock):
            raise ModelError(DataAccessError.OBJECT_ACCESS_DENIED, f"FC {fc} is not writable")
        if attr.val_kind in READ_ONLY_VAL_KINDS:
            # SCL valKind RO: never changed online; Spec: a specification, not a value the IED
            # runs with. Set and Conf follow the FC write policy.
            raise ModelError(
                DataAccessError.OBJECT_ACCESS_DENIED,
                f"{attr.reference()} is valKind {attr.val_kind} in the SCL: not writable online",
            )
        cb = attr.parent if isinstance(attr.parent, ControlBlock) else None
        if cb is not None:
            self._check_cb_write(cb, attr)
        value = check_value(attr.btype, value, attr.enum)
        if attr.enum is not None and value not in attr.enum.values:
            raise ModelError(DataAccessError.OBJECT_VALUE_INVALID, f"{value} not in {attr.enum.id}")
        if fc == "SE":
            sgcb = self._sgcb_of(attr)
            if sgcb is None or not sgcb.edit_sg:
                raise ModelError(
                    DataAccessError.TEMPORARILY_UNAVAILABLE, "SelectEditSG has not been done"
                )
            self._check_editor(self._ld_of(attr).name, sgcb, editor)
        self.check_write_hooks(attr, fc, value, originator)
        return value

    def store_write(self, attr: DataAttribute, fc: str, value: Any) -> None:
        """Store a value :meth:`check_write` accepted (SE: into the edit buffer)."""
        if fc == "SE":
            assert attr.values_by_sg is not None
            self._sg_edit_buffer(attr)[attr] = value
            return
        self._set(attr, value)

    def _check_cb_write(self, cb: ControlBlock, attr: DataAttribute) -> None:
        if attr.name in cb.writable:
            return
        if attr.name in cb.writable_when_disabled:
            # (a DatSet value is checked against the data sets by the service layer)
            enable = cb.children.get(cb.enable_attr or "")
            if isinstance(enable, DataAttribute) and enable.value:
                raise ModelError(
                    DataAccessError.TEMPORARILY_UNAVAILABLE,
                    f"{cb.name}.{attr.name} is writable only while disabled",
                )
            return
        raise ModelError(
            DataAccessError.OBJECT_ACCESS_DENIED, f"{cb.name}.{attr.name} is read-only"
        )

    # ---------------------------------------------------------------- setting groups
    @staticmethod
    def _ld_of(node: Any) -> LogicalDevice:
        while not isinstance(node, LogicalDevice):
            node = node.parent
        return node

    def _sg_edit_buffer(self, attr: Any) -> dict[DataAttribute, Any]:
        return self._sg_edits.setdefault(self._ld_of(attr).name, {})

    def sgcb(self, ld_name: str) -> SettingGroupControl:
        ld = self.logical_device(ld_name)
        lln0 = ld.children.get("LLN0")
        if lln0 is None or lln0.sgcb is None:
            raise ModelError(DataAccessError.OBJECT_NON_EXISTENT, f"{ld_name} has no SGCB")
        return lln0.sgcb

    def select_active_sg(self, ld_name: str, sg: int) -> None:
        """SelectActiveSG: make ``sg`` the active group (1..NumOfSG)."""
        sgcb = self.sgcb(ld_name)
        if not 1 <= sg <= sgcb.num_of_sg:
            raise ModelError(DataAccessError.OBJECT_VALUE_INVALID, f"no setting group {sg}")
        sgcb.act_sg = sg
        self._sync_sgcb(sgcb, activated=True)

    def _check_editor(self, ld_name: str, sgcb: SettingGroupControl, editor: Hashable) -> None:
        # 7-2 Ed2 instance-locked-by-other-client; 8-1 maps it to temporarily-unavailable.
        if sgcb.edit_sg and sgcb.editor != editor:
            raise ModelError(
                DataAccessError.TEMPORARILY_UNAVAILABLE,
                f"{ld_name}: setting group {sgcb.edit_sg} is reserved for editing by another"
                " association",
            )

    def select_edit_sg(
        self, ld_name: str, sg: int, editor: Hashable = None, now: float | None = None
    ) -> None:
        """SelectEditSG: ``sg`` (1..NumOfSG) becomes editable by ``editor`` (an association
        key; ``None`` is the local application); 0 ends editing. Either drops the unconfirmed
        edits. Refused while another editor holds the reservation. ``now`` (monotonic seconds)
        starts the ``ResvTms`` reservation and expires an old one."""
        sgcb = self.sgcb(ld_name)
        if now is not None:
            self.expire_sg_reservations(now)
        if not 0 <= sg <= sgcb.num_of_sg:
            raise ModelError(DataAccessError.OBJECT_VALUE_INVALID, f"no setting group {sg}")
        self._check_editor(ld_name, sgcb, editor)
        self._sg_edits.pop(ld_name, None)
        sgcb.edit_sg = sg
        sgcb.editor = editor if sg else None
        sgcb.reserved_until = None
        if sg and sgcb.resv_tms is not None:
            if now is None:
                now = time.monotonic()
            sgcb.reserved_until = now + sgcb.resv_tms
        self._sync_sgcb(sgcb)

    def confirm_edit_sg(self, ld_name: str, editor: Hashable = None) -> None:
        """ConfirmEditSGValues: store ``editor``'s edited values into the group it edits."""
        sgcb = self.sgcb(ld_name)
        if not sgcb.edit_sg:
            raise ModelError(DataAccessError.TEMPORARILY_UNAVAILABLE, "no group is being edited")
        self._check_editor(ld_name, sgcb, editor)
        for attr, value in self._sg_edits.pop(ld_name, {}).items():
            assert attr.values_by_sg is not None
            attr.values_by_sg[sgcb.edit_sg] = value
            for listener in self._listeners:
                listener(attr, value)

    def edit_value(self, attr: DataAttribute, editor: Hashable = None) -> Any:
        """GetEditSGValue of one attribute: ``editor``'s pending edit, else the stored value of
        the group being edited (another association never sees unconfirmed values)."""
        sgcb = self._sgcb_of(attr)
        if sgcb is None or not sgcb.edit_sg or attr.values_by_sg is None:
            raise ModelError(DataAccessError.TEMPORARILY_UNAVAILABLE, "no group is being edited")
        if sgcb.editor == editor:
            buffer = self._sg_edits.get(self._ld_of(attr).name, {})
            if attr in buffer:
                return buffer[attr]
        return attr.values_by_sg.get(sgcb.edit_sg, attr.value)

    def _end_reservation(self, ld_name: str, sgcb: SettingGroupControl) -> None:
        self._sg_edits.pop(ld_name, None)
        sgcb.edit_sg = 0
        sgcb.editor = None
        sgcb.reserved_until = None
        self._sync_sgcb(sgcb)

    def _sgcbs(self) -> Iterator[tuple[str, SettingGroupControl]]:
        for ld in self.children.values():
            lln0 = ld.children.get("LLN0")
            if lln0 is not None and lln0.sgcb is not None:
                yield ld.name, lln0.sgcb

    def release_sg_edits(self, editor: Hashable) -> list[str]:
        """``editor``'s association ended (conclude or abort): drop its edit reservations and
        unconfirmed values. Returns the logical devices released."""
        released = []
        for ld_name, sgcb in self._sgcbs():
            if sgcb.edit_sg and sgcb.editor == editor:
                self._end_reservation(ld_name, sgcb)
                released.append(ld_name)
        return released

    def expire_sg_reservations(self, now: float) -> list[str]:
        """End every edit reservation whose ``ResvTms`` ran out at ``now`` (monotonic seconds).
        Returns the logical devices released."""
        released = []
        for ld_name, sgcb in self._sgcbs():
            if sgcb.reserved_until is not None and now >= sgcb.reserved_until:
                self._end_reservation(ld_name, sgcb)
                released.append(ld_name)
        return released

    def next_sg_deadline(self) -> float | None:
        """The earliest time an edit reservation expires (for the server's timer), or None."""
        deadlines = [s.reserved_until for _, s in self._sgcbs() if s.reserved_until is not None]
        return min(deadlines, default=None)

    def _sync_sgcb(self, sgcb: SettingGroupControl, activated: bool = False) -> None:
        block = sgcb.block
        if block is None:
            return
        for name, value in (("ActSG", sgcb.act_sg), ("EditSG", sgcb.edit_sg)):
            attr = block.children.get(name)
            if isinstance(attr, DataAttribute):
                attr.value = value
        cnf = block.children.get("CnfEdit")
        if isinstance(cnf, DataAttribute):
            cnf.value = False
        lact = block.children.get("LActTm")
        if activated and isinstance(lact, DataAttribute):
            lact.value = self.clock()

    # ---------------------------------------------------------------- data sets
    def dataset(self, ref: str) -> DataSet:
        """A persistent data set by ``LD/LN.DSName``."""
        ln_ref, dot, name = ref.rpartition(".")
        if not dot:
            raise ModelError(DataAccessError.INVALID_ADDRESS, f"not a data set reference: {ref!r}")
        ln = self.logical_node(ln_ref)
        ds = ln.datasets.get(name)
        if ds is None:
            raise ModelError(DataAccessError.OBJECT_NON_EXISTENT, f"no data set {ref!r}")
        return ds

    def dataset_users(self, ds: DataSet) -> list[ControlBlock]:
        """The control blocks whose DatSet names ``ds`` (a referenced set cannot be deleted)."""
        ref = ds.reference()
        users = []
        for ld in self.children.values():
            for ln in ld.children.values():
                for cb in ln.control_blocks:
                    if cb.dataset_ref == ref:
                        users.append(cb)
        return users

    def resolve_member(self, member: FCDA) -> Any:
        return self.find(member.ref, member.fc)

    def iter_nodes(self) -> Iterator[LogicalNode]:
        for ld in self.children.values():
            yield from ld.children.values()
