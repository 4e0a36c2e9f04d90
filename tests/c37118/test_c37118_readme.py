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
