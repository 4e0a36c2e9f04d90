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

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxml import etree

from .model import (
    BTYPE_KIND,
    FCDA,
    FCS,
    ControlBlock,
    DataAttribute,
    DataObject,
    DataSet,
    EnumType,
    LogicalDevice,
    LogicalNode,
    ModelError,
    ServerModel,
    DEFAULT_RESV_TMS,
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
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")


class SclError(ValueError):
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
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        raise SclError(f"SCL is not well-formed XML: {exc}") from None
    tree = root.getroottree()
    if tree.docinfo.internalDTD is not None or tree.docinfo.doctype:
        raise SclError("SCL with a DOCTYPE is refused")
    if root.tag != _N + "SCL":
        raise SclError(f"root element is {root.tag!r}, not SCL in {SCL_NS}")
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
    def make_da(self, t: _Templates, el: etree._Element, fc: str, depth: int = 0) -> DataAttribute:
        name = self.req(el, "name")
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
        if btype == "Struct":
            dat = t.da.get(type_id)
            if dat is None:
                raise self.err(el, f"{name}: DAType {type_id!r} not found")
            for bda in dat.iterfind(_N + "BDA"):
                da.add(self.make_da(t, bda, fc, depth + 1))
        if count:
            for i in range(count):
                elem = DataAttribute(str(i), fc, btype, type_id=type_id, enum=enum)
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

    def make_do(self, t: _Templates, name: str, type_id: str, el: etree._Element) -> DataObject:
        dot = t.do.get(type_id)
        if dot is None:
            raise self.err(el, f"{name}: DOType {type_id!r} not found")
        do = DataObject(name, cdc=dot.get("cdc", ""), type_id=type_id)
        for child in dot:
            tag = etree.QName(child).localname
            if tag == "DA":
                fc = self.req(child, "fc")
                if fc not in FCS:
                    raise self.err(child, f"unknown or unmapped FC {fc!r}")
                do.add(self.make_da(t, child, fc))
            elif tag == "SDO":
                sub_name = self.req(child, "name")
                if sub_name == name and self.req(child, "type") == type_id:
                    raise self.err(child, "SDO refers to its own DOType")
                do.add(self.make_do(t, sub_name, self.req(child, "type"), child))
        return do

    def parse_val(self, val: etree._Element, da: DataAttribute) -> Any:
        text = (val.text or "").strip()
        kind, _ = BTYPE_KIND[da.btype]
        try:
            if kind == "bool":
                if text.lower() not in ("true", "false", "1", "0"):
                    raise ValueError("not a boolean")
                value: Any = text.lower() in ("true", "1")
            elif kind in ("int", "uint", "coded"):
                value = int(text)
            elif kind == "enum":
                assert da.enum is not None
                try:
                    value = da.enum.ordinal(text)
                except KeyError:
                    raise ValueError(f"{text!r} is not a value of EnumType {da.enum.id}") from None
            elif kind == "float":
                value = float(text)
            elif kind == "bits":
                value = text
            elif kind in ("str", "ustr"):
                value = val.text or ""
            elif kind == "bytes":
                value = bytes.fromhex(text) if text else b""
            elif kind == "time":
                value = Timestamp()
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
            if tag == "DAI":
                if not isinstance(target, DataAttribute):
                    raise self.err(child, f"DAI {name!r} names a data object")
                for val in child.iterfind(_N + "Val"):
                    if target.children or target.elements:
                        raise self.err(val, f"DAI {name!r} is structured: use SDI")
                    value = self.parse_val(val, target)
                    sgroup = val.get("sGroup")
                    if sgroup and target.values_by_sg is not None:
                        target.values_by_sg[int(sgroup)] = value
                    else:
                        target.value = value
            else:
                self.apply_instance_values(target, child)

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
        model = ServerModel(name)
        model.limits = self.services = self.read_services(ied)
        model.enum_types = dict(t.enums)
        servers = [
            (ap, ap.find(_N + "Server"))
            for ap in ied.iterfind(_N + "AccessPoint")
            if ap.find(_N + "Server") is not None
        ]
        if not servers:
            raise self.err(ied, f"IED {name} has no AccessPoint with a Server")
        ap, server = servers[0]
        ld_elements = []
        for ld_el in server.iterfind(_N + "LDevice"):
            inst = self.req(ld_el, "inst")
            ld = model.add(LogicalDevice(inst, ld_el.get("ldName") or name + inst))
            ld_elements.append((ld, ld_el))
            for ln_el in ld_el:
                tag = etree.QName(ln_el).localname
                if tag not in ("LN0", "LN"):
                    continue
                ln_class = self.req(ln_el, "lnClass")
                ln_type = self.req(ln_el, "lnType")
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
                    ln.add(self.make_do(t, self.req(do_el, "name"), self.req(do_el, "type"), do_el))
                if tag == "LN0":
                    self.setting_control(model, ln, ln_el)
                self.apply_instance_values(ln, ln_el)
        # Data sets and control blocks refer across LNs: a second pass once all LNs exist.
        for ld, ld_el in ld_elements:
            for ln_el in ld_el:
                tag = etree.QName(ln_el).localname
                if tag not in ("LN0", "LN"):
                    continue
                ln_name = ln_el.get("prefix", "") + ln_el.get("lnClass") + ln_el.get("inst", "")
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
        groups = self.service.get("SettingGroups")
        sg_edit = groups.find(_N + "SGEdit") if groups is not None else None
        limits.sg_edit = sg_edit is not None
        # (ConfSG is about configuring numOfSGs offline; SelectActiveSG comes with the SGCB)
        limits.sg_select_active = groups is not None
        limits.sg_resv_tms = sg_edit is not None and _bool_attr(self, sg_edit, "resvTms")
        return limits

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
        members = []
        for fcda in ds_el.iterfind(_N + "FCDA"):
            fc = self.req(fcda, "fc")
            ld_inst = fcda.get("ldInst", ld.inst)
            target_ld = next((d for d in model.children.values() if d.inst == ld_inst), None)
            if target_ld is None:
                raise self.err(fcda, f"FCDA: no LDevice inst {ld_inst!r}")
            ln_name = fcda.get("prefix", "") + self.req(fcda, "lnClass") + fcda.get("lnInst", "")
            ref = f"{target_ld.name}/{ln_name}"
            for part in ("doName", "daName"):
                if fcda.get(part):
                    ref += "." + fcda.get(part)
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
        tag = etree.QName(el).localname
        if tag == "ReportControl":
            self.report_control(ln, el)
        elif tag == "LogControl":
            cb = ControlBlock(self.req(el, "name"), "LCB", "LG")
            cb.attr("LogEna", "BOOLEAN", el.get("logEna", "true") == "true")
            cb.attr("LogRef", "ObjRef", f"{ld.name}/{el.get('logName', ln.name)}")
            cb.attr("DatSet", "ObjRef", self._dataset_ref(ln, el))
            cb.attr("TrgOps", "TrgOps", _trgops(el))
            cb.attr("IntgPd", "INT32U", _int_attr(self, el, "intgPd"))
            cb.enable_attr = "LogEna"
            cb.writable = frozenset({"LogEna"})
            cb.writable_when_disabled = frozenset({"DatSet", "TrgOps", "IntgPd"})
            self._add_cb(ln, cb, el)
        elif tag == "GSEControl":
            cb = ControlBlock(self.req(el, "name"), "GoCB", "GO")
            cb.attr("GoEna", "BOOLEAN", False)
            cb.attr("GoID", "VisString129", el.get("appID", cb.name))
            cb.attr("DatSet", "ObjRef", self._dataset_ref(ln, el))
            cb.attr("ConfRev", "INT32U", _int_attr(self, el, "confRev"))
            cb.attr("NdsCom", "BOOLEAN", False)
            dst = cb.attr("DstAddress", "PhyComAddr")
            dst.add(DataAttribute("Addr", "GO", "Octet6"))
            dst.add(DataAttribute("PRIORITY", "GO", "INT8U"))
            dst.add(DataAttribute("VID", "GO", "INT16U"))
            dst.add(DataAttribute("APPID", "GO", "INT16U"))
            cb.attr("FixedOffs", "BOOLEAN", el.get("fixedOffs") == "true")
            cb.enable_attr = "GoEna"
            cb.writable = frozenset({"GoEna"})
            cb.writable_when_disabled = frozenset({"GoID", "DatSet"})
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
            cb.attr("noASDU", "INT16U", _int_attr(self, el, "nofASDU"))
            cb.enable_attr = "SvEna"
            cb.writable = frozenset({"SvEna"})
            cb.writable_when_disabled = frozenset({"MsvID", "DatSet", "SmpRate", "OptFlds"})
            self._add_cb(ln, cb, el)

    def report_control(self, ln: LogicalNode, el: etree._Element) -> None:
        name = self.req(el, "name")
        buffered = el.get("buffered") == "true"
        enabled = el.find(_N + "RptEnabled")
        count = _int_attr(self, enabled, "max") if enabled is not None else 1
        count = count or 1
        indexed = el.get("indexed", "true") == "true" and count > 1
        names = [f"{name}{i:02d}" for i in range(1, count + 1)] if indexed else [name]
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
            cb.attr("RptID", "VisString129", el.get("rptID") or ln.reference() + "." + cb_name)
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
                cb.attr("ResvTms", "INT16", 0)
            cb.attr("Owner", "Octet64", b"")
            cb.enable_attr = "RptEna"
            cb.writable = frozenset({"RptEna", "GI"} | ({"Resv"} if not buffered else set()))
            cb.writable_when_disabled = frozenset(
                {"RptID", "DatSet", "OptFlds", "BufTm", "TrgOps", "IntgPd"}
                | ({"PurgeBuf", "EntryID", "ResvTms"} if buffered else set())
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
    trg = el.find(_N + "TrgOps")
    return "0" + "".join(
        "1" if trg is not None and trg.get(k) == "true" else "0"
        for k in ("dchg", "qchg", "dupd", "period", "gi")
    )


def _clone(da: DataAttribute) -> DataAttribute:
    copy = DataAttribute(
        da.name, da.fc, da.btype, type_id=da.type_id, enum=da.enum, count=0, trigger=da.trigger
    )
    copy.value = da.value
    for child in da.children.values():
        copy.add(_clone(child))
    return copy


def load_scl(source: str | Path | bytes, ied: str | None = None) -> ServerModel:
    """Build the :class:`ServerModel` of IED ``ied`` (or the file's only IED) from SCL."""
    origin = str(source) if isinstance(source, (str, Path)) else "<scl>"
    tree = parse_scl(source)
    return _Loader(tree.getroot(), origin).load(ied)
