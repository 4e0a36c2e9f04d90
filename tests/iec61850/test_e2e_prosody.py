"""IEC 62351-4 E2E security through a real Prosody: an encrypted association with reads and
writes, what the operator stores and logs (debug log, offline storage) holds no plaintext, and
the CLI options (``e2e-certs``, ``serve --e2e``, client ``--e2e``)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gridbind.cli import main
from gridbind.generated.iec61850_8_2 import scsm_8_2 as m
from gridbind.iec61850 import mms
from gridbind.iec61850 import mmsdata as d
from gridbind.iec61850.client import Client
from gridbind.iec61850.e2e import E2EConfig, Mode
from gridbind.iec61850.e2e_certs import make_ca, make_e2e_certificate
from gridbind.iec61850.envelope import ClearContext
from gridbind.iec61850.prosody import Prosody, prosody_available
from gridbind.iec61850.scl import load_scl
from gridbind.iec61850.server import IedServer

from iec_testkit import run, settings, until

FEEDER = Path(__file__).parent / "data" / "feeder.scd"
VALUES = Path(__file__).parent / "data" / "values.scd"
SECRET = "SetpointSecret4711"
pytestmark = pytest.mark.prosody


class _Account:
    def __init__(self, jid: str, password: str) -> None:
        self.jid, self.password = jid, password


@pytest.fixture(scope="module")
def operator():
    """A Prosody logging at debug level, with offline message storage."""
    from conftest import require

    require(prosody_available(), "Prosody (apt-get install prosody)")
    server = Prosody(domain="test.local", hibernation=3, debug_log=True, extra_modules=("offline",))
    server.start()
    try:
        yield server
    finally:
        server.cleanup()


def _account(server: Prosody, name: str) -> _Account:
    return _Account(server.register(name, "pw-" + name), "pw-" + name)


def _e2e(ca, jid: str, mode: Mode = Mode.ENCRYPTED) -> E2EConfig:
    leaf = make_e2e_certificate(ca, jid)
    return E2EConfig(
        mode, certificate=leaf.certificate, private_key=leaf.key, trust_anchors=(ca.certificate,)
    )


def _stored_and_logged(server: Prosody) -> bytes:
    data = b""
    for path in sorted(Path(server.directory).rglob("*")):
        if path.is_file() and (path.suffix in (".dat", ".list", ".log") or "data" in path.parts):
            data += path.read_bytes()
    return data


@pytest.mark.timeout(60)
def test_encrypted_association_hides_payloads_from_the_operator(operator) -> None:
    ca = make_ca()
    ied, ops, absent = (_account(operator, n) for n in ("e2e-ied", "e2e-ops", "e2e-absent"))

    async def main_():
        server = IedServer(
            load_scl(FEEDER), settings(operator, ied), e2e=_e2e(ca, ied.jid)
        )  # fmt: skip
        client = Client(settings(operator, ops), e2e=_e2e(ca, ops.jid))
        await server.start()
        await client.connect()
        try:
            assoc = await client.associate(server.jid)
            assert ":" in assoc.id
            await assoc.set_data_values("FDR1LD0/GGIO1.Ind1.d", "DC", SECRET)
            assert await assoc.get_data_values("FDR1LD0/GGIO1.Ind1.d", "DC") == SECRET
            assert await assoc.get_data_values("FDR1MEAS/MMXU1.TotW.mag.f", "MX") == 1500.5
            # An informationReport sealed in the association, to an account that is offline:
            # the operator stores it (mod_offline).
            report = mms.information_report(
                mms.vmd("RPT"), [m.AccessResult(choice=d.visible_string(SECRET))]
            )
            layer = server.protocol._layers[server.associations[0].key]
            to_absent = f"{absent.jid}/IEC"
            server.transport.send_message(to_absent, layer.seal(report, time.time()))
            await assoc.conclude()
        finally:
            await client.close()
            await server.close()

    run(main_())
    seen = _stored_and_logged(operator)
    assert b"EncrTransfer" in seen  # the debug log and the offline store did see the traffic
    assert SECRET.encode() not in seen and b"MMSpdu" not in seen


@pytest.mark.timeout(60)
def test_the_storage_check_sees_a_clear_payload(operator) -> None:
    """Control for the test above: E2E off, the same offline message is stored readable."""
    ied, absent = _account(operator, "plain-ied"), _account(operator, "plain-absent")

    async def main_():
        server = IedServer(load_scl(FEEDER), settings(operator, ied))
        await server.start()
        try:
            report = mms.information_report(
                mms.vmd("RPT"), [m.AccessResult(choice=d.visible_string(SECRET + "Clear"))]
            )
            layer = ClearContext(absent.jid, "1")
            server.transport.send_message(f"{absent.jid}/IEC", layer.seal(report, 0.0))
            await until(
                lambda: (SECRET + "Clear").encode() in _stored_and_logged(operator),
                5,
                "the clear report in the operator's store",
            )
        finally:
            await server.close()

    run(main_())


@pytest.mark.timeout(90)
def test_cli_e2e_encrypted(prosody, xmpp_account, tmp_path, capsys) -> None:
    ied, ops = xmpp_account("cli-e2e-ied"), xmpp_account("cli-e2e-ops")
    certs = tmp_path / "certs"
    status = main(
        ["iec61850", "e2e-certs", "--jid", ied.jid, "--jid", ops.jid, "--out", str(certs)]
    )
    assert status == 0 and (certs / "ca.crt").exists()
    capsys.readouterr()
    (tmp_path / "ied.pw").write_text(ied.password)
    (tmp_path / "ops.pw").write_text(ops.password)
    common = ["--xmpp", f"127.0.0.1:{prosody.c2s_port}", "--ca", str(prosody.ca_cert),
              "--sasl", "PLAIN", "--e2e-ca", str(certs / "ca.crt")]  # fmt: skip

    def e2e(jid: str) -> list[str]:
        stem = jid.split("@")[0]
        return ["--e2e-cert", str(certs / f"{stem}.crt"), "--e2e-key", str(certs / f"{stem}.key")]

    proc = subprocess.Popen(
        [sys.executable, "-m", "gridbind", "iec61850", "serve", "--scl", str(FEEDER),
         "--jid", ied.jid, "--password-file", str(tmp_path / "ied.pw"), *common,
         "--e2e", "encrypted", *e2e(ied.jid)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        line = proc.stdout.readline()
        assert "serving IED FDR1" in line, proc.stderr.read() if proc.poll() is not None else line
        client = ["--peer", ied.jid, "--jid", ops.jid, "--password-file", str(tmp_path / "ops.pw"),
                  *common]  # fmt: skip
        on = [*client, "--e2e", "encrypted", *e2e(ops.jid)]
        assert main(["iec61850", "write", *on, "FDR1LD0/GGIO1.Ind1.d", "DC", '"via e2e"']) == 0
        assert main(["iec61850", "read", *on, "FDR1LD0/GGIO1.Ind1.d", "DC"]) == 0
        out = capsys.readouterr()
        assert out.out == 'ok\n"via e2e"\n', out  # the write says ok
        # E2E off on the client side: the association fails with a clear error
        assert main(["iec61850", "read", *client, "FDR1LD0/GGIO1.Ind1.d", "DC"]) == 1
        assert "e2e_mismatch" in capsys.readouterr().err
        # E2E on without a certificate: a configuration error before connecting
        assert main(["iec61850", "read", *client, "--e2e", "encrypted", "A/B.C", "ST"]) == 2
        assert "--e2e-cert" in capsys.readouterr().err
    finally:
        proc.terminate()
        assert proc.wait(10) == 0


@pytest.mark.timeout(60)
def test_carriage_return_survives_prosody_inside_an_encrypted_association(operator) -> None:
    """Prosody re-serialises a clear payload's ``&#13;`` as a raw CR (it then arrives as LF, see
    test_iec_cli_shell); an encrypted payload is opaque to it, so the CR arrives intact."""
    ca = make_ca()
    ied, ops = (_account(operator, n) for n in ("cr-ied", "cr-ops"))
    text = "a\r\nb\rc"

    async def main_():
        server = IedServer(load_scl(VALUES), settings(operator, ied), e2e=_e2e(ca, ied.jid))
        client = Client(settings(operator, ops), e2e=_e2e(ca, ops.jid))
        await server.start()
        await client.connect()
        try:
            assoc = await client.associate(server.jid)
            await assoc.set_data_values("VALLD0/GAPC1.Set.text", "SP", text)
            assert await assoc.get_data_values("VALLD0/GAPC1.Set.text", "SP") == text
            await assoc.conclude()
        finally:
            await client.close()
            await server.close()

    run(main_())


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", [Mode.AUTHENTICATED, Mode.ENCRYPTED], ids=lambda m: m.value)
def test_a_cancelled_request_among_pipelined_ones_keeps_the_association(
    prosody, xmpp_account, mode
) -> None:
    """A requester cancelled while its answer travels: the adapter still hands that answer to
    E2E in its place in the sequence, so the next answers, and later requests, go on in the
    association (slixmpp's own iq callbacks did so too)."""
    ca = make_ca()
    ied, ops = xmpp_account("cancel-ied"), xmpp_account("cancel-ops")
    value = "FDR1LD0/GGIO1.Ind1.d"

    async def main_():
        server = IedServer(load_scl(FEEDER), settings(prosody, ied), e2e=_e2e(ca, ied.jid, mode))
        client = Client(settings(prosody, ops), e2e=_e2e(ca, ops.jid, mode))
        await server.start()
        await client.connect()
        try:
            assoc = await client.associate(server.jid)
            await assoc.set_data_values(value, "DC", "pipelined")
            waiting = client.transport._waiting
            # one token time for all six answers: their seq count 0..5, so a gap shows
            frozen = server.wall_time()
            server.wall_time = lambda: frozen
            reads = [
                asyncio.get_running_loop().create_task(assoc.get_data_values(value, "DC"))
                for _ in range(6)
            ]
            while len(waiting) < 6:  # all six sent; no answer can be in before the next step
                await asyncio.sleep(0)
            assert reads[1].cancel()
            got = await asyncio.gather(*reads, return_exceptions=True)
            del server.wall_time
            assert isinstance(got[1], asyncio.CancelledError)
            assert got[:1] + got[2:] == ["pipelined"] * 5
            await until(lambda: not waiting, 5, "the cancelled request's answer")
            await assoc.set_data_values(value, "DC", "still up")
            assert await assoc.get_data_values(value, "DC") == "still up"
            assert assoc.open and server.associations
            await assoc.conclude()
        finally:
            await client.close()
            await server.close()

    run(main_())
