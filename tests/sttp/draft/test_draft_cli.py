"""``gridbind sttp publish|subscribe --profile draft-0.8`` as real processes on 127.0.0.1."""

from __future__ import annotations

import csv
import socket
import subprocess
import sys
import time

import pytest

from gridbind.sttp.draft.synthetic import SyntheticPmu


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.timeout(40)
def test_cli_publish_and_subscribe(tmp_path):
    port = free_port()
    common = ["--profile", "draft-0.8", "--host", "127.0.0.1", "--port", str(port)]
    publisher = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gridbind",
            "sttp",
            "publish",
            *common,
            "--signals",
            "60",
            "--rate",
            "30",
            "--seconds",
            "20",
            "--stats",
            "0",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = publisher.stderr.readline()
        assert "publishing on" in line, line
        out = tmp_path / "points.csv"
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "gridbind",
                "sttp",
                "subscribe",
                *common,
                "--count",
                "900",
                "--output",
                "csv",
                "--out",
                str(out),
                "--seconds",
                "15",
                "--stats",
                "0.2",
                "--filter",
                "SELECT PointID FROM DataPoint WHERE [Signal Type] = 'FREQ'",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
    finally:
        publisher.terminate()
        publisher.wait(10)
    assert done.returncode == 0, done.stderr
    assert "received 900 measurements" in done.stderr
    assert "bytes/measurement" in done.stderr
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 900
    pmu = SyntheticPmu(60)
    freq = {str(pmu.ids[i]) for i in range(60) if pmu.kind(i) == "FREQ"}
    assert {row["signal_id"] for row in rows} == freq
    assert all(59.9 < float(row["value"]) < 60.1 for row in rows)


@pytest.mark.timeout(20)
def test_cli_subscribe_reports_a_refused_connection():
    port = free_port()
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "gridbind",
            "sttp",
            "subscribe",
            "--profile",
            "draft-0.8",
            "--port",
            str(port),
            "--seconds",
            "5",
        ],
        capture_output=True,
        text=True,
        timeout=15,
    )
    assert done.returncode == 1 and "error:" in done.stderr
    assert time.monotonic() - started < 10


@pytest.mark.timeout(40)
def test_cli_publishes_a_csv_file(tmp_path):
    import json
    import uuid

    signals = [uuid.uuid4() for _ in range(5)]
    source = tmp_path / "source.csv"
    with source.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["signal_id", "timestamp", "value", "flags"])
        for frame in range(10):
            for k, signal in enumerate(signals):
                writer.writerow([signal, 638_000_000_000_000_000 + frame, frame * 10 + k / 4, k])
    port = free_port()
    common = ["--profile", "draft-0.8", "--port", str(port)]
    publisher = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gridbind",
            "sttp",
            "publish",
            *common,
            "--csv",
            str(source),
            "--rate",
            "20",
            "--wait-subscribers",
            "1",
            "--stats",
            "0",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert "publishing on" in publisher.stderr.readline()
        out = tmp_path / "out.jsonl"
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "gridbind",
                "sttp",
                "subscribe",
                *common,
                "--count",
                "50",
                "--output",
                "jsonl",
                "--out",
                str(out),
                "--seconds",
                "15",
                "--stats",
                "0",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert publisher.wait(15) == 0
    finally:
        publisher.kill()
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    got = sorted((r["timestamp"], r["signal_id"], r["value"], r["flags"]) for r in rows)
    expected = sorted(
        (638_000_000_000_000_000 + f, str(s), f * 10 + k / 4, k)
        for f in range(10)
        for k, s in enumerate(signals)
    )
    assert got == expected
