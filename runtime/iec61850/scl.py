"""Load an IED's server model from an SCL file (IEC 61850-6: ICD, CID, IID or SCD).

No pre-compilation step and no Java tool: :func:`load_scl` reads the file with lxml (entities,
DTDs and network access off) and instantiates the IED's logical devices from the
DataTypeTemplates (LNodeType, DOType, DAType, EnumType), applies the instantiated values (DOI,
SDI, DAI ``Val``), and creates data sets and control blocks (ReportControl, LogControl,
GSEControl, SampledValueControl, SettingControl). The IED's ``JID`` comes from the P-type
``JID`` of its ConnectedAP.

Every broken reference is an :class:`SclError` naming the file and line.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxml import etree

from gridbind.errors import LocalError
from gridbind.iec61850.errors import Iec61850Error

from .model import (
    BTYPE_KIND,
    CODED_ENUM_NAMES,
    DEFAULT_RESV_TMS,
    FCDA,
    FCS,
    VAL_KINDS,
    ControlBlock,
    DataAttribute,
    DataObject,
    DataSet,
    EnumType,
    LogicalDevice,
    LogicalNode,
    ModelError,
    ServerModel,
    ServiceLimits,
    SettingGroupControl,
    Timestamp,
    check_value,
)

__all__ = ["SclError", "load_scl", "parse_scl", "list_ieds", "MAX_SCL_BYTES"]

SCL_NS = "http://www.iec.ch/61850/2003/SCL"
_N = "{" + SCL_NS + "}"
#: SCL files above this size are refused (a substation SCD is a few MB; 64 MB is generous).
MAX_SCL_BYTES = 64 * 1024 * 1024
#: Elements of one DA/SDO array (``count``); arrays of 61850 models are small (harmonics: 64).
MAX_ARRAY = 1024
#: Instances of one ReportControl (``RptEnabled max``; indexed names end in 01..99).
MAX_RCB_INSTANCES = 99
#: Data objects and attributes of one IED model (large real IEDs have some 10**5).
MAX_MODEL_NODES = 500_000
_DATA_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
_LN_CLASS = re.compile(r"[A-Z][A-Z0-9]{0,3}")
_LN_INST = re.compile(r"[0-9]{1,12}")
_LN_PREFIX = re.compile(r"([A-Za-z][A-Za-z0-9_]{0,10})?")
_LD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_MAC = re.compile(r"[0-9A-Fa-f]{2}(-[0-9A-Fa-f]{2}){5}")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")


class SclError(Iec61850Error, LocalError, ValueError):
    """The SCL file is unreadable, invalid or has a broken reference."""


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def parse_scl(source: str | Path | bytes) -> etree._ElementTree:
    """Parse SCL text safely; raises :class:`SclError`."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        try:
            if path.stat().st_size > MAX_SCL_BYTES:
                raise SclError(f"{path}: larger than {MAX_SCL_BYTES} bytes")
            data = path.read_bytes()
        except OSError as exc:
            raise SclError(f"cannot read SCL file {path}: {exc}") from None
    else:
        data = source
        if len(data) > MAX_SCL_BYTES:
            raise SclError(f"SCL larger than {MAX_SCL_BYTES} bytes")
    origin = str(source) if isinstance(source, (str, Path)) else "<scl>"
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        line = exc.lineno if exc.lineno else 1
        raise SclError(f"{origin}:{line}: SCL is not well-formed XML: {exc.msg}") from None
    tree = root.getroottree()
    if tree.docinfo.internalDTD is not None or tree.docinfo.doctype:
        raise SclError(f"{origin}:1: SCL with a DOCTYPE is refused")
    if root.tag != _N + "SCL":
        raise SclError(
            f"{origin}:{root.sourceline or 1}: root element is {root.tag!r}, not SCL in {SCL_NS}"
        )
    return tree


def list_ieds(source: str | Path | bytes) -> list[str]:
    """Names of the IEDs in an SCL file."""
    return [ied.get("name", "") for ied in parse_scl(source).getroot().iterfind(_N + "IED")]


@dataclass
class _Templates:
    lnode: dict[str, etree._Element]
    do: dict[str, etree._Element]
    da: dict[str, etree._Element]
    enums: dict[str, EnumType]


