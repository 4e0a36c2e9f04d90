"""Reporting of IEC 61850-7-2 / 8-1 over 8-2: report control blocks (:mod:`.rcb`), their
buffers (:mod:`.buffer`) and the report PDU (:mod:`.report_pdu`)."""

from .rcb import ReportEngine
from .report_pdu import Report, ReportedValue, ReportError, is_report, parse_report

__all__ = ["ReportEngine", "Report", "ReportedValue", "ReportError", "is_report", "parse_report"]
