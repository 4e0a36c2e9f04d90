"""Hostile reports and journal entries: whatever AccessResults a peer sends, the client's parsers
return a typed object or raise their own error; and built reports parse back to what was sent."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_codec_property import data_values, visible

from gridbind.generated.iec61850_8_2 import scsm_8_2 as m
from gridbind.iec61850 import mms
from gridbind.iec61850 import mmsdata as d
from gridbind.iec61850.logs.journal import JournalError, parse_journal_entry
from gridbind.iec61850.mmsdata import OptFlds, ReasonForInclusion, Timestamp
from gridbind.iec61850.reporting.report_pdu import (
    Header,
    ReportContent,
    ReportError,
    build_reports,
    parse_report,
)

pytestmark = pytest.mark.timeout(120)


def _report(items: list[m.Data]) -> m.InformationReport:
    pdu = mms.information_report(mms.vmd("RPT"), [m.AccessResult(choice=x) for x in items])
    return pdu.choice.service.information_report


header_like = st.tuples(
    visible.map(d.visible_string),
    st.integers(0, 1023).map(lambda n: d.bit_string(format(n, "010b"))),
)


@settings(max_examples=300, deadline=None)
@given(header_like, st.lists(data_values, max_size=12))
def test_parse_report_never_fails_otherwise(head, rest) -> None:
    try:
        report = parse_report(_report([*head, *rest]))
    except ReportError:
        return
    assert len(report.values) == report.inclusion.count("1")


@settings(max_examples=100, deadline=None)
@given(
    st.integers(0, 1023).map(lambda n: OptFlds(n & ~1)),
    st.lists(st.booleans(), min_size=1, max_size=8),
    st.integers(0, 255),
)
def test_built_reports_parse_back(opt, included, seq) -> None:
    refs = [f"LD/LN$ST$D{i}" for i in range(len(included))]
    members = [
        (i, d.integer(i * 7), ReasonForInclusion.DATA_CHANGE) for i, on in enumerate(included) if on
    ]
    content = ReportContent(members, Timestamp.from_float(1.7e9), b"\x00" * 7 + b"\x05")
    header = Header("id", opt, "LD/LN.DS", 3, refs, seq_num=seq)
    (pdu,) = build_reports(header, content, 1 << 20, lambda p: 0)
    report = parse_report(pdu.choice.service.information_report)
    assert report.rpt_id == "id" and [v.index for v in report.values] == [i for i, _, _ in members]
    assert [v.value for v in report.values] == [i * 7 for i, _, _ in members]
    assert report.seq_num == (seq if OptFlds.SEQUENCE_NUMBER in opt else None)
    if OptFlds.DATA_REFERENCE in opt:
        assert [v.reference for v in report.values] == [refs[i] for i, _, _ in members]
    if OptFlds.ENTRY_ID in opt:
        assert report.entry_id == content.entry_id


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["ReasonCode", "LD/LN$ST$X"]), data_values), max_size=8))
def test_parse_journal_entry_never_fails_otherwise(variables) -> None:
    ef = m.EntryContent.EntryForm
    entry = m.JournalEntry(
        entry_identifier=b"\x00" * 8,
        originating_application=m.ApplicationReference(),
        entry_content=m.EntryContent(
            occurrence_time=b"\x00" * 6,
            entry_form=ef(
                choice=ef.Data(
                    list_of_variables=ef.Data.ListOfVariables(
                        journal_variable=[
                            m.JournalVariable(variable_tag=t, value_specification=v)
                            for t, v in variables
                        ]
                    )
                )
            ),
        ),
    )
    try:
        parsed = parse_journal_entry(entry)
    except JournalError:
        return
    assert len(parsed.values) == sum(1 for t, _ in variables if t != "ReasonCode")
