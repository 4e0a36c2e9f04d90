"""An IEC 62351-4 data-transfer envelope (ClearTransfer, EncrTransfer) or release envelope naming
an association its receiver does not know is answered ``item-not-found``, as a request in an
unknown association is with E2E off (server_protocol, DECISIONS 42): it is no handshake, so no
HandshakeSecReject. In memory (replayed from another account) and through Prosody (an IED that
lost its associations with its session)."""

from __future__ import annotations

import asyncio
import copy
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from gridbind.generated.iec61850_8_2 import e2e_4 as e
from gridbind.iec61850.client import Client
from gridbind.iec61850.e2e import E2EConfig, Mode
from gridbind.iec61850.e2e_certs import make_ca, make_e2e_certificate
from gridbind.iec61850.envelope import needs_association
from gridbind.iec61850.scl import load_scl
from gridbind.iec61850.server import IedServer
from gridbind.iec61850.stanza import StanzaError

from iec_testkit import memory_served, run, settings, until

E2E_NS = "{http://www.iec.ch/62351/2018/E2E_4}"
FEEDER = Path(__file__).parent / "data" / "feeder.scd"
VALUE = "FDR1LD0/GGIO1.IntIn1.stVal"


@pytest.fixture(scope="module")
def ca():
    return make_ca()


def _config(ca, jid: str, mode: Mode) -> E2EConfig:
    leaf = make_e2e_certificate(ca, jid)
    return E2EConfig(
        mode, certificate=leaf.certificate, private_key=leaf.key, trust_anchors=(ca.certificate,)
    )


def test_which_envelopes_need_an_established_association() -> None:
    assert needs_association(e.ClearTransfer.__new__(e.ClearTransfer))
    assert needs_association(e.EncrTransfer.__new__(e.EncrTransfer))
    assert needs_association(e.ReleaseReq.__new__(e.ReleaseReq))
    assert needs_association(e.DtSecAbort.__new__(e.DtSecAbort))
    assert not needs_association(e.HandshakeReq.__new__(e.HandshakeReq))
    assert not needs_association(e.AssociationContext.__new__(e.AssociationContext))


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    "mode, kind", [(Mode.ENCRYPTED, "EncrTransfer"), (Mode.AUTHENTICATED, "ClearTransfer")]
)
def test_a_transfer_envelope_in_an_unknown_association_is_item_not_found(ca, mode, kind) -> None:
    async def main():
        domain = "memory.test"
        async with memory_served(
            clients=2,
            server_kw={"e2e": _config(ca, f"ied@{domain}", mode)},
            client_kw=lambda i: {"e2e": _config(ca, f"ops{i}@{domain}", mode)},
        ) as (server, (ops0, ops1), net):
            seen: list[ET.Element] = []
            net.tap = lambda sender, to, stanza: seen.append(copy.deepcopy(stanza)) or stanza
            ied = await ops0.associate(server.jid)
            assert await ied.get_data_values(VALUE, "ST") == 42
            sent = [s for s in seen if s.find(E2E_NS + kind) is not None]
            envelope = sent[-1].find(E2E_NS + kind)
            answers: list[ET.Element] = []
            net.tap = lambda sender, to, stanza: answers.append(stanza) or stanza
            # the same envelope from another account: (sender, assoID) names no association
            with pytest.raises(StanzaError) as err:
                await ops1.transport.request(server.jid, "get", envelope)
            assert err.value.condition == "item-not-found" and err.value.etype == "cancel"
            assert "unknown association" in err.value.text
            assert [a.get("type") for a in answers] == ["get", "error"]
            assert not [a for a in answers if a.find(f".//{E2E_NS}HandshakeSecReject") is not None]
            # and the other way: the IED's answer replayed as a request to a client that does
            # not hold that association
            from_ied = [
                s for s in seen if s.get("from") == server.jid and s.find(E2E_NS + kind) is not None
            ]
            with pytest.raises(StanzaError) as err:
                await server.transport.request(
                    ops1.transport.full_jid, "get", from_ied[-1].find(E2E_NS + kind)
                )
            assert err.value.condition == "item-not-found"
            # nothing happened to the real association
            assert ied.open and len(server.associations) == 1
            assert await ied.get_data_values(VALUE, "ST") == 42

    run(main())


@pytest.mark.timeout(10)
def test_a_release_of_an_unknown_association_is_item_not_found(ca) -> None:
    async def main():
        domain = "memory.test"
        async with memory_served(
            clients=2,
            server_kw={"e2e": _config(ca, f"ied@{domain}", Mode.ENCRYPTED)},
            client_kw=lambda i: {"e2e": _config(ca, f"ops{i}@{domain}", Mode.ENCRYPTED)},
        ) as (server, (ops0, ops1), net):
            seen: list[ET.Element] = []
            net.tap = lambda sender, to, stanza: seen.append(copy.deepcopy(stanza)) or stanza
            ied = await ops0.associate(server.jid)
            await ied.conclude()  # conclude, then the signed ReleaseReq
            release = [s for s in seen if s.find(E2E_NS + "ReleaseReq") is not None][-1]
            with pytest.raises(StanzaError) as err:  # once more: that association is gone
                await ops0.transport.request(server.jid, "set", release.find(E2E_NS + "ReleaseReq"))
            assert err.value.condition == "item-not-found"

    run(main())


@pytest.mark.prosody
@pytest.mark.timeout(30)
def test_an_ied_that_lost_the_e2e_association_answers_item_not_found(
    prosody, xmpp_account, ca
) -> None:
    async def main():
        ied, ops = xmpp_account("e2elost"), xmpp_account("e2eops")
        server = IedServer(
            load_scl(FEEDER),
            settings(prosody, ied, resume_window=0.0),
            e2e=_config(ca, ied.jid, Mode.ENCRYPTED),
        )
        client = Client(settings(prosody, ops), e2e=_config(ca, ops.jid, Mode.ENCRYPTED))
        await asyncio.gather(server.start(), client.connect())
        try:
            assoc = await client.associate(server.jid)
            assert await assoc.get_data_values(VALUE, "ST") == 42
            # the IED loses its session for good (no resumption) and logs in again: its
            # associations are gone, the client was told nothing
            server.xmpp.drop_link()
            await until(
                lambda: not server.core.associations and server.xmpp.connected, 8, "IED back"
            )
            with pytest.raises(StanzaError) as err:  # an EncrTransfer the IED cannot place
                await assoc.get_data_values(VALUE, "ST")
            assert err.value.condition == "item-not-found"
            fresh = await client.associate(server.jid)  # a new E2E handshake works
            assert await fresh.get_data_values(VALUE, "ST") == 42
        finally:
            await asyncio.gather(client.close(), server.close())

    run(main(), 25)
