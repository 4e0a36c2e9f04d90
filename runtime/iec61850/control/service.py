"""The server side of the control services (7-2 clause 20, 8-1/8-2 mapping), sans-IO.

:class:`ControlService` owns one :class:`~.models.ControlObject` per controllable data object of
the model (``ctlModel`` in FC CF, and an ``Oper`` in FC CO) and answers the MMS accesses the
mapping defines (mapping notes section 6):

- Select: read of ``LN$CO$DO$SBO``; the value is the object's reference ``LD/LN$CO$DO`` when
  selected, an empty string when not (8-1; no LastApplError);
- SelectWithValue, Cancel, Operate, TimeActivatedOperate: write of ``$SBOw``, ``$Cancel``,
  ``$Oper``; a refusal is an informationReport of the vmd-specific ``LastApplError``
  (CntrlObj, Error, Origin, ctlNum, AddCause) followed by the write failure
  (:func:`~.addcause.failure_code`); a status-only object answers object-access-unsupported
  alone; an orCat outside 0..8 is object-value-invalid (LastApplError Select-failed for
  SelectWithValue, Inconsistent-parameters for Operate);
- CommandTermination (enhanced security): an informationReport of ``$Oper`` with the operated
  value, preceded in the same report by ``LastApplError`` when negative.

What comes out of :meth:`ControlService.read_sbo` / :meth:`~ControlService.write` /
:meth:`~ControlService.executed` / :meth:`~ControlService.timer` are values for the protocol
core: :class:`Answer` (the write response now, or later for a deferred one), :class:`Deferred`,
:class:`Report` (an informationReport to an association), :class:`Execute` (ask the
application, then call :meth:`~ControlService.executed`), :class:`Abandon` (the application took
longer than ``operate_timeout``: its late answer is ignored).

The application decides through :class:`ControlHandlers`: ``on_check`` (any refusal, e.g.
blocked-by-process), ``on_interlock_check`` / ``on_synchrocheck`` (asked only when the command's
Check bits ask for them), run when Select, SelectWithValue or Operate arrive (a Select carries
no Check: only ``on_check`` is asked; a refused Select reads as ""); ``on_operate`` executes
(sync or async; True / None = success, False or an AddCause = failure). Normal security answers
the Oper write once the execution ended (bounded by ``operate_timeout``, then Time-limit-over);
enhanced security answers it once the checks passed and ends with CommandTermination.
A time-activated operate is answered at once and executes at ``operTm``: the checks run at
receipt, ``on_operate`` at activation (where dynamic conditions, e.g. a synchrocheck at execution
time, refuse with their AddCause, as libiec61850's wait-for-execution handler does); an operTm
more than ``max_activation_delay`` ahead (default 24 h) is refused (Inconsistent-parameters).
Time: every ``now`` given to this class is a monotonic clock (select timeouts, operTimeout,
activations); operTm, a wall time, is converted into it once at acceptance (see
:mod:`.models`).
Controls of
sub data objects (``LN$CO$DO$SDO$Oper``) and control attributes inside a multi-variable read or
write are not served as controls (the latter get object-access-denied).

Test mode (7-4 Beh of the control's LN): Beh ``on``/``on-blocked`` take commands with Test
false, ``test``/``test/blocked`` only with Test true, ``off`` none (Blocked-by-mode). On success
the value is reflected (7-2): ``stVal`` of SPC/DPC/INC/ENC-like objects (a Dbpos gets on/off),
with ``t`` now and ``q`` good (``test`` set for a test command), and the object's ST ``origin``
and ``ctlNum`` when it has them; ``stSeld`` follows the selection. Other CDCs (APC, BSC...)
are left to ``on_operate``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from gridbind.generated.iec61850_8_2 import scsm_8_2 as m

from .. import mms
from .. import mmsdata as d
from ..association import Association
from ..model import (
    BTYPE_KIND,
    DataAccessError,
    DataAttribute,
    DataObject,
    LogicalNode,
    ModelError,
    ServerModel,
    Timestamp,
    check_value,
    quality_bits,
)
from ..services.mmsview import data_matches, python_value
from .addcause import AddCause, ControlError, failure_code
from .models import (
    DEFAULT_SBO_TIMEOUT,
    MAX_ACTIVATION_DELAY,
    Accept,
    Activate,
    ControlObject,
    ControlRequest,
    CtlModel,
    Refuse,
    SelectExpired,
)
from .tracking import ControlTracking

__all__ = [
    "ControlAction",
    "ControlHandlers",
    "ControlService",
    "Answer",
    "Deferred",
    "Report",
    "Execute",
    "Abandon",
    "CONTROL_ATTRIBUTES",
    "last_appl_error",
    "DEFAULT_OPERATE_TIMEOUT",
]

#: The FC CO attributes that are services, not values.
CONTROL_ATTRIBUTES = frozenset({"Oper", "SBOw", "Cancel", "SBO"})
#: How long the server waits for ``on_operate`` (seconds) when the object has no operTimeout.
DEFAULT_OPERATE_TIMEOUT = 10.0
log = logging.getLogger(__name__)
_MAX_OR_CAT = 8  # 7-3 OrCat: not-supported (0) .. process (8)
_BEH_ON, _BEH_ON_BLOCKED, _BEH_TEST, _BEH_TEST_BLOCKED, _BEH_OFF = 1, 2, 3, 4, 5


@dataclass(frozen=True)
class ControlAction:
    """What the application is asked about: one control service on ``ref`` (``LD/LN.DO``)."""

    ref: str
    service: str
    ctl_model: int
    request: ControlRequest
    peer: str

    @property
    def ctl_val(self) -> Any:
        return self.request.ctl_val

    @property
    def test(self) -> bool:
        return self.request.test


Verdict = Any  # bool | None | AddCause (or an awaitable of one, for on_operate)


@dataclass
class ControlHandlers:
    """The application's say in control services (see the module docstring)."""

    on_check: Callable[[ControlAction], AddCause | None] | None = None
    on_interlock_check: Callable[[ControlAction], bool] | None = None
    on_synchrocheck: Callable[[ControlAction], bool] | None = None
    on_operate: Callable[[ControlAction], Verdict] | None = None


