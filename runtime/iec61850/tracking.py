"""Service tracking of control blocks (IEC 61850-7-2 Ed2.1 service tracking; 7-3 CDCs BTS,
UTS, LTS, GTS, STS, MTS, NTS; 8-2 mapping Tables 50-53, 80): when the SCL declares an ``LTRK``
with these data objects, every client write of a control block of the same logical device
updates the tracking object of the control block's kind.

What is written, and what is left out (kept to what can be done faithfully):

- the tracking object is chosen by the control block kind: ``BrcbTrk`` (BRCB), ``UrcbTrk``
  (URCB), ``LocbTrk`` (LCB), ``GocbTrk`` (GoCB), ``SgcbTrk`` (SGCB), ``MsvcbTrk`` (MSVCB),
  ``UsvcbTrk`` (USVCB), in an LTRK of the control block's own LD. Kinds the SCL does not
  declare there are not tracked.
- tracked services: every write of a control block attribute (Set<CB>Values; for the SGCB,
  writing ``ActSG``/``EditSG``/``CnfEdit`` is SelectActiveSG/SelectEditSG/ConfirmEditSGValues
  and a write of an FC SE attribute is SetEditSGValue), positive or refused. Each written
  variable is tracked on its own, so a Set<CB>Values of several attributes (one MMS Write of
  several variables) leaves the last one's outcome. Reads (Get<CB>Values) are not tracked.
- attributes (FC SR), each written only when the tracking object has it: ``objRef`` (the
  control block reference, ``LD/LN.CB``), ``serviceType``, ``errorCode``, ``originatorID``
  (the client's JID, up to 64 octets), ``t``, and the control block's own attributes after the
  service, copied by name (``rptID`` from ``RptID``, ``gi`` from ``GI``, ...); an attribute
  whose type differs in the tracking object is left unchanged, and structured ones (the GoCB's
  ``DstAddress``) are not copied.
- ``serviceType`` and ``errorCode`` go by *name* through the SCL's own EnumType (as the CTS of
  :mod:`.control.tracking`); the ServiceError of a refused write comes from its
  DataAccessError (see ``ERRORS``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from .model import ControlBlock, DataAttribute, DataObject, LogicalNode, ModelError, ServerModel

__all__ = ["BlockTracking", "ERRORS", "ltrk_nodes", "tracking_attr", "write_tracking"]

log = logging.getLogger(__name__)

#: Control block kind -> name of its tracking data object in LTRK.
TRACKING_NAMES = {
    "BRCB": "BrcbTrk",
    "URCB": "UrcbTrk",
    "LCB": "LocbTrk",
    "GoCB": "GocbTrk",
    "SGCB": "SgcbTrk",
    "MSVCB": "MsvcbTrk",
    "USVCB": "UsvcbTrk",
}
_SET_SERVICES = {
    "BRCB": "SetBRCBValues",
    "URCB": "SetURCBValues",
    "LCB": "SetLCBValues",
    "GoCB": "SetGoCBValues",
    "MSVCB": "SetMSVCBValues",
    "USVCB": "SetUSVCBValues",
}
_SG_SERVICES = {
    "ActSG": "SelectActiveSG",
    "EditSG": "SelectEditSG",
    "CnfEdit": "ConfirmEditSGValues",
}
#: DataAccessError of a refused write -> 7-2 ServiceError name.
ERRORS = {
    "object-non-existent": "instance-not-available",
    "object-undefined": "instance-not-available",
    "object-access-denied": "access-violation",
    "object-access-unsupported": "access-violation",
    "object-value-invalid": "parameter-value-inappropriate",
    "object-attribute-inconsistent": "parameter-value-inconsistent",
    "type-inconsistent": "type-conflict",
    "type-unsupported": "type-conflict",
    "temporarily-unavailable": "instance-locked-by-other-client",
}


def ltrk_nodes(model: ServerModel) -> dict[str, list[LogicalNode]]:
    """The LTRK logical nodes of ``model`` by LD name (an LTRK tracks its own LD)."""
    found: dict[str, list[LogicalNode]] = {}
    for ln in model.iter_nodes():
        if ln.ln_class == "LTRK" and ln.parent is not None:
            found.setdefault(ln.parent.name, []).append(ln)
    return found


def tracking_attr(obj: DataObject, path: str) -> DataAttribute | None:
    """The basic attribute ``path`` (dotted) of a tracking object, or None."""
    node: Any = obj
    for part in path.split("."):
        node = node.children.get(part) if node is not None else None
    return node if isinstance(node, DataAttribute) and not node.children else None


def write_tracking(model: ServerModel, obj: DataObject, values: Iterable[tuple[str, Any]]) -> None:
    """Write ``values`` into the tracking object ``obj``: only the attributes it has, enum
    names through the SCL's EnumType (a name it lacks leaves the attribute unchanged)."""
    ref = obj.reference()
    for path, value in values:
        attr = tracking_attr(obj, path)
        if attr is None or value is None:
            continue
        if attr.enum is not None and isinstance(value, str):
            try:
                value = attr.enum.ordinal(value)
            except KeyError:
                continue
        try:
            model.update(f"{ref}.{path}", value, timestamp=model.clock())
        except ModelError as exc:  # e.g. an attribute the tracking object types differently
            log.debug("%s.%s not tracked: %s", ref, path, exc)


