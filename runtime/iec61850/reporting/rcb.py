"""Report control blocks (BRCB, URCB) of IEC 61850-7-2, sans-IO: writes, triggers, timers in,
reports out.

:class:`ReportEngine` owns the state of every RCB of a :class:`~..model.ServerModel` (the SCL
loader made their attributes). The server feeds it:

- ``stage_write(assoc, cb, attr, value, now)``: a client's write of an RCB attribute the model's
  write policy accepted; it checks the reservation rules and returns what stores it (with its
  side effects: enable, GI, PurgeBuf, Resv/ResvTms, DatSet);
- ``notify(attr, old, new, now)``: a value stored in the model (the triggers);
- ``poll(now)``: the deadlines (BufTm, IntgPd) that have come; ``next_deadline()`` says when;
- ``association_ended(assoc, now)``: the client went away (its URCBs are released; its BRCBs
  keep buffering for its return);

and sends what :meth:`ReportEngine.take` returns: ``(association, informationReport PDU)``
(:meth:`ReportEngine.take_tagged` adds the :class:`SentReport` each PDU belongs to; a report the
server could not deliver goes back with :meth:`ReportEngine.undelivered`).

Rules (7-2): the attributes but RptEna/GI (and Resv) are locked while enabled (model policy); a
block reserved by a client (URCB ``Resv``, an enabled block, a BRCB with ``ResvTms``) refuses the
writes of other clients; RptEna needs an existing DatSet; enabling resets SqNum (URCB); GI while
enabled sends a general interrogation and reads back false; PurgeBuf while disabled empties the
buffer; a new DatSet purges the buffer and raises ConfRev; EntryID written before enabling a
BRCB names the last entry the client has (zero: everything buffered).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from gridbind.generated.iec61850_8_2 import scsm_8_2 as m

from ..association import Association
from ..mmsdata import OptFlds, ReasonForInclusion, Timestamp, TriggerConditions
from ..model import (
    ControlBlock,
    DataAccessError,
    DataAttribute,
    ModelError,
    ServerModel,
)
from ..services.mmsview import data_value
from .buffer import ReportBuffer, entry_id_bytes, entry_id_int
from .cbstate import (
    MIN_INTEGRITY_MS,
    CbState,
    Member,
    advance_integrity,
    concerned,
    integrity_period,
    member_reference,
    members_of,
    watch_members,
)
from .report_pdu import Header, ReportContent, ReportError, build_reports

__all__ = ["ReportEngine", "Rcb", "SentReport", "DEFAULT_BUFFER_ENTRIES", "member_reference"]

#: Entries of one BRCB buffer unless the server says otherwise.
DEFAULT_BUFFER_ENTRIES = 1000
_TRIGGER_REASON = {
    "dchg": ReasonForInclusion.DATA_CHANGE,
    "qchg": ReasonForInclusion.QUALITY_CHANGE,
    "dupd": ReasonForInclusion.DATA_UPDATE,
}
_REASON_OF_TRGOP = {
    TriggerConditions.DATA_CHANGE: ReasonForInclusion.DATA_CHANGE,
    TriggerConditions.QUALITY_CHANGE: ReasonForInclusion.QUALITY_CHANGE,
    TriggerConditions.DATA_UPDATE: ReasonForInclusion.DATA_UPDATE,
}


def _bare(jid: str) -> str:
    return jid.partition("/")[0]


def _owner_octets(jid: str) -> bytes:
    raw = jid.encode()
    return raw if len(raw) <= 64 else _bare(jid).encode()[:64]


def trigger_options(attr: DataAttribute) -> frozenset[str]:
    """The SCL trigger options of ``attr`` and of the structures holding it."""
    options: set[str] = set()
    node: Any = attr
    while isinstance(node, DataAttribute):
        options |= node.trigger
        node = node.parent
    return frozenset(options)


@dataclass(eq=False)
class Rcb(CbState):
    """The run-time state of one RCB instance."""

    buffer: ReportBuffer | None
    assoc: Association | None = None
    owner: str | None = None  # bare JID holding the reservation
    reserved_until: float | None = None  # BRCB after its client left (ResvTms)
    members: list[Member] = field(default_factory=list)
    pending: dict[int, tuple[m.Data, ReasonForInclusion]] = field(default_factory=dict)
    pending_deadline: float | None = None
    integrity_deadline: float | None = None
    buffering: bool = False  # a BRCB buffers from its first enable on

    @property
    def buffered(self) -> bool:
        return self.buffer is not None

    @property
    def enabled(self) -> bool:
        return bool(self.get("RptEna"))

    @property
    def trg_ops(self) -> TriggerConditions:
        return cast(TriggerConditions, TriggerConditions.from_bits(self.get("TrgOps")))

    @property
    def opt_flds(self) -> OptFlds:
        return cast(OptFlds, OptFlds.from_bits(self.get("OptFlds")))

    @property
    def active(self) -> bool:
        """Reports are made (sent, or buffered for an absent client)."""
        return self.enabled or self.buffering


@dataclass(eq=False, slots=True)
class SentReport:
    """One report handed out for sending (each of its segments carries the same one)."""

    rcb: Rcb
    entry_id: bytes | None  # a BRCB's entry; None: a URCB's report

    @property
    def buffered(self) -> bool:
        return self.entry_id is not None


class ReportEngine:
    """Every RCB of ``model``; see the module docstring."""

    def __init__(
        self,
        model: ServerModel,
        measure: Callable[[m.Mmspdu], int],
        *,
        buffer_entries: int = DEFAULT_BUFFER_ENTRIES,
        min_integrity_ms: int | None = None,
        wall_clock: Callable[[], float | Timestamp] | None = None,
    ) -> None:
        self.model = model
        #: TimeOfEntry comes from it (seconds since 1970, or the IED clock's Timestamp with its
        #: TimeQuality) when the ``now`` passed in is a monotonic clock for the deadlines;
        #: None: ``now`` is the wall clock
        self.wall_clock = wall_clock
        #: IntgPd below this (ms) runs at it
        self.min_integrity_ms = MIN_INTEGRITY_MS if min_integrity_ms is None else min_integrity_ms
        self.measure = measure
        self.rcbs: dict[ControlBlock, Rcb] = {}
        for ln in model.iter_nodes():
            for cb in ln.control_blocks:
                if cb.kind in ("URCB", "BRCB"):
                    buf = ReportBuffer(buffer_entries) if cb.kind == "BRCB" else None
                    self.rcbs[cb] = Rcb(cb, buf)
        # id(member node) -> [(rcb, member index)] of the RCBs that make reports
        self._watch: dict[int, list[tuple[Rcb, int]]] = {}
        self._trigger_cache: dict[int, frozenset[str]] = {}
        self._out: list[tuple[Association, m.Mmspdu, SentReport]] = []
        #: Reports that could not be built (a member larger than the PDU size).
        self.unsendable = 0

    def _entry_time(self, now: float) -> Timestamp:
        wall = now if self.wall_clock is None else self.wall_clock()
        return wall if isinstance(wall, Timestamp) else Timestamp.from_float(wall)

    # ---------------------------------------------------------------- outputs
    def take(self) -> list[tuple[Association, m.Mmspdu]]:
        """The reports to send, in order."""
        return [(assoc, pdu) for assoc, pdu, _ in self.take_tagged()]

    def take_tagged(self) -> list[tuple[Association, m.Mmspdu, SentReport]]:
        """The reports to send, in order, each PDU with the report it belongs to."""
        out, self._out = self._out, []
        return out

    def undelivered(self, report: SentReport) -> None:
        """``report`` never left the server (dropped by the bound of its association's queue).

        A BRCB's entry is still in its buffer: it counts as not delivered again, so that a
        client enabling the block without naming an EntryID gets it (one naming its last
        EntryID gets it anyway). A URCB's report is lost (7-2); the SqNum gap shows it."""
        buffer = report.rcb.buffer
        if buffer is not None and report.entry_id is not None:
            buffer.delivered = min(buffer.delivered, entry_id_int(report.entry_id) - 1)

    def next_deadline(self) -> float | None:
        times = [
            t
            for rcb in self.rcbs.values()
            for t in (rcb.pending_deadline, rcb.integrity_deadline, rcb.reserved_until)
            if t is not None
        ]
        return min(times, default=None)

    # ---------------------------------------------------------------- client writes
    def stage_write(
        self, assoc: Association, cb: ControlBlock, attr: DataAttribute, value: Any, now: float
    ) -> Callable[[], None]:
        rcb = self.rcbs[cb]
        self._expire(rcb, now)
        name = attr.name
        if rcb.owner is not None and rcb.owner != _bare(assoc.peer):
            raise ModelError(
                DataAccessError.TEMPORARILY_UNAVAILABLE, f"{cb.name} is reserved by another client"
            )
        if rcb.assoc is not None and rcb.assoc is not assoc and rcb.enabled:
            raise ModelError(
                DataAccessError.TEMPORARILY_UNAVAILABLE,
                f"{cb.name} is enabled by another association",
            )
        if name == "RptEna" and value and not rcb.enabled:
            self._members(rcb.get("DatSet"))  # raises when DatSet names no data set
        if name == "Resv" and not value and rcb.enabled:
            raise ModelError(DataAccessError.TEMPORARILY_UNAVAILABLE, f"{cb.name} is enabled")
        if name == "EntryID" and rcb.buffer is not None:
            if not rcb.buffer.knows(entry_id_int(value)):
                raise ModelError(
                    DataAccessError.OBJECT_VALUE_INVALID, f"{cb.name}: no entry {value.hex()}"
                )
        return lambda: self._store(rcb, assoc, attr, value, now)

    def _store(
        self, rcb: Rcb, assoc: Association, attr: DataAttribute, value: Any, now: float
    ) -> None:
        name = attr.name
        if name == "RptEna":
            if value and not rcb.enabled:
                self._enable(rcb, assoc, now)
            elif not value and rcb.enabled:
                self._disable(rcb, now)
                if rcb.buffered and not rcb.get("ResvTms"):
                    self._reserve(rcb, None)  # 7-2 Ed2: a BRCB is reserved while enabled or
                    # while its ResvTms holds it
            return
        if name == "GI":
            # (7-2: only a block whose TrgOps has general-interrogation answers a GI)
            if value and rcb.enabled and TriggerConditions.GENERAL_INTERROGATION in rcb.trg_ops:
                self._flush(rcb, now)
                self._whole(rcb, ReasonForInclusion.GENERAL_INTERROGATION, now)
            return  # GI reads back false: the interrogation is done
        if name == "PurgeBuf":
            if value and rcb.buffer is not None:
                rcb.buffer.purge()
                rcb.pending.clear()
                rcb.pending_deadline = None
            return
        attr.value = value
        if name == "Resv":
            self._reserve(rcb, assoc if value else None)
        elif name == "ResvTms":
            self._reserve(rcb, assoc if value else None)
        elif name == "DatSet":
            rcb.put("ConfRev", (rcb.get("ConfRev") or 0) + 1)
            rcb.members = []
            if rcb.buffer is not None:
                rcb.buffer.purge()
            rcb.buffering = False
            self._rewatch()
        elif name == "EntryID" and rcb.buffer is not None:
            rcb.buffer.resume(entry_id_int(value))

    def _reserve(self, rcb: Rcb, assoc: Association | None) -> None:
        rcb.owner = _bare(assoc.peer) if assoc is not None else None
        rcb.reserved_until = None
        if assoc is not None:
            rcb.assoc = assoc
        if rcb.cb.children.get("Owner") is not None:
            rcb.put("Owner", _owner_octets(assoc.peer) if assoc is not None else b"")
        if not rcb.buffered:
            rcb.put("Resv", assoc is not None)

    def _enable(self, rcb: Rcb, assoc: Association, now: float) -> None:
        rcb.members = self._members(rcb.get("DatSet"))
        rcb.put("RptEna", True)
        self._reserve(rcb, assoc)
        if not rcb.buffered:
            rcb.put("SqNum", 0)
        period = rcb.integrity(self.min_integrity_ms)
        if TriggerConditions.INTEGRITY in rcb.trg_ops and period > 0:
            rcb.integrity_deadline = now + period
        if rcb.buffer is not None:
            rcb.buffering = True
            for entry in rcb.buffer.due():  # resume: what the client has not received
                self._send(rcb, entry.content, now, entry.seq)
        self._rewatch()

    def _disable(self, rcb: Rcb, now: float, keep_owner: bool = True) -> None:
        self._flush(rcb, now)
        rcb.put("RptEna", False)
        rcb.integrity_deadline = None
        if not rcb.buffered:
            rcb.pending.clear()
            rcb.pending_deadline = None
        self._rewatch()

    def association_ended(self, assoc: Association, now: float) -> None:
        """Release what ``assoc`` held: URCBs are freed; BRCBs go on buffering, reserved for
        the same client for ResvTms seconds (when it has one)."""
        for rcb in self.rcbs.values():
            if rcb.assoc is not assoc:
                continue
            if rcb.enabled:
                self._disable(rcb, now)
            rcb.assoc = None
            resv = rcb.get("ResvTms") or 0
            if rcb.buffered and resv != 0:
                rcb.reserved_until = None if resv < 0 else now + resv
            else:
                self._reserve(rcb, None)

    def _expire(self, rcb: Rcb, now: float) -> None:
        if rcb.reserved_until is not None and now >= rcb.reserved_until and rcb.assoc is None:
            self._reserve(rcb, None)

    # ---------------------------------------------------------------- data sets
    def _members(self, ds_ref: str) -> list[Member]:
        return members_of(self.model, ds_ref)

    def _rewatch(self) -> None:
        for rcb in self.rcbs.values():
            if rcb.active and not rcb.members:
                try:
                    rcb.members = self._members(rcb.get("DatSet"))
                except ModelError:
                    continue
        self._watch = watch_members((rcb, rcb.members) for rcb in self.rcbs.values() if rcb.active)

    # ---------------------------------------------------------------- triggers
    def notify(self, attr: DataAttribute, old: Any, new: Any, now: float) -> None:
        """A value was stored in the model."""
        if not self._watch:
            return
        options = self._trigger_cache.get(id(attr))
        if options is None:
            options = self._trigger_cache[id(attr)] = trigger_options(attr)
        reasons = ReasonForInclusion(0)
        for option in options:
            if option == "dupd" or old != new:
                reasons |= _TRIGGER_REASON[option]
        for rcb, index in list(concerned(self._watch, attr)):
            self._member_changed(rcb, index, reasons, now)

    def _member_changed(
        self, rcb: Rcb, index: int, reasons: ReasonForInclusion, now: float
    ) -> None:
        trg = rcb.trg_ops
        wanted = ReasonForInclusion(0)
        for op, reason in _REASON_OF_TRGOP.items():
            if op in trg and reason in reasons:
                wanted |= reason
        node, fc, _ = rcb.members[index]
        if index in rcb.pending:
            if wanted:
                self._flush(rcb, now)  # the same member again: the waiting report goes first
            else:
                # another attribute of a waiting member (its t, an untriggered q): the report
                # shows the member as it is now
                rcb.pending[index] = (data_value(self.model, node, fc), rcb.pending[index][1])
                return
        if not wanted:
            return
        if rcb.pending and not rcb.get("BufTm"):
            self._flush(rcb, now)  # BufTm 0: one report per notification
        rcb.pending[index] = (data_value(self.model, node, fc), wanted)
        if rcb.pending_deadline is None:
            rcb.pending_deadline = now + (rcb.get("BufTm") or 0) / 1000

    # ---------------------------------------------------------------- deadlines
    def poll(self, now: float) -> None:
        """Send what is due at ``now`` (BufTm, IntgPd; expired reservations)."""
        for rcb in self.rcbs.values():
            if rcb.pending_deadline is not None and rcb.pending_deadline <= now:
                self._flush(rcb, now)
            if rcb.integrity_deadline is not None and rcb.integrity_deadline <= now:
                self._flush(rcb, now)
                self._whole(rcb, ReasonForInclusion.INTEGRITY, now)
                period = rcb.integrity(self.min_integrity_ms)
                rcb.integrity_deadline = advance_integrity(rcb.integrity_deadline, period, now)
            self._expire(rcb, now)

    def _flush(self, rcb: Rcb, now: float) -> None:
        if not rcb.pending:
            rcb.pending_deadline = None
            return
        members = [(i, value, reason) for i, (value, reason) in sorted(rcb.pending.items())]
        rcb.pending.clear()
        rcb.pending_deadline = None
        self._report(rcb, ReportContent(members, self._entry_time(now)), now)

    def _whole(self, rcb: Rcb, reason: ReasonForInclusion, now: float) -> None:
        members = [
            (i, data_value(self.model, node, fc), reason)
            for i, (node, fc, _) in enumerate(rcb.members)
        ]
        self._report(rcb, ReportContent(members, self._entry_time(now)), now)

    def _report(self, rcb: Rcb, content: ReportContent, now: float) -> None:
        seq = None
        if rcb.buffer is not None:
            # a BRCB numbers its entries as they are made: a resent entry keeps its SqNum
            seq = rcb.get("SqNum") or 0
            rcb.buffer.add(content, seq)
            rcb.put("SqNum", (seq + 1) % (1 << 16))
        if rcb.enabled and rcb.assoc is not None and rcb.assoc.open:
            self._send(rcb, content, now, seq)

    def _send(self, rcb: Rcb, content: ReportContent, now: float, seq: int | None = None) -> None:
        """Send ``content``; ``seq`` is a BRCB entry's SqNum (a URCB takes the next one)."""
        assoc = rcb.assoc
        assert assoc is not None
        urcb_seq = seq is None
        if seq is None:
            seq = rcb.get("SqNum") or 0
        buf_ovfl = bool(rcb.buffer is not None and rcb.buffer.overflowed)
        header = Header(
            rpt_id=rcb.get("RptID"),
            opt_flds=rcb.opt_flds,
            dat_set=rcb.get("DatSet"),
            conf_rev=rcb.get("ConfRev") or 0,
            member_refs=[ref for _, _, ref in rcb.members],
            seq_num=seq,
            buf_ovfl=buf_ovfl,
        )
        try:
            pdus = build_reports(header, content, assoc.params.max_pdu_size, self.measure)
        except ReportError:
            self.unsendable += 1
            return
        tag = SentReport(rcb, content.entry_id if rcb.buffer is not None else None)
        self._out.extend((assoc, pdu, tag) for pdu in pdus)
        if urcb_seq:
            rcb.put("SqNum", (seq + 1) % (1 << 8))
        if rcb.buffer is not None:
            rcb.buffer.overflowed = False
            rcb.buffer.delivered = entry_id_int(content.entry_id)
            rcb.put("EntryID", content.entry_id)
            rcb.put("TimeOfEntry", content.time_of_entry)


__all__ += ["trigger_options", "entry_id_bytes", "integrity_period", "MIN_INTEGRITY_MS"]
