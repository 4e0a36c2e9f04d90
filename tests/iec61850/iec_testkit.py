"""Small helpers shared by the 8-2 tests: account settings on the private Prosody, a bounded
event-loop run, polling with a deadline, and an IED with clients on the in-memory transport.

Imported by test modules (`from iec_testkit import settings, run, until`); not a conftest, so the
project-wide `conftest` module name stays the top-level one.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

from gridbind.generated.iec61850_8_2 import scsm_8_2 as m
from gridbind.iec61850 import codec, mms
from gridbind.iec61850.client import Client, to_python
from gridbind.iec61850.envelope import ClearContext
from gridbind.iec61850.memory import MemoryNetwork
from gridbind.iec61850.scl import load_scl
from gridbind.iec61850.server import IedServer
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


# ---------------------------------------------------------------------------------- in memory
FEEDER = Path(__file__).parent / "data" / "feeder.scd"


@contextlib.asynccontextmanager
async def memory_served(
    scl: Path = FEEDER,
    *,
    files: Path | None = None,
    clients: int = 1,
    server_kw: dict | None = None,
    client_kw: dict | Callable[[int], dict] | None = None,
) -> AsyncIterator[tuple[IedServer, list[Client], MemoryNetwork]]:
    """An IED served from ``scl`` and ``clients`` clients on one in-memory network."""
    net = MemoryNetwork()
    server = IedServer(
        load_scl(scl), transport=net.endpoint("ied@memory.test"), files_root=files,
        **(server_kw or {}),
    )  # fmt: skip
    # ``client_kw`` may be a function of the client's index (e.g. its own E2E certificate)
    kw_of = client_kw if callable(client_kw) else (lambda i: client_kw or {})
    apps = [
        Client(transport=net.endpoint(f"ops{i}@memory.test"), **kw_of(i)) for i in range(clients)
    ]
    await asyncio.gather(server.start(), *(c.connect() for c in apps))
    try:
        yield server, apps, net
    finally:
        await asyncio.gather(*(c.close() for c in apps), server.close())


def results(response: Any) -> list[tuple[str, Any]]:
    """A read response as ``[("success", python value) | ("failure", DataAccessError name)]``."""
    out = []
    for result in response.list_of_access_result.access_result:
        if isinstance(result.choice, m.DataAccessError):
            out.append(("failure", mms.name_of(result.choice)))
        else:
            out.append(("success", to_python(result.choice)))
    return out


def unchecked_element(payload: Any) -> ET.Element:
    """A typed payload encoded without the schema check (what a careless peer would send)."""
    return ET.fromstring(codec.encode(payload, validate=False))


async def send_unchecked(
    ied: Any, request: m.ConfirmedServiceRequest, iq_type: str = "get", invoke_id: int = 9999
) -> Any:
    """Send ``request`` in ``ied``'s association without the client's checks; the answer."""
    pdu = mms.confirmed_request(invoke_id, request)
    envelope = ClearContext(ied.peer, ied.id).seal(pdu, 0.0)
    return await ied.client.transport.request(ied.peer, iq_type, unchecked_element(envelope))


def outcome(result: m.AccessResult) -> tuple[str, Any]:
    """``("success", Data)`` or ``("failure", DataAccessError name)`` of one AccessResult."""
    if isinstance(result.choice, m.DataAccessError):
        return ("failure", mms.name_of(result.choice))
    return ("success", result.choice)
