"""The 8-2 IED server and client over ejabberd: one private node, and a two-node cluster with
the IED on one node and the client on the other (Debian's ejabberd, all on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import socket
import ssl
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest
import slixmpp
from cryptography import x509
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath
from test_reports import ALL_OPT, URCB, next_reports

from gridbind.iec61850 import codec
from gridbind.iec61850.client import AssociationAborted, Client
from gridbind.iec61850.control.addcause import AddCause
from gridbind.iec61850.mmsdata import TriggerConditions as T
from gridbind.iec61850.scl import load_scl
from gridbind.iec61850.server import IedServer

from ejabberd_nodes import Ejabberd, EjabberdCluster, EjabberdError, ejabberd_available
from iec_testkit import run, settings, until

FEEDER = Path(__file__).parent / "data" / "feeder.scd"
CONTROLS = Path(__file__).parent / "data" / "controls.icd"
PASSWORD = "s3cret-test"
pytestmark = pytest.mark.ejabberd
CTL_LD = "CTL1CTRL"
SECRET = "TopSecretSetpoint4711"  # the payload value of test_e2e_security.write_secret


def _require():
    spec = importlib.util.spec_from_file_location(
        "_gridbind_root_conftest_ejabberd", Path(__file__).resolve().parents[1] / "conftest.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.require


require = _require()


@dataclass(frozen=True)
class Account:
    jid: str
    password: str


@pytest.fixture(scope="module")
def ejabberd():
    require(ejabberd_available(), "ejabberd (apt-get install ejabberd)")
    # debug: every stanza is logged; offline messages are stored in the spool: both are what an
    # XMPP operator could read, checked for plaintext by the E2E storage test.
    server = Ejabberd(domain="test.local", loglevel="debug", offline_messages=True)
    server.start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="module")
def cluster():
    require(ejabberd_available(), "ejabberd (apt-get install ejabberd)")
    with EjabberdCluster(domain="cluster.local") as c:
        yield c


@contextlib.asynccontextmanager
async def served(
    ied_node,
    client_node,
    ied: Account,
    ops: Account,
    e2e=(None, None),
    scl: Path = FEEDER,
    client_kw: dict | None = None,
    **ied_settings,
):
    server = IedServer(load_scl(scl), settings(ied_node, ied, **ied_settings), e2e=e2e[0])
    client = Client(settings(client_node, ops), e2e=e2e[1], **(client_kw or {}))
    await asyncio.gather(server.start(), client.connect())
    try:
        yield server, client
    finally:
        await asyncio.gather(client.close(), server.close())


async def _association_reads_writes(server: IedServer, client: Client) -> None:
    ied = await client.associate(server.jid)
    assert ied.params.max_pdu_size == 65000
    assert await ied.get_server_directory() == ["FDR1LD0", "FDR1MEAS", "FDR1PROT"]
    assert await ied.get_data_values("FDR1MEAS/MMXU1.TotW.mag.f", "MX") == 1500.5
    await ied.set_data_values("FDR1MEAS/MMXU1.TotW.limits(1)", "CF", 7)
    assert await ied.get_data_values("FDR1MEAS/MMXU1.TotW.limits", "CF") == [0, 7, 0]
    assert server.model.read("FDR1MEAS/MMXU1.TotW.limits", "CF") == [0, 7, 0]
    values = await ied.get_all_data_values("FDR1LD0/GGIO1", "ST")
    assert values["IntIn1"]["stVal"] == 42
    await ied.conclude()
    assert not ied.open


def _e2e_encrypted(ied: Account, ops: Account) -> tuple:
    from gridbind.iec61850.e2e import E2EConfig, Mode
    from gridbind.iec61850.e2e_certs import make_ca, make_e2e_certificate

    ca = make_ca()

    def config(jid: str) -> E2EConfig:
        leaf = make_e2e_certificate(ca, jid)
        return E2EConfig(
            Mode.ENCRYPTED,
            certificate=leaf.certificate,
            private_key=leaf.key,
            trust_anchors=(ca.certificate,),
        )

    return config(ied.jid), config(ops.jid)


@pytest.mark.timeout(30)
def test_ejabberd_serves_tls_for_the_domain_on_loopback_only(ejabberd) -> None:
    ctx = ssl.create_default_context(cafile=str(ejabberd.ca_cert))
    with socket.create_connection(("127.0.0.1", ejabberd.c2s_tls_port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=ejabberd.domain) as tls:
            cert = x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["test.local"]
    config = ejabberd.config_path.read_text()
    assert config.count('ip: "127.0.0.1"') == 2 and "::" not in config
    with pytest.raises(EjabberdError, match="register"):
        ejabberd.register("bad user", "pw")


@pytest.mark.timeout(30)
@pytest.mark.parametrize("e2e", ["off", "encrypted"])
def test_iec_services_through_ejabberd(ejabberd, e2e) -> None:
    ied = Account(ejabberd.register(f"ied-{e2e}", PASSWORD), PASSWORD)
    ops = Account(ejabberd.register(f"ops-{e2e}", PASSWORD), PASSWORD)
    security = _e2e_encrypted(ied, ops) if e2e == "encrypted" else (None, None)

    async def main():
        async with served(ejabberd, ejabberd, ied, ops, security) as (server, client):
            events = []
            server.on_event = events.append
            await _association_reads_writes(server, client)
            # the E2E handshake names the association n:m
            assert events and all((":" in e.association.id) == (e2e != "off") for e in events)

    run(main(), 25)


async def _raw_client(node: Ejabberd, account: Account):
    """A bare slixmpp client (no 8-2 adapter): sends and receives any message payload."""
    ctx = ssl.create_default_context(cafile=str(node.ca_cert))
    client = slixmpp.ClientXMPP(f"{account.jid}/IEC", account.password, ssl_context=ctx)
    client.enable_direct_tls, client.enable_starttls, client.enable_plaintext = False, True, False
    started, inbox = asyncio.Event(), asyncio.Queue()

    def session_start(_event) -> None:
        client.send_presence()  # initial presence: the server then delivers stored messages
        started.set()

    client.add_event_handler("session_start", session_start)
    # slixmpp's "message" event needs a <body/>: match every message stanza instead.
    client.register_handler(
        Callback("any message", MatchXPath("{jabber:client}message"), inbox.put_nowait)
    )
    client.connect(node.host, node.c2s_port)
    await asyncio.wait_for(started.wait(), 10)
    return client, inbox


def _files_containing(root: Path, needle: bytes) -> list[str]:
    return [
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and needle.lower() in p.read_bytes().lower()
    ]


@pytest.mark.timeout(40)
def test_server_logs_and_storage_hold_no_plaintext_of_encrypted_payloads(ejabberd) -> None:
    """ejabberd logs every stanza (debug) and stores messages for an offline account: the
    encrypted payload's plaintext is in neither, the authenticated one's is (the control), and
    both envelopes still open after storage and re-serialisation by the server."""
    from test_e2e_security import cfg, handshake, write_secret

    from gridbind.iec61850.e2e import Mode
    from gridbind.iec61850.e2e_certs import make_ca, make_e2e_certificate

    ca = make_ca()
    pki = {
        "ca": ca,
        "client": make_e2e_certificate(ca, "client1@example.test"),
        "ied": make_e2e_certificate(ca, "ied1@example.test"),
    }
    sealed_by, opened_by = {}, {}
    for mode in (Mode.ENCRYPTED, Mode.AUTHENTICATED):
        sealed_by[mode], opened_by[mode] = handshake(
            cfg(pki, "client", mode), cfg(pki, "ied", mode)
        )
    control = "ControlVisible0815"
    encrypted = write_secret()  # carries SECRET
    clear = write_secret()
    clear.choice.service.choice.list_of_data.data[0].choice.value = control
    sender = Account(ejabberd.register("e2e-sender", PASSWORD), PASSWORD)
    offline = Account(ejabberd.register("e2e-offline", PASSWORD), PASSWORD)
    root = ejabberd.directory

    async def main():
        client, _ = await _raw_client(ejabberd, sender)
        now = time.time()
        for mode, pdu in ((Mode.ENCRYPTED, encrypted), (Mode.AUTHENTICATED, clear)):
            msg = client.make_message(mto=f"{offline.jid}/IEC", mtype="normal")
            msg.xml.append(codec.to_etree(sealed_by[mode].seal(pdu, now)))
            # XEP-0334 store hint: ejabberd stores body-less messages only when asked to.
            msg.xml.append(ET.Element("{urn:xmpp:hints}store"))
            msg.send()
        await client.disconnect()
        await until(
            lambda: _files_containing(root / "spool", control.encode())
            and _files_containing(root / "logs", control.encode()),
            10,
            "the control payload stored and logged in clear",
        )
        assert _files_containing(root, SECRET.encode()) == []
        assert _files_containing(root, SECRET.encode().hex().encode()) == []
        receiver, inbox = await _raw_client(ejabberd, offline)
        try:
            got = {}
            for _ in range(2):
                msg = await asyncio.wait_for(inbox.get(), 10)
                (env,) = [c for c in msg.xml if c.tag.startswith("{" + codec.E2E_NS + "}")]
                envelope = codec.decode(env)
                mode = (
                    Mode.ENCRYPTED
                    if type(envelope).__name__ == "EncrTransfer"
                    else (Mode.AUTHENTICATED)
                )
                got[mode] = opened_by[mode].open(envelope, time.time())
            assert got == {Mode.ENCRYPTED: encrypted, Mode.AUTHENTICATED: clear}
        finally:
            await receiver.disconnect()

    run(main(), 35)


@pytest.mark.timeout(40)
def test_cluster_ied_on_one_node_client_on_the_other(cluster) -> None:
    node1, node2 = cluster.nodes
    assert node1.node in node2.ctl("list_cluster")
    ied = Account(cluster.register("ied", PASSWORD), PASSWORD)
    ops = Account(cluster.register("ops", PASSWORD), PASSWORD)

    ctl = Account(cluster.register("ctl", PASSWORD), PASSWORD)

    async def main():
        async with served(node1, node2, ied, ops) as (server, client):
            await _association_reads_writes(server, client)
            # reports: a URCB enabled from node 2, data changes on the IED at node 1
            rpt = await client.associate(server.jid)
            await rpt.enable_reporting(URCB, buffered=False, TrgOps=T.DATA_CHANGE, OptFlds=ALL_OPT)
            for n in range(10):
                server.model.update("FDR1LD0/GGIO1.Ind1.stVal", n % 2 == 1)  # (starts true)
            got = await next_reports(rpt, 10, 10)
            assert [r.seq_num for r in got] == list(range(10))
            assert [r.values[0].value for r in got] == [n % 2 == 1 for n in range(10)]
            await rpt.conclude()
        # controls: SBO with enhanced security, CommandTermination across the cluster
        async with served(node1, node2, ctl, ops, scl=CONTROLS) as (server, client):
            assoc = await client.associate(server.jid)
            outcome = await assoc.operate(f"{CTL_LD}/CSWI5.Pos", True)
            assert outcome.ok and outcome.terminated is True
            assert server.model.read(f"{CTL_LD}/CSWI5.Pos.stVal", "ST") == 2
            refused = await assoc.operate(f"{CTL_LD}/CSWI5.Pos", False, select=False)
            assert refused.add_cause == AddCause.OBJECT_NOT_SELECTED

    run(main(), 35)


@pytest.mark.timeout(60)
def test_losing_the_ied_node_aborts_the_client_association(cluster) -> None:
    """Last test of the module: it crashes node 1."""
    node1, node2 = cluster.nodes
    ied = Account(cluster.register("ied2", PASSWORD), PASSWORD)
    ops = Account(cluster.register("ops2", PASSWORD), PASSWORD)

    pings = {"peer_ping_interval": 0.5, "peer_ping_timeout": 1.5}

    async def main():
        async with served(node1, node2, ied, ops, client_kw=pings) as (server, client):
            assoc = await client.associate(server.jid)
            assert await assoc.get_data_values("FDR1LD0/GGIO1.IntIn1.stVal", "ST") == 42
            loop = asyncio.get_running_loop()
            # Node 1 crashes (SIGKILL): nothing of it says goodbye, and node 2 sends no
            # unavailable presence for the IED's session (measured on ejabberd 23.01; a graceful
            # stop mostly gets the presence across, README "Production XMPP cluster"). The
            # client's pings of the idle association find the IED gone: after an idle period
            # (0.5 s + 10 %) node 2 answers service-unavailable ("User session not found"), or
            # the ping times out (1.5 s). No request is needed.
            await loop.run_in_executor(None, node1.kill)
            started = time.monotonic()
            await until(lambda: not assoc.open, 4.0, "the client's association aborted")
            assert time.monotonic() - started < 4.0
            reason = assoc.assoc.end_reason
            assert reason.startswith(("presence of ", "peer unreachable: ")), reason
            assert client.associations == []
            with pytest.raises(AssociationAborted):
                await assoc.get_server_directory()
            assert node2.running  # the client's node is untouched

    run(main(), 50)
