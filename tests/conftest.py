"""Project-wide test helpers.

Tests that need a real external part (Prosody, sttpapi) call :func:`require`: on a developer's
machine a missing part skips with the reason; under ``CI=true`` it fails loudly, because a green
CI that skipped the real path proves nothing.
"""

from __future__ import annotations

import os

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require(available: bool, what: str) -> None:
    """Skip (developer machine) or fail (CI) when an external test part is missing."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"{what} is required under CI=true but is missing", pytrace=False)
    pytest.skip(f"{what} is missing")
