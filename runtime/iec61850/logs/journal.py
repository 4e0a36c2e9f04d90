"""Log entries as MMS journal entries (IEC 61850-8-1 logs over readJournal), both ways.

A log entry is a ``JournalEntry``: entryIdentifier (the 8-octet EntryID), occurrenceTime
(binary-time, 6 octets), and per logged data a ``Journal-Variable`` with the data reference as
tag and the value, followed by one tagged ``ReasonCode`` with the reason bit string.
QueryLogByTime is a readJournal with a starting (and an ending) time; QueryLogAfter one with a
starting time and ``entryToStartAfter``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from gridbind.errors import RemoteError
from gridbind.generated.iec61850_8_2 import scsm_8_2 as m
from gridbind.iec61850.errors import Iec61850Error

from .. import mms
from .. import mmsdata as d
from ..mmsdata import ReasonForInclusion, Timestamp
from ..services.mmsview import binary_time_octets, timestamp_of_binary_time
from .store import StoredEntry

__all__ = ["journal_entry", "LogEntry", "LoggedValue", "parse_journal_entry", "JournalError"]
__all__ += ["read_journal_by_time", "read_journal_after", "REASON_TAG"]

#: The variable tag of the reason code that follows each logged value.
REASON_TAG = "ReasonCode"

_EF = m.EntryContent.EntryForm


class JournalError(Iec61850Error, RemoteError, ValueError):
    """A journal entry that is not an 8-1 log entry."""


def _btime(t: float) -> bytes:
    return binary_time_octets(Timestamp.from_float(t))


def journal_entry(entry: StoredEntry) -> m.JournalEntry:
    variables: list[m.JournalVariable] = []
    for ref, value, reason in entry.values:
        variables.append(m.JournalVariable(variable_tag=ref, value_specification=value))
        if reason:  # (an LCB with reasonCode false stores none)
            variables.append(
                m.JournalVariable(variable_tag=REASON_TAG, value_specification=d.bit_string(reason))
            )
    return m.JournalEntry(
        entry_identifier=entry.entry_id.to_bytes(8, "big"),
        originating_application=m.ApplicationReference(),
        entry_content=m.EntryContent(
            occurrence_time=_btime(entry.time),
            entry_form=_EF(
                choice=_EF.Data(
                    list_of_variables=_EF.Data.ListOfVariables(journal_variable=variables)
                )
            ),
        ),
    )


@dataclass(slots=True)
class LoggedValue:
    reference: str
    data: m.Data
    reason: ReasonForInclusion | None

    @property
    def value(self) -> Any:
        return d.to_python(self.data)


@dataclass(slots=True)
class LogEntry:
    """A log entry a client received."""

    entry_id: bytes
    time: Timestamp
    values: list[LoggedValue]


def parse_journal_entry(entry: m.JournalEntry) -> LogEntry:
    form = entry.entry_content.entry_form.choice
    if not isinstance(form, _EF.Data):
        raise JournalError("an annotation is not a log entry")
    variables = form.list_of_variables.journal_variable if form.list_of_variables else []
    values: list[LoggedValue] = []
    for var in variables:
        if var.variable_tag == REASON_TAG:
            if not values or values[-1].reason is not None:
                raise JournalError("a ReasonCode without its value")
            try:
                values[-1].reason = cast(
                    ReasonForInclusion, ReasonForInclusion.from_bits(var.value_specification)
                )
            except d.MmsDataError as exc:
                raise JournalError(str(exc)) from None
        else:
            values.append(LoggedValue(var.variable_tag, var.value_specification, None))
    return LogEntry(
        entry.entry_identifier,
        timestamp_of_binary_time(entry.entry_content.occurrence_time),
        values,
    )


def _journal_name(log_ref: str) -> m.ObjectName:
    ld, sep, item = log_ref.partition("/")
    if not sep or "$" not in item:
        raise ValueError(f"a log reference is LD/LN$LogName, not {log_ref!r}")
    return mms.dom(ld, item)


def read_journal_by_time(
    log_ref: str, start: float, stop: float | None = None
) -> m.ConfirmedServiceRequest:
    """QueryLogByTime: entries from ``start`` (to ``stop``), seconds since 1970."""
    rs = m.ReadJournalRequest.RangeStartSpecification
    req = m.ReadJournalRequest(
        journal_name=_journal_name(log_ref),
        range_start_specification=rs(choice=rs.StartingTime(value=_btime(start))),
    )
    if stop is not None:
        req.range_stop_specification = m.ReadJournalRequest.RangeStopSpecification(
            choice=_btime(stop)
        )
    return mms.request("readJournal", req)


def read_journal_after(
    log_ref: str, start: float, entry_id: bytes, stop: float | None = None
) -> m.ConfirmedServiceRequest:
    """QueryLogAfter: entries after ``entry_id`` (of time ``start``)."""
    rs = m.ReadJournalRequest.RangeStartSpecification
    req = m.ReadJournalRequest(
        journal_name=_journal_name(log_ref),
        range_start_specification=rs(choice=rs.StartingTime(value=_btime(start))),
        entry_to_start_after=m.ReadJournalRequest.EntryToStartAfter(
            time_specification=_btime(start), entry_specification=entry_id
        ),
    )
    if stop is not None:
        req.range_stop_specification = m.ReadJournalRequest.RangeStopSpecification(
            choice=_btime(stop)
        )
    return mms.request("readJournal", req)
