"""The README's Python examples run as written (STTP ones on 127.0.0.1, bounded in time)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def example(heading: str) -> str:
    """The first ```python block after ``heading``."""
    text = README.read_text()
    section = text[text.index(heading) :]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, f"no python example under {heading!r}"
    return match.group(1)


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "heading", ["### Subscribe and publish (IEEE 2664)", "### The draft-0.8 profile"]
)
def test_sttp_example_runs(heading: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", example(heading)], capture_output=True, text=True, timeout=45
    )
    assert done.returncode == 0, done.stderr
    assert "Measurement(" in done.stdout, done.stdout


@pytest.mark.timeout(60)
def test_sttp_session_contract_example_runs_over_both_profiles() -> None:
    code = example("### One session contract (both profiles)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=45)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["ieee2664 3 measurements", "draft-0.8 3 measurements"]


@pytest.mark.timeout(60)
def test_iec61850_in_memory_example_runs() -> None:
    # The first python block after "XMPP is slixmpp" is the in-memory one.
    done = subprocess.run(
        [sys.executable, "-c", example("XMPP is slixmpp")],
        capture_output=True,
        text=True,
        timeout=45,
    )
    assert done.returncode == 0, done.stderr
    assert "FEEDER7" in done.stdout, done.stdout


@pytest.mark.timeout(60)
def test_iec61850_controls_example_runs() -> None:
    done = subprocess.run(
        [sys.executable, "-c", example("### Controls")],
        capture_output=True,
        text=True,
        timeout=45,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "Oper ok, CommandTermination + (ctlNum 1)",
        "Oper refused: CommandTermination -, AddCause Blocked-by-process",
    ], done.stdout