class _Loader:
    def __init__(self, root: etree._Element, origin: str) -> None:
        self.root = root
        self.origin = origin
        self.services = ServiceLimits()
        #: The Services element (None: the IED states no limits) and its children by name.
        self.services_el: etree._Element | None = None
        self.service: dict[str, etree._Element] = {}
        self.counts: dict[str, int] = {}
        self.nodes = 0  # data objects and attributes instantiated so far
        self.sizes: dict[str, int] = {}  # DOType id / "DAType id" -> instance size
        #: The IED's ConnectedAP elements (GSE / SMV addresses).
        self.connected_aps: list[etree._Element] = []

    def err(self, el: etree._Element | None, message: str) -> SclError:
        line = f":{el.sourceline}" if el is not None and el.sourceline else ""
        return SclError(f"{self.origin}{line}: {message}")

    def req(self, el: etree._Element, attr: str) -> str:
        value = el.get(attr)
        if value is None or value == "":
            raise self.err(el, f"<{etree.QName(el).localname}> needs attribute {attr!r}")
        return value

    # ---------------------------------------------------------------- templates
    def templates(self) -> _Templates:
        dtt = self.root.find(_N + "DataTypeTemplates")
        if dtt is None:
            raise self.err(self.root, "no DataTypeTemplates")
        t = _Templates({}, {}, {}, {})
        for tag, table in (("LNodeType", t.lnode), ("DOType", t.do), ("DAType", t.da)):
            for el in dtt.iterfind(_N + tag):
                ident = self.req(el, "id")
                if ident in table:
                    # Tools sometimes repeat a template verbatim (libiec61850's sg_demo.cid):
                    # harmless when identical, an error when the two differ.
                    if _canonical(table[ident]) != _canonical(el):
                        raise self.err(el, f"duplicate {tag} id {ident!r} with another content")
                    continue
                table[ident] = el
        for el in dtt.iterfind(_N + "EnumType"):
            ident = self.req(el, "id")
            if ident in t.enums:
                raise self.err(el, f"duplicate EnumType id {ident!r}")
            values: dict[int, str] = {}
            for ev in el.iterfind(_N + "EnumVal"):
                try:
                    ordinal = int(self.req(ev, "ord"))
                except ValueError:
                    raise self.err(ev, "EnumVal ord is not an integer") from None
                values[ordinal] = (ev.text or "").strip()
            t.enums[ident] = EnumType(ident, values)
        return t

    # ---------------------------------------------------------------- instances
    def spend(self, el: etree._Element, nodes: int, count: bool = True) -> None:
        """Account for ``nodes`` more model nodes (``count=False``: only check that they
        fit): templates nest and arrays multiply, so the whole instantiated model is
        bounded, not each template."""
        if self.nodes + nodes > MAX_MODEL_NODES:
            raise self.err(
                el, f"the model would exceed {MAX_MODEL_NODES} data objects and attributes"
            )
        if count:
            self.nodes += nodes

    def do_size(self, t: _Templates, type_id: str, depth: int = 0) -> int:
        """Data objects and attributes one instance of DOType ``type_id`` makes (memoised;
        0 for what the builder refuses anyway: unknown types, nesting deeper than 10)."""
        if type_id in self.sizes:
            return self.sizes[type_id]
        dot = t.do.get(type_id)
        if dot is None or depth > 10:
            return 0
        size = 1
        for child in dot:
            tag = etree.QName(child).localname
            times = max(1, _count(child))
            if tag == "DA":
                size += times * self.da_size(t, child, depth + 1)
            elif tag == "SDO":
                size += times * self.do_size(t, child.get("type", ""), depth + 1)
        self.sizes[type_id] = size
        return size

    def da_size(self, t: _Templates, el: etree._Element, depth: int) -> int:
        """Attributes one DA / BDA makes (its structure, not its own count)."""
        if el.get("bType") != "Struct" or depth > 12:
            return 1
        key = "DAType " + el.get("type", "")
        if key not in self.sizes:
            dat = t.da.get(el.get("type", ""))
            self.sizes[key] = 1 + sum(
                max(1, _count(bda)) * self.da_size(t, bda, depth + 1)
                for bda in (dat.iterfind(_N + "BDA") if dat is not None else ())
            )
        return self.sizes[key]

    def data_name(self, el: etree._Element) -> str:
        """The ``name`` of a DO / SDO / DA / BDA: one MMS name component (no ``$`` or ``.``)."""
        name = self.req(el, "name")
        if not _DATA_NAME.fullmatch(name):
            raise self.err(el, f"name {name!r} is not a data name (a letter, then A-Za-z0-9_)")
        return name

    def val_kind(self, el: etree._Element, inherited: str) -> str:
        kind = el.get("valKind")
        if kind is None:
            return inherited
        if kind not in VAL_KINDS:
            raise self.err(el, f"valKind {kind!r} is not one of {', '.join(sorted(VAL_KINDS))}")
        return kind

    def make_da(
        self,
        t: _Templates,
        el: etree._Element,
        fc: str,
        depth: int = 0,
        inherited_kind: str = "Conf",
    ) -> DataAttribute:
        name = self.data_name(el)
        self.spend(el, 1)
        btype = self.req(el, "bType")
        if btype not in BTYPE_KIND:
            raise self.err(el, f"unknown bType {btype!r}")
        if depth > 10:
            raise self.err(el, "DAType nesting deeper than 10 (a cycle?)")
        type_id = el.get("type", "")
        enum = None
        if btype == "Enum":
            enum = t.enums.get(type_id)
            if enum is None:
                raise self.err(el, f"{name}: EnumType {type_id!r} not found")
        trigger = frozenset(k for k in ("dchg", "qchg", "dupd") if el.get(k) == "true")
        count = _int_attr(self, el, "count")
        da = DataAttribute(
            name, fc, btype, type_id=type_id, enum=enum, count=count, trigger=trigger
        )
        da.val_kind = self.val_kind(el, inherited_kind)
        if btype == "Struct":
            dat = t.da.get(type_id)
            if dat is None:
                raise self.err(el, f"{name}: DAType {type_id!r} not found")
            for bda in dat.iterfind(_N + "BDA"):
                da.add(self.make_da(t, bda, fc, depth + 1, da.val_kind))
        if count:
            if count > MAX_ARRAY:
                raise self.err(el, f"count={count} above {MAX_ARRAY}")
            self.spend(el, count * _size(da))
            for i in range(count):
                elem = DataAttribute(str(i), fc, btype, type_id=type_id, enum=enum)
                elem.val_kind = da.val_kind
                if fc in ("SG", "SE") and btype != "Struct":
                    elem.values_by_sg = {}
                elem.parent = da
                if btype == "Struct":
                    for child in da.children.values():
                        elem.add(_clone(child))
                da.elements.append(elem)
            da.children = {}
        val = el.find(_N + "Val")
        if val is not None and not count and not da.is_struct:
            da.value = self.parse_val(val, da)
        if fc in ("SG", "SE"):
            da.values_by_sg = {}
        return da

    def make_do(
        self, t: _Templates, name: str, type_id: str, el: etree._Element, depth: int = 0
    ) -> DataObject:
        dot = t.do.get(type_id)
        if dot is None:
            raise self.err(el, f"{name}: DOType {type_id!r} not found")
        if depth > 10:
            raise self.err(el, "SDO nesting deeper than 10 (a cycle?)")
        count = _int_attr(self, el, "count") if etree.QName(el).localname == "SDO" else 0
        if count:
            # An SDO array (7-3 HWYE, ...): an MMS array of the DOType's structure.
            if count > MAX_ARRAY:
                raise self.err(el, f"count={count} above {MAX_ARRAY}")
            array = DataObject(name, cdc=dot.get("cdc", ""), type_id=type_id, count=count)
            for i in range(count):
                before = self.nodes
                element = self.make_do(t, str(i), type_id, dot, depth + 1)
                if i == 0:  # the whole array's cost, before building the rest of it
                    self.spend(el, (self.nodes - before) * (count - 1), count=False)
                element.parent = array
                array.elements.append(element)
            return array
        do = DataObject(name, cdc=dot.get("cdc", ""), type_id=type_id)
        self.spend(el, 1)
        for child in dot:
            tag = etree.QName(child).localname
            if tag == "DA":
                fc = self.req(child, "fc")
                if fc not in FCS:
                    raise self.err(child, f"unknown or unmapped FC {fc!r}")
                do.add(self.make_da(t, child, fc))
            elif tag == "SDO":
                sub_name = self.data_name(child)
                if sub_name == name and self.req(child, "type") == type_id:
                    raise self.err(child, "SDO refers to its own DOType")
                do.add(self.make_do(t, sub_name, self.req(child, "type"), child, depth + 1))
        return do

    def parse_val(self, val: etree._Element, da: DataAttribute) -> Any:
        """A ``Val`` as the value of ``da``. White space as XML Schema treats the value's type:
        strings keep theirs (preserve), everything else is a token or number (collapse)."""
        raw = val.text or ""
        text = " ".join(raw.split())
        kind, _ = BTYPE_KIND[da.btype]
        try:
            if kind == "bool":
                if text.lower() not in ("true", "false", "1", "0"):
                    raise ValueError("not a boolean")
                value: Any = text.lower() in ("true", "1")
            elif kind in ("int", "uint"):
                value = _xs_integer(text)
            elif kind == "coded":
                names = CODED_ENUM_NAMES[da.btype]
                value = names.index(text) if text in names else _xs_integer(text)
            elif kind == "enum":
                assert da.enum is not None
                try:
                    value = da.enum.ordinal(text)
                except KeyError:
                    raise ValueError(f"{text!r} is not a value of EnumType {da.enum.id}") from None
            elif kind == "float":
                value = _xs_float(text)
            elif kind == "bits":
                value = text
            elif kind in ("str", "ustr"):
                value = raw
            elif kind == "bytes":
                value = bytes.fromhex(text) if text else b""
            elif kind == "time":
                value = _xs_datetime(text)
            else:
                raise ValueError("structures take no Val")
            return check_value(da.btype, value, da.enum)
        except (ValueError, ModelError) as exc:
            raise self.err(val, f"bad Val for {da.name} ({da.btype}): {exc}") from None

    def apply_instance_values(self, node: Any, el: etree._Element) -> None:
        """Apply DOI/SDI/DAI Val (and sGroup-indexed values) below ``el`` onto ``node``."""
        for child in el:
            tag = etree.QName(child).localname
            if tag not in ("DOI", "SDI", "DAI"):
                continue
            name = self.req(child, "name")
            target = node.children.get(name)
            if target is None:
                raise self.err(child, f"{tag} {name!r}: no such element in {_ref(node)}")
            if child.get("ix") is not None:
                target = self.array_element(target, child)
            if tag == "DAI":
                if not isinstance(target, DataAttribute):
                    raise self.err(child, f"DAI {name!r} names a data object")
                if child.get("valKind") is not None:
                    _set_val_kind(target, self.val_kind(child, target.val_kind))
                for val in child.iterfind(_N + "Val"):
                    if target.elements:
                        raise self.err(val, f"DAI {name!r} is an array: one DAI per ix")
                    if target.children:
                        raise self.err(val, f"DAI {name!r} is structured: use SDI")
                    value = self.parse_val(val, target)
                    if val.get("sGroup") is not None:
                        target.values_by_sg[self.sgroup(val, target)] = value  # type: ignore
                    else:
                        target.value = value
            else:
                if isinstance(target, (DataAttribute, DataObject)) and target.elements:
                    raise self.err(child, f"{tag} {name!r} is an array: give ix")
                self.apply_instance_values(target, child)

    def array_element(self, target: Any, el: etree._Element) -> Any:
        """The element ``ix`` of an array (DA or SDO with ``count``) named by DAI/SDI."""
        ix = _int_attr(self, el, "ix")
        if not getattr(target, "elements", None):
            raise self.err(el, f"ix on {target.name!r}, which is not an array")
        if not 0 <= ix < len(target.elements):
            raise self.err(el, f"ix={ix} outside {target.name}[0..{len(target.elements) - 1}]")
        return target.elements[ix]

    def sgroup(self, val: etree._Element, attr: DataAttribute) -> int:
        """The setting group of a ``Val sGroup=``: only on SG/SE attributes, 1..numOfSGs."""
        if attr.values_by_sg is None:
            raise self.err(
                val, f"sGroup on {attr.reference()} [{attr.fc}]: only SG/SE attributes have groups"
            )
        group = _int_attr(self, val, "sGroup")
        sgcb = self.model._sgcb_of(attr)
        if sgcb is None:
            raise self.err(val, f"sGroup on {attr.reference()}: its LD has no SettingControl")
        if not 1 <= group <= sgcb.num_of_sg:
            raise self.err(val, f"sGroup={group} beyond numOfSGs={sgcb.num_of_sg}")
        return group

    # ---------------------------------------------------------------- IED
    def load(self, ied_name: str | None) -> ServerModel:
        ieds = list(self.root.iterfind(_N + "IED"))
        if not ieds:
            raise self.err(self.root, "no IED in the SCL file")
        if ied_name is None:
            if len(ieds) > 1:
                names = ", ".join(i.get("name", "?") for i in ieds)
                raise self.err(self.root, f"several IEDs ({names}): choose one")
            ied = ieds[0]
        else:
            found = [i for i in ieds if i.get("name") == ied_name]
            if not found:
                raise self.err(self.root, f"no IED named {ied_name!r}")
            ied = found[0]
        name = self.req(ied, "name")
        t = self.templates()
        model = self.model = ServerModel(name)
        model.limits = self.services = self.read_services(ied)
        self.connected_aps = [
            cap for cap in self.root.iter(_N + "ConnectedAP") if cap.get("iedName") == name
        ]
        model.enum_types = dict(t.enums)
        servers = [
            (ap, server_el)
            for ap in ied.iterfind(_N + "AccessPoint")
            if (server_el := ap.find(_N + "Server")) is not None
        ]
        if not servers:
            raise self.err(ied, f"IED {name} has no AccessPoint with a Server")
        ap, server = servers[0]
        ld_elements = []
        for ld_el in server.iterfind(_N + "LDevice"):
            inst = self.req(ld_el, "inst")
            ld_name = ld_el.get("ldName") or name + inst
            if not _LD_NAME.fullmatch(ld_name):
                raise self.err(
                    ld_el,
                    f"logical device name {ld_name!r} is not an MMS Identifier (a letter, then up to 63 of A-Za-z0-9_)",
                )
            if ld_name in model.children:
                raise self.err(ld_el, f"duplicate logical device {ld_name}")
            ld = model.add(LogicalDevice(inst, ld_name))
            ld_elements.append((ld, ld_el))
            for ln_el in ld_el:
                tag = etree.QName(ln_el).localname
                if tag not in ("LN0", "LN"):
                    continue
                ln_class = self.req(ln_el, "lnClass")
                ln_type = self.req(ln_el, "lnType")
                if tag == "LN" and not ln_el.get("inst"):
                    # tLN: inst is required; only LLN0 (an LN0 element) goes without.
                    raise self.err(ln_el, f"LN {ln_class} without inst (only LLN0 has none)")
                if tag == "LN0" and (ln_class != "LLN0" or ln_el.get("inst")):
                    raise self.err(ln_el, 'LN0 must be lnClass="LLN0" with inst=""')
                if not _LN_CLASS.fullmatch(ln_class):
                    raise self.err(ln_el, f"lnClass {ln_class!r} is not 1..4 upper-case letters")
                if tag == "LN" and not _LN_INST.fullmatch(ln_el.get("inst", "")):
                    raise self.err(ln_el, f"LN inst {ln_el.get('inst')!r} is not 1..12 digits")
                if not _LN_PREFIX.fullmatch(ln_el.get("prefix", "")):
                    raise self.err(ln_el, f"LN prefix {ln_el.get('prefix')!r} is not a name")
                lnt = t.lnode.get(ln_type)
                if lnt is None:
                    raise self.err(ln_el, f"LNodeType {ln_type!r} not found")
                ln = LogicalNode(
                    ln_class, ln_el.get("inst", ""), ln_el.get("prefix", ""), ln_type=ln_type
                )
                try:
                    ld.add(ln)
                except ValueError as exc:
                    raise self.err(ln_el, str(exc)) from None
                for do_el in lnt.iterfind(_N + "DO"):
                    # the DOType's whole size first: nesting multiplies, refuse before building
                    self.spend(do_el, self.do_size(t, do_el.get("type", "")), count=False)
                    do = self.make_do(t, self.data_name(do_el), self.req(do_el, "type"), do_el)
                    if do.name in ln.children:
                        raise self.err(do_el, f"LNodeType {ln_type}: two DOs named {do.name}")
                    ln.add(do)
                if tag == "LN0":
                    self.setting_control(model, ln, ln_el)
                self.apply_instance_values(ln, ln_el)
        # Data sets and control blocks refer across LNs: a second pass once all LNs exist.
        for ld, ld_el in ld_elements:
            for ln_el in ld_el:
                tag = etree.QName(ln_el).localname
                if tag not in ("LN0", "LN"):
                    continue
                ln_name = (
                    ln_el.get("prefix", "") + self.req(ln_el, "lnClass") + ln_el.get("inst", "")
                )
                ln = ld.children[ln_name]
                for ds_el in ln_el.iterfind(_N + "DataSet"):
                    self.dataset(model, ld, ln, ds_el)
                for cb_el in ln_el:
                    self.control_block(model, ld, ln, cb_el)
        model.jid = self.jid_of(name, ap.get("name"))
        return model

    # ---------------------------------------------------------------- Services
    def read_services(self, ied: etree._Element) -> ServiceLimits:
        """The online limits of the IED's ``Services`` (none without the element)."""
        limits = ServiceLimits()
        el = ied.find(_N + "Services")
        if el is None:
            return limits
        self.services_el = el
        for child in el:
            if isinstance(child.tag, str):
                self.service[etree.QName(child).localname] = child
        dyn_assoc = self.service.get("DynAssociation")
        if dyn_assoc is not None and dyn_assoc.get("max"):
            limits.max_associations = self.positive(dyn_assoc, "max")
        dyn = self.service.get("DynDataSet")
        limits.dyn_datasets = dyn is not None
        if dyn is not None:
            limits.dyn_datasets_max = self.positive(dyn, "max")
            if dyn.get("maxAttributes"):
                limits.dyn_dataset_attributes = self.positive(dyn, "maxAttributes")
        limits.file_handling = "FileHandling" in self.service
        groups = self.service.get("SettingGroups")
        sg_edit = groups.find(_N + "SGEdit") if groups is not None else None
        limits.sg_edit = sg_edit is not None
        # (ConfSG is about configuring numOfSGs offline; SelectActiveSG comes with the SGCB)
        limits.sg_select_active = groups is not None
        limits.sg_resv_tms = sg_edit is not None and _bool_attr(self, sg_edit, "resvTms")
        return limits

    def count_limit(self, service: str, el: etree._Element, what: str) -> None:
        """Count one more configured ``what``; beyond ``Services/<service> max`` it is an error."""
        limit_el = self.service.get(service)
        if limit_el is None or not limit_el.get("max"):
            return
        self.counts[service] = self.counts.get(service, 0) + 1
        most = self.positive(limit_el, "max")
        if self.counts[service] > most:
            raise self.err(el, f"more than {most} {what} (Services {service} max)")

    def dynamic(self, settings: str, names: dict[str, str]) -> frozenset[str]:
        """The control block attributes clients may set while it is disabled: with
        ``Services/<settings>`` (ReportSettings, LogSettings, GSESettings, SMVSettings) those
        marked ``Dyn`` (``Conf`` and ``Fix``, the default, are not changed online); without
        the element, all of ``names``."""
        el = self.service.get(settings)
        if el is None:
            return frozenset(names.values())
        out = set()
        for scl_name, attr in names.items():
            how = el.get(scl_name, "Fix")
            if how not in ("Dyn", "Conf", "Fix"):
                raise self.err(el, f"{settings} {scl_name}={how!r} is not Dyn, Conf or Fix")
            if how == "Dyn":
                out.add(attr)
        return frozenset(out)

    # ---------------------------------------------------------------- Communication
    def comm_address(
        self, kind: str, ld: LogicalDevice, cb_name: str, el: etree._Element
    ) -> etree._Element | None:
        """The ``GSE`` / ``SMV`` entry of a control block in the IED's ConnectedAPs."""
        found = [
            entry
            for cap in self.connected_aps
            for entry in cap.iterfind(_N + kind)
            if entry.get("ldInst") == ld.inst and entry.get("cbName") == cb_name
        ]
        if len(found) > 1:
            raise self.err(found[1], f"second {kind} entry for {ld.inst}/{cb_name}")
        return found[0] if found else None

    def dst_address(self, cb: ControlBlock, entry: etree._Element | None) -> None:
        """DstAddress (8-1 PhyComAddr: Addr, PRIORITY, VID, APPID) from a GSE/SMV Address."""
        params: dict[str, etree._Element] = {}
        address = entry.find(_N + "Address") if entry is not None else None
        for p in address.iterfind(_N + "P") if address is not None else ():
            params[p.get("type", "")] = p

        def text(name: str) -> str:
            return "".join((params[name].text or "").split()) if name in params else ""

        def number(name: str, base: int, most: int) -> int:
            value = text(name)
            if not value:
                return 0
            try:
                result = int(value, base)
            except ValueError:
                result = -1
            if not 0 <= result <= most or not value.isalnum():
                raise self.err(params[name], f"P type {name} {value!r} is not valid")
            return result

        mac = text("MAC-Address")
        if mac and not _MAC.fullmatch(mac):
            raise self.err(params["MAC-Address"], f"MAC-Address {mac!r} is not xx-xx-xx-xx-xx-xx")
        dst = cb.attr("DstAddress", "PhyComAddr")
        fc = cb.fc
        dst.add(DataAttribute("Addr", fc, "Octet6")).value = (
            bytes.fromhex(mac.replace("-", "")) if mac else b"\x00" * 6
        )
        dst.add(DataAttribute("PRIORITY", fc, "INT8U")).value = number("VLAN-PRIORITY", 10, 7)
        dst.add(DataAttribute("VID", fc, "INT16U")).value = number("VLAN-ID", 16, 0xFFF)
        dst.add(DataAttribute("APPID", fc, "INT16U")).value = number("APPID", 16, 0xFFFF)

    def gse_time(self, entry: etree._Element | None, tag: str) -> int:
        """GSE MinTime / MaxTime in ms (tDurationInMilliSec: unit s, multiplier m)."""
        el = entry.find(_N + tag) if entry is not None else None
        if el is None:
            return 0
        text = " ".join((el.text or "").split())
        factor = {"m": 1, "": 1000}.get(el.get("multiplier", ""))
        if el.get("unit", "s") != "s" or factor is None:
            raise self.err(el, f"{tag} must be in s or ms")
        try:
            value = _xs_float(text) * factor
        except ValueError as exc:
            raise self.err(el, f"{tag}: {exc}") from None
        if not 0 <= value < 1 << 32:
            raise self.err(el, f"{tag} {text} out of range")
        return int(value)

    def positive(self, el: etree._Element, attr: str) -> int:
        """A required attribute of type unsigned int, at least 1."""
        value = _int_attr(self, el, attr) if el.get(attr) else None
        if value is None or value < 1:
            raise self.err(el, f"<{etree.QName(el).localname}> needs {attr} as a positive integer")
        return value

    def setting_control(self, model: ServerModel, ln: LogicalNode, ln_el: etree._Element) -> None:
        sc = ln_el.find(_N + "SettingControl")
        if sc is None:
            return
        if self.services_el is not None and "SettingGroups" not in self.service:
            raise self.err(sc, "SettingControl, but the IED's Services have no SettingGroups")
        num = _int_attr(self, sc, "numOfSGs")
        act = _int_attr(self, sc, "actSG") or 1
        if not 1 <= num <= 255 or not 1 <= act <= num:
            raise self.err(sc, f"SettingControl numOfSGs={num} actSG={act} out of range")
        resv_tms = None
        if self.services.sg_resv_tms:
            # SGEdit resvTms="true": the SGCB has ResvTms (7-2 Ed2), SettingControl its value.
            resv_tms = _int_attr(self, sc, "resvTms") if sc.get("resvTms") else DEFAULT_RESV_TMS
            if not 0 < resv_tms <= 65535:
                raise self.err(sc, f"SettingControl resvTms={resv_tms} out of range")
        elif sc.get("resvTms"):
            raise self.err(sc, 'SettingControl resvTms needs Services SGEdit resvTms="true"')
        sgcb = SettingGroupControl(num_of_sg=num, act_sg=act, resv_tms=resv_tms)
        cb = ControlBlock("SGCB", "SGCB", "SP")
        cb.attr("NumOfSG", "INT8U", num)
        cb.attr("ActSG", "INT8U", act)
        cb.attr("EditSG", "INT8U", 0)
        cb.attr("CnfEdit", "BOOLEAN", False)
        cb.attr("LActTm", "Timestamp", Timestamp.now())
        if resv_tms is not None:
            cb.attr("ResvTms", "INT16U", resv_tms)
        cb.writable = frozenset()
        sgcb.block = cb
        ln.add(cb)
        ln.sgcb = sgcb

    def dataset(
        self, model: ServerModel, ld: LogicalDevice, ln: LogicalNode, ds_el: etree._Element
    ) -> None:
        name = self.req(ds_el, "name")
        if not _NAME.match(name):
            raise self.err(ds_el, f"bad data set name {name!r}")
        if name in ln.datasets:
            raise self.err(ds_el, f"duplicate data set {name!r}")
        self.count_limit("ConfDataSet", ds_el, "data sets")
        conf = self.service.get("ConfDataSet")
        most = (
            self.positive(conf, "maxAttributes")
            if conf is not None and conf.get("maxAttributes")
            else None
        )
        members: list[FCDA] = []
        for fcda in ds_el.iterfind(_N + "FCDA"):
            if most is not None and len(members) >= most:
                raise self.err(
                    fcda, f"data set {name}: more than {most} members (ConfDataSet maxAttributes)"
                )
            fc = self.req(fcda, "fc")
            ld_inst = fcda.get("ldInst", ld.inst)
            target_ld = next((d for d in model.children.values() if d.inst == ld_inst), None)
            if target_ld is None:
                raise self.err(fcda, f"FCDA: no LDevice inst {ld_inst!r}")
            ln_name = fcda.get("prefix", "") + self.req(fcda, "lnClass") + fcda.get("lnInst", "")
            ref = f"{target_ld.name}/{ln_name}"
            for part in ("doName", "daName"):
                value = fcda.get(part)
                if value:
                    ref += "." + value
            try:
                model.find(ref, fc)
            except ModelError as exc:
                raise self.err(fcda, f"data set {name}: {exc}") from None
            members.append(FCDA(ref, fc))
        ln.datasets[name] = DataSet(name, members, owner=ln, persistent=True, deletable=False)

    def _dataset_ref(self, ln: LogicalNode, el: etree._Element) -> str:
        ds = el.get("datSet", "")
        if not ds:
            return ""
        if ds not in ln.datasets:
            raise self.err(el, f"datSet {ds!r} is not a data set of {ln.reference()}")
        return ln.datasets[ds].reference()

    def control_block(
        self, model: ServerModel, ld: LogicalDevice, ln: LogicalNode, el: etree._Element
    ) -> None:
        try:
            self._control_block(model, ld, ln, el)
        except ModelError as exc:  # an attribute value off its type (GoID too long, ...)
            raise self.err(el, f"{etree.QName(el).localname}: {exc}") from None

    def _control_block(
        self, model: ServerModel, ld: LogicalDevice, ln: LogicalNode, el: etree._Element
    ) -> None:
        tag = etree.QName(el).localname
        if tag == "ReportControl":
            self.report_control(ln, el)
        elif tag == "LogControl":
            cb = ControlBlock(self.req(el, "name"), "LCB", "LG")
            cb.attr("LogEna", "BOOLEAN", el.get("logEna", "true") == "true")
            cb.attr("LogRef", "ObjRef", self._log_ref(ld, ln, el))
            cb.attr("DatSet", "ObjRef", self._dataset_ref(ln, el))
            # 8-1 LCB order: the log's status between DatSet and TrgOps
            cb.attr("OldEntrTm", "EntryTime", Timestamp())
            cb.attr("NewEntrTm", "EntryTime", Timestamp())
            cb.attr("OldEnt", "EntryID", b"\x00" * 8)
            cb.attr("NewEnt", "EntryID", b"\x00" * 8)
            cb.attr("TrgOps", "TrgOps", _trgops(el))
            cb.attr("IntgPd", "INT32U", _int_attr(self, el, "intgPd"))
            # (SCL settings without an 8-1 attribute: reason codes stored, bufTime in ms)
            cb.config["reasonCode"] = _bool_attr(self, el, "reasonCode", True)
            cb.config["bufTime"] = _int_attr(self, el, "bufTime")
            cb.enable_attr = "LogEna"
            # (LogSettings logEna, Fix by default, says whether clients may switch the log)
            cb.writable = self.dynamic("LogSettings", {"logEna": "LogEna"})
            cb.writable_when_disabled = self.dynamic(
                "LogSettings", {"datSet": "DatSet", "trgOps": "TrgOps", "intgPd": "IntgPd"}
            )
            self.count_limit("ConfLogControl", el, "log control blocks")
            self._add_cb(ln, cb, el)
        elif tag == "GSEControl":
            cb = ControlBlock(self.req(el, "name"), "GoCB", "GO")
            cb.attr("GoEna", "BOOLEAN", False)
            cb.attr("GoID", "VisString129", el.get("appID", cb.name))
            cb.attr("DatSet", "ObjRef", self._dataset_ref(ln, el))
            cb.attr("ConfRev", "INT32U", _int_attr(self, el, "confRev"))
            cb.attr("NdsCom", "BOOLEAN", False)
            address = self.comm_address("GSE", ld, cb.name, el)
            self.dst_address(cb, address)
            # 8-1 GoCB: MinTime / MaxTime (ms) from the GSE entry's MinTime / MaxTime.
            cb.attr("MinTime", "INT32U", self.gse_time(address, "MinTime"))
            cb.attr("MaxTime", "INT32U", self.gse_time(address, "MaxTime"))
            cb.attr("FixedOffs", "BOOLEAN", _bool_attr(self, el, "fixedOffs"))
            cb.enable_attr = "GoEna"
            cb.writable = frozenset({"GoEna"})
            cb.writable_when_disabled = self.dynamic(
                "GSESettings", {"appID": "GoID", "datSet": "DatSet"}
            )
            self.count_limit("GOOSE", el, "GOOSE control blocks")
            self._add_cb(ln, cb, el)
        elif tag == "SampledValueControl":
            cb = ControlBlock(self.req(el, "name"), "MSVCB", "MS")
            cb.attr("SvEna", "BOOLEAN", False)
            cb.attr("MsvID", "VisString129", el.get("smvID", cb.name))
            cb.attr("DatSet", "ObjRef", self._dataset_ref(ln, el))
            cb.attr("ConfRev", "INT32U", _int_attr(self, el, "confRev"))
            cb.attr("SmpRate", "INT16U", _int_attr(self, el, "smpRate"))
            opts = el.find(_N + "SmvOpts")
            bits = "".join(
                "1" if opts is not None and opts.get(k) == "true" else "0"
                for k in ("refreshTime", "sampleSynchronized", "sampleRate", "dataSet", "security")
            )
            cb.attr("OptFlds", "SvOptFlds", bits)
            smp_mod = {"SmpPerPeriod": 0, "SmpPerSec": 1, "SecPerSmp": 2}
            cb.attr("SmpMod", "INT8U", smp_mod.get(el.get("smpMod", "SmpPerPeriod"), 0))
            self.dst_address(cb, self.comm_address("SMV", ld, cb.name, el))
            cb.attr("noASDU", "INT16U", _int_attr(self, el, "nofASDU"))
            cb.enable_attr = "SvEna"
            cb.writable = frozenset({"SvEna"})
            cb.writable_when_disabled = self.dynamic(
                "SMVSettings",
                {"svID": "MsvID", "datSet": "DatSet", "smpRate": "SmpRate", "optFields": "OptFlds"},
            )
            self.count_limit("SMVsc", el, "sampled value control blocks")
            self._add_cb(ln, cb, el)

    def _log_ref(self, ld: LogicalDevice, ln: LogicalNode, el: etree._Element) -> str:
        """8-1 LogRef ``LD/LN$LogName``: the log of the LN the LogControl names (ldInst,
        prefix, lnClass, lnInst; by default LLN0 of its own LD, 6 Ed2)."""
        log_name = el.get("logName") or ln.name
        ld_name = ld.name
        if el.get("ldInst"):
            ld_name = ld.name[: len(ld.name) - len(ld.inst)] + el.get("ldInst", "")
        ln_class = el.get("lnClass", "LLN0")
        ln_name = (
            "LLN0" if ln_class == "LLN0" else el.get("prefix", "") + ln_class + el.get("lnInst", "")
        )
        return f"{ld_name}/{ln_name}${log_name}"

    def report_control(self, ln: LogicalNode, el: etree._Element) -> None:
        name = self.req(el, "name")
        buffered = el.get("buffered") == "true"
        enabled = el.find(_N + "RptEnabled")
        count = _int_attr(self, enabled, "max") if enabled is not None else 1
        count = count or 1
        if count > MAX_RCB_INSTANCES:
            # indexed instances are named name01..name99 (8-1)
            raise self.err(enabled, f"RptEnabled max={count} above {MAX_RCB_INSTANCES}")
        indexed = el.get("indexed", "true") == "true" and count > 1
        names = [f"{name}{i:02d}" for i in range(1, count + 1)] if indexed else [name]
        conf = self.service.get("ConfReportControl")
        mode = conf.get("bufMode", "both") if conf is not None else "both"
        if mode not in ("unbuffered", "buffered", "both"):
            raise self.err(conf, f"ConfReportControl bufMode={mode!r}")
        if mode != "both" and buffered != (mode == "buffered"):
            raise self.err(
                el,
                f"a {'' if buffered else 'un'}buffered report control block, but"
                f" Services ConfReportControl bufMode={mode!r}",
            )
        for _ in names:
            self.count_limit("ConfReportControl", el, "report control block instances")
        settings = self.service.get("ReportSettings")
        # ReportSettings resvTms / owner: the BRCB ResvTms and the RCB Owner exist (6 Ed2).
        has_resv = settings is None or _bool_attr(self, settings, "resvTms")
        has_owner = settings is None or _bool_attr(self, settings, "owner")
        dynamic = self.dynamic(
            "ReportSettings",
            {"rptID": "RptID", "datSet": "DatSet", "optFields": "OptFlds", "bufTime": "BufTm",
             "trgOps": "TrgOps", "intgPd": "IntgPd"},
        )  # fmt: skip
        opt = el.find(_N + "OptFields")
        # 8-1 OptFlds order: reserved, seqNum, timeStamp, reasonCode, dataSet, dataRef,
        # bufOvfl, entryID, configRef, segmentation.
        optflds = "0" + "".join(
            "1" if opt is not None and opt.get(k) == "true" else "0"
            for k in (
                "seqNum", "timeStamp", "reasonCode", "dataSet", "dataRef",
                "bufOvfl", "entryID", "configRef", "segmentation",
            )
        )  # fmt: skip
        for cb_name in names:
            cb = ControlBlock(cb_name, "BRCB" if buffered else "URCB", "BR" if buffered else "RP")
            # 8-1: an empty rptID reports as the RCB's MMS reference, LD/LN$RP$name.
            default_id = f"{ln.reference()}${'BR' if buffered else 'RP'}${cb_name}"
            cb.attr("RptID", "VisString129", el.get("rptID") or default_id)
            cb.attr("RptEna", "BOOLEAN", False)
            if not buffered:
                cb.attr("Resv", "BOOLEAN", False)
            cb.attr("DatSet", "ObjRef", self._dataset_ref(ln, el))
            cb.attr("ConfRev", "INT32U", _int_attr(self, el, "confRev"))
            cb.attr("OptFlds", "OptFlds", optflds)
            cb.attr("BufTm", "INT32U", _int_attr(self, el, "bufTime"))
            cb.attr("SqNum", "INT16U" if buffered else "INT8U", 0)
            cb.attr("TrgOps", "TrgOps", _trgops(el))
            cb.attr("IntgPd", "INT32U", _int_attr(self, el, "intgPd"))
            cb.attr("GI", "BOOLEAN", False)
            if buffered:
                cb.attr("PurgeBuf", "BOOLEAN", False)
                cb.attr("EntryID", "EntryID", b"\x00" * 8)
                cb.attr("TimeOfEntry", "EntryTime", Timestamp())
                if has_resv:
                    cb.attr("ResvTms", "INT16", 0)
            if has_owner:
                cb.attr("Owner", "Octet64", b"")
            cb.enable_attr = "RptEna"
            cb.writable = frozenset({"RptEna", "GI"} | ({"Resv"} if not buffered else set()))
            cb.writable_when_disabled = dynamic | (
                {"PurgeBuf", "EntryID"} | ({"ResvTms"} if has_resv else set())
                if buffered
                else frozenset()
            )
            self._add_cb(ln, cb, el)

    def _add_cb(self, ln: LogicalNode, cb: ControlBlock, el: etree._Element) -> None:
        if cb.name in ln.children:
            raise self.err(el, f"{ln.reference()}: name {cb.name!r} already used")
        ln.add(cb)

    def jid_of(self, ied_name: str, ap_name: str | None) -> str | None:
        comm = self.root.find(_N + "Communication")
        if comm is None:
            return None
        for cap in comm.iter(_N + "ConnectedAP"):
            if cap.get("iedName") != ied_name or (ap_name and cap.get("apName") != ap_name):
                continue
            for p in cap.iter(_N + "P"):
                if p.get("type") == "JID":
                    jid = (p.text or "").strip()
                    if "@" not in jid:
                        raise self.err(p, f"P type JID {jid!r} is not a JID")
                    return jid
        return None


