"""``gridbind iec61850 watch``: enable a report control block and print each report.

::

    gridbind iec61850 watch --peer ... FDR1LD0/LLN0.urcbStatus01 [--buffered] [--gi]
        [--trgops dchg,qchg,dupd,period,gi] [--intg-pd MS] [--buf-tm MS] [--entry-id HEX]
        [--count N] [--seconds S]

Each report is one JSON line: ``{"rptID", "seqNum", "timeOfEntry", "entryID", "bufOvfl",
"subSeqNum", "moreSegmentsFollow", "values": [{"index", "reference", "value", "reason"}]}``
(fields the report's OptFlds leave out are null). Registered by :mod:`.cli`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from .mmsdata import OptFlds, TriggerConditions
from .valuetext import to_json

__all__ = ["register_events", "report_json"]

_TRGOPS = {
    "dchg": TriggerConditions.DATA_CHANGE,
    "qchg": TriggerConditions.QUALITY_CHANGE,
    "dupd": TriggerConditions.DATA_UPDATE,
    "period": TriggerConditions.INTEGRITY,
    "gi": TriggerConditions.GENERAL_INTERROGATION,
}
#: What ``watch`` asks reports to carry.
WATCH_OPTFLDS = (
    OptFlds.SEQUENCE_NUMBER | OptFlds.REPORT_TIME_STAMP | OptFlds.REASON_FOR_INCLUSION
    | OptFlds.DATA_SET_NAME | OptFlds.DATA_REFERENCE | OptFlds.CONF_REVISION
)  # fmt: skip
_BUFFERED_OPTFLDS = OptFlds.BUFFER_OVERFLOW | OptFlds.ENTRY_ID


def _reason_names(reason: Any) -> list[str] | None:
    if reason is None:
        return None
    return [m.name.lower() for m in type(reason) if m in reason]


def report_json(report: Any) -> dict[str, Any]:
    """The JSON data ``watch`` prints for one :class:`~.reporting.Report`."""
    return {
        "rptID": report.rpt_id,
        "seqNum": report.seq_num,
        "timeOfEntry": to_json(report.time_of_entry) if report.time_of_entry else None,
        "datSet": report.dat_set,
        "entryID": report.entry_id.hex() if report.entry_id is not None else None,
        "bufOvfl": report.buf_ovfl,
        "confRev": report.conf_rev,
        "subSeqNum": report.sub_seq_num,
        "moreSegmentsFollow": report.more_segments_follow,
        "values": [
            {
                "index": v.index,
                "reference": v.reference,
                "value": to_json(v.value),
                "reason": _reason_names(v.reason),
            }
            for v in report.values
        ],
    }


def _trgops(text: str) -> TriggerConditions:
    out = TriggerConditions(0)
    for name in filter(None, (t.strip() for t in text.split(","))):
        if name not in _TRGOPS:
            raise ValueError(f"--trgops: {name!r} is not one of {', '.join(_TRGOPS)}")
        out |= _TRGOPS[name]
    return out


async def _watch(session: Any, args: argparse.Namespace) -> int:
    ied = session.ied
    attributes: dict[str, Any] = {
        "OptFlds": WATCH_OPTFLDS | (_BUFFERED_OPTFLDS if args.buffered else OptFlds(0))
    }
    if args.trgops is not None:
        attributes["TrgOps"] = _trgops(args.trgops)
    if args.intg_pd is not None:
        attributes["IntgPd"] = args.intg_pd
    if args.buf_tm is not None:
        attributes["BufTm"] = args.buf_tm
    if args.entry_id is not None:
        if not args.buffered:
            raise ValueError("--entry-id needs --buffered")
        attributes["EntryID"] = bytes.fromhex(args.entry_id)
    results = await ied.enable_reporting(args.rcb, buffered=args.buffered, gi=args.gi, **attributes)
    refused = {k: v for k, v in results.items() if v}
    if refused:
        raise ValueError(f"refused: {refused}")
    seen = 0

    async def show() -> None:
        nonlocal seen
        async for report in ied.report_stream():
            print(json.dumps(report_json(report)), flush=True)
            if not report.more_segments_follow:
                seen += 1
            if args.count and seen >= args.count:
                return

    try:
        await asyncio.wait_for(show(), args.seconds)
    except asyncio.TimeoutError:
        pass
    if ied.open:
        await ied.disable_reporting(args.rcb, buffered=args.buffered)
    return 0


def register_events(client_parser: Any) -> None:
    """Add ``watch`` with ``client_parser(name, help, func)`` of :func:`.cli.register`."""
    from .cli import _with_client

    def run_watch(args: argparse.Namespace) -> int:
        return asyncio.run(_with_client(args, lambda session: _watch(session, args)))

    p = client_parser("watch", "enable a report control block and print each report", run_watch)
    p.add_argument("rcb", help="the RCB reference, e.g. FDR1LD0/LLN0.urcbStatus01")
    p.add_argument("--buffered", action="store_true", help="a BRCB (FC BR); default: a URCB")
    p.add_argument("--gi", action="store_true", help="ask for a general interrogation")
    p.add_argument("--trgops", help="trigger options: dchg,qchg,dupd,period,gi")
    p.add_argument("--intg-pd", type=int, help="integrity period (ms)")
    p.add_argument("--buf-tm", type=int, help="buffer time (ms)")
    p.add_argument("--entry-id", help="BRCB: resume after this EntryID (16 hex digits)")
    p.add_argument("--count", type=int, default=0, help="stop after N reports (0: never)")
    p.add_argument("--seconds", type=float, default=None, help="stop after S seconds")
