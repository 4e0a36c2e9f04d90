"""The README's command-line walk-through, as far as it runs without Prosody: ``demo-scl``
writes the SCL file the README serves, and the values it shows are what the read prints."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys

import pytest

from gridbind.cli import main
from gridbind.iec61850.prosody import prosody_available
from gridbind.iec61850.scl import load_scl
from gridbind.iec61850.valuetext import format_value, parse_value, type_from_model

from conftest import require
from iec_testkit import memory_served, run

README_READ = ("FEEDER7MEAS/MMXU1.TotW.mag.f", "MX", "1520.0")
README_WRITE = ("FEEDER7MEAS/MMXU1.TotW.d", "DC", '"feeder 7"')


def test_demo_scl_writes_a_loadable_file(tmp_path, capsys):
    assert main(["iec61850", "demo-scl"]) == 0
    printed = capsys.readouterr().out
    assert main(["iec61850", "demo-scl", "--out", str(tmp_path / "feeder.scd")]) == 0
    assert (tmp_path / "feeder.scd").read_text() == printed
    model = load_scl(tmp_path / "feeder.scd")
    assert model.ied_name == "FEEDER7"


def test_readme_commands_on_the_demo_scl(tmp_path):
    scd = tmp_path / "feeder.scd"
    main(["iec61850", "demo-scl", "-o", str(scd)])
    model = load_scl(scd)

    async def scenario():
        async with memory_served(scd) as (server, (client,), _):
            ied = await client.associate(server.jid)
            ref, fc, shown = README_READ
            vt = type_from_model(model.find(ref, fc), fc)
            assert format_value(await ied.get_data_values(ref, fc), vt) == shown
            ref, fc, text = README_WRITE
            vt = type_from_model(model.find(ref, fc), fc)
            await ied.set_data_values(ref, fc, parse_value(text, vt))
            assert format_value(await ied.get_data_values(ref, fc), vt) == text

    run(scenario(), 20)


def test_readme_points_to_the_demo_scl():
    readme = open(os.path.join(os.path.dirname(__file__), "..", "..", "README.md")).read()
    assert "gridbind iec61850 demo-scl > feeder.scd" in readme
    ref, fc, shown = README_READ
    assert f"read $C {ref} {fc}" in readme and f"# {shown}" in readme
    ref, fc, text = README_WRITE
    assert f"write $C {ref} {fc} '{text}'" in readme


@pytest.mark.prosody
@pytest.mark.timeout(60)
def test_devserver_makes_reused_password_files_private(tmp_path):
    require(prosody_available(), "Prosody (apt-get install prosody)")
    home = tmp_path / "xmpp"
    home.mkdir()
    old = home / "ied.password"
    old.write_text("left from an earlier run\n")
    old.chmod(0o644)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gridbind", "iec61850", "devserver", "--accounts", "ied,ops",
         "--dir", str(home)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        for line in proc.stdout:
            if "Ctrl-C stops the server" in line:
                break
        for name in ("ied.password", "ops.password"):
            assert stat.S_IMODE((home / name).stat().st_mode) == 0o600, name
        assert old.read_text() != "left from an earlier run\n"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=15)


def test_readme_shell_example_on_the_demo_scl(tmp_path):
    readme = open(os.path.join(os.path.dirname(__file__), "..", "..", "README.md")).read()
    assert "sg setval FEEDER7MEAS/OCPTOC1.OpDlTmms.setVal 77" in readme
    scd = tmp_path / "feeder.scd"
    main(["iec61850", "demo-scl", "-o", str(scd)])

    async def scenario():
        async with memory_served(scd) as (server, (client,), _):
            ied = await client.associate(server.jid)
            members = [
                ("FEEDER7CTRL/XCBR1.Pos.stVal", "ST"),
                ("FEEDER7MEAS/MMXU1.TotW.mag.f", "MX"),
            ]
            await ied.create_data_set("@mine", members)
            assert len(await ied.get_data_set_values("@mine")) == 2
            await ied.select_edit_sg("FEEDER7MEAS", 2)
            await ied.set_edit_sg_value("FEEDER7MEAS/OCPTOC1.OpDlTmms.setVal", 77)
            await ied.confirm_edit_sg_values("FEEDER7MEAS")
            await ied.select_edit_sg("FEEDER7MEAS", 2)
            assert await ied.get_edit_sg_value("FEEDER7MEAS/OCPTOC1.OpDlTmms.setVal") == 77

    run(scenario(), 20)