def _block_of(node: Any) -> ControlBlock | None:
    while node is not None and not isinstance(node, LogicalNode):
        if isinstance(node, ControlBlock):
            return node
        node = node.parent
    return None


def _ld_name(node: Any) -> str:
    while node is not None and not isinstance(node, LogicalNode):
        node = node.parent
    return node.parent.name if node is not None and node.parent is not None else ""


class BlockTracking:
    """The BTS/UTS/LTS/GTS/STS/MTS/NTS objects of ``model``'s LTRKs (see the module docstring)."""

    def __init__(self, model: ServerModel) -> None:
        self.model = model
        self._ltrk = ltrk_nodes(model)

    def tracking_of(self, kind: str, ld: str) -> DataObject | None:
        """The tracking object of control blocks of ``kind`` in LD ``ld`` (None if undeclared)."""
        name = TRACKING_NAMES.get(kind, "")
        for ln in self._ltrk.get(ld, []) if name else []:
            obj = ln.children.get(name)
            if isinstance(obj, DataObject):
                return obj
        return None

    def record_write(self, node: Any, fc: str, error: str | None, peer: str) -> None:
        """Track one client write of ``node`` (through ``fc``) refused with the DataAccessError
        ``error`` (None when it succeeded); writes of no control block are not tracked."""
        if not self._ltrk or node is None:
            return
        cb = _block_of(node)
        if cb is None and fc == "SE":
            lln0 = self._lln0(node)
            sgcb = lln0.children.get("SGCB") if lln0 is not None else None
            cb = sgcb if isinstance(sgcb, ControlBlock) else None
            service = "SetEditSGValue"
        elif cb is None:
            return
        elif cb.kind == "SGCB":
            service = _SG_SERVICES.get(node.name, "SelectActiveSG")
        else:
            service = _SET_SERVICES.get(cb.kind, "")
        if cb is None:
            return
        obj = self.tracking_of(cb.kind, _ld_name(cb))
        if obj is None:
            return
        code = "no-error" if error is None else ERRORS.get(error, "failed-due-to-server-constraint")
        values: list[tuple[str, Any]] = [
            ("objRef", cb.reference()),
            ("serviceType", service),
            ("errorCode", code),
            ("originatorID", peer.encode()[:64]),
        ]
        by_lower = {n.lower(): c for n, c in cb.children.items()}
        for name in obj.children:
            source = by_lower.get(name.lower())
            if name not in ("objRef", "t") and isinstance(source, DataAttribute):
                if not source.children and not source.elements:
                    values.append((name, self.model.get_value(source, cb.fc)))
        write_tracking(self.model, obj, values)

    @staticmethod
    def _lln0(node: Any) -> LogicalNode | None:
        while node is not None and not isinstance(node, LogicalNode):
            node = node.parent
        if node is None or node.parent is None:
            return None
        lln0 = node.parent.children.get("LLN0")
        return lln0 if isinstance(lln0, LogicalNode) else None
