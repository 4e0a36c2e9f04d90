"""``gridbind iec61850 devserver``, ``shell`` and the value text, as a new user runs them.

Real processes against a real Prosody: ``devserver`` starts it (own CA, accounts, password
files), two ``serve`` processes use the settings it prints, and the client commands run as
``gridbind`` subprocesses too.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from gridbind.cli import main
from gridbind.iec61850.prosody import prosody_available

from conftest import require

DATA = Path(__file__).parent / "data"
pytestmark = pytest.mark.prosody
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def gridbind(
    *argv: str, stdin: str | None = None, timeout: float = 30
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gridbind", "iec61850", *argv],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=ENV,
    )


def started(argv: list[str], marker: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "gridbind", "iec61850", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=ENV,
    )
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if marker in line:
            return proc, "".join(seen)
    proc.kill()
    pytest.fail(f"{argv[0]} did not start: {''.join(seen)} {proc.stderr.read()}")


@pytest.fixture(scope="module")
def dev(tmp_path_factory):
    require(prosody_available(), "Prosody (apt-get install prosody)")
    home = tmp_path_factory.mktemp("dev")
    proc, printed = started(
        ["devserver", "--accounts", "ied,feeder,ops", "--dir", str(home / "xmpp")],
        "Ctrl-C stops the server",
    )
    settings = json.loads((home / "xmpp" / "settings.json").read_text())
    common = ["--xmpp", settings["xmpp"], "--ca", settings["ca"]]
    accounts = settings["accounts"]

    def identity(name: str) -> list[str]:
        return ["--jid", accounts[name]["jid"], "--password-file", accounts[name]["password_file"]]

    # the printed serve command, with the SCL file filled in, is what a user pastes
    serve_line = next(line for line in printed.splitlines() if "--password-file" in line)
    assert "--xmpp" in serve_line and settings["ca"] in serve_line
    servers = [
        started(["serve", "--scl", str(DATA / "values.scd"), *identity("ied"), *common],
                "serving IED VAL")[0],
        started(["serve", "--scl", str(DATA / "feeder.scd"), *identity("feeder"), *common],
                "serving IED FDR1")[0],
    ]  # fmt: skip
    ops = [*identity("ops"), *common]
    yield {
        "values": ["--peer", accounts["ied"]["jid"], *ops],
        "feeder": ["--peer", accounts["feeder"]["jid"], *ops],
        "printed": printed,
    }
    for server in servers:
        server.terminate()
        assert server.wait(10) == 0
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=15)
    assert proc.returncode == 0 and "stopped" in out


SET = "VALLD0/GAPC1.Set"
SCL = ["--scl", str(DATA / "values.scd")]


@pytest.mark.timeout(60)
def test_values_print_and_write_back_in_the_same_form(dev, tmp_path):
    peer = dev["values"]
    lines = [
        f"write {SET}.f32 SP 0.3",
        f"write {SET}.f64 SP 0.1",
        f'write {SET}.mode SP "off"',
        f'write {SET}.raw SP "00ab10"',
        f'write {SET}.when SP "2024-05-01T12:00:00.25Z quality=0A"',
        f'write {SET}.text SP "café € \\"quoted\\""',
        f"write {SET}.name SP feeder 7",
        f"write {SET}.count SP 4294967295",
        f"write {SET}.on SP true",
        f'write {SET}.q SP "0100000000000"',
        # refused before sending: the association (and the XMPP stream) survive it
        f'write {SET}.text SP "bell\\u0007"',
        f"read {SET} SP",
    ]
    run = gridbind("shell", *peer, *SCL, stdin="\n".join(lines) + "\n")
    assert run.returncode == 1, run.stderr  # the one refused value
    assert run.stderr.count("error:") == 1 and "U+0007" in run.stderr
    printed = run.stdout.split("ok\n" * 10, 1)[1]
    assert json.loads(printed) == {
        "f32": 0.3,
        "f64": 0.1,
        "mode": "off",
        "raw": "00AB10",
        "when": "2024-05-01T12:00:00.250000000Z quality=0A",
        "text": 'café € "quoted"',
        "name": "feeder 7",
        "count": 4294967295,
        "on": True,
        "q": "0100000000000",
    }
    # Every printed member, pasted back as printed (a --script file), reads back identically.
    script = tmp_path / "back.txt"
    members = json.loads(printed)
    script.write_text(
        "".join(f"write {SET}.{name} SP {json.dumps(value)}\n" for name, value in members.items())
        + f"read {SET} SP\n"
    )
    again = gridbind("shell", *peer, *SCL, "--script", str(script))
    assert again.returncode == 0, again.stderr
    assert again.stdout == "ok\n" * len(members) + printed
    # Single commands: the same text on the command line; without --scl enums are ordinals.
    single = gridbind("read", *peer, f"{SET}.f32", "SP")
    assert single.returncode == 0 and single.stdout == "0.3\n"
    assert gridbind("read", *peer, f"{SET}.mode", "SP").stdout == "5\n"
    assert gridbind("write", *peer, *SCL, f"{SET}.mode", "SP", '"on"').returncode == 0
    assert gridbind("read", *peer, *SCL, f"{SET}.mode", "SP").stdout == '"on"\n'
    assert gridbind("write", *peer, f"{SET}.mode", "SP", "5").returncode == 0
    bad = gridbind("write", *peer, *SCL, f"{SET}.mode", "SP", '"of"')
    assert bad.returncode == 1 and "not one of ['on', 'on-blocked', 'test', 'off']" in bad.stderr


@pytest.mark.timeout(60)
def test_one_association_for_data_sets_and_setting_group_edits(dev):
    lines = """\
