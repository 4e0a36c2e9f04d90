"""Peer liveness through a real Prosody: an IED whose XMPP connection dies without a goodbye
(Prosody keeps its session for the XEP-0198 window, so no ``unavailable`` presence reaches the
client meanwhile) is found by the client's XEP-0199 pings, and both ends answer pings."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from gridbind.iec61850 import mms
from gridbind.iec61850.client import AssociationAborted, Client
from gridbind.iec61850.envelope import ClearContext
from gridbind.iec61850.liveness import ambiguous, unreachable_reason
from gridbind.iec61850.prosody import Prosody, prosody_available
from gridbind.iec61850.scl import load_scl
from gridbind.iec61850.server import IedServer
from gridbind.iec61850.stanza import StanzaError

from conftest import require
from iec_testkit import run, settings, until

FEEDER = Path(__file__).parent / "data" / "feeder.scd"
pytestmark = pytest.mark.prosody
FAST = {"peer_ping_interval": 0.3, "peer_ping_timeout": 1.0}
#: Prosody's resumption window here: long, so that pings (~1.3 s) and the presence Prosody
#: sends when the window ends are well apart on a loaded machine.
HIBERNATION = 10


@pytest.fixture(scope="module")
def prosody() -> Iterator[Prosody]:
    """A private Prosody of this module, with a resumption window of ``HIBERNATION`` s."""
    require(prosody_available(), "Prosody (apt-get install prosody)")
    server = Prosody(domain="test.local", hibernation=HIBERNATION)
    server.start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="module")
def xmpp_account(prosody: Prosody) -> Callable[[str], SimpleNamespace]:
    counter = itertools.count(1)

    def make(prefix: str = "user") -> SimpleNamespace:
        password = "s3cret-test"
        return SimpleNamespace(
            jid=prosody.register(f"{prefix}-{next(counter)}", password), password=password
        )

    return make


@pytest.mark.timeout(20)
def test_a_crashed_ied_is_found_by_pings_before_its_presence_comes(prosody, xmpp_account) -> None:
    assert prosody.hibernation >= HIBERNATION  # the presence would come only after this window

    async def main():
        server = IedServer(load_scl(FEEDER), settings(prosody, xmpp_account("crash")))
        client = Client(settings(prosody, xmpp_account("watcher")), **FAST)
        await asyncio.gather(server.start(), client.connect())
        try:
            assoc = await client.associate(server.jid)
            assert await assoc.get_data_values("FDR1LD0/GGIO1.IntIn1.stVal", "ST") == 42
            await asyncio.sleep(0.8)  # idle: pings answered, the association stays
            assert assoc.open
            presences: list[str] = []
            client.xmpp._client.add_event_handler(
                "presence_unavailable", lambda p: presences.append(str(p["from"]))
            )
            started = time.monotonic()
            server.xmpp.drop_link(reconnect=False)  # the IED process is gone, no goodbye
            await until(lambda: not assoc.open, 8.0, "the association aborted by the pings")
            took = time.monotonic() - started
            # one idle period (0.3 s + 10 %) and the ping timeout (1 s), well before Prosody
            # gives up on the session (HIBERNATION s) and sends the presence
            assert took < HIBERNATION - 2, took
            assert presences == []  # Prosody still holds the IED's session: pings found it
            assert client.associations == []
            with pytest.raises(AssociationAborted, match="peer unreachable: no answer to an XEP"):
                await assoc.get_server_directory()
        finally:
            await asyncio.gather(client.close(), server.close())

    run(main(), 15)


@pytest.mark.timeout(20)
def test_both_ends_answer_pings_and_prosody_answers_for_an_offline_ied(
    prosody, xmpp_account
) -> None:
    async def main():
        ied, ops = xmpp_account("pinged"), xmpp_account("pinger")
        server = IedServer(load_scl(FEEDER), settings(prosody, ied))
        client = Client(settings(prosody, ops))
        await asyncio.gather(server.start(), client.connect())
        try:
            assert await client.xmpp.ping(server.jid, 3.0) >= 0  # the IED answers
            assert await server.xmpp.ping(client.xmpp.full_jid, 3.0) >= 0  # so does the client
            offline = f"{xmpp_account('offline').jid}/IEC"  # an account with no session
            with pytest.raises(StanzaError) as err:
                await client.xmpp.ping(offline, 3.0)
            # what Prosody answers for a full JID it cannot deliver to: judged unreachable
            assert err.value.condition == "service-unavailable"
            assert err.value.by == ""  # Prosody names no generator: the condition decides
            reason = unreachable_reason(offline, err.value)
            assert (
                reason == "peer unreachable: the XMPP server answered the ping service-unavailable"
            )
            # ... but a live IED without XEP-0199 answers so too: the 8-2 probe that confirms it
            # gets the same answer from Prosody for the offline IED
            assert ambiguous(offline, err.value)
            probe = ClearContext(offline, "1").seal(
                mms.confirmed_request(1, mms.get_name_list("domain", "vmdSpecific")), 0.0
            )
            with pytest.raises(StanzaError) as err:
                await client.xmpp.request(offline, "get", probe, 3.0)
            assert err.value.condition == "service-unavailable" and ambiguous(offline, err.value)
        finally:
            await asyncio.gather(client.close(), server.close())

    run(main(), 15)
