"""Fixtures of the IEC 61850-8-2 tests: one private Prosody per test session.

Accounts are made once per session (``prosodyctl register`` costs ~0.1 s each); tests that need a
fresh identity ask :func:`xmpp_account` for a new one.
"""

from __future__ import annotations

import importlib.util
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gridbind.iec61850.prosody import Prosody, client_cert_auth_available, prosody_available


def _root_require() -> Callable[[bool, str], None]:
    # This file is also named conftest.py, so `from conftest import require` would import itself.
    spec = importlib.util.spec_from_file_location(
        "_gridbind_root_conftest", Path(__file__).resolve().parents[1] / "conftest.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.require


require = _root_require()

PASSWORD = "s3cret-test"


@pytest.fixture(scope="session")
def prosody() -> Iterator[Prosody]:
    """A running private Prosody on 127.0.0.1 (domain ``test.local``, 3 s resumption window)."""
    require(prosody_available(), "Prosody (apt-get install prosody)")
    server = Prosody(domain="test.local", hibernation=3)
    server.start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def prosody_ccert() -> Iterator[Prosody]:
    """A second private Prosody whose host ``ccert.test.local`` takes SASL EXTERNAL only.

    Accounts there are client certificates of the server's test CA
    (:meth:`Prosody.issue_client_cert`); ``test.local`` beside it keeps password accounts.
    """
    require(
        client_cert_auth_available(),
        "Prosody with mod_auth_ccert (apt-get install prosody prosody-modules)",
    )
    server = Prosody(domain="test.local", hibernation=3, client_certs=True)
    server.start()
    try:
        yield server
    finally:
        server.cleanup()


@dataclass(frozen=True)
class Account:
    """An XMPP account on the test server (bare JID, password)."""

    jid: str
    password: str


@pytest.fixture(scope="session")
def xmpp_account(prosody: Prosody) -> Callable[[str], Account]:
    """Factory: ``xmpp_account("ied")`` registers ``ied-N@test.local`` and returns it."""
    counter = itertools.count(1)

    def make(prefix: str = "user") -> Account:
        return Account(prosody.register(f"{prefix}-{next(counter)}", PASSWORD), PASSWORD)

    return make