def _canonical(el: etree._Element) -> tuple:
    """A whitespace- and order-of-attributes-insensitive form of a template element."""
    return (
        etree.QName(el).localname,
        tuple(sorted(el.attrib.items())),
        (el.text or "").strip(),
        tuple(_canonical(child) for child in el if isinstance(child.tag, str)),
    )


def _ref(node: Any) -> str:
    return node.reference() if hasattr(node, "reference") else str(node)


def _int_attr(loader: _Loader, el: etree._Element, name: str) -> int:
    text = el.get(name)
    if text is None or text == "":
        return 0
    try:
        return int(text)
    except ValueError:
        raise loader.err(el, f"attribute {name}={text!r} is not an integer") from None


_XS_INTEGER = re.compile(r"[+-]?[0-9]+")
_XS_FLOAT = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?|[+-]?INF|NaN")
_XS_DATETIME = re.compile(
    r"(-?[0-9]{4,})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})?"
)


def _xs_integer(text: str) -> int:
    if not _XS_INTEGER.fullmatch(text):
        raise ValueError(f"{text!r} is not an integer")
    return int(text)


def _xs_float(text: str) -> float:
    if not _XS_FLOAT.fullmatch(text):
        raise ValueError(f"{text!r} is not a number")
    return float(text.replace("INF", "inf"))


