"""XMPP settings for a test account on the private Prosody (one place for the test defaults).

Imported by test modules (`from iec_accounts import settings`); not a conftest, so the
project-wide `conftest` module name stays the top-level one.
"""

from __future__ import annotations

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