@dataclass(frozen=True)
class Answer:
    """The write response: ``failure`` None (success) or a DataAccessError name; ``token`` of
    a deferred write (None: the write being served)."""

    failure: str | None
    token: int | None = None


@dataclass(frozen=True)
class Deferred:
    """The write being served is answered later (an :class:`Answer` with this ``token``)."""

    token: int


@dataclass(frozen=True)
class Report:
    """An informationReport for ``association``."""

    association: Association
    pdu: m.Mmspdu


@dataclass(frozen=True)
class Execute:
    """Ask the application (``on_operate``); its verdict goes to :meth:`ControlService.executed`."""

    token: int
    action: ControlAction


@dataclass(frozen=True)
class Abandon:
    """The execution ``token`` ran out of time; stop waiting for the application."""

    token: int


Output = Answer | Deferred | Report | Execute | Abandon


@dataclass
class _Run:
    obj: ControlObject
    action: ControlAction
    assoc: Association
    oper: m.Data
    deferred: bool  # the Oper write waits for the end of the execution (normal security)
    terminate: bool  # a CommandTermination ends it (enhanced security)
    deadline: float
    token: int = 0


@dataclass
class _Entry:
    obj: ControlObject
    node: DataObject
    ld: str
    ln: str


def last_appl_error(
    cntrl_obj: str, request: ControlRequest, cause: AddCause, error: ControlError
) -> m.Data:
    """The LastApplError structure (8-1): CntrlObj, Error, Origin, ctlNum, AddCause."""
    return d.structure(
        [
            d.visible_string(cntrl_obj),
            d.integer(int(error)),
            d.structure([d.integer(request.or_cat), d.octet_string(request.or_ident)]),
            d.unsigned(request.ctl_num),
            d.integer(int(cause)),
        ]
    )


def _value_of(attr: Any, data: m.Data) -> Any:
    if isinstance(attr, DataAttribute) and attr.children:
        assert isinstance(data.choice, m.Structure)  # data_matches checked the shape
        return {
            c.name: _value_of(c, x)
            for c, x in zip(attr.children.values(), data.choice.data, strict=True)
        }
    return check_value(attr.btype, python_value(attr, data), attr.enum)


def _seconds(value: Any) -> float:
    return value.to_float() if isinstance(value, Timestamp) else 0.0


