"""``gridbind sttp`` options of both profiles as real processes on 127.0.0.1: reverse connections, ids,
compression choice, TLS (validation, name relaxation) and the secured UDP data channel."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from gridbind.sttp.draft.synthetic import SyntheticPmu
from gridbind.sttp.ieee2664.metadata import synthetic_pmu_metadata

from draft_pki import pki_fixture  # noqa: F401 - provides the pki fixture

DRAFT = ("--profile", "draft-0.8")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def gridbind(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "gridbind", "sttp", *args],
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def run_gridbind(*args: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gridbind", "sttp", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def first_line(process: subprocess.Popen, wanted: str) -> str:
    line = process.stderr.readline()
    assert wanted in line, line
    return line


def finish(subscriber: subprocess.Popen, *others: subprocess.Popen) -> str:
    try:
        _, err = subscriber.communicate(timeout=30)
    finally:
        for other in others:
            other.terminate()
            other.wait(10)
    return err


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.timeout(60)
def test_draft_reverse_connection_with_ids_and_deflate(tmp_path):
    port = free_port()
    ids = SyntheticPmu(20).ids
    chosen = {str(ids[0]), str(ids[3])}
    out = tmp_path / "points.jsonl"
    subscriber = gridbind(
        "subscribe",
        *DRAFT,
        "--listen",
        "--port",
        str(port),
        "--ids",
        ",".join(sorted(chosen)),
        "--compression",
        "deflate",
        "--count",
        "120",
        "--output",
        "jsonl",
        "--out",
        str(out),
        "--seconds",
        "25",
        "--stats",
        "0",
    )
    first_line(subscriber, "waiting for the publisher on")
    publisher = gridbind(
        "publish",
        *DRAFT,
        "--dial",
        f"127.0.0.1:{port}",
        "--signals",
        "20",
        "--rate",
        "30",
        "--compression",
        "deflate",
        "--seconds",
        "25",
        "--stats",
        "0",
    )
    err = finish(subscriber, publisher)
    assert subscriber.returncode == 0, err
    assert "stateful DEFLATE" in err
    got = rows(out)
    assert len(got) == 120
    assert {row["signal_id"] for row in got} == chosen


@pytest.mark.timeout(60)
def test_draft_tls_and_secured_udp_from_the_command_line(tmp_path, pki):
    port = free_port()
    publisher = gridbind(
        "publish",
        *DRAFT,
        "--port",
        str(port),
        "--signals",
        "20",
        "--tls-cert",
        str(pki.publisher.cert),
        "--tls-key",
        str(pki.publisher.key),
        "--tls-ca",
        str(pki.ca),
        "--seconds",
        "40",
        "--stats",
        "0",
    )
    first_line(publisher, "publishing on")
    out = tmp_path / "points.jsonl"
    subscriber = gridbind(
        "subscribe",
        *DRAFT,
        "--port",
        str(port),
        "--tls-ca",
        str(pki.ca),
        "--tls-cert",
        str(pki.subscriber.cert),
        "--tls-key",
        str(pki.subscriber.key),
        "--udp",
        "--count",
        "300",
        "--output",
        "jsonl",
        "--out",
        str(out),
        "--seconds",
        "25",
        "--stats",
        "0",
    )
    err = finish(subscriber, publisher)
    assert subscriber.returncode == 0, err
    assert "UDP data channel secured (AES-256)" in err
    assert "UDP port none" not in err
    assert len(rows(out)) == 300


@pytest.mark.timeout(60)
def test_draft_tls_name_mismatch_refused_unless_relaxed(pki):
    port = free_port()
    publisher = gridbind(
        "publish",
        *DRAFT,
        "--port",
        str(port),
        "--signals",
        "10",
        "--tls-cert",
        str(pki.wrong_name.cert),
        "--tls-key",
        str(pki.wrong_name.key),
        "--seconds",
        "40",
        "--stats",
        "0",
    )
    try:
        first_line(publisher, "publishing on")
        common = [*DRAFT, "--port", str(port), "--tls-ca", str(pki.ca), "--stats", "0"]
        strict = run_gridbind("subscribe", *common, "--seconds", "10", timeout=20)
        assert strict.returncode == 1 and "error:" in strict.stderr
        relaxed = run_gridbind(
            "subscribe",
            *common,
            "--tls-no-hostname-check",
            "--count",
            "30",
            "--seconds",
            "15",
            timeout=25,
        )
    finally:
        publisher.terminate()
        publisher.wait(10)
    assert relaxed.returncode == 0, relaxed.stderr
    assert "name mismatch tolerated" in relaxed.stderr
    assert "received 30 measurements" in relaxed.stderr


@pytest.mark.timeout(30)
def test_options_a_profile_does_not_have_are_refused():
    draft = run_gridbind("publish", *DRAFT, "--udp-encrypt", timeout=20)
    assert draft.returncode == 2 and "SecureDataChannel" in draft.stderr
    deployed = run_gridbind("subscribe", "--compression", "deflate", timeout=20)
    assert deployed.returncode == 2 and "DEFLATE is a draft-0.8" in deployed.stderr


@pytest.mark.timeout(60)
def test_ieee2664_ids_select_signals(tmp_path):
    port = free_port()
    _, ids = synthetic_pmu_metadata(20)
    chosen = {str(ids[1]), str(ids[7])}
    publisher = gridbind(
        "publish", "--port", str(port), "--signals", "20", "--seconds", "40", "--stats", "0"
    )
    first_line(publisher, "publishing")
    out = tmp_path / "points.jsonl"
    subscriber = gridbind(
        "subscribe",
        "--port",
        str(port),
        "--ids",
        ",".join(sorted(chosen)),
        "--count",
        "60",
        "--output",
        "jsonl",
        "--out",
        str(out),
        "--seconds",
        "25",
        "--stats",
        "0",
    )
    err = finish(subscriber, publisher)
    assert subscriber.returncode == 0, err
    got = rows(out)
    assert len(got) == 60
    assert {row["signal_id"] for row in got} == chosen


@pytest.mark.timeout(60)
def test_ieee2664_tls_and_encrypted_udp_from_the_command_line(tmp_path, pki):
    port = free_port()
    publisher = gridbind(
        "publish",
        "--port",
        str(port),
        "--signals",
        "50",
        "--tls-cert",
        str(pki.publisher.cert),
        "--tls-key",
        str(pki.publisher.key),
        "--udp-encrypt",
        "--key-rotation",
        "1",
        "--seconds",
        "40",
        "--stats",
        "0",
    )
    first_line(publisher, "publishing")
    out = tmp_path / "points.jsonl"
    subscriber = gridbind(
        "subscribe",
        "--port",
        str(port),
        "--tls-ca",
        str(pki.ca),
        "--udp",
        "--count",
        "4500",
        "--output",
        "jsonl",
        "--out",
        str(out),
        "--seconds",
        "25",
        "--stats",
        "0",
    )
    err = finish(subscriber, publisher)
    assert subscriber.returncode == 0, err
    assert "received 4500 measurements" in err
    assert "UDP data channel:" in err and "AES-encrypted" in err
    assert len(rows(out)) == 4500


@pytest.mark.timeout(60)
def test_ieee2664_untrusted_publisher_certificate_is_refused(pki):
    port = free_port()
    publisher = gridbind(
        "publish",
        "--port",
        str(port),
        "--signals",
        "10",
        "--tls-cert",
        str(pki.intruder.cert),
        "--tls-key",
        str(pki.intruder.key),
        "--seconds",
        "30",
        "--stats",
        "0",
    )
    try:
        first_line(publisher, "publishing")
        done = run_gridbind(
            "subscribe",
            "--port",
            str(port),
            "--tls-ca",
            str(pki.ca),
            "--seconds",
            "4",
            "--stats",
            "0",
            timeout=20,
        )
    finally:
        publisher.terminate()
        publisher.wait(10)
    # the first connection attempt's failure is reported (no retrying for ever)
    assert done.returncode != 0 and "error: connect to" in done.stderr, done.stderr
    assert "CERTIFICATE_VERIFY_FAILED" in done.stderr, done.stderr


@pytest.mark.timeout(60)
def test_ieee2664_throttled_subscription(tmp_path):
    port = free_port()
    publisher = gridbind(
        "publish", "--port", str(port), "--signals", "20", "--seconds", "40", "--stats", "0"
    )
    first_line(publisher, "publishing")
    out = tmp_path / "points.jsonl"
    subscriber = gridbind(
        "subscribe",
        "--port",
        str(port),
        "--throttle",
        "0.5",
        "--output",
        "jsonl",
        "--out",
        str(out),
        "--seconds",
        "4",
        "--stats",
        "0",
    )
    err = finish(subscriber, publisher)
    assert subscriber.returncode == 0, err
    got = rows(out)
    # unthrottled, 4 s would bring 20 signals x 30 frames/s x 4 s = 2400 measurements
    assert 20 <= len(got) <= 20 * 10, len(got)
    assert len({row["timestamp"] for row in got}) <= 10


@pytest.mark.timeout(60)
def test_ieee2664_expected_server_name_and_lower_tls_minimum(pki):
    port = free_port()
    publisher = gridbind(
        "publish",
        "--port",
        str(port),
        "--signals",
        "10",
        "--tls-cert",
        str(pki.wrong_name.cert),  # names 192.0.2.7 only, as a publisher behind NAT might
        "--tls-key",
        str(pki.wrong_name.key),
        "--seconds",
        "40",
        "--stats",
        "0",
    )
    try:
        first_line(publisher, "publishing")
        done = run_gridbind(
            "subscribe",
            "--port",
            str(port),
            "--tls-ca",
            str(pki.ca),
            "--tls-server-name",
            "192.0.2.7",
            "--tls-min",
            "1.2",
            "--count",
            "30",
            "--seconds",
            "15",
            "--stats",
            "0",
            timeout=25,
        )
    finally:
        publisher.terminate()
        publisher.wait(10)
    assert done.returncode == 0, done.stderr
    assert "received 30 measurements" in done.stderr
    assert "TLS minimum version TLSv1_2 is below the latest" in done.stderr
