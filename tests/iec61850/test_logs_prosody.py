"""``gridbind iec61850 log`` as a real process against ``serve`` through a real Prosody, with the
log in a sqlite file that outlives a restart of the server process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from iec_testkit import FEEDER

pytestmark = pytest.mark.prosody
LOG = "FDR1LD0/LLN0$Events"


def _scl(tmp_path) -> str:
    # the feeder with its LCB enabled and an integrity period of 100 ms
    text = FEEDER.read_text()
    old = '<LogControl name="logStatus" datSet="Status" logName="Events" logEna="false" intgPd="0">'
    assert old in text
    text = text.replace(
        old,
        '<LogControl name="logStatus" datSet="Status" logName="Events" logEna="true"'
        ' intgPd="100">',
    ).replace(
        '<TrgOps dchg="true"/>\n            </LogControl>',
        '<TrgOps dchg="true" period="true"/>\n            </LogControl>',
    )
    path = tmp_path / "feeder-log.scd"
    path.write_text(text)
    return str(path)


def _serve(scl: str, db, ied, common: list[str]) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "gridbind", "iec61850", "serve", "--scl", scl, "--jid", ied.jid,
         "--password-file", str(db.parent / "ied.pw"), "--log-db", str(db), *common],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    line = proc.stdout.readline()
    if "serving IED FDR1" not in line:
        proc.kill()
        pytest.fail(f"serve did not start: {line!r} {proc.stderr.read()}")
    return proc


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    assert proc.wait(10) == 0


def _log(client: list[str], *args: str) -> list[dict]:
    out = subprocess.run(
        [sys.executable, "-m", "gridbind", "iec61850", "log", *client, LOG, *args],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


@pytest.mark.timeout(90)
def test_cli_log_queries_survive_a_server_restart(prosody, xmpp_account, tmp_path) -> None:
    ied, ops = xmpp_account("log-ied"), xmpp_account("log-ops")
    (tmp_path / "ied.pw").write_text(ied.password)
    (tmp_path / "ops.pw").write_text(ops.password)
    common = ["--xmpp", f"127.0.0.1:{prosody.c2s_port}", "--ca", str(prosody.ca_cert)]
    common += ["--sasl", "PLAIN"]
    client = ["--peer", ied.jid, "--jid", ops.jid, "--password-file", str(tmp_path / "ops.pw")]
    client += common
    scl, db = _scl(tmp_path), tmp_path / "logs.sqlite"
    proc = _serve(scl, db, ied, common)
    try:
        time.sleep(0.6)
        first = _log(client)
    finally:
        _stop(proc)
    assert len(first) >= 3
    assert all(v["reason"] == ["integrity"] for e in first for v in e["values"])
    assert {v["reference"] for v in first[0]["values"]} >= {"FDR1LD0/GGIO1$ST$Ind1$stVal"}
    proc = _serve(scl, db, ied, common)
    try:
        again = _log(client, "--to", first[-1]["time"])
        assert [e["entryID"] for e in again] == [e["entryID"] for e in first]
        after = _log(client, "--after", first[0]["entryID"], "--at", first[0]["time"])
        ids = [int(e["entryID"], 16) for e in after]
        assert ids[: len(first) - 1] == [int(e["entryID"], 16) for e in first[1:]]
        assert ids == sorted(ids) and len(ids) >= len(first)
    finally:
        _stop(proc)
