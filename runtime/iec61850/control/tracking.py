"""Control service tracking (IEC 61850-7-2 Ed2.1 service tracking; 8-2 mapping Tables 50-53,
80): when the SCL declares an ``LTRK`` logical node with CTS data objects, every control service
updates the CTS of its control object's CDC.

What this module does, and what it leaves out (kept to what it can do faithfully):

- the CTS is chosen by the CDC of the control object: ``SpcTrk`` (SPC), ``DpcTrk`` (DPC),
  ``IncTrk`` (INC), ``EncTrk`` (ENC), ``BscTrk`` (BSC), ``IscTrk`` (ISC), ``BacTrk`` (BAC),
  ``ApcFTrk`` (APC), in an LTRK of the control object's own logical device (an LTRK tracks its
  LD's services). An object whose CTS the SCL does not declare there is not tracked.
- tracked services: Select, SelectWithValue, Cancel, Operate, TimeActivatedOperate (at the
  response) and CommandTermination (when it is sent); a request so malformed that it has no
  parameters (type-inconsistent) is not tracked.
- attributes (FC SR), each written only when the CTS has it: ``objRef`` (``LD/LN.DO``),
  ``serviceType``, ``errorCode``, ``originatorID`` (the client's JID, up to 64 octets),
  ``respAddCause``, ``ctlVal``, ``operTm``, ``origin``, ``ctlNum``, ``T``, ``Test``, ``Check``,
  and ``t`` (the time of the service).
- ``serviceType`` and ``errorCode`` are written by *name*, through the SCL's own EnumType of the
  attribute (7-2 ServiceType names such as ``SelectWithValue``; ServiceError names such as
  ``instance-locked-by-other-client``), so that the ordinals are those the SCL declares; a name
  the SCL's enum lacks leaves the attribute unchanged. ``respAddCause`` is the AddCause ordinal
  (``None``, 25, for a positive response).
- the ServiceError of a refusal: Locked-by-other-client -> instance-locked-by-other-client,
  Object-not-selected -> control-must-be-selected, Inconsistent-parameters ->
  parameter-value-inconsistent, Blocked-by-mode / Command-already-in-execution ->
  access-not-allowed-in-current-state, Not-supported -> class-not-supported, any other ->
  failed-due-to-server-constraint.
- the other service tracking CDCs (BTS/UTS/LTS/GTS/STS/MTS/NTS) are written by
  :mod:`..tracking`, which also holds the helpers shared with this module; OTS is not written.
"""

from __future__ import annotations

from typing import Any

from ..model import BTYPE_KIND, DataAttribute, DataObject, LogicalNode, ServerModel, Timestamp
from ..tracking import ltrk_nodes, tracking_attr, write_tracking
from .addcause import AddCause
from .models import ControlRequest

__all__ = ["ControlTracking", "SERVICE_TYPES"]


#: Control attribute (and "time-activated") -> 7-2 ServiceType name.
SERVICE_TYPES = {
    "SBO": "Select",
    "SBOw": "SelectWithValue",
    "Cancel": "Cancel",
    "Oper": "Operate",
    "TimActOper": "TimeActivatedOperate",
    "CmdTerm": "CommandTermination",
}
_ERRORS = {
    AddCause.LOCKED_BY_OTHER_CLIENT: "instance-locked-by-other-client",
    AddCause.OBJECT_NOT_SELECTED: "control-must-be-selected",
    AddCause.INCONSISTENT_PARAMETERS: "parameter-value-inconsistent",
    AddCause.BLOCKED_BY_MODE: "access-not-allowed-in-current-state",
    AddCause.COMMAND_ALREADY_IN_EXECUTION: "access-not-allowed-in-current-state",
    AddCause.NOT_SUPPORTED: "class-not-supported",
}


def _zero(attr: DataAttribute | None) -> Any:
    """The empty value of a CTS ``ctlVal`` (what a Select, which has none, leaves there)."""
    kind = BTYPE_KIND.get(attr.btype, ("", 0))[0] if attr is not None else ""
    if kind == "bool":
        return False
    if kind in ("int", "uint"):
        return 0
    if kind == "float":
        return 0.0
    return None  # an enumerated or coded ctlVal has no neutral value: left as it is


def _cts_name(cdc: str) -> str:
    return "ApcFTrk" if cdc == "APC" else cdc.capitalize() + "Trk"


class ControlTracking:
    """The CTS objects of ``model``'s LTRK logical nodes (see the module docstring)."""

    def __init__(self, model: ServerModel) -> None:
        self.model = model
        self._ltrk = ltrk_nodes(model)

    def cts_of(self, control: DataObject) -> DataObject | None:
        """The CTS that tracks ``control`` (None when the SCL declares none)."""
        name = _cts_name(control.cdc)
        ln = control.parent
        ld = ln.parent.name if isinstance(ln, LogicalNode) and ln.parent is not None else ""
        for ln in self._ltrk.get(ld, []):
            cts = ln.children.get(name)
            if isinstance(cts, DataObject):
                return cts
        return None

    def record(
        self,
        control: DataObject,
        service: str,
        request: ControlRequest,
        cause: AddCause | None,
        peer: str,
    ) -> None:
        """Write one control service into the CTS of ``control`` (when there is one)."""
        cts = self.cts_of(control)
        if cts is None:
            return
        error = (
            "no-error" if cause is None else _ERRORS.get(cause, "failed-due-to-server-constraint")
        )
        values: list[tuple[str, Any]] = [
            ("objRef", control.reference()),
            ("serviceType", SERVICE_TYPES[service]),
            ("errorCode", error),
            ("originatorID", peer.encode()[:64]),
            ("respAddCause", int(cause if cause is not None else AddCause.NONE)),
            ("ctlVal", request.ctl_val),
            ("operTm", Timestamp.from_float(request.oper_tm or 0.0)),
            ("origin.orCat", request.or_cat),
            ("origin.orIdent", request.or_ident),
            ("ctlNum", request.ctl_num),
            ("T", Timestamp.from_float(request.t)),
            ("Test", request.test),
            ("Check", request.check),
        ]
        if service == "SBO":  # a Select carries no command parameters: none of the last one's
            values[5] = ("ctlVal", _zero(tracking_attr(cts, "ctlVal")))
        write_tracking(self.model, cts, values)
