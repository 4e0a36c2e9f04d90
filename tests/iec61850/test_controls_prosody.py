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

from gridbind.iec61850.client import Client
from gridbind.iec61850.control.addcause import AddCause
from gridbind.iec61850.control.service import ControlHandlers
from gridbind.iec61850.scl import load_scl
from gridbind.iec61850.server import IedServer

from iec_testkit import run, settings

CONTROLS = Path(__file__).parent / "data" / "controls.icd"
LD = "CTL1CTRL"


@pytest.mark.timeout(60)
def test_control_failure_paths_through_prosody(prosody, xmpp_account) -> None:
    """Select timeout, locked by another client, interlock refusal, CommandTermination -, and a
    check handler that raises, each with its AddCause, over real XMPP."""
    checks = []

    def interlock(action):
        checks.append(action.request.check)
        return False

    def check(action):
        if action.ref.endswith("XCBR1.Pos") and action.ctl_val is False:
            raise RuntimeError("application bug")
        return None

    def operate(action):
        return AddCause.BLOCKED_BY_PROCESS if action.ref.endswith("CSWI4.Pos") else True

    handlers = ControlHandlers(on_check=check, on_interlock_check=interlock, on_operate=operate)

    async def main():
        server = IedServer(
            load_scl(CONTROLS), settings(prosody, xmpp_account("ctlf")), control_handlers=handlers
        )
        one = Client(settings(prosody, xmpp_account("opsf1")))
        two = Client(settings(prosody, xmpp_account("opsf2")))
        await asyncio.gather(server.start(), one.connect(), two.connect())
        try:
            a, b = await asyncio.gather(one.associate(server.jid), two.associate(server.jid))
            # select timeout (sboTimeout 400 ms)
            assert (await a.select(f"{LD}/CSWI3.Pos")).ok
            await asyncio.sleep(0.6)
            late = await a.operate(f"{LD}/CSWI3.Pos", True, select=False)
            assert (late.add_cause, late.failure) == (
                AddCause.OBJECT_NOT_SELECTED,
                "object-access-denied",
            )
            # locked by another client
            assert (await a.select_with_value(f"{LD}/XCBR1.Pos", True)).ok
            locked = await b.operate(f"{LD}/XCBR1.Pos", True, select=False)
            assert (locked.add_cause, locked.failure) == (
                AddCause.LOCKED_BY_OTHER_CLIENT,
                "temporarily-unavailable",
            )
            assert (await a.cancel(f"{LD}/XCBR1.Pos", True)).ok
            # interlock refusal, with the Check bits as sent
            refused = await b.operate(f"{LD}/CSWI2.Pos", True, interlock_check=True)
            assert refused.add_cause == AddCause.BLOCKED_BY_INTERLOCKING and checks == ["01"]
            # CommandTermination -
            ended = await b.operate(f"{LD}/CSWI4.Pos", True)
            assert (ended.terminated, ended.add_cause) == (False, AddCause.BLOCKED_BY_PROCESS)
            # a raising check handler: Unknown, and the object and association stay usable
            for _ in range(3):
                bug = await a.operate(f"{LD}/XCBR1.Pos", False)
                assert bug.add_cause == AddCause.UNKNOWN
            assert (await a.operate(f"{LD}/XCBR1.Pos", True)).ok
        finally:
            await asyncio.gather(one.close(), two.close(), server.close())

    run(main(), 50)


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