class ControlService:
    """Control services over ``model`` (see the module docstring)."""

    def __init__(
        self,
        model: ServerModel,
        handlers: ControlHandlers | None = None,
        *,
        operate_timeout: float = DEFAULT_OPERATE_TIMEOUT,
        max_activation_delay: float = MAX_ACTIVATION_DELAY,
    ) -> None:
        self.model = model
        self.handlers = handlers or ControlHandlers()
        self.operate_timeout = operate_timeout
        self._entries: dict[str, _Entry] = {}
        self._runs: dict[int, _Run] = {}
        # time-activated operates waiting for their operTm, by (object, association key)
        self._pending_oper: dict[tuple[str, Hashable], _Run] = {}
        self._token = 0
        #: Control service tracking (CTS of LTRK), when the SCL declares it.
        self.tracking = ControlTracking(model)
        for ln in model.iter_nodes():
            for do in ln.children.values():
                oper = do.children.get("Oper")
                if isinstance(oper, DataAttribute) and oper.fc == "CO" and do.ctl_model is not None:
                    self._entries[do.reference()] = _Entry(
                        ControlObject(
                            do.reference(),
                            do.ctl_model,
                            sbo_timeout=self._cf(do, "sboTimeout", DEFAULT_SBO_TIMEOUT * 1000)
                            / 1000,
                            sbo_class=int(self._cf(do, "sboClass", 0)),
                            max_activation_delay=max_activation_delay,
                        ),
                        do,
                        ln.parent.name if ln.parent else "",
                        ln.name,
                    )

    @staticmethod
    def _cf(do: DataObject, name: str, default: float) -> float:
        attr = do.children.get(name)
        if isinstance(attr, DataAttribute) and attr.fc == "CF" and attr.value:
            return attr.value
        return default

    def control_object(self, ref: str) -> ControlObject:
        """The state machine of ``LD/LN.DO`` (KeyError when it is not controllable)."""
        return self._entries[ref].obj

    # ---------------------------------------------------------------- addressing
    def claims(self, key: tuple) -> bool:
        """True when ``key`` (an ObjectName key) is ``LN$CO$DO$Oper|SBOw|Cancel|SBO``."""
        return self._entry(key) is not None

    def _entry(self, key: tuple) -> tuple[_Entry, str] | None:
        if len(key) != 3 or key[0] != "domain-specific":
            return None
        parts = key[2].split("$")
        if len(parts) != 4 or parts[1] != "CO" or parts[3] not in CONTROL_ATTRIBUTES:
            return None
        entry = self._entries.get(f"{key[1]}/{parts[0]}.{parts[2]}")
        if entry is None or not isinstance(entry.node.children.get(parts[3]), DataAttribute):
            return None
        return entry, parts[3]

    @staticmethod
    def _mms_ref(entry: _Entry) -> str:
        return f"{entry.ld}/{entry.ln}$CO${entry.node.name}"

    @staticmethod
    def _item(entry: _Entry, service: str) -> str:
        """The domain item of a control attribute: ``LN$CO$DO$Oper`` (or SBOw, Cancel...)."""
        return f"{entry.ln}$CO${entry.node.name}${service}"

    # ---------------------------------------------------------------- services
    def read_sbo(self, assoc: Association, key: tuple, now: float) -> tuple[m.AccessResult, list]:
        """Select (read of ``$SBO``): the object's reference, or "" when refused."""
        result = self._read_sbo(assoc, key, now)
        self._sync_selected()
        return result

    def _read_sbo(self, assoc: Association, key: tuple, now: float) -> tuple[m.AccessResult, list]:
        out = self.timer(now)
        found = self._entry(key)
        if found is None or found[1] != "SBO":
            return mms.access_failure(DataAccessError.OBJECT_ACCESS_DENIED), out
        entry, _ = found
        request = ControlRequest("SBO", assoc.key)
        action = ControlAction(entry.obj.ref, "SBO", entry.obj.ctl_model, request, assoc.peer)
        refused = self._mode_check(entry, request, select=True)
        verdict = refused or self._checked(entry.obj.select(request, now), action, entry.obj, now)
        self._track(entry, "SBO", request, verdict, assoc)
        if isinstance(verdict, Refuse):
            return m.AccessResult(choice=d.visible_string("")), out
        return m.AccessResult(choice=d.visible_string(self._mms_ref(entry))), out

    def write(
        self, assoc: Association, key: tuple, data: m.Data, now: float, wall: float | None = None
    ) -> list[Output]:
        """SelectWithValue / Cancel / Operate (write of ``$SBOw`` / ``$Cancel`` / ``$Oper``).

        ``now`` is monotonic (every deadline); ``wall`` the IED's wall clock at ``now``, which
        a TimeActivatedOperate's operTm is converted against once (None: ``now``)."""
        out = self._write(assoc, key, data, now, wall)
        self._sync_selected()
        return out

    def _write(
        self, assoc: Association, key: tuple, data: m.Data, now: float, wall: float | None
    ) -> list[Output]:
        out = self.timer(now)
        found = self._entry(key)
        if found is None:
            return out + [Answer(DataAccessError.OBJECT_NON_EXISTENT)]
        entry, service = found
        if service == "SBO":
            return out + [Answer(DataAccessError.OBJECT_ACCESS_DENIED)]
        attr = entry.node.children[service]
        try:
            data_matches(attr, "CO", data)
            request = self._request(service, assoc.key, _value_of(attr, data))
        except ModelError as exc:
            return out + [Answer(exc.code)]
        action = ControlAction(
            entry.obj.ref, service, entry.obj.ctl_model, request, assoc.peer
        )  # fmt: skip
        obj = entry.obj
        if service != "Cancel" and not 0 <= request.or_cat <= _MAX_OR_CAT:
            # libiec61850: a value the object cannot take; LastApplError says which service
            cause = (
                AddCause.SELECT_FAILED if service == "SBOw" else AddCause.INCONSISTENT_PARAMETERS
            )
            self._track(entry, service, request, Refuse(cause), assoc)
            return out + [
                self._lae(assoc, entry, service, request, cause),
                Answer(DataAccessError.OBJECT_VALUE_INVALID),
            ]
        refused = self._mode_check(entry, request)
        if refused is None:
            if service == "SBOw":
                refused = self._checked(obj.select(request, now), action, obj, now)
            elif service == "Cancel":
                verdict = obj.cancel(request, now)
                refused = verdict if isinstance(verdict, Refuse) else None
                if refused is None:
                    self._pending_oper.pop((obj.ref, assoc.key), None)
            else:
                verdict = obj.operate(request, now, wall)
                refused = self._checked(verdict, action, obj, now)
        tracked = "TimActOper" if service == "Oper" and request.oper_tm else service
        if refused is not None or service != "Oper" or obj.enhanced or request.oper_tm:
            self._track(entry, tracked, request, refused, assoc)
        if refused is not None and obj.ctl_model == CtlModel.STATUS_ONLY:
            return out + [Answer(DataAccessError.OBJECT_ACCESS_UNSUPPORTED)]  # 8-1: no LAE
        if refused is not None:
            return out + [
                self._lae(assoc, entry, service, request, refused.cause, refused.error),
                Answer(failure_code(refused.cause)),
            ]
        if service != "Oper":
            return out + [Answer(None)]
        if not verdict.execute_now:  # type: ignore[union-attr]
            self._pending_oper[(obj.ref, assoc.key)] = _Run(
                obj, action, assoc, data, False, obj.enhanced, float("inf")
            )
            return out + [Answer(None)]
        return out + self._start(entry, action, assoc, data, now)

    def _checked(
        self, verdict: Accept | Refuse, action: ControlAction, obj: ControlObject, now: float
    ) -> Refuse | None:
        """The application's checks after the state machine accepted (undone when refused)."""
        if isinstance(verdict, Refuse):
            return verdict
        cause = self._application_checks(action)
        if cause is None:
            return None
        if action.service in ("SBO", "SBOw"):
            obj.release(action.request.owner)
        else:
            obj.finished(now)
        return Refuse(cause)

    def _application_checks(self, action: ControlAction) -> AddCause | None:
        """The application's refusal, if any. A handler that raises or answers no AddCause
        (an int outside 0..27) refuses with Unknown: the object must not stay locked by it."""
        try:
            return self._ask_checks(action)
        except Exception:  # noqa: BLE001 - the application's bug must not lock the object
            log.exception("%s: control check handler failed", action.ref)
            return AddCause.UNKNOWN

    def _ask_checks(self, action: ControlAction) -> AddCause | None:
        h = self.handlers
        request = action.request
        if request.interlock_check and h.on_interlock_check and not h.on_interlock_check(action):
            return AddCause.BLOCKED_BY_INTERLOCKING
        if request.synchrocheck and h.on_synchrocheck and not h.on_synchrocheck(action):
            return AddCause.BLOCKED_BY_SYNCHROCHECK
        if h.on_check is not None:
            cause = h.on_check(action)
            if cause is not None:
                return AddCause(cause)  # ValueError outside 0..27: Unknown (see above)
        return None

    def _mode_check(self, entry: _Entry, request: ControlRequest, select=False) -> Refuse | None:
        ln = entry.node.parent
        beh = ln.children.get("Beh") if isinstance(ln, LogicalNode) else None
        st = beh.children.get("stVal") if isinstance(beh, DataObject) else None
        mode = st.value if isinstance(st, DataAttribute) else _BEH_ON
        if mode == _BEH_OFF:
            return Refuse(AddCause.BLOCKED_BY_MODE)
        if select or request.service == "Cancel":
            return None
        testing = mode in (_BEH_TEST, _BEH_TEST_BLOCKED)
        if request.test != testing:
            return Refuse(AddCause.BLOCKED_BY_MODE)
        return None

    def _request(self, service: str, owner: Hashable, value: dict) -> ControlRequest:
        origin = value.get("origin") or {}
        oper_tm = _seconds(value.get("operTm"))
        return ControlRequest(
            service,
            owner,
            ctl_val=value.get("ctlVal"),
            oper_tm=oper_tm or None,
            or_cat=int(origin.get("orCat", 0)),
            or_ident=bytes(origin.get("orIdent", b"")),
            ctl_num=int(value.get("ctlNum", 0)),
            t=_seconds(value.get("T")),
            test=bool(value.get("Test", False)),
            check=str(value.get("Check", "00")),
        )

    def _lae(
        self,
        assoc: Association,
        entry: _Entry,
        service: str,
        request: ControlRequest,
        cause: AddCause,
        error: ControlError = ControlError.NO_ERROR,
        oper: m.Data | None = None,
    ) -> Report:
        cntrl = f"{entry.ld}/{self._item(entry, service)}"
        names = [mms.vmd("LastApplError")]
        results = [m.AccessResult(choice=last_appl_error(cntrl, request, cause, error))]
        if oper is not None:  # a negative CommandTermination
            names.append(mms.dom(entry.ld, self._item(entry, "Oper")))
            results.append(m.AccessResult(choice=oper))
        return Report(assoc, mms.information_report(names, results))

    # ---------------------------------------------------------------- execution
    def _start(
        self, entry: _Entry, action: ControlAction, assoc: Association, oper: m.Data, now: float
    ) -> list[Output]:
        self._token += 1
        token = self._token
        enhanced = entry.obj.enhanced
        run = _Run(entry.obj, action, assoc, oper, not enhanced, enhanced, 0.0, token)
        run.deadline = now + self._timeout(entry)
        self._runs[token] = run
        out: list[Output] = [Answer(None)] if enhanced else [Deferred(token)]
        return out + [Execute(token, action)]

    def _timeout(self, entry: _Entry) -> float:
        return self._cf(entry.node, "operTimeout", self.operate_timeout * 1000) / 1000

    def executed(self, token: int, verdict: Verdict, now: float) -> list[Output]:
        """The application's verdict on the execution ``token`` (ignored when it came late)."""
        out = self._executed(token, verdict, now)
        self._sync_selected()
        return out

    def _executed(self, token: int, verdict: Verdict, now: float) -> list[Output]:
        run = self._runs.pop(token, None)
        if run is None:
            return []
        cause: AddCause | None = None
        if isinstance(verdict, AddCause) or (
            isinstance(verdict, int) and not isinstance(verdict, bool)
        ):
            cause = AddCause(verdict)
        elif verdict is False:
            cause = AddCause.UNKNOWN
        elif isinstance(verdict, BaseException):
            cause = AddCause.UNKNOWN
        return self._finish(run, cause, now)

    def _finish(self, run: _Run, cause: AddCause | None, now: float) -> list[Output]:
        run.obj.finished(now)
        entry = self._entries[run.obj.ref]
        request = run.action.request
        if cause is None:
            try:
                self._reflect(entry.node, request)
            except ModelError as exc:  # a value the object cannot show: the command still ran
                log.warning("%s: operated value not reflected: %s", entry.obj.ref, exc)
        out: list[Output] = []
        if run.terminate:
            self._track(entry, "CmdTerm", request, cause, run.assoc)
        elif run.deferred:  # normal security: the Oper is answered now
            self._track(entry, "Oper", request, cause, run.assoc)
        if run.deferred:
            if cause is not None:
                out.append(self._lae(run.assoc, entry, "Oper", request, cause))
            out.append(Answer(None if cause is None else failure_code(cause), run.token))
            return out
        if not run.terminate or not run.assoc.open:
            return out
        if cause is None:
            name = mms.dom(entry.ld, self._item(entry, "Oper"))
            out.append(
                Report(run.assoc, mms.information_report([name], [m.AccessResult(choice=run.oper)]))
            )
        else:
            out.append(self._lae(run.assoc, entry, "Oper", request, cause, oper=run.oper))
        return out

    def _track(
        self,
        entry: _Entry,
        service: str,
        request: ControlRequest,
        verdict: AddCause | Refuse | Accept | None,
        assoc: Association,
    ) -> None:
        cause = verdict.cause if isinstance(verdict, Refuse) else verdict
        if isinstance(cause, Accept):
            cause = None
        self.tracking.record(entry.node, service, request, cause, assoc.peer)

    def _reflect(self, do: DataObject, request: ControlRequest) -> None:
        st = do.children.get("stVal")
        if not isinstance(st, DataAttribute) or st.fc != "ST":
            return
        value = request.ctl_val
        kind = BTYPE_KIND.get(st.btype, ("", 0))[0]
        if st.btype == "Dbpos" and isinstance(value, bool):
            value = 2 if value else 1
        elif kind == "bool" and not isinstance(value, bool):
            return
        elif kind in ("int", "uint", "enum") and (
            isinstance(value, bool) or not isinstance(value, int)
        ):
            return
        elif kind not in ("bool", "int", "uint", "enum", "coded"):
            return
        ref = do.reference()
        for name, val in (("ctlNum", request.ctl_num),):
            attr = do.children.get(name)
            if isinstance(attr, DataAttribute) and attr.fc == "ST":
                self.model.update(f"{ref}.{name}", val)
        origin = do.children.get("origin")
        if isinstance(origin, DataAttribute) and origin.fc == "ST" and origin.children:
            self.model.update(f"{ref}.origin.orCat", request.or_cat)
            self.model.update(f"{ref}.origin.orIdent", request.or_ident)
        q = do.children.get("q")
        quality = (
            quality_bits(test=request.test)
            if isinstance(q, DataAttribute) and q.fc == "ST"
            else None
        )
        self.model.update(f"{ref}.stVal", value, quality=quality)

    # ---------------------------------------------------------------- time, associations
    def next_deadline(self) -> float | None:
        """When :meth:`timer` must run next, or None."""
        times = [e.obj.next_deadline() for e in self._entries.values()]
        times += [r.deadline for r in self._runs.values()]
        return min((t for t in times if t is not None), default=None)

    def timer(self, now: float) -> list[Output]:
        """Select timeouts, time-activated operates whose operTm came, executions past due."""
        out: list[Output] = []
        for entry in self._entries.values():
            for event in entry.obj.timer(now):
                if isinstance(event, Activate):
                    out += self._activate(entry, event.request, now)
                elif isinstance(event, SelectExpired):
                    pass  # the selection is simply gone (7-2: no report)
        for token, run in list(self._runs.items()):
            if now >= run.deadline:
                del self._runs[token]
                out.append(Abandon(token))
                out += self._finish(run, AddCause.TIME_LIMIT_OVER, now)
        self._sync_selected()
        return out

    def _sync_selected(self) -> None:
        """``stSeld`` (7-3, FC ST) follows the selection of objects that have it."""
        for entry in self._entries.values():
            attr = entry.node.children.get("stSeld")
            if isinstance(attr, DataAttribute) and attr.fc == "ST":
                selected = entry.obj.selected_by is not None
                if attr.value != selected:
                    self.model.update(f"{entry.obj.ref}.stSeld", selected)

    def _activate(self, entry: _Entry, request: ControlRequest, now: float) -> list[Output]:
        run = self._pending_oper.pop((entry.obj.ref, request.owner), None)
        if run is None:  # its association ended: nothing to answer, nothing to execute
            entry.obj.finished(now)
            return []
        self._token += 1
        run.token = self._token
        run.deadline = now + self._timeout(entry)
        self._runs[run.token] = run
        return [Execute(run.token, run.action)]

    def association_ended(self, assoc: Association) -> None:
        """Drop the selections and pending time-activated operates of ``assoc``."""
        for entry in self._entries.values():
            entry.obj.release(assoc.key)
        for k in [k for k, run in self._pending_oper.items() if run.assoc is assoc]:
            del self._pending_oper[k]
        for run in self._runs.values():
            if run.assoc is assoc and run.deferred:
                run.deferred = False  # nobody to answer; the execution still ends normally
        self._sync_selected()
