"""The report PDU of IEC 61850-8-1 (informationReport, vmd-specific ``RPT``), built and parsed.

AccessResults in the 8-1 order, each but the first two and the inclusion bit string conditional
on OptFlds: RptID, OptFlds, SeqNum, TimeOfEntry, DatSet, BufOvfl, EntryID, ConfRev, SubSeqNum and
MoreSegmentsFollow (segmentation), inclusion bit string, data references, values, reason codes.
:func:`build_reports` splits a report into segments when it does not fit the negotiated PDU
size; :func:`parse_report` turns a received informationReport into a typed :class:`Report`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from gridbind.errors import RemoteError
from gridbind.generated.iec61850_8_2 import scsm_8_2 as m
from gridbind.iec61850.errors import Iec61850Error

from .. import mms
from .. import mmsdata as d
from ..mmsdata import OptFlds, ReasonForInclusion, Timestamp
from ..server_protocol import read_bound
from ..services.mmsview import binary_time_octets, timestamp_of_binary_time

__all__ = ["ReportContent", "Report", "ReportedValue", "ReportError", "build_reports"]
__all__ += ["parse_report", "is_report", "RPT"]

#: The vmd-specific variable list name of every report.
RPT = "RPT"
#: Segments of one report at most (a peer-chosen PDU size must not make thousands of them).
MAX_SEGMENTS = 256


class ReportError(Iec61850Error, RemoteError, ValueError):
    """An informationReport that is not a well-formed 8-1 report."""


@dataclass(slots=True)
class ReportContent:
    """What one report (or buffered entry) says, before the OptFlds of its RCB shape the PDU.

    ``members`` are ``(index in the data set, value, reasons)`` in data set order.
    """

    members: list[tuple[int, m.Data, ReasonForInclusion]]
    time_of_entry: Timestamp
    entry_id: bytes = b"\x00" * 8


@dataclass(slots=True)
class Header:
    """The RCB attributes a report carries."""

    rpt_id: str
    opt_flds: OptFlds
    dat_set: str
    conf_rev: int
    member_refs: list[str]
    seq_num: int = 0
    buf_ovfl: bool = False


def _results(
    h: Header,
    c: ReportContent,
    members: list[tuple[int, m.Data, ReasonForInclusion]],
    opt: OptFlds,
    sub_seq: int,
    more: bool,
) -> list[m.AccessResult]:
    out = [d.visible_string(h.rpt_id), d.bit_string(opt.to_bits())]
    if OptFlds.SEQUENCE_NUMBER in opt:
        out.append(d.unsigned(h.seq_num))
    if OptFlds.REPORT_TIME_STAMP in opt:
        out.append(m.Data(choice=m.Data.BinaryTime(value=binary_time_octets(c.time_of_entry))))
    if OptFlds.DATA_SET_NAME in opt:
        out.append(d.visible_string(h.dat_set.replace(".", "$")))
    if OptFlds.BUFFER_OVERFLOW in opt:
        out.append(d.boolean(h.buf_ovfl))
    if OptFlds.ENTRY_ID in opt:
        out.append(d.octet_string(c.entry_id))
    if OptFlds.CONF_REVISION in opt:
        out.append(d.unsigned(h.conf_rev))
    if OptFlds.SEGMENTATION in opt:
        out.append(d.unsigned(sub_seq))
        out.append(d.boolean(more))
    included = {i for i, _, _ in members}
    out.append(
        d.bit_string("".join("1" if i in included else "0" for i in range(len(h.member_refs))))
    )
    if OptFlds.DATA_REFERENCE in opt:
        out.extend(d.visible_string(h.member_refs[i]) for i, _, _ in members)
    out.extend(value for _, value, _ in members)
    if OptFlds.REASON_FOR_INCLUSION in opt:
        out.extend(d.bit_string(reason.to_bits()) for _, _, reason in members)
    return [m.AccessResult(choice=x) for x in out]


def _pdu(results: list[m.AccessResult]) -> m.Mmspdu:
    return mms.information_report(mms.vmd(RPT), results)


def build_reports(
    h: Header, c: ReportContent, limit: int, measure: Callable[[m.Mmspdu], int]
) -> list[m.Mmspdu]:
    """The PDUs of one report: one, or segments (SubSeqNum, MoreSegmentsFollow) of at most
    ``limit`` octets each as ``measure`` counts them. Raises :class:`ReportError` when one
    member alone does not fit."""
    opt = h.opt_flds & ~OptFlds.SEGMENTATION
    results = _results(h, c, c.members, opt, 0, False)
    if read_bound(_bound_body(results)) <= limit or measure(_pdu(results)) <= limit:
        return [_pdu(results)]
    opt |= OptFlds.SEGMENTATION
    pieces = 2
    while pieces <= min(MAX_SEGMENTS, max(1, len(c.members))):
        step = -(-len(c.members) // pieces)
        chunks = [c.members[i : i + step] for i in range(0, len(c.members), step)]
        pdus = [
            _pdu(_results(h, c, chunk, opt, n, n < len(chunks) - 1))
            for n, chunk in enumerate(chunks)
        ]
        if all(measure(p) <= limit for p in pdus):
            return pdus
        pieces *= 2
    raise ReportError(f"a report of {len(c.members)} members does not fit {limit} octets")


def _bound_body(results: list[m.AccessResult]) -> m.ReadResponse:
    return m.ReadResponse(list_of_access_result=m.ListOfAccessResult(access_result=results))


# ---------------------------------------------------------------- client side
@dataclass(slots=True)
class ReportedValue:
    """One data set member in a report: its index, reference (when the report carries data
    references), value (Data and Python) and the reasons for its inclusion."""

    index: int
    reference: str | None
    data: m.Data
    reason: ReasonForInclusion | None

    @property
    def value(self) -> Any:
        return d.to_python(self.data)


@dataclass(slots=True)
class Report:
    """A received report (or one segment of it)."""

    rpt_id: str
    opt_flds: OptFlds
    inclusion: str
    values: list[ReportedValue] = field(default_factory=list)
    seq_num: int | None = None
    time_of_entry: Timestamp | None = None
    dat_set: str | None = None
    buf_ovfl: bool | None = None
    entry_id: bytes | None = None
    conf_rev: int | None = None
    sub_seq_num: int | None = None
    more_segments_follow: bool | None = None

    def by_reference(self) -> dict[str, Any]:
        """``{data reference: Python value}`` (needs OptFlds data-reference)."""
        return {v.reference: v.value for v in self.values if v.reference is not None}


def is_report(report: m.InformationReport) -> bool:
    """True for an informationReport on the vmd-specific variable list ``RPT``."""
    spec = report.variable_access_specification.choice
    return isinstance(spec, m.ObjectName) and mms.name_key(spec) == ("vmd-specific", RPT)


def parse_report(report: m.InformationReport) -> Report:
    """The typed :class:`Report` of an ``RPT`` informationReport (raises
    :class:`ReportError`)."""
    if not is_report(report):
        raise ReportError("not an RPT informationReport")
    items: list[m.Data] = []
    for result in report.list_of_access_result.access_result:
        if not isinstance(result.choice, m.Data):
            raise ReportError("a report holds no failures")
        items.append(result.choice)
    pos = 0

    def take() -> m.Data:
        nonlocal pos
        if pos >= len(items):
            raise ReportError("report ends early")
        pos += 1
        return items[pos - 1]

    try:
        out = Report(d.as_str(take()), cast(OptFlds, OptFlds.from_bits(take())), "")
        opt = out.opt_flds
        if OptFlds.SEQUENCE_NUMBER in opt:
            out.seq_num = d.as_int(take())
        if OptFlds.REPORT_TIME_STAMP in opt:
            raw = take().choice
            if not isinstance(raw, m.Data.BinaryTime):
                raise ReportError("TimeOfEntry is not a binary-time")
            out.time_of_entry = timestamp_of_binary_time(raw.value)
        if OptFlds.DATA_SET_NAME in opt:
            out.dat_set = d.as_str(take())
        if OptFlds.BUFFER_OVERFLOW in opt:
            out.buf_ovfl = d.as_bool(take())
        if OptFlds.ENTRY_ID in opt:
            out.entry_id = d.as_octets(take())
        if OptFlds.CONF_REVISION in opt:
            out.conf_rev = d.as_int(take())
        if OptFlds.SEGMENTATION in opt:
            out.sub_seq_num = d.as_int(take())
            out.more_segments_follow = d.as_bool(take())
        out.inclusion = d.as_bits(take())
        indices = [i for i, bit in enumerate(out.inclusion) if bit == "1"]
        refs: list[str | None] = [None] * len(indices)
        if OptFlds.DATA_REFERENCE in opt:
            refs = [d.as_str(take()) for _ in indices]
        values = [take() for _ in indices]
        reasons: list[ReasonForInclusion | None] = [None] * len(indices)
        if OptFlds.REASON_FOR_INCLUSION in opt:
            reasons = [
                cast(ReasonForInclusion, ReasonForInclusion.from_bits(take())) for _ in indices
            ]
    except d.MmsDataError as exc:
        raise ReportError(str(exc)) from None
    if pos != len(items):
        raise ReportError(f"{len(items) - pos} AccessResults after the report")
    out.values = [ReportedValue(*row) for row in zip(indices, refs, values, reasons, strict=True)]
    return out
