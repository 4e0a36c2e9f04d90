"""The main demo, ``gridbind demo``, run as a subprocess the way ``bash .ci/demo`` runs it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gridbind.iec61850.prosody import prosody_available

from conftest import require

STATS = re.compile(
    r"^  +\d+\.\d s: +([\d,]+) measurements received, +[\d,]+/s, ([\d.]+) bytes/measurement$",
    re.M,
)
TOTAL = re.compile(
    r"^  total (?P<profile>[^:]+): (?P<published>[\d,]+) published, (?P<received>[\d,]+) received, "
    r"(?P<lost>[\d,]+) lost, (?P<mismatched>[\d,]+) mismatched, (?P<dropped>\d+) dropped, "
    r"(?P<per>[\d.]+) bytes/measurement, .*$",
    re.M,
)


def demo(*args: str, timeout: float = 60, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run ``gridbind demo ARGS``; returns the exit status and stdout + stderr."""
    out = subprocess.run(
        [sys.executable, "-m", "gridbind", "demo", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    return out.returncode, out.stdout + out.stderr


def number(text: str) -> int:
    return int(text.replace(",", ""))


def section(output: str, title: str) -> str:
    """The text under the ``== title... ==`` heading, up to the next heading."""
    start = output.index(f"== {title}")
    end = output.find("\n== ", start + 1)
    return output[start : end if end >= 0 else None]


@pytest.mark.timeout(60)
def test_sttp_streams_with_live_statistics_and_loses_nothing() -> None:
    status, out = demo("--only", "sttp", "--only", "draft", "--seconds", "2", timeout=50)
    assert status == 0, out
    ieee = section(out, "STTP, IEEE 2664 profile")
    assert "data compression: TSSC" in ieee
    lines = STATS.findall(ieee)
    assert len(lines) >= 2, ieee  # one a second, live
    counts = [number(count) for count, _ in lines]
    assert counts == sorted(counts) and counts[0] > 0
    assert "negotiated STTP 1.0: stateful TSSC" in section(out, "STTP, draft-0.8 profile")
    totals = {m["profile"]: m for m in TOTAL.finditer(out)}
    assert set(totals) == {"IEEE 2664", "draft-0.8"}, out
    for total in totals.values():
        assert number(total["lost"]) == 0 and number(total["mismatched"]) == 0, out
        assert total["dropped"] == "0"
        assert number(total["published"]) == number(total["received"]) > 0
        assert 0 < float(total["per"]) < 8  # TSSC: far below the 16+ bytes of a raw value
    assert number(totals["IEEE 2664"]["published"]) == 2 * 30 * 1000  # --seconds x rate x signals
    assert "FAILED" not in out and out.rstrip().endswith("demo passed")


@pytest.mark.prosody
@pytest.mark.timeout(90)
def test_default_demo_runs_both_protocols_with_a_private_prosody() -> None:
    require(prosody_available(), "Prosody (apt-get install prosody)")
    status, out = demo("--seconds", "1", timeout=80)
    assert status == 0, out
    assert out.startswith("gridbind demo: sttp, draft, iec61850")
    assert len(TOTAL.findall(out)) == 2
    iec = section(out, "IEC 61850-8-2")
    for step in (
        "private Prosody on 127.0.0.1:",
        "SCL: IED FEEDER7, logical devices FEEDER7CTRL, FEEDER7MEAS",
        "associated (id ",
        "GetServerDirectory: ['FEEDER7CTRL', 'FEEDER7MEAS']",
        "GetDataValues TotW[MX]: mag.f=1498.5",
        "SetDataValues TotW.d[DC] -> 'feeder 7 total active power'",
        "SetDataValues TotW.mag.f[MX] refused: ",
        "SelectActiveSG 2: FEEDER7MEAS/OCPTOC1.OpDlTmms.setVal = 40",
        "SetBRCBValues FEEDER7CTRL/LLN0.brcbOverview: RptEna, GI",
        "report FEEDER7/Overview #0: FEEDER7MEAS/MMXU1$MX$TotW$mag$f=1533.25 "
        "(general-interrogation), ",
        "report FEEDER7/Overview #1: FEEDER7MEAS/MMXU1$MX$TotW$mag$f=1610.5 (data-change)",
        "operate FEEDER7CTRL/CSWI1.Pos open: Oper ok, CommandTermination + (ctlNum 1); stVal = 01",
        "report FEEDER7/Overview #3: FEEDER7CTRL/CSWI1$ST$Pos$stVal=01 (data-change)",
        "QueryLogByTime FEEDER7CTRL/LLN0$Events: 6 entries",
        "association concluded",
    ):
        assert f"\n  {step}" in iec, (step, iec)
    summary = section(out, "summary")
    for part in ("sttp", "draft", "iec61850"):
        assert re.search(rf"^  {part} +ok$", summary, re.M), summary
    assert out.rstrip().endswith("demo passed")


@pytest.mark.timeout(60)
def test_missing_prosody_is_skipped_locally_but_fails_under_ci(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PATH"] = str(tmp_path)  # no prosody, no prosodyctl
    # the other parts still run; the 8-2 part says how to get Prosody
    status, out = demo("--only", "draft", "--only", "iec61850", env=env, timeout=40)
    assert status == 0, out
    assert "negotiated STTP 1.0: stateful TSSC" in section(out, "STTP, draft-0.8 profile")
    iec = section(out, "IEC 61850-8-2")
    assert "SKIPPED: Prosody is not installed" in iec
    assert "`sudo apt-get install prosody`" in iec and "`bash .ci/setup`" in iec
    summary = section(out, "summary")
    assert re.search(r"^  draft +ok$", summary, re.M), summary
    assert re.search(r"^  iec61850 +skipped \(no Prosody\)$", summary, re.M), summary
    assert out.rstrip().endswith("demo passed (iec61850 skipped)")
    status, out = demo("--only", "iec61850", env={**env, "CI": "true"}, timeout=25)
    assert status == 1, out
    assert "CI=true requires this part - FAILED" in out
    assert "`sudo apt-get install prosody`" in out and "`bash .ci/setup`" in out
    assert out.rstrip().endswith("demo FAILED: iec61850")


@pytest.mark.timeout(30)
def test_iec61850_demo_command_without_prosody_says_how_to_install(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PATH"] = str(tmp_path)
    out = subprocess.run(
        [sys.executable, "-m", "gridbind", "iec61850", "demo"],
        capture_output=True, text=True, timeout=25, env=env,
    )  # fmt: skip
    assert out.returncode == 2, out
    assert "Prosody is not installed" in out.stdout
    assert "sudo apt-get install prosody" in out.stdout and "bash .ci/setup" in out.stdout


@pytest.mark.timeout(30)
def test_bad_arguments_exit_non_zero() -> None:
    status, out = demo("--seconds", "0", timeout=20)
    assert status == 2 and "--seconds" in out