def _xs_datetime(text: str) -> Timestamp:
    """An xs:dateTime (no zone: UTC) as a Timestamp; empty text is the epoch (unset)."""
    if not text:
        return Timestamp()
    m = _XS_DATETIME.fullmatch(text)
    if m is None:
        raise ValueError(f"{text!r} is not an xs:dateTime (YYYY-MM-DDThh:mm:ss[.f][Z])")
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    zone = m.group(8) or "Z"
    offset = (
        0
        if zone == "Z"
        else (1 if zone[0] == "+" else -1) * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    )
    try:
        moment = datetime.datetime(year, month, day, hour, minute, second, tzinfo=datetime.UTC)
    except ValueError as exc:
        raise ValueError(f"{text!r}: {exc}") from None
    seconds = int(moment.timestamp()) - offset
    if not 0 <= seconds < 1 << 32:
        raise ValueError(f"{text!r} is outside the 8-1 Timestamp range (1970..2106)")
    fraction = float("0" + m.group(7)) if m.group(7) else 0.0
    return Timestamp(seconds, min(int(fraction * (1 << 24)), (1 << 24) - 1))


def _bool_attr(loader: _Loader, el: etree._Element, name: str, default: bool = False) -> bool:
    """An xs:boolean attribute (``true``/``false``/``1``/``0``, white space collapsed)."""
    text = el.get(name)
    if text is None:
        return default
    text = text.strip()
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise loader.err(el, f"attribute {name}={text!r} is not a boolean")


