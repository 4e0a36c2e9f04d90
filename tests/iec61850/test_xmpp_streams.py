"""RFC 6120 stream errors (Table D.2: unrecoverable faults) and TLS host-name checks through a
real Prosody (the conflict cases on ejabberd as well).

- ``conflict``: the resource is fixed to ``IEC``, so a second login of the same account replaces
  the first session. The replaced side logs the reason, aborts every association, fails its
  pending requests at once, does not crash and does not log back in (which would kick the
  newcomer in turn, for ever).
- A server certificate of the right CA for another host name is refused with a clear error.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from test_xmpp import ejabberd_node, xmpp_server  # noqa: F401 - Prosody and ejabberd

from gridbind.iec61850.association import AssociationEnded
from gridbind.iec61850.client import AssociationAborted, Client
from gridbind.iec61850.prosody import Prosody
from gridbind.iec61850.scl import load_scl
from gridbind.iec61850.server import IedServer
from gridbind.iec61850.xmpp import XmppConnectError, XmppError

from iec_testkit import run, settings, until

FEEDER = Path(__file__).parent / "data" / "feeder.scd"
pytestmark = pytest.mark.prosody


def _hold_requests(server: IedServer) -> tuple[asyncio.Event, asyncio.Event]:
    """Make ``server`` sit on every request until ``release`` is set; ``arrived`` marks one."""
    release, arrived, tasks = asyncio.Event(), asyncio.Event(), set()
    serve = server.xmpp._on_inbound

    async def later(item):
        arrived.set()
        await release.wait()
        serve(item)

    def held(item):
        task = asyncio.get_running_loop().create_task(later(item))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    server.xmpp._on_inbound = held
    return release, arrived


@pytest.mark.timeout(60)
def test_conflict_kicks_an_ied_server(xmpp_server, caplog) -> None:  # noqa: F811
    """A second IED logging in with the same account: the first one's associations abort, it
    logs why, stays down without crashing, and the newcomer keeps the JID and serves (Prosody
    and ejabberd)."""
    prosody, xmpp_account = xmpp_server

    async def main():
        ied_account, ops = xmpp_account("ied"), xmpp_account("ops")
        first = IedServer(load_scl(FEEDER), settings(prosody, ied_account))
        client = Client(settings(prosody, ops))
        await asyncio.gather(first.start(), client.connect())
        events: list = []
        first.on_event = events.append
        second = None
        try:
            ied = await client.associate(first.jid)
            assert await ied.get_data_values("FDR1LD0/GGIO1.IntIn1.stVal", "ST") == 42
            second = IedServer(load_scl(FEEDER), settings(prosody, ied_account))
            await second.start()  # same full JID (resource IEC): Prosody replaces the first
            await until(
                lambda: any(isinstance(e, AssociationEnded) for e in events), 5, "abort", step=0.05
            )
            ended = [e for e in events if isinstance(e, AssociationEnded)]
            assert ended[0].how == "aborted" and "conflict" in ended[0].reason
            assert not first.xmpp.connected and not first.core.associations
            assert any(
                "conflict" in r.getMessage() and r.levelno >= logging.WARNING
                for r in caplog.records
            ), [r.getMessage() for r in caplog.records]
            # the client saw its server go (presence unavailable): its association aborted too
            await until(lambda: not ied.open, 5, "client-side abort", step=0.05)
            with pytest.raises(AssociationAborted):
                await ied.get_data_values("FDR1LD0/GGIO1.IntIn1.stVal", "ST")
            # the kicked IED does not log back in (it would kick the newcomer in turn)
            await asyncio.sleep(2.0)
            assert second.xmpp.connected and not first.xmpp.connected
            again = await client.associate(second.jid)
            assert await again.get_server_directory() == ["FDR1LD0", "FDR1MEAS", "FDR1PROT"]
            await again.conclude()
        finally:
            closing = [client.close(), first.close()]
            if second is not None:
                closing.append(second.close())
            await asyncio.gather(*closing)

    with caplog.at_level(logging.INFO, logger="gridbind.iec61850"):
        run(main())


@pytest.mark.timeout(60)
def test_conflict_kicks_a_client_and_fails_its_pending_requests(
    xmpp_server, caplog  # noqa: F811
) -> None:
    """A client replaced by a second login of its account: the request waiting for an answer
    fails at once with the reason (not after the request timeout), its associations abort,
    new requests fail fast, and the newcomer stays logged in (Prosody and ejabberd)."""
    prosody, xmpp_account = xmpp_server

    async def main():
        ied_account, ops = xmpp_account("ied"), xmpp_account("ops")
        server = IedServer(load_scl(FEEDER), settings(prosody, ied_account))
        first = Client(settings(prosody, ops, request_timeout=20))
        await asyncio.gather(server.start(), first.connect())
        second = None
        try:
            ied = await first.associate(server.jid)
            release, arrived = _hold_requests(server)
            pending = asyncio.ensure_future(ied.get_data_values("FDR1LD0/GGIO1.IntIn1.stVal", "ST"))
            await asyncio.wait_for(arrived.wait(), 5)
            second = Client(settings(prosody, ops))
            started = time.monotonic()
            await second.connect()
            with pytest.raises(AssociationAborted) as err:
                await asyncio.wait_for(pending, 5)
            assert time.monotonic() - started < 5
            assert "conflict" in str(err.value), err.value
            assert not first.associations and not ied.open
            assert not first.xmpp.connected
            assert any(
                "conflict" in r.getMessage() and r.levelno >= logging.WARNING
                for r in caplog.records
            )
            # new requests and associations fail fast with a clear error, not a hang
            with pytest.raises(AssociationAborted):
                await asyncio.wait_for(ied.get_server_directory(), 2)
            with pytest.raises(XmppError) as err:
                await asyncio.wait_for(first.associate(server.jid), 2)
            assert "conflict" in str(err.value), err.value
            release.set()
            # the kicked client stays down; the newcomer keeps the session and works
            await asyncio.sleep(2.0)
            assert second.xmpp.connected and not first.xmpp.connected
            fresh = await second.associate(server.jid)
            assert await fresh.get_data_values("FDR1LD0/GGIO1.IntIn1.stVal", "ST") == 42
        finally:
            closing = [first.close(), server.close()]
            if second is not None:
                closing.append(second.close())
            await asyncio.gather(*closing)

    with caplog.at_level(logging.INFO, logger="gridbind.iec61850"):
        run(main())


def _wrong_host_leaf(pki, host: str) -> None:
    """Replace the server leaf of ``pki`` by one of the same CA for ``host`` (not the domain)."""
    ca = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    ca_key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pki.server_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pki.server_key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


@pytest.fixture(scope="module")
def wrong_host_prosody(prosody):
    """A Prosody for ``test.local`` whose certificate (right CA) names ``other.example``.

    (Asks for the session's ``prosody`` fixture only for its skip-or-fail check.)
    """
    server = Prosody(domain="test.local", hibernation=3)
    server.configure()
    _wrong_host_leaf(server.pki, "other.example")
    server.start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.mark.timeout(40)
@pytest.mark.parametrize("direct_tls", [False, True], ids=["starttls", "direct-tls"])
def test_certificate_for_another_host_is_refused(wrong_host_prosody, direct_tls) -> None:
    server = wrong_host_prosody
    account = SimpleNamespace(jid=server.register("victim", "s3cret-test"), password="s3cret-test")

    async def main():
        port = server.c2s_tls_port if direct_tls else server.c2s_port
        client = Client(
            settings(server, account, port=port, direct_tls=direct_tls, connect_timeout=20)
        )
        started = time.monotonic()
        with pytest.raises(XmppConnectError) as err:
            await client.connect()
        elapsed = time.monotonic() - started
        assert elapsed < 5, f"refused only after {elapsed:.1f} s (a hang until the timeout)"
        text = str(err.value).lower()
        assert "certificate" in text and ("hostname" in text or "host name" in text), text
        assert not client.xmpp.connected
        await client.close()

    run(main(), 30)
