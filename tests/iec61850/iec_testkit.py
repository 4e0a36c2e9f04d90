"""Small helpers shared by the 8-2 tests: account settings on the private Prosody, a bounded
event-loop run, and polling with a deadline.

Imported by test modules (`from iec_testkit import settings, run, until`); not a conftest, so the
project-wide `conftest` module name stays the top-level one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

from gridbind.iec61850.xmpp import XmppSettings


def settings(prosody: Any, account: Any, **overrides: Any) -> XmppSettings:
    """Settings for ``account`` on ``prosody``: STARTTLS on loopback, PLAIN, bounded waits."""
    base: dict[str, Any] = dict(
        jid=account.jid,
        password=account.password,
        ca_file=prosody.ca_cert,
        host="127.0.0.1",
        port=prosody.c2s_port,
        sasl_mechanism="PLAIN",
        connect_timeout=8,
        request_timeout=8,
    )
    base.update(overrides)
    return XmppSettings(**base)


def run(coro: Coroutine[Any, Any, Any], timeout: float = 40) -> Any:
    """Run ``coro`` in a fresh event loop, failing after ``timeout`` seconds."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def until(
    predicate: Callable[[], bool], timeout: float, what: str, step: float = 0.02
) -> None:
    """Poll ``predicate`` every ``step`` seconds; fail if it is not true within ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(step)
