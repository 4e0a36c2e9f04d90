"""The codegen part of the main demo (`gridbind demo --codegen`): regenerate and round-trip
every STTP message."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest


@pytest.mark.timeout(90)
def test_demo_round_trips_every_message() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "gridbind", "demo", "--codegen"],
        capture_output=True,
        text=True,
        timeout=80,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "committed generated/sttp matches: yes" in out.stdout
    assert "profile draft-0.8" in out.stdout
    assert "0x06 SendDataPoints" in out.stdout and "FAILED" not in out.stdout
    summary = re.search(r"^(\d+)/(\d+) messages round-tripped$", out.stdout, re.M)
    assert summary and summary.group(1) == summary.group(2) and int(summary.group(1)) >= 17
