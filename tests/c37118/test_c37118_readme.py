"""The README's C37.118 example runs as written (127.0.0.1 only, bounded in time)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.mark.timeout(60)
def test_readme_c37118_example_runs():
    text = README.read_text()
    section = text[text.index("## C37.118") :]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=45)
    assert done.returncode == 0, done.stderr
    assert "Measurement(" in done.stdout and "value=28.6478" in done.stdout, done.stdout


def test_readme_c37118_commands_parse():
    """Every ``gridbind c37118`` command line of the README is accepted by the CLI (the UDP
    example needs --udp-host to listen for a PMU on another host)."""
    import argparse
    import shlex

    from gridbind.c37118.cli import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    text = README.read_text()
    section = text[text.index("## C37.118") :]
    shell = re.search(r"```sh\n(.*?)```", section, re.DOTALL).group(1).replace("\\\n", " ")
    lines = [line.split("#")[0] for line in shell.splitlines() if "gridbind c37118" in line]
    parsed = [parser.parse_args(shlex.split(line)[1:]) for line in lines]
    assert len(parsed) == 3
    udp = [args for args in parsed if getattr(args, "udp_port", None)]
    assert [(a.udp_host, a.udp_port) for a in udp] == [("0.0.0.0", 4713)]
