"""Log control blocks (LCB, FC LG) of IEC 61850-7-2 and the readJournal service, sans-IO.

:class:`LogEngine` logs the members of an enabled LCB's data set into the persistent
:class:`~.store.LogStore`: one entry per triggering change (TrgOps dchg/qchg/dupd against the
attributes' SCL trigger options) and one entry of every member each IntgPd (TrgOps integrity;
:meth:`poll` at :meth:`next_deadline`). LogRef names the log (``LD/LN$LogName``); the LCB's
OldEntrTm/NewEntrTm/OldEnt/NewEnt follow the store. readJournal answers QueryLogByTime and
QueryLogAfter a page at a time (``moreFollows``; the server also cuts a page to the PDU size).

An entry made by a change is written at the next :meth:`~LogEngine.poll` (or
:meth:`~LogEngine.flush`), not inside the change: the application's update stores the value
first and its ``q`` and ``t`` after it, and the entry must show them (as a report does: the
waiting entry follows the member's other attributes). Its time is that of its first change; the
same member triggering again before it is written writes the waiting entry first.

Two SCL LogControl settings without an 8-1 attribute are honoured: ``bufTime`` (ms, Ed2.1):
the changes of an LCB within bufTime of its first one make one entry (one value and reason per
member, as a buffered report), written bufTime after that first change; ``reasonCode`` (default
true): false stores the entries without the ReasonCode that follows each value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gridbind.errors import LocalError
from gridbind.generated.iec61850_8_2 import scsm_8_2 as m
from gridbind.iec61850.errors import Iec61850Error

from .. import mms
from ..association import Association
from ..mmsdata import MmsDataError, ReasonForInclusion, Timestamp, TriggerConditions
from ..model import (
    ControlBlock,
    DataAttribute,
    ModelError,
    ServerModel,
)
from ..reporting.cbstate import (
    MIN_LOG_INTEGRITY_MS,
    CbState,
    Member,
    advance_integrity,
    concerned,
    members_of,
    watch_members,
)
from ..reporting.rcb import trigger_options
from ..services.mmsview import data_value, timestamp_of_binary_time
from .journal import journal_entry
from .store import LogStore, StoredEntry

__all__ = ["LogEngine", "MAX_JOURNAL_PAGE"]

#: Entries of one readJournal answer at most (the PDU size may cut it shorter).
MAX_JOURNAL_PAGE = 200

_TRIGGERS = {
    "dchg": (TriggerConditions.DATA_CHANGE, ReasonForInclusion.DATA_CHANGE),
    "qchg": (TriggerConditions.QUALITY_CHANGE, ReasonForInclusion.QUALITY_CHANGE),
    "dupd": (TriggerConditions.DATA_UPDATE, ReasonForInclusion.DATA_UPDATE),
}


class JournalError(Iec61850Error, LocalError):
    """A readJournal the server refuses: (error class, code, text)."""

    def __init__(self, error_class: str, code: str, text: str) -> None:
        super().__init__(text)
        self.error_class, self.code, self.text = error_class, code, text


@dataclass(eq=False)
class Lcb(CbState):
    members: list[Member] = field(default_factory=list)
    integrity_deadline: float | None = None

    @property
    def log(self) -> str:
        return self.get("LogRef") or ""

    @property
    def buf_time(self) -> float:
        """SCL bufTime in seconds (0: an entry per change)."""
        return max(0, int(self.cb.config.get("bufTime", 0))) / 1000

    @property
    def reason_code(self) -> bool:
        return bool(self.cb.config.get("reasonCode", True))


@dataclass(eq=False, slots=True)
class _Waiting:
    """The entry an LCB is gathering: its time, when it is due, and per member index
    ``[reference, reasons, value]``."""

    lcb: Lcb
    wall: float
    due: float
    members: dict[int, list[Any]] = field(default_factory=dict)


def _journal_time(raw: bytes) -> float:
    """A readJournal time: a TimeOfDay with its date (6 octets). A 4-octet TimeOfDay names no
    day, so it is refused rather than taken as a time of 1984-01-01."""
    if len(raw) != 6:
        raise JournalError("service", "other", "a journal time is a 6-octet TimeOfDay")
    if int.from_bytes(raw[:4], "big") >= 86_400_000:
        raise JournalError("service", "other", "a TimeOfDay is below 86400000 ms")
    try:
        return timestamp_of_binary_time(raw).to_float()
    except (MmsDataError, ValueError, OverflowError) as exc:
        raise JournalError("service", "other", f"a bad journal time: {exc}") from None


def _ms(t: float) -> float:
    return round(t * 1000) / 1000


class LogEngine:
    """Every LCB of ``model`` with its entries in ``store``."""

    def __init__(
        self,
        model: ServerModel,
        store: LogStore,
        now: float,
        min_integrity_ms: int | None = None,
        *,
        prune: bool = True,
        wall_clock: Callable[[], float | Timestamp] | None = None,
    ) -> None:
        self.model = model
        #: the times of entries come from it (POSIX seconds or a Timestamp of the IED's clock)
        #: when ``now`` is a monotonic clock (None: ``now``)
        self.wall_clock = wall_clock
        #: IntgPd below this (ms) runs at it
        self.min_integrity_ms = (
            MIN_LOG_INTEGRITY_MS if min_integrity_ms is None else min_integrity_ms
        )
        self.store = store
        self.lcbs: dict[ControlBlock, Lcb] = {}
        for ln in model.iter_nodes():
            for cb in ln.control_blocks:
                if cb.kind == "LCB":
                    self.lcbs[cb] = Lcb(cb)
        self._watch: dict[int, list[tuple[Lcb, int]]] = {}
        # the entries of changes not written yet, by id(lcb) (see the module docstring)
        self._pending: dict[int, _Waiting] = {}
        if prune:  # (a store shared with other IEDs is theirs too: the caller says)
            store.retain(self.logs)  # the entries of logs no longer in the SCL
        for lcb in self.lcbs.values():
            self._status(lcb)
            if lcb.get("LogEna"):
                try:
                    self._enable(lcb, now)
                except ModelError:
                    lcb.put("LogEna", False)  # an SCL LCB without a usable data set
        self._rewatch()

    @property
    def logs(self) -> list[str]:
        """The log references (``LD/LN$LogName``) of the IED."""
        return sorted({lcb.log for lcb in self.lcbs.values() if lcb.log})

    def journal_names(self, ld: str) -> list[str]:
        """The MMS journal names (``LN$LogName``) of a logical device."""
        return sorted(log.partition("/")[2] for log in self.logs if log.partition("/")[0] == ld)

    # ---------------------------------------------------------------- writes
    def stage_write(
        self, assoc: Association, cb: ControlBlock, attr: DataAttribute, value: Any, now: float
    ) -> Callable[[], None]:
        lcb = self.lcbs[cb]
        if attr.name == "LogEna" and value and not lcb.get("LogEna"):
            self._members(lcb.get("DatSet"))  # raises when DatSet names no data set

        def store() -> None:
            attr.value = value
            if attr.name == "LogEna":
                if value:
                    self._enable(lcb, now)
                else:
                    lcb.integrity_deadline = None
                self._rewatch()

        return store

    def _members(self, ds_ref: str) -> list[Member]:
        return members_of(self.model, ds_ref)

    def _enable(self, lcb: Lcb, now: float) -> None:
        lcb.members = self._members(lcb.get("DatSet"))
        period = lcb.integrity(self.min_integrity_ms)
        trg = TriggerConditions.from_bits(lcb.get("TrgOps"))
        lcb.integrity_deadline = (
            now + period if TriggerConditions.INTEGRITY in trg and period > 0 else None
        )

    def _rewatch(self) -> None:
        self._watch = watch_members(
            (lcb, lcb.members) for lcb in self.lcbs.values() if lcb.get("LogEna")
        )

    # ---------------------------------------------------------------- entries
    def notify(self, attr: DataAttribute, old: Any, new: Any, now: float) -> None:
        if not self._watch:
            return
        options = trigger_options(attr)
        if not options and not self._pending:
            return
        for lcb, index in list(concerned(self._watch, attr)):
            trg = TriggerConditions.from_bits(lcb.get("TrgOps"))
            reason = ReasonForInclusion(0)
            for option in options:
                op, why = _TRIGGERS[option]
                if op in trg and (option == "dupd" or old != new):
                    reason |= why
            node, fc, ref = lcb.members[index]
            waiting = self._pending.get(id(lcb))
            if waiting is not None and not reason:
                if index in waiting.members:  # its t or q: the entry shows it as it is now
                    waiting.members[index][2] = data_value(self.model, node, fc)
                continue
            if waiting is not None and (index in waiting.members or not lcb.buf_time):
                # it triggers again (or bufTime 0: an entry per change): that entry first
                self._write(self._pending.pop(id(lcb)))
                waiting = None
            if reason:
                if waiting is None:
                    waiting = _Waiting(lcb, self._wall(now), now + lcb.buf_time)
                    self._pending[id(lcb)] = waiting
                waiting.members[index] = [ref, reason, data_value(self.model, node, fc)]

    def flush(self, now: float | None = None) -> None:
        """Write the entries of the changes notified so far (``now``: those due by then)."""
        for key, waiting in list(self._pending.items()):
            if now is None or waiting.due <= now:
                del self._pending[key]
                self._write(waiting)

    def _write(self, waiting: _Waiting) -> None:
        lcb = waiting.lcb
        values = [
            (ref, value, reason.to_bits() if lcb.reason_code else "")
            for _, (ref, reason, value) in sorted(waiting.members.items())
        ]
        self.store.add(lcb.log, _ms(waiting.wall), values)
        self._statuses(lcb.log)

    def _wall(self, now: float) -> float:
        wall = now if self.wall_clock is None else self.wall_clock()
        return wall.to_float() if isinstance(wall, Timestamp) else wall

    def _log(self, lcb: Lcb, indices: list[int], reason: ReasonForInclusion, wall: float) -> None:
        values = []
        for i in indices:
            node, fc, ref = lcb.members[i]
            bits = reason.to_bits() if lcb.reason_code else ""
            values.append((ref, data_value(self.model, node, fc), bits))
        self.store.add(lcb.log, _ms(wall), values)
        self._statuses(lcb.log)

    def _statuses(self, log: str) -> None:
        for other in self.lcbs.values():
            if other.log == log:
                self._status(other)

    def _status(self, lcb: Lcb) -> None:
        old, new = self.store.status(lcb.log)
        for prefix, entry in (("Old", old), ("New", new)):
            if entry is not None:
                lcb.put(f"{prefix}EntrTm", Timestamp.from_float(entry.time))
                lcb.put(f"{prefix}Ent", entry.entry_id.to_bytes(8, "big"))

    def next_deadline(self) -> float | None:
        times = [lcb.integrity_deadline for lcb in self.lcbs.values() if lcb.integrity_deadline]
        times += [waiting.due for waiting in self._pending.values()]
        return min(times, default=None)

    def poll(self, now: float) -> None:
        """Write the entries of changes due at ``now``, and the integrity entries due."""
        self.flush(now)
        for lcb in self.lcbs.values():
            if lcb.integrity_deadline is not None and lcb.integrity_deadline <= now:
                waiting = self._pending.pop(id(lcb), None)
                if waiting is not None:  # the gathered changes go before the integrity entry
                    self._write(waiting)
                everything = list(range(len(lcb.members)))
                self._log(lcb, everything, ReasonForInclusion.INTEGRITY, self._wall(now))
                period = lcb.integrity(self.min_integrity_ms)
                lcb.integrity_deadline = advance_integrity(lcb.integrity_deadline, period, now)

    # ---------------------------------------------------------------- readJournal
    def read_journal(self, req: m.ReadJournalRequest) -> m.ReadJournalResponse:
        for lcb_id, waiting in list(self._pending.items()):  # changes of now (bufTime 0)
            if not waiting.lcb.buf_time:
                del self._pending[lcb_id]
                self._write(waiting)
        key = mms.name_key(req.journal_name)
        if key[0] != "domain-specific" or f"{key[1]}/{key[2]}" not in self.logs:
            raise JournalError("access", "object-non-existent", f"no journal {key[-1]!r}")
        log = f"{key[1]}/{key[2]}"
        if req.list_of_variables is not None and req.list_of_variables.visible_string:
            raise JournalError("service", "other", "listOfVariables is not supported")
        start = stop = None
        after = None
        limit = MAX_JOURNAL_PAGE
        rs = req.range_start_specification
        if rs is not None:
            if isinstance(rs.choice, m.ReadJournalRequest.RangeStartSpecification.StartingTime):
                start = _journal_time(rs.choice.value)
            elif rs.choice is not None:
                after = int.from_bytes(rs.choice.value[:8], "big")
                after -= 1  # startingEntry includes the entry itself
        stop_spec = req.range_stop_specification
        if stop_spec is not None:
            if isinstance(stop_spec.choice, bytes):
                stop = _journal_time(stop_spec.choice)
            elif isinstance(stop_spec.choice, int):
                if stop_spec.choice < 1:
                    raise JournalError("service", "other", "numberOfEntries below 1")
                limit = min(limit, stop_spec.choice)
        if req.entry_to_start_after is not None:
            raw = req.entry_to_start_after.entry_specification
            if len(raw) != 8:
                raise JournalError("service", "other", "an EntryID has 8 octets")
            after = int.from_bytes(raw, "big")
            start = None  # the entry identifies the position; its time is informative
        entries, more = self.store.query(
            log, start=start, stop=stop, after_entry=after, limit=limit
        )
        if stop_spec is not None and isinstance(stop_spec.choice, int):
            # numberOfEntries: no more follow once all asked for are in this answer; above a
            # page the client goes on after the last entry it got
            more = more and stop_spec.choice > len(entries)
        return m.ReadJournalResponse(
            list_of_journal_entry=m.ReadJournalResponse.ListOfJournalEntry(
                journal_entry=[journal_entry(e) for e in entries]
            ),
            more_follows=more,
        )


__all__ += ["JournalError", "StoredEntry"]
