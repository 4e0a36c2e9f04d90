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
    assert "without SelectWithValue: Oper refused: temporarily-unavailable, AddCause " in text
    assert lines[-1] == "association concluded"
