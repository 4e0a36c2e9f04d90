"""``gridbind iec61850 ...``: serve in a child process, every client command against it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gridbind.cli import main

FEEDER = Path(__file__).parent / "data" / "feeder.scd"
pytestmark = pytest.mark.prosody


@pytest.fixture(scope="module")
def served(prosody, xmpp_account, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    files = tmp / "files"
    files.mkdir()
    (files / "log.txt").write_text("event 1\n")
    ied, ops = xmpp_account("cli-ied"), xmpp_account("cli-ops")
    (tmp / "ied.pw").write_text(ied.password)
    (tmp / "ops.pw").write_text(ops.password)
    common = [
        "--xmpp",
        f"127.0.0.1:{prosody.c2s_port}",
        "--ca",
        str(prosody.ca_cert),
        "--sasl",
        "PLAIN",
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "gridbind", "iec61850", "serve", "--scl", str(FEEDER),
         "--jid", ied.jid, "--password-file", str(tmp / "ied.pw"), "--files", str(files), *common],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    line = proc.stdout.readline()
    if "serving IED FDR1" not in line:
        proc.kill()
        pytest.fail(f"serve did not start: {line!r} {proc.stderr.read()}")
    client = ["--peer", ied.jid, "--jid", ops.jid, "--password-file", str(tmp / "ops.pw"), *common]
    yield client, files, tmp
    proc.terminate()
    assert proc.wait(10) == 0


def gb(capsys, *argv) -> tuple[int, str, str]:
    status = main(["iec61850", *argv])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.timeout(90)
def test_client_commands(served, capsys) -> None:
    client, files, tmp = served
    status, out, _ = gb(capsys, "browse", *client, "--depth", "1")
    assert status == 0 and "FDR1LD0\n  GGIO1\n" in out
    status, out, _ = gb(capsys, "read", *client, "FDR1MEAS/MMXU1.TotW.mag.f", "MX")
    assert status == 0 and json.loads(out) == 1500.5
    status, out, _ = gb(capsys, "write", *client, "FDR1LD0/GGIO1.Ind1.d", "DC", '"from cli"')
    assert status == 0
    status, out, _ = gb(capsys, "read", *client, "FDR1LD0/GGIO1.Ind1", "DC")
    assert json.loads(out) == {"d": "from cli"}
    status, _, err = gb(capsys, "write", *client, "FDR1LD0/GGIO1.Ind1.stVal", "ST", "true")
    assert status == 1 and "object-access-denied" in err
    status, out, _ = gb(capsys, "dataset", *client, "list", "FDR1LD0/LLN0")
    assert json.loads(out) == ["Measurements", "Status"]
    status, out, _ = gb(capsys, "dataset", *client, "create", "FDR1LD0/GGIO1.Cli",
                        "FDR1LD0/GGIO1.IntIn1.stVal[ST]", "FDR1LD0/GGIO1.Ind1.d[DC]")  # fmt: skip
    assert status == 0
    status, out, _ = gb(capsys, "dataset", *client, "values", "FDR1LD0/GGIO1.Cli")
    assert json.loads(out) == [42, "from cli"]
    status, out, _ = gb(capsys, "dataset", *client, "delete", "FDR1LD0/GGIO1.Cli")
    assert status == 0
    status, _, err = gb(capsys, "dataset", *client, "delete", "FDR1LD0/LLN0.Status")
    assert status == 1
    status, out, _ = gb(
        capsys, "sg", *client, "set", "FDR1PROT", "3", "FDR1PROT/IPTOC1.OpDlTmms.setVal", "33"
    )
    assert status == 0
    status, out, _ = gb(capsys, "sg", *client, "activate", "FDR1PROT", "3")
    assert status == 0
    status, out, _ = gb(capsys, "sg", *client, "get", "FDR1PROT/IPTOC1.OpDlTmms.setVal")
    assert json.loads(out) == 33
    status, out, _ = gb(capsys, "sg", *client, "show", "FDR1PROT")
    assert json.loads(out)["ActSG"] == 3
    status, out, _ = gb(capsys, "file", *client, "list")
    assert [e["name"] for e in json.loads(out)] == ["log.txt"]
    status, out, _ = gb(capsys, "file", *client, "get", "log.txt", "-o", str(tmp / "copy.txt"))
    assert status == 0 and (tmp / "copy.txt").read_text() == "event 1\n"
    (tmp / "up.bin").write_bytes(b"\x00\x01" * 3000)
    status, out, _ = gb(capsys, "file", *client, "put", "up.bin", "-i", str(tmp / "up.bin"))
    assert status == 0 and (files / "up.bin").read_bytes() == b"\x00\x01" * 3000
    status, out, _ = gb(capsys, "file", *client, "delete", "log.txt")
    assert status == 0 and not (files / "log.txt").exists()
    status, _, err = gb(capsys, "file", *client, "get", "../secret")
    assert status == 1 and "file" in err


@pytest.mark.timeout(30)
def test_serve_errors(prosody, tmp_path, capsys) -> None:
    bad = tmp_path / "bad.scd"
    bad.write_text(FEEDER.read_text().replace('type="SPS_T"/>', 'type="NOPE"/>', 1))
    pw = tmp_path / "pw"
    pw.write_text("x")
    status = main(["iec61850", "serve", "--scl", str(bad), "--jid", "a@test.local",
                   "--password-file", str(pw), "--ca", str(prosody.ca_cert)])  # fmt: skip
    assert status == 2 and "DOType 'NOPE'" in capsys.readouterr().err
    # without --jid, serve takes the P type JID of the SCL (fdr1@test.local, no such account)
    status = main(["iec61850", "serve", "--scl", str(FEEDER), "--password-file", str(pw),
                   "--xmpp", f"127.0.0.1:{prosody.c2s_port}", "--ca", str(prosody.ca_cert),
                   "--sasl", "PLAIN"])  # fmt: skip
    assert status == 1 and "fdr1@test.local" in capsys.readouterr().err
    t0 = time.monotonic()
    status = main(["iec61850", "read", "--peer", "x@test.local", "--jid", "nobody@test.local",
                   "--password-file", str(pw), "--xmpp", f"127.0.0.1:{prosody.c2s_port}",
                   "--ca", str(prosody.ca_cert), "--sasl", "PLAIN", "A/B.C", "ST"])  # fmt: skip
    assert status == 1 and "authentication" in capsys.readouterr().err
    assert time.monotonic() - t0 < 15
