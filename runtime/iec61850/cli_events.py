"""``gridbind iec61850 watch`` (enable a report control block and print each report) and
``gridbind iec61850 log`` (query a log).

::

    gridbind iec61850 watch --peer ... FDR1LD0/LLN0.urcbStatus01 [--buffered] [--gi]
        [--trgops dchg,qchg,dupd,period,gi] [--intg-pd MS] [--buf-tm MS] [--entry-id HEX]
        [--count N] [--seconds S]

Each report is one JSON line: ``{"rptID", "seqNum", "timeOfEntry", "entryID", "bufOvfl",
"subSeqNum", "moreSegmentsFollow", "values": [{"index", "reference", "value", "reason"}]}``
(fields the report's OptFlds leave out are null).

::

    gridbind iec61850 log --peer ... FDR1LD0/LLN0$Events [--from T] [--to T]
    gridbind iec61850 log --peer ... FDR1LD0/LLN0$Events --after ENTRYID --at T

QueryLogByTime (``--from``/``--to``; default: everything) or QueryLogAfter (the entries after
EntryID ``--after``, 16 hex digits, logged at ``--at``); one JSON line per entry:
``{"entryID", "time", "values": [{"reference", "value", "reason"}]}``. Times are ISO 8601
(``2026-12-03T16:00:00Z``) or seconds since 1970. Registered by :mod:`.cli`.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import re
from typing import Any

from .mmsdata import OptFlds, TriggerConditions
from .valuetext import to_json

__all__ = ["register_events", "report_json", "log_entry_json"]

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
    except TimeoutError:
        pass
    if ied.open:
        await ied.disable_reporting(args.rcb, buffered=args.buffered)
    return 0


def _time(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    # (fromisoformat takes at most 6 fractional digits; the CLI prints 9)
    text = re.sub(r"(\.\d{6})\d+", r"\1", text.strip())
    when = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return when.timestamp()


def log_entry_json(entry: Any) -> dict[str, Any]:
    """The JSON data ``log`` prints for one :class:`~.logs.LogEntry`."""
    return {
        "entryID": entry.entry_id.hex(),
        "time": to_json(entry.time),
        "values": [
            {"reference": v.reference, "value": to_json(v.value), "reason": _reason_names(v.reason)}
            for v in entry.values
        ],
    }


async def _log(session: Any, args: argparse.Namespace) -> int:
    ied = session.ied
    if args.after is not None:
        if args.at is None:
            raise ValueError("--after needs --at (the time of that entry)")
        entries = await ied.query_log_after(
            args.log, _time(args.at), bytes.fromhex(args.after), max_entries=args.max_entries
        )
    else:
        start = _time(args.start) if args.start else 0.0
        stop = _time(args.stop) if args.stop else None
        entries = await ied.query_log_by_time(args.log, start, stop, max_entries=args.max_entries)
    for entry in entries:
        print(json.dumps(log_entry_json(entry)), flush=True)
    return 0


def register_events(client_parser: Any) -> None:
    """Add ``watch`` and ``log`` with ``client_parser(name, help, func)`` of
    :func:`.cli.register`."""
    from .cli import _with_client

    def run_watch(args: argparse.Namespace) -> int:
        return asyncio.run(_with_client(args, lambda session: _watch(session, args)))

    def run_log(args: argparse.Namespace) -> int:
        return asyncio.run(_with_client(args, lambda session: _log(session, args)))

    p = client_parser("log", "query a log (QueryLogByTime, QueryLogAfter)", run_log)
    p.add_argument("log", help="the log reference LD/LN$LogName, e.g. FDR1LD0/LLN0$Events")
    p.add_argument("--from", dest="start", help="entries from this time (default: all)")
    p.add_argument("--to", dest="stop", help="entries up to this time")
    p.add_argument("--after", help="QueryLogAfter: entries after this EntryID (hex)")
    p.add_argument("--at", help="QueryLogAfter: the time of the --after entry")
    p.add_argument("--max-entries", type=int, default=100_000, help="refuse larger answers")

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
