"""The client side of the control services: Select, SelectWithValue, Cancel, Operate and
TimeActivatedOperate on one association, with the outcome incl. AddCause.

:class:`ControlClient` is held by each :class:`~gridbind.iec61850.client.ClientAssociation`
(``ied.controls``; ``ied.operate(...)`` & co. delegate to it). It builds the Oper / SBOw / Cancel
structure from the server's type description of that attribute (only the components it has:
ctlVal, operTm, origin (orCat, orIdent), ctlNum, T, Test, Check), numbers commands with ctlNum
(auto-increment modulo 256; SelectWithValue and its Operate share one, also when the Operate
comes separately with ``select=False``), and reads the
informationReports of the control services: a ``LastApplError`` that precedes a negative write
response gives the outcome its AddCause, and for enhanced security :meth:`ControlClient.operate`
waits for the CommandTermination (``$Oper``, preceded by LastApplError when negative).

``operate()`` selects first when the object's ctlModel (read once from FC CF) is an SBO model,
unless ``select=False``. The time it waits for the Oper answer (normal security: the end of the
execution) and for the CommandTermination follows the object's ``operTimeout`` (FC CF, read
once; :data:`DEFAULT_OPERATE_TIME` when it has none) plus :data:`TRANSIT_MARGIN`, and, for a
time-activated operate, the time until operTm.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gridbind.generated.iec61850_8_2 import scsm_8_2 as m

from .. import mms
from .. import mmsdata as d
from ..client_protocol import AssociationAborted, ClientError, DataAccessFailed
from ..model import Timestamp
from .addcause import AddCause, ControlError
from .models import CtlModel

__all__ = ["ControlClient", "ControlOutcome", "LastApplError", "parse_last_appl_error"]

#: orCat remote-control (7-3 OrCat): what a SCADA / DER master is.
REMOTE_CONTROL = 3
#: How long (seconds) the server may take to execute when the object has no operTimeout.
DEFAULT_OPERATE_TIME = 10.0
#: Added to the object's operTimeout for the answers' way through the network (seconds).
TRANSIT_MARGIN = 5.0


@dataclass(frozen=True)
class LastApplError:
    """The LastApplError informationReport (8-1)."""

    cntrl_obj: str
    error: int
    or_cat: int
    or_ident: bytes
    ctl_num: int
    add_cause: int

    @property
    def cause(self) -> AddCause | int:
        try:
            return AddCause(self.add_cause)
        except ValueError:
            return self.add_cause


def parse_last_appl_error(data: m.Data) -> LastApplError:
    """The LastApplError structure (raises ``MmsDataError``/``ValueError`` when malformed)."""
    items = d.as_items(data)
    if len(items) != 5:
        raise ValueError(f"LastApplError of {len(items)} components")
    origin = d.as_items(items[2])
    if len(origin) != 2:
        raise ValueError("LastApplError Origin of other than 2 components")
    return LastApplError(
        d.as_str(items[0]),
        d.as_int(items[1]),
        d.as_int(origin[0]),
        d.as_octets(origin[1]),
        d.as_int(items[3]),
        d.as_int(items[4]),
    )


@dataclass(frozen=True)
class ControlOutcome:
    """What became of a control service.

    ``ok``: the service succeeded (for an enhanced-security Operate: the write was accepted
    *and* the CommandTermination was positive). ``add_cause`` / ``error``: from LastApplError
    (None when the server sent none). ``failure``: the DataAccessError of a negative write (or
    ``select-failed`` for a Select the server answered with an empty SBO). ``terminated``: the
    CommandTermination (True +, False -, None: not awaited or not received in time).
    """

    ok: bool
    service: str
    ctl_num: int = 0
    add_cause: AddCause | int | None = None
    error: ControlError | int | None = None
    failure: str | None = None
    terminated: bool | None = None

    def __str__(self) -> str:
        if self.ok:
            end = ", CommandTermination +" if self.terminated else ""
            return f"{self.service} ok{end} (ctlNum {self.ctl_num})"
        cause = self.add_cause.text if isinstance(self.add_cause, AddCause) else self.add_cause
        what = self.failure or (
            "CommandTermination -" if self.terminated is False else "no CommandTermination"
        )
        return f"{self.service} refused: {what}" + (
            f", AddCause {cause}" if cause is not None else ""
        )


class ControlClient:
    """Control services of one association (``ied``); see the module docstring.

    ``encode(value, td)`` turns a Python value into Data of a type description and
    ``name(reference, fc)`` gives the ObjectName key: the client's own converters, injected.
    """

    def __init__(
        self,
        ied: Any,
        encode: Callable[[Any, m.TypeDescription], m.Data],
        name: Callable[[str, str], tuple],
    ) -> None:
        self.ied = ied
        self._encode = encode
        self._name = name
        self._ctl_num = 0
        self._models: dict[str, int] = {}
        self._oper_timeouts: dict[str, float | None] = {}
        self._selected: dict[str, int] = {}  # ctlNum of this association's SelectWithValue
        self._errors: dict[str, LastApplError] = {}
        self._writing: set[str] = set()  # CntrlObj of the writes awaiting their answer
        self._terminations: dict[str, asyncio.Future] = {}
        #: The last LastApplError received in this association.
        self.last_appl_error: LastApplError | None = None

    # ---------------------------------------------------------------- reports
    def take(self, report: m.InformationReport) -> bool:
        """Consume ``report`` when it is a LastApplError / CommandTermination (True)."""
        spec = report.variable_access_specification.choice
        if not isinstance(spec, m.VariableDefs):
            return False
        try:
            names = [mms.name_key(n) for n in mms.var_def_names(spec)]
        except mms.MmsError:
            return False
        results = report.list_of_access_result.access_result
        if not names or len(names) != len(results):
            return False
        error = None
        if names[0] == ("vmd-specific", "LastApplError"):
            try:
                choice = results[0].choice
                if not isinstance(choice, m.Data):
                    raise ValueError("LastApplError is an access failure")
                error = parse_last_appl_error(choice)
            except (ValueError, TypeError):
                return True  # ours, but unreadable: nothing to learn from it
            self.last_appl_error = error
            if error.cntrl_obj in self._writing:  # kept only for a write awaiting its answer
                self._errors[error.cntrl_obj] = error
            names = names[1:]
        if len(names) == 1 and names[0][0] == "domain-specific":
            _, ld, item = names[0]
            parts = item.split("$")
            if len(parts) == 4 and parts[1] == "CO" and parts[3] == "Oper":
                waiter = self._terminations.get(f"{ld}/{item}")
                if waiter is not None and not waiter.done():
                    waiter.set_result(error)
                return True
        return error is not None and not names

    def ended(self) -> None:
        """The association ended: CommandTerminations will not come."""
        for waiter in self._terminations.values():
            if not waiter.done():
                waiter.set_exception(
                    AssociationAborted(
                        f"association {self.ied.id} ended before the CommandTermination"
                    )
                )

    # ---------------------------------------------------------------- services
    async def control_model(self, ref: str) -> int:
        """The ctlModel of ``ref`` (``LD/LN.DO``), read once."""
        if ref not in self._models:
            self._models[ref] = int(await self.ied.get_data_values(f"{ref}.ctlModel", "CF"))
        return self._models[ref]

    async def oper_timeout(self, ref: str) -> float | None:
        """The operTimeout of ``ref`` in seconds (None when the object has none), read once."""
        if ref not in self._oper_timeouts:
            try:
                ms = await self.ied.get_data_values(f"{ref}.operTimeout", "CF")
            except (DataAccessFailed, ClientError):
                ms = None
            valid = isinstance(ms, int) and not isinstance(ms, bool) and ms > 0
            self._oper_timeouts[ref] = ms / 1000 if valid else None
        return self._oper_timeouts[ref]

    def _next_ctl_num(self) -> int:
        self._ctl_num = (self._ctl_num + 1) % 256
        return self._ctl_num

    async def select(self, ref: str) -> ControlOutcome:
        """Select (sbo-with-normal-security): a read of ``$SBO``."""
        value = await self.ied.get_data_values(f"{ref}.SBO", "CO")
        if value:
            return ControlOutcome(True, "Select")
        return ControlOutcome(False, "Select", failure="select-failed")

    async def select_with_value(
        self, ref: str, value: Any, *, ctl_num: int | None = None, **params: Any
    ) -> ControlOutcome:
        """SelectWithValue (sbo-with-enhanced-security): a write of ``$SBOw``."""
        num = self._next_ctl_num() if ctl_num is None else ctl_num
        outcome = await self._write(ref, "SBOw", value, num, params)
        if outcome.ok:
            self._selected[ref] = num
        return outcome

    async def cancel(
        self, ref: str, value: Any, *, ctl_num: int | None = None, **params: Any
    ) -> ControlOutcome:
        """Cancel a selection or a waiting time-activated operate: a write of ``$Cancel``."""
        num = self._selected.pop(ref, self._ctl_num) if ctl_num is None else ctl_num
        return await self._write(ref, "Cancel", value, num, params)

    async def operate(
        self,
        ref: str,
        value: Any,
        *,
        select: bool | None = None,
        ctl_num: int | None = None,
        termination_timeout: float | None = None,
        **params: Any,
    ) -> ControlOutcome:
        """Operate (TimeActivatedOperate with ``oper_time``), after a Select/SelectWithValue
        when the ctlModel asks for one (``select=None``), awaiting the CommandTermination of
        enhanced security.

        ``params``: ``oper_time`` (seconds since the epoch, or a Timestamp), ``test``,
        ``interlock_check``, ``synchrocheck``, ``or_cat`` (default remote-control), ``or_ident``
        (bytes; default the client's JID). ``termination_timeout`` (seconds): how long to wait
        for the CommandTermination; by default from the object's operTimeout (module docstring).
        """
        model = await self.control_model(ref)
        if select is None:
            select = model in (CtlModel.SBO_NORMAL, CtlModel.SBO_ENHANCED)
        if ctl_num is not None:
            num = ctl_num
        elif not select and ref in self._selected:  # Operate repeats its SelectWithValue
            num = self._selected[ref]
        else:
            num = self._next_ctl_num()
        self._selected.pop(ref, None)
        if select and model == CtlModel.SBO_ENHANCED:
            selected = await self._write(ref, "SBOw", value, num, params)
            if not selected.ok:
                return selected
        elif select:
            selected = await self.select(ref)
            if not selected.ok:
                return selected
        enhanced = model in (CtlModel.DIRECT_ENHANCED, CtlModel.SBO_ENHANCED)
        limit = (await self.oper_timeout(ref) or DEFAULT_OPERATE_TIME) + TRANSIT_MARGIN
        if termination_timeout is None:
            oper_time = params.get("oper_time") or 0.0
            if isinstance(oper_time, Timestamp):
                oper_time = oper_time.to_float()
            termination_timeout = limit + max(0.0, float(oper_time) - Timestamp.now().to_float())
        return await self._write(
            ref,
            "Oper",
            value,
            num,
            params,
            termination_timeout if enhanced else None,
            request_timeout=None if enhanced else limit,
        )

    # ---------------------------------------------------------------- plumbing
    async def _write(
        self,
        ref: str,
        service: str,
        value: Any,
        num: int,
        params: dict[str, Any],
        termination_timeout: float | None = None,
        request_timeout: float | None = None,
    ) -> ControlOutcome:
        reference = f"{ref}.{service}"
        td = await self.ied.get_data_definition(reference, "CO")
        data = self._encode(self._structure(td, value, num, params), td)
        key = self._name(reference, "CO")
        cntrl = f"{key[1]}/{key[2]}"
        self._errors.pop(cntrl, None)
        self._writing.add(cntrl)
        waiter = None
        if termination_timeout is not None:
            waiter = asyncio.get_running_loop().create_future()
            self._terminations[cntrl] = waiter
        try:
            response = await self.ied.request(
                mms.write([mms.variable(mms.dom(key[1], key[2]))], [data]), timeout=request_timeout
            )
            (failure,) = mms.write_results(response)
            if failure is not None:
                error = self._errors.pop(cntrl, None)
                return ControlOutcome(
                    False,
                    service,
                    num,
                    error.cause if error else None,
                    _error(error),
                    failure,
                )
            if waiter is None:
                return ControlOutcome(True, service, num)
            try:
                negative = await asyncio.wait_for(waiter, termination_timeout)
            except TimeoutError:
                return ControlOutcome(False, service, num, failure=None, terminated=None)
            if negative is None:
                return ControlOutcome(True, service, num, terminated=True)
            return ControlOutcome(
                False, service, num, negative.cause, _error(negative), terminated=False
            )
        finally:
            self._writing.discard(cntrl)
            self._errors.pop(cntrl, None)
            if waiter is not None and self._terminations.get(cntrl) is waiter:
                del self._terminations[cntrl]

    def _structure(
        self, td: m.TypeDescription, value: Any, num: int, params: dict[str, Any]
    ) -> dict[str, Any]:
        unknown = set(params) - {
            "oper_time", "test", "interlock_check", "synchrocheck", "or_cat", "or_ident", "t",
        }  # fmt: skip
        if unknown:
            raise TypeError(f"unknown control parameters {sorted(unknown)}")
        oper_time = params.get("oper_time") or 0.0
        check = ("1" if params.get("synchrocheck") else "0") + (
            "1" if params.get("interlock_check") else "0"
        )
        or_ident = params.get("or_ident")
        if or_ident is None:
            or_ident = self.ied.client.transport.full_jid.encode()[:64]
        values = {
            "ctlVal": value,
            "operTm": oper_time if isinstance(oper_time, Timestamp) else float(oper_time),
            "origin": {"orCat": params.get("or_cat", REMOTE_CONTROL), "orIdent": or_ident},
            "ctlNum": num,
            "T": params.get("t") or Timestamp.now(),
            "Test": bool(params.get("test", False)),
            "Check": check,
        }
        if not isinstance(td.choice, m.TypeDescription.Structure):
            raise TypeError("a control attribute is a structure")
        components = [seq.component_name for seq in td.choice.components.sequence]
        return {name: values[name] for name in components if name in values}


def _error(error: LastApplError | None) -> ControlError | int | None:
    if error is None:
        return None
    try:
        return ControlError(error.error)
    except ValueError:
        return error.error
