"""Control services through a real Prosody: an SBO-with-enhanced-security operate end to end
(SelectWithValue, Operate, CommandTermination; LastApplError before a refusal), and the CLI's
``operate`` as a real process against ``serve`` as a real process. Every path runs in memory
in test_controls."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from iec_testkit import run, settings

from gridbind.iec61850.client import Client
from gridbind.iec61850.control.addcause import AddCause
from gridbind.iec61850.scl import load_scl
from gridbind.iec61850.server import IedServer

CONTROLS = Path(__file__).parent / "data" / "controls.icd"
LD = "CTL1CTRL"
pytestmark = pytest.mark.prosody


@pytest.mark.timeout(60)
def test_sbo_enhanced_operate_through_prosody(prosody, xmpp_account) -> None:
    async def main():
        server = IedServer(load_scl(CONTROLS), settings(prosody, xmpp_account("ctl")))
        client = Client(settings(prosody, xmpp_account("ops")))
        await asyncio.gather(server.start(), client.connect())
        try:
            ied = await client.associate(server.jid)
            outcome = await ied.operate(f"{LD}/CSWI5.Pos", True)
            assert outcome.ok and outcome.terminated is True
            assert server.model.read(f"{LD}/CSWI5.Pos.stVal", "ST") == 2
            refused = await ied.operate(f"{LD}/CSWI5.Pos", False, select=False)
            assert refused.add_cause == AddCause.OBJECT_NOT_SELECTED
            assert refused.failure == "object-access-denied"
        finally:
            await asyncio.gather(client.close(), server.close())

    run(main(), 50)


@pytest.mark.timeout(90)
def test_cli_operate_against_a_served_ied(prosody, xmpp_account, tmp_path) -> None:
    ied, ops = xmpp_account("cli-ctl"), xmpp_account("cli-ops")
    (tmp_path / "ied.pw").write_text(ied.password)
    (tmp_path / "ops.pw").write_text(ops.password)
    common = ["--xmpp", f"127.0.0.1:{prosody.c2s_port}", "--ca", str(prosody.ca_cert),
              "--sasl", "PLAIN"]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gridbind", "iec61850", "serve", "--scl", str(CONTROLS),
         "--jid", ied.jid, "--password-file", str(tmp_path / "ied.pw"), *common],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        line = proc.stdout.readline()
        assert "serving IED CTL1" in line, (line, proc.stderr.read() if proc.poll() else "")
        client = ["--peer", ied.jid, "--jid", ops.jid, "--password-file",
                  str(tmp_path / "ops.pw"), *common]  # fmt: skip

        def operate(*argv: str) -> tuple[int, dict]:
            done = subprocess.run(
                [sys.executable, "-m", "gridbind", "iec61850", "operate", *client, *argv],
                capture_output=True, text=True, env=env, timeout=40,
            )  # fmt: skip
            assert done.stdout.strip(), done.stderr
            return done.returncode, json.loads(done.stdout)

        status, outcome = operate(f"{LD}/CSWI5.Pos", "true")
        assert status == 0 and outcome["ok"] and outcome["terminated"] is True
        status, outcome = operate(f"{LD}/CSWI1.Pos", "true")
        assert status == 1 and outcome["addCause"] is None  # status-only: no LastApplError
        assert outcome["failure"] == "object-access-unsupported"
        # in one association (shell): SelectWithValue, then Operate without selecting again
        script = tmp_path / "ops.txt"
        script.write_text(
            f"operate {LD}/CSWI5.Pos false --select-only\n"
            f"operate {LD}/CSWI5.Pos false --no-select\n"
            f"operate {LD}/CSWI5.Pos true --no-select\n"
        )
        done = subprocess.run(
            [sys.executable, "-m", "gridbind", "iec61850", "shell", *client, "--script",
             str(script)],
            capture_output=True, text=True, env=env, timeout=40,
        )  # fmt: skip
        outcomes = [json.loads(line) for line in done.stdout.splitlines()]
        assert [o["ok"] for o in outcomes] == [True, True, False], done.stderr
        assert outcomes[0]["service"] == "SBOw" and outcomes[1]["terminated"] is True
        assert outcomes[2]["addCauseText"] == "Object-not-selected"
    finally:
        proc.terminate()
        proc.wait(10)
