"""The 8-2 IED server and client over ejabberd: one private node, and a two-node cluster with
the IED on one node and the client on the other (Debian's ejabberd, all on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509

from gridbind.iec61850.client import AssociationAborted, Client
from gridbind.iec61850.ejabberd import (
    Ejabberd,
    EjabberdCluster,
    EjabberdError,
    ejabberd_available,
)
from gridbind.iec61850.scl import load_scl
from gridbind.iec61850.server import IedServer
from iec_testkit import run, settings, until

FEEDER = Path(__file__).parent / "data" / "feeder.scd"
PASSWORD = "s3cret-test"


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
    server = Ejabberd(domain="test.local")
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
async def served(ied_node, client_node, ied: Account, ops: Account):
    server = IedServer(load_scl(FEEDER), settings(ied_node, ied))
    client = Client(settings(client_node, ops))
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
def test_iec_services_through_ejabberd(ejabberd) -> None:
    ied = Account(ejabberd.register("ied", PASSWORD), PASSWORD)
    ops = Account(ejabberd.register("ops", PASSWORD), PASSWORD)

    async def main():
        async with served(ejabberd, ejabberd, ied, ops) as (server, client):
            await _association_reads_writes(server, client)

    run(main(), 25)


@pytest.mark.timeout(40)
def test_cluster_ied_on_one_node_client_on_the_other(cluster) -> None:
    node1, node2 = cluster.nodes
    assert node1.node in node2.ctl("list_cluster")
    ied = Account(cluster.register("ied", PASSWORD), PASSWORD)
    ops = Account(cluster.register("ops", PASSWORD), PASSWORD)

    async def main():
        async with served(node1, node2, ied, ops) as (server, client):
            await _association_reads_writes(server, client)

    run(main(), 30)


@pytest.mark.timeout(60)
def test_losing_the_ied_node_aborts_the_client_association(cluster) -> None:
    """Last test of the module: it takes node 1 down."""
    node1, node2 = cluster.nodes
    ied = Account(cluster.register("ied2", PASSWORD), PASSWORD)
    ops = Account(cluster.register("ops2", PASSWORD), PASSWORD)

    async def main():
        async with served(node1, node2, ied, ops) as (server, client):
            assoc = await client.associate(server.jid)
            assert await assoc.get_data_values("FDR1LD0/GGIO1.IntIn1.stVal", "ST") == 42
            await asyncio.get_running_loop().run_in_executor(None, node1.stop)
            await until(lambda: not assoc.open, 15, "the client's association aborted")
            with pytest.raises(AssociationAborted):
                await assoc.get_server_directory()
            assert client.associations == []

    run(main(), 50)
