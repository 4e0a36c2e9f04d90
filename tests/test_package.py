"""The one-namespace layout: runtime/, codegen/ and generated/ all import as gridbind.*."""

import subprocess
import sys
from datetime import datetime, timezone

import gridbind
import gridbind.codegen
import gridbind.generated
from gridbind.sttp import ticks_from_datetime, ticks_to_datetime, UNIX_EPOCH_TICKS


def test_namespace_maps_source_roots() -> None:
    assert gridbind.codegen.__file__.replace("\\", "/").endswith("codegen/__init__.py")
    assert gridbind.generated.__file__.replace("\\", "/").endswith("generated/__init__.py")
    assert gridbind.__file__.replace("\\", "/").endswith("runtime/__init__.py")


def test_python_dash_m_runs_the_command() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "gridbind", "--help"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert "usage: gridbind" in out.stdout


def test_ticks_epoch_and_round_trip() -> None:
    assert ticks_from_datetime(datetime(1970, 1, 1, tzinfo=timezone.utc)) == UNIX_EPOCH_TICKS
    moment = datetime(2026, 11, 22, 7, 45, 1, 123456, tzinfo=timezone.utc)
    assert ticks_to_datetime(ticks_from_datetime(moment)) == moment