def _trgops(el: etree._Element) -> str:
    # 8-1 TrgOps: reserved, data-change, quality-change, data-update, integrity, GI.
    # (SCL tTrgOps: gi defaults to true, the others to false; no TrgOps element: none.)
    trg = el.find(_N + "TrgOps")
    if trg is None:
        return "000000"
    defaults = {"dchg": "false", "qchg": "false", "dupd": "false", "period": "false", "gi": "true"}
    return "0" + "".join(
        "1" if trg.get(k, default) in ("true", "1") else "0" for k, default in defaults.items()
    )


def _count(el: etree._Element) -> int:
    """``count`` for size estimates (the builder reports a malformed one)."""
    text = el.get("count", "")
    return min(int(text), MAX_ARRAY) if text.isascii() and text.isdigit() else 0


def _size(da: DataAttribute) -> int:
    return 1 + sum(_size(c) for c in da.children.values()) + sum(_size(e) for e in da.elements)


def _set_val_kind(da: DataAttribute, kind: str) -> None:
    da.val_kind = kind
    for child in list(da.children.values()) + da.elements:
        _set_val_kind(child, kind)


def _clone(da: DataAttribute) -> DataAttribute:
    copy = DataAttribute(
        da.name, da.fc, da.btype, type_id=da.type_id, enum=da.enum, count=0, trigger=da.trigger
    )
    copy.value = da.value
    copy.val_kind = da.val_kind
    if da.values_by_sg is not None:
        copy.values_by_sg = {}
    for child in da.children.values():
        copy.add(_clone(child))
    return copy


def load_scl(source: str | Path | bytes, ied: str | None = None) -> ServerModel:
    """Build the :class:`ServerModel` of IED ``ied`` (or the file's only IED) from SCL."""
    origin = str(source) if isinstance(source, (str, Path)) else "<scl>"
    tree = parse_scl(source)
    try:
        return _Loader(tree.getroot(), origin).load(ied)
    except SclError:
        raise
    except (ValueError, ModelError) as exc:
        # A check below the loader (the model's own) that no loader check caught first: still
        # an SclError naming the file.
        raise SclError(f"{origin}: {exc}") from None