# a data set of this association only, then setting group edits across several commands
dataset create @mine FDR1LD0/GGIO1.IntIn1.stVal[ST] FDR1MEAS/MMXU1.TotW.mag.f[MX]
dataset show @mine
dataset values @mine
sg edit FDR1PROT 2
sg setval FDR1PROT/IPTOC1.OpDlTmms.setVal 77
sg getedit FDR1PROT/IPTOC1.OpDlTmms.setVal
sg confirm FDR1PROT
sg activate FDR1PROT 2
sg get FDR1PROT/IPTOC1.OpDlTmms.setVal
nonsense here
quit
read FDR1MEAS/MMXU1.TotW.mag.f MX
"""
    run = gridbind("shell", *dev["feeder"], stdin=lines)
    assert run.returncode == 1 and "invalid choice: 'nonsense'" in run.stderr
    out = run.stdout.split("\n")
    assert out[0] == "ok"
    rest = "\n".join(out[1:])
    shown, rest = rest.split("]\n", 1)
    assert json.loads(shown + "]") == [
        "FDR1LD0/GGIO1.IntIn1.stVal[ST]",
        "FDR1MEAS/MMXU1.TotW.mag.f[MX]",
    ]
    values, rest = rest.split("]\n", 1)
    assert json.loads(values + "]") == [42, 1500.5]
    assert rest.split("\n")[:6] == ["ok", "ok", "77", "ok", "ok", "77"]
    assert "1500.5" not in rest  # nothing after quit
    # the data set was this association's only
    gone = gridbind("dataset", *dev["feeder"], "values", "@mine")
    assert gone.returncode == 1


def test_help_explains_references_and_functional_constraints(capsys):
    for command, words in [
        ("read", ["LD/LN", "functional constraints", "MX measurands", "FLOAT32", "--scl"]),
        ("write", ["LD/LN", "Timestamp", "quality=0A", "octet string"]),
        ("sg", ["setval REF VALUE", "confirm LD", "functional constraints", "SE setting"]),
        ("shell", ["ONE association", "@mine", "--script"]),
        ("devserver", ["Prosody", "--accounts"]),
    ]:
        with pytest.raises(SystemExit) as stop:
            main(["iec61850", command, "--help"])
        assert stop.value.code == 0
        out = capsys.readouterr().out
        for word in words:
            assert word in out, (command, word)


@pytest.mark.timeout(60)
@pytest.mark.xfail(
    strict=True,
    reason="the XMPP adapter sends a CR as &#13; (the codec keeps it, DECISIONS.md 32), but "
    "Prosody serialises the stanza again with the CR raw, so it arrives as LF. Remove this "
    "mark when the XMPP server keeps it.",
)
def test_carriage_return_over_xmpp(dev):
    run = gridbind(
        "shell",
        *dev["values"],
        *SCL,
        stdin=f'write {SET}.text SP "a\\r\\nb"\nread {SET}.text SP\n',
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout == 'ok\n"a\\r\\nb"\n'


@pytest.mark.timeout(30)
def test_devserver_without_prosody_says_how_to_install_it(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "gridbind", "iec61850", "devserver", "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=20,
        env={**ENV, "PATH": str(tmp_path)},
    )
    assert run.returncode == 2 and "apt-get install prosody" in run.stderr
    assert not list(tmp_path.iterdir())
