"""The control model state machine of one controllable data object (IEC 61850-7-2 Ed2 20.x),
sans-IO: requests and the time (``now``, seconds of a monotonic clock) come in, decisions
(:class:`Accept` / :class:`Refuse`) and timer events come out; :meth:`ControlObject.next_deadline`
says when :meth:`ControlObject.timer` must run next (the select timeout, the activation time of a
time-activated operate). Nothing here sleeps, reads a clock or touches the data model; the
caller runs :meth:`ControlObject.timer` before each service so that an expired selection or a
due activation is seen first.

States (7-2 Figures 31-34, merged): ``unselected`` -> (Select/SelectWithValue) ``ready`` ->
(Operate) ``wait-for-activation`` (operTm in the future) -> ``executing`` (the application
decides) -> ``unselected`` (direct models, sboClass operate-once) or ``ready`` (sboClass
operate-many, until sboTimeout). Decisions this project takes where 7-2 leaves room:

- a selection belongs to one association (its key): another association's Select, Operate or
  Cancel is refused with ``Locked-by-other-client`` while it lasts;
- SelectWithValue on an object that is not unselected (selected by this or another association,
  or operating) is refused with ``Object-already-selected``, as libiec61850 answers;
- Operate after SelectWithValue must repeat ctlVal, origin, ctlNum, Test and Check of the
  selection, else ``Inconsistent-parameters``, and the selection ends;
- Cancel is accepted by the selecting association (SBO; of an unselected SBO object too, as
  libiec61850 answers) or, for a pending time-activated operate,
  by the association that sent it; a running execution cannot be cancelled
  (``Command-already-in-execution``);
- the end of an association drops its selection and its pending (not yet activated) operate;
- every deadline (sboTimeout, the activation of a time-activated operate) is on the monotonic
  ``now``: a step of the wall clock (an SNTP correction, an operator setting the time) neither
  expires nor extends a selection. operTm is an absolute time of the IED's wall clock: it is
  converted once, when the operate is accepted (``wall`` is that clock's reading at ``now``),
  into a monotonic activation time; a wall-clock step after acceptance does not move it (the
  operate runs after the delay that was asked for, as the clock stood when it was accepted);
- a time-activated operate whose operTm lies more than ``max_activation_delay`` (default
  :data:`MAX_ACTIVATION_DELAY`, 24 h) ahead is refused with ``Inconsistent-parameters``: the
  object would otherwise stay locked (wait-for-activation) for as long as the client chose.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from .addcause import AddCause, ControlError

__all__ = [
    "CtlModel",
    "SboClass",
    "ControlRequest",
    "Accept",
    "Refuse",
    "Activate",
    "SelectExpired",
    "ControlObject",
    "DEFAULT_SBO_TIMEOUT",
    "MAX_ACTIVATION_DELAY",
]

#: sboTimeout (seconds) when the SCL gives none (7-3: a configuration value; 30 s as libiec61850).
DEFAULT_SBO_TIMEOUT = 30.0
#: How far ahead (seconds) a TimeActivatedOperate's operTm may lie by default.
MAX_ACTIVATION_DELAY = 24 * 3600.0


class CtlModel:
    """ctlModel ordinals (7-3 CtlModelKind)."""

    STATUS_ONLY = 0
    DIRECT_NORMAL = 1
    SBO_NORMAL = 2
    DIRECT_ENHANCED = 3
    SBO_ENHANCED = 4

    NAMES = (
        "status-only",
        "direct-with-normal-security",
        "sbo-with-normal-security",
        "direct-with-enhanced-security",
        "sbo-with-enhanced-security",
    )


class SboClass:
    """sboClass ordinals (7-3 SboClassKind)."""

    OPERATE_ONCE = 0
    OPERATE_MANY = 1


@dataclass(frozen=True)
class ControlRequest:
    """One Oper / SBOw / Cancel (or a Select, with only ``owner`` meaningful)."""

    service: str  # "Oper", "SBOw", "Cancel", "SBO"
    owner: Hashable  # the association's key
    ctl_val: Any = None
    oper_tm: float | None = None  # POSIX seconds (the IED's wall clock); None/0: operate at once
    or_cat: int = 0
    or_ident: bytes = b""
    ctl_num: int = 0
    t: float = 0.0
    test: bool = False
    check: str = "00"  # bit 0 synchrocheck, bit 1 interlock-check

    @property
    def synchrocheck(self) -> bool:
        return self.check[:1] == "1"

    @property
    def interlock_check(self) -> bool:
        return self.check[1:2] == "1"

    def same_command(self, other: ControlRequest) -> bool:
        """Operate repeats what SelectWithValue announced (ctlVal, origin, ctlNum, Test, Check)."""
        mine = (self.ctl_val, self.or_cat, self.or_ident, self.ctl_num, self.test, self.check)
        return mine == (
            other.ctl_val,
            other.or_cat,
            other.or_ident,
            other.ctl_num,
            other.test,
            other.check,
        )


@dataclass(frozen=True)
class Accept:
    """The service is accepted. ``execute_now``: the operation starts at once (no operTm)."""

    execute_now: bool = False


@dataclass(frozen=True)
class Refuse:
    """The service is refused with an AddCause (and the LastApplError ``Error``)."""

    cause: AddCause
    error: ControlError = ControlError.NO_ERROR


@dataclass(frozen=True)
class Activate:
    """Timer event: the operTm of a time-activated operate is reached, execution starts."""

    request: ControlRequest


@dataclass(frozen=True)
class SelectExpired:
    """Timer event: the selection of ``owner`` ran out (sboTimeout)."""

    owner: Hashable


class ControlObject:
    """The control state of one controllable data object."""

    def __init__(
        self,
        ref: str,
        ctl_model: int,
        *,
        sbo_timeout: float = DEFAULT_SBO_TIMEOUT,
        sbo_class: int = SboClass.OPERATE_ONCE,
        max_activation_delay: float = MAX_ACTIVATION_DELAY,
    ) -> None:
        self.ref = ref
        self.max_activation_delay = max_activation_delay
        self.ctl_model = ctl_model
        self.sbo_timeout = sbo_timeout
        self.sbo_class = sbo_class
        self.state = "unselected"
        self.selected_by: Hashable | None = None
        self.select_deadline: float | None = None
        self.selection: ControlRequest | None = None  # the SBOw of enhanced security
        self.pending: ControlRequest | None = None  # waiting for activation, or executing
        self.activation_at: float | None = None

    # ---------------------------------------------------------------- properties
    @property
    def sbo(self) -> bool:
        return self.ctl_model in (CtlModel.SBO_NORMAL, CtlModel.SBO_ENHANCED)

    @property
    def enhanced(self) -> bool:
        return self.ctl_model in (CtlModel.DIRECT_ENHANCED, CtlModel.SBO_ENHANCED)

    def next_deadline(self) -> float | None:
        """When :meth:`timer` must run next, or None."""
        if self.state == "ready":
            return self.select_deadline
        if self.state == "wait-for-activation":
            return self.activation_at
        return None

    # ---------------------------------------------------------------- services
    def _busy(self, owner: Hashable) -> Refuse | None:
        if self.state in ("executing", "wait-for-activation"):
            if self.selected_by not in (None, owner):
                return Refuse(AddCause.LOCKED_BY_OTHER_CLIENT)
            return Refuse(AddCause.COMMAND_ALREADY_IN_EXECUTION)
        if self.selected_by is not None and self.selected_by != owner:
            return Refuse(AddCause.LOCKED_BY_OTHER_CLIENT)
        return None

    def select(self, request: ControlRequest, now: float) -> Accept | Refuse:
        """Select (SBO read, normal security) or SelectWithValue (SBOw, enhanced)."""
        wanted = CtlModel.SBO_NORMAL if request.service == "SBO" else CtlModel.SBO_ENHANCED
        if self.ctl_model != wanted:
            return Refuse(AddCause.NOT_SUPPORTED)
        if request.service == "SBOw" and self.state != "unselected":
            return Refuse(AddCause.OBJECT_ALREADY_SELECTED)
        refused = self._busy(request.owner)
        if refused is not None:
            return refused
        self.state = "ready"
        self.selected_by = request.owner
        self.selection = request if request.service == "SBOw" else None
        self.select_deadline = now + self.sbo_timeout
        return Accept()

    def operate(
        self, request: ControlRequest, now: float, wall: float | None = None
    ) -> Accept | Refuse:
        """Operate or TimeActivatedOperate (operTm set; ``wall``: the wall clock at ``now``,
        which operTm is compared with; None: ``now`` is that clock too)."""
        delay = (request.oper_tm - (now if wall is None else wall)) if request.oper_tm else 0.0
        if self.ctl_model == CtlModel.STATUS_ONLY:
            return Refuse(AddCause.NOT_SUPPORTED)
        refused = self._busy(request.owner)
        if refused is not None:
            return refused
        if delay > self.max_activation_delay:
            return Refuse(AddCause.INCONSISTENT_PARAMETERS)
        if self.sbo:
            if self.selected_by is None:
                return Refuse(AddCause.OBJECT_NOT_SELECTED)
            if self.selection is not None and not request.same_command(self.selection):
                self._end()  # libiec61850: the selection does not survive a wrong Operate
                return Refuse(AddCause.INCONSISTENT_PARAMETERS)
        self.pending = request
        if delay > 0:
            self.state = "wait-for-activation"
            self.activation_at = now + delay  # monotonic from here on (module docstring)
            return Accept(execute_now=False)
        self.state = "executing"
        return Accept(execute_now=True)

    def cancel(self, request: ControlRequest, now: float) -> Accept | Refuse:
        """Cancel: ends a selection, or a time-activated operate still waiting."""
        if self.ctl_model == CtlModel.STATUS_ONLY:
            return Refuse(AddCause.NOT_SUPPORTED)
        if self.state == "executing":
            return self._busy(request.owner) or Refuse(AddCause.COMMAND_ALREADY_IN_EXECUTION)
        if self.state == "wait-for-activation":
            assert self.pending is not None
            if self.pending.owner != request.owner:
                return Refuse(AddCause.LOCKED_BY_OTHER_CLIENT)
            self._end()
            return Accept()
        if self.selected_by is None:  # SBO: nothing to cancel is a success (libiec61850)
            return Accept() if self.sbo else Refuse(AddCause.OBJECT_NOT_SELECTED)
        if self.selected_by != request.owner:
            return Refuse(AddCause.LOCKED_BY_OTHER_CLIENT)
        self._end()
        return Accept()

    def finished(self, now: float) -> None:
        """The execution ended (either way): back to unselected, or to ready (operate-many)."""
        self.pending = None
        self.activation_at = None
        if self.sbo and self.sbo_class == SboClass.OPERATE_MANY and self.selected_by is not None:
            self.state = "ready"
            self.select_deadline = now + self.sbo_timeout
        else:
            self._end()

    def release(self, owner: Hashable) -> ControlRequest | None:
        """``owner``'s association ended: drop its selection and its pending operate (returned);
        an execution in progress runs to its end, and then leaves no selection (operate-many)."""
        dropped = None
        if self.state == "wait-for-activation" and self.pending and self.pending.owner == owner:
            dropped = self.pending
            self._end()
        elif self.state == "ready" and self.selected_by == owner:
            self._end()
        elif self.state == "executing" and self.selected_by == owner:
            self.selected_by = None  # finished() then unselects: nobody may keep using it
            self.selection = None
        return dropped

    def timer(self, now: float) -> list[Activate | SelectExpired]:
        """Expire the selection, start a time-activated operate whose operTm is reached."""
        if self.state == "ready" and self.select_deadline is not None:
            if now >= self.select_deadline:
                owner = self.selected_by
                self._end()
                return [SelectExpired(owner)]
        if self.state == "wait-for-activation" and self.activation_at is not None:
            if now >= self.activation_at:
                assert self.pending is not None
                self.state = "executing"
                self.activation_at = None
                return [Activate(self.pending)]
        return []

    def _end(self) -> None:
        self.state = "unselected"
        self.selected_by = None
        self.select_deadline = None
        self.selection = None
        self.pending = None
        self.activation_at = None
