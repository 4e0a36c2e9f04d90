"""The 8-2 demo runs end to end with its own private Prosody."""

from __future__ import annotations

import pytest

from gridbind.iec61850.demo import DEMO_SCL, run_demo
from gridbind.iec61850.prosody import prosody_available
from gridbind.iec61850.scl import load_scl

pytestmark = pytest.mark.prosody


def test_demo_scl_loads() -> None:
    model = load_scl(DEMO_SCL)
    assert model.jid == "demo-ied@demo.local/IEC"
    assert model.read("FEEDER7MEAS/OCPTOC1.OpDlTmms.setVal", "SG") == 100


@pytest.mark.timeout(60)
def test_demo_runs(prosody) -> None:  # the fixture enforces Prosody's presence under CI
    assert prosody_available()
    lines: list[str] = []
    assert run_demo(lines.append) == 0
    text = "\n".join(lines)
    assert "GetServerDirectory: ['FEEDER7CTRL', 'FEEDER7MEAS']" in text
    assert "mag.f=1533.25" in text
    assert "refused: FEEDER7MEAS/MMXU1.TotW.mag.f: object-access-denied" in text
    assert "SelectActiveSG 2: FEEDER7MEAS/OCPTOC1.OpDlTmms.setVal = 40" in text
    assert "XCBR1 opened by protection" in text
    assert (
        "CSWI1.Pos open: Oper ok, CommandTermination + (ctlNum 1); stVal = 01 (Dbpos 01: off)"
        in text
    )
    assert "without SelectWithValue: Oper refused: object-access-denied, AddCause " in text
    reports = [line for line in lines if line.startswith("report FEEDER7/Overview #")]
    assert [line.split(":", 1)[0] for line in reports] == [
        f"report FEEDER7/Overview #{n}" for n in range(5)
    ], reports
    # the GI holds every member of Overview; then one data change per report
    assert reports[0].count("(general-interrogation)") == 3, reports[0]
    assert reports[1:] == [
        "report FEEDER7/Overview #1: FEEDER7MEAS/MMXU1$MX$TotW$mag$f=1610.5 (data-change)",
        "report FEEDER7/Overview #2: FEEDER7MEAS/MMXU1$MX$TotW$mag$f=1587.0 (data-change)",
        "report FEEDER7/Overview #3: FEEDER7CTRL/CSWI1$ST$Pos$stVal=01 (data-change)",
        "report FEEDER7/Overview #4: FEEDER7CTRL/XCBR1$ST$Pos$stVal=01 (data-change)",
    ]
    # the operate's stVal change is reported right after the operate's outcome
    operate = next(i for i, line in enumerate(lines) if "CSWI1.Pos open: " in line)
    assert lines[operate + 1] == reports[3]
    log = lines.index(
        "QueryLogByTime FEEDER7CTRL/LLN0$Events: 6 entries (LogControl logOverview, dchg)"
    )
    assert lines[log + 1 : log + 7] == [
        "  entry 0000000000000001: FEEDER7MEAS/MMXU1$MX$TotW$mag$f=1498.5",
        "  entry 0000000000000002: FEEDER7MEAS/MMXU1$MX$TotW$mag$f=1533.25",
        "  entry 0000000000000003: FEEDER7MEAS/MMXU1$MX$TotW$mag$f=1610.5",
        "  entry 0000000000000004: FEEDER7MEAS/MMXU1$MX$TotW$mag$f=1587.0",
        "  entry 0000000000000005: FEEDER7CTRL/CSWI1$ST$Pos$stVal=01",
        "  entry 0000000000000006: FEEDER7CTRL/XCBR1$ST$Pos$stVal=01",
    ]
    assert lines[-1] == "association concluded"
