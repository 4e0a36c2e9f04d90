"""End to end through a real Prosody: an IED served from tests/iec61850/data/feeder.scd and the
asyncio Client: a service smoke test, and what the XMPP transport adds (presence, link loss,
XEP-0198 resumption). Every service, positive and negative, runs in memory in test_services."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest
from test_services import directories_and_values

from gridbind.iec61850.client import AssociationAborted, Client
from gridbind.iec61850.scl import load_scl
from gridbind.iec61850.server import IedServer
from gridbind.iec61850.xmpp import StanzaError

from iec_testkit import run, settings

FEEDER = Path(__file__).parent / "data" / "feeder.scd"
pytestmark = pytest.mark.prosody


@contextlib.asynccontextmanager
async def served(prosody, xmpp_account, tmp_path=None, *, server_kw=None, client_kw=None):
    model = load_scl(FEEDER)
    files = None
    if tmp_path is not None:
        files = tmp_path / "files"
        (files / "COMTRADE").mkdir(parents=True)
        (files / "COMTRADE" / "fault1.cfg").write_bytes(bytes(range(256)) * 40)
        (files / "readme.txt").write_text("feeder 1")
    server = IedServer(
        model, settings(prosody, xmpp_account("ied")), files_root=files, **(server_kw or {})
    )
    client = Client(settings(prosody, xmpp_account("ops")), **(client_kw or {}))
    await asyncio.gather(server.start(), client.connect())
    try:
        yield server, client
    finally:
        await asyncio.gather(client.close(), server.close())


@pytest.mark.timeout(60)
def test_directories_and_values(prosody, xmpp_account) -> None:
    """The service smoke test through Prosody (every service runs in memory in test_services)."""

    async def main():
        async with served(prosody, xmpp_account) as (server, client):
            await directories_and_values(server, client)

    run(main())


@pytest.mark.timeout(60)
def test_presence_loss_aborts_and_resumption_keeps(prosody, xmpp_account) -> None:
    async def main():
        async with served(prosody, xmpp_account) as (server, client):
            events = []
            server.on_event = events.append
            ied = await client.associate(server.jid)
            # XEP-0198: the client's link drops and resumes: the association survives
            resumed = asyncio.Event()
            client.xmpp.on_resumed = resumed.set
            client.xmpp.drop_link()
            await asyncio.wait_for(resumed.wait(), 10)
            assert await ied.get_data_values("FDR1LD0/GGIO1.IntIn1.stVal", "ST") == 42
            assert len(server.core.associations) == 1
            # a second client without stream management vanishes: its association aborts
            other = Client(settings(prosody, xmpp_account("vanish"), stream_management=False))
            await other.connect()
            gone = await other.associate(server.jid)
            assert len(server.core.associations) == 2
            other.xmpp.drop_link()
            for _ in range(100):
                if len(server.core.associations) == 1:
                    break
                await asyncio.sleep(0.05)
            assert len(server.core.associations) == 1
            aborted = [e for e in events if getattr(e, "how", "") == "aborted"]
            assert aborted and aborted[0].association.id == gone.id
            assert not gone.open  # the client lost its link too: its side aborted as well
            with pytest.raises(AssociationAborted):
                await gone.get_server_directory()
            await other.close()
            assert await ied.get_server_directory()

    run(main())


@pytest.mark.timeout(60)
def test_server_link_loss_aborts_everything_and_clients_fail_fast(prosody, xmpp_account) -> None:
    async def main():
        # a server without stream management whose link drops: all associations abort there,
        # and the client's waiting request fails as soon as the server's presence goes away
        model = load_scl(FEEDER)
        server = IedServer(
            model, settings(prosody, xmpp_account("fragile"), stream_management=False)
        )
        client = Client(settings(prosody, xmpp_account("waiter")))
        await asyncio.gather(server.start(), client.connect())
        try:
            a1 = await client.associate(server.jid)
            await client.associate(server.jid)
            assert len(server.core.associations) == 2
            # cut the server's link while a read is outstanding
            original = server.services.read_variable

            def slow_read(assoc, name):
                server.xmpp.drop_link()
                return original(assoc, name)

            server.services.read_variable = slow_read
            t0 = asyncio.get_running_loop().time()
            with pytest.raises(AssociationAborted):
                await a1.get_data_values("FDR1LD0/GGIO1.Ind1.stVal", "ST")
            assert asyncio.get_running_loop().time() - t0 < 5  # not the 8 s request timeout
            assert server.core.associations == {}
            assert client.associations == []
        finally:
            await asyncio.gather(client.close(), server.close())

    run(main())


@pytest.mark.timeout(60)
def test_resumption_window_expiry_aborts_but_the_ied_comes_back(prosody, xmpp_account) -> None:
    async def main():
        server = IedServer(
            load_scl(FEEDER), settings(prosody, xmpp_account("comeback"), resume_window=0.0)
        )
        client = Client(settings(prosody, xmpp_account("patient")))
        await asyncio.gather(server.start(), client.connect())
        try:
            old = await client.associate(server.jid)
            server.xmpp.drop_link()
            for _ in range(200):
                if not server.core.associations and server.xmpp.connected:
                    break
                await asyncio.sleep(0.02)
            assert server.core.associations == {}  # window expired: link declared lost
            assert server.xmpp.connected  # ... and the IED is reachable again
            with pytest.raises(StanzaError) as err:
                await old.get_server_directory()
            assert err.value.condition == "item-not-found"
            fresh = await client.associate(server.jid)
            assert await fresh.get_data_values("FDR1LD0/GGIO1.IntIn1.stVal", "ST") == 42
        finally:
            await asyncio.gather(client.close(), server.close())

    run(main())
