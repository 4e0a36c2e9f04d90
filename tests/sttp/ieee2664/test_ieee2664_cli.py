"""``gridbind sttp publish|subscribe --profile ieee2664`` end to end, in subprocesses."""

from __future__ import annotations

import csv
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gridbind.cli import main

PYTHON = sys.executable


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _publisher(*extra: str) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    process = subprocess.Popen(
        [PYTHON, "-m", "gridbind", "sttp", "publish", "--port", str(port), "--stats", "0", *extra],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    line = process.stderr.readline()  # "publishing N signals on host:port" once listening
    assert "publishing" in line, line
    return process, port


@pytest.mark.timeout(60)
def test_publish_subscribe_csv_then_replay_csv(tmp_path: Path, capsys):
    first, port = _publisher("--signals", "60", "--rate", "30", "--seconds", "20")
    out = tmp_path / "freq.csv"
    try:
        status = main(
            [
                "sttp",
                "subscribe",
                "--port",
                str(port),
                "--filter",
                "FILTER ActiveMeasurements WHERE SignalType='FREQ'",
                "--output",
                "csv",
                "--out",
                str(out),
                "--count",
                "60",
                "--seconds",
                "15",
                "--stats",
                "0",
            ]
        )
    finally:
        first.terminate()
        first.wait(10)
    assert status == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 60
    assert len({row["signal_id"] for row in rows}) == 6  # one FREQ per 10-signal PMU
    assert "received 60 measurements" in capsys.readouterr().err

    replay, port = _publisher(
        "--csv", str(out), "--rate", "200", "--no-compression", "--wait-subscribers", "1"
    )
    try:
        result = subprocess.run(
            [
                PYTHON,
                "-m",
                "gridbind",
                "sttp",
                "subscribe",
                "--port",
                str(port),
                "--output",
                "jsonl",
                "--count",
                "60",
                "--seconds",
                "15",
                "--stats",
                "0",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
    finally:
        replay.wait(20)
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    got = {(d["signal_id"], d["timestamp"], d["value"]) for d in lines}
    want = {(r["signal_id"], int(r["timestamp"]), float(r["value"])) for r in rows}
    assert got == want


def test_draft_profile_dispatch_reports_missing_runner(monkeypatch, capsys):
    import importlib

    real = importlib.import_module

    def fake(name: str, *args, **kwargs):
        if name == "gridbind.sttp.draft.cli":
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(importlib, "import_module", fake)
    assert main(["sttp", "subscribe", "--profile", "draft-0.8", "--count", "1"]) == 2
    assert "draft-0.8" in capsys.readouterr().err


@pytest.mark.timeout(20)
def test_subscribe_reports_unreachable_publisher(capsys):
    port = _free_port()
    started = time.monotonic()
    status = main(["sttp", "subscribe", "--port", str(port), "--seconds", "2", "--stats", "0"])
    # the first connection attempt's failure is reported at once (api.py: start() raises;
    # reconnection applies only after a first success)
    assert status != 0
    assert time.monotonic() - started < 2
    assert f"connect to 127.0.0.1:{port} failed" in capsys.readouterr().err


@pytest.mark.timeout(60)
def test_reverse_connection_from_the_command_line():
    port = _free_port()
    subscriber = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "gridbind",
            "sttp",
            "subscribe",
            "--listen",
            "--port",
            str(port),
            "--output",
            "jsonl",
            "--count",
            "20",
            "--seconds",
            "30",
            "--stats",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.0)
    publisher = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "gridbind",
            "sttp",
            "publish",
            "--dial",
            f"127.0.0.1:{port}",
            "--signals",
            "10",
            "--seconds",
            "20",
            "--stats",
            "0",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = subscriber.communicate(timeout=40)
    finally:
        publisher.terminate()
        publisher.wait(10)
    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) == 20, err
