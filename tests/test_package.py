"""The one-namespace layout and the wheel.

runtime/, codegen/ and generated/ all import as gridbind.*; the wheel carries the generated code
and the command, and installed WITHOUT extras into a clean virtualenv it runs an STTP
publisher/subscriber pair and the 8-2 codec, client and server with neither the generator's
extra (jinja2, PyYAML, black) nor the test extra present.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

import gridbind
import gridbind.codegen
import gridbind.generated
from gridbind.sttp import UNIX_EPOCH_TICKS, ticks_from_datetime, ticks_to_datetime

from conftest import require

ROOT = Path(__file__).resolve().parents[1]


def test_namespace_maps_source_roots() -> None:
    # the strict editable install imports through a link tree (build/__editable__.*) whose
    # entries point at the three source folders
    for package, source in (
        (gridbind, ROOT / "runtime"),
        (gridbind.codegen, ROOT / "codegen"),
        (gridbind.generated, ROOT / "generated"),
    ):
        assert Path(package.__file__).resolve() == source / "__init__.py"


def test_python_dash_m_runs_the_command() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "gridbind", "--help"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert "usage: gridbind" in out.stdout


def test_ticks_epoch_and_round_trip() -> None:
    assert ticks_from_datetime(datetime(1970, 1, 1, tzinfo=UTC)) == UNIX_EPOCH_TICKS
    moment = datetime(2026, 11, 22, 7, 45, 1, 123456, tzinfo=UTC)
    assert ticks_to_datetime(ticks_from_datetime(moment)) == moment


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built (without dependencies) from a copy of the checkout."""
    tmp = tmp_path_factory.mktemp("wheel")
    # build from a copy: an in-tree build would leave build/ and *.egg-info in the checkout
    source = tmp / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.so")
    for folder in ("runtime", "codegen", "generated"):
        shutil.copytree(ROOT / folder, source / folder, ignore=ignore)
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copyfile(ROOT / name, source / name)
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-q", "-w", str(tmp)],
        capture_output=True,
        text=True,
        timeout=200,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    (built,) = tmp.glob("gridbind-*.whl")
    return built


@pytest.mark.timeout(300)
def test_wheel_carries_generated_code_and_the_command(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "gridbind/cli.py" in names
    assert "gridbind/generated/__init__.py" in names
    assert "gridbind/codegen/templates/sttp_module.py.j2" in names
    assert "gridbind/sttp/encoding.py" in names
    assert "gridbind/sttp/codecsupport.py" in names
    assert not any(name.startswith(("runtime/", "generated/", "tests/")) for name in names)
    # code only tests and benchmarks use stays out of the library (tests/ and bench/ hold it)
    assert not any(name.startswith("gridbind/") and "strateg" in name for name in names)
    assert "gridbind/sttp/draft/bench.py" not in names
    assert "gridbind/iec61850/ejabberd.py" not in names
    generated = ROOT / "generated"
    sttp_modules = sorted(generated.glob("sttp/*.py"))
    xsds = sorted(generated.glob("iec61850_8_2/xsd/*.xsd"))
    assert {p.name for p in sttp_modules} >= {"__init__.py", "draft_0_8.py", "templates.py"}
    assert xsds, "no XSD set in generated/iec61850_8_2/xsd"
    for path in sttp_modules + xsds + [generated / "iec61850_8_2" / "__init__.py"]:
        assert f"gridbind/generated/{path.relative_to(generated).as_posix()}" in names


def test_base_dependencies_leave_out_the_generator_and_the_tests(wheel: Path) -> None:
    metadata = zipfile.ZipFile(wheel).read(
        next(n for n in zipfile.ZipFile(wheel).namelist() if n.endswith(".dist-info/METADATA"))
    )
    base = [
        line.split(":", 1)[1].strip().lower()
        for line in metadata.decode().splitlines()
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    ]
    assert base, "the wheel declares no dependency"
    for name in ("jinja2", "pyyaml", "black", "hypothesis", "pytest"):
        assert not any(req.startswith(name) for req in base), (name, base)
    assert not any("cli" in req for req in base if req.startswith("xsdata")), base


#: Run inside the clean virtualenv: nothing but the wheel and its base dependencies there.
CLEAN_CHECK = """\
import asyncio
import importlib.util
import sys
from pathlib import Path

venv = Path(sys.argv[1]).resolve()
for extra in ("jinja2", "yaml", "black", "hypothesis", "pytest"):
    assert importlib.util.find_spec(extra) is None, f"{extra} is installed without extras"

import gridbind
import gridbind.generated.sttp.draft_0_8 as draft
import gridbind.iec61850.client as client
import gridbind.iec61850.codec as codec
import gridbind.iec61850.server as server
from gridbind.sttp import ticks_now
from gridbind.sttp.ieee2664 import PmuSource, Publisher, Subscriber, synthetic_pmu_metadata

for module in (gridbind, draft, codec, client, server):
    assert venv in Path(module.__file__).resolve().parents, module.__file__
assert venv in codec.schema_dir().parents, codec.schema_dir()
codec.Codec()  # compiles the XSD set installed from the wheel
assert client.Client and server.IedServer
version = draft.Version(major=1, minor=2)
assert draft.Version.parse(version.build()) == version


async def pair():
    metadata, signals = synthetic_pmu_metadata(20)
    frames = list(PmuSource(signals, 30, start_ticks=ticks_now(), flag_every=7).frames(5))
    sent = [(m.signal_id, m.value, m.timestamp, m.flags) for frame in frames for m in frame]
    received = []
    async with Publisher(metadata, host="127.0.0.1", port=0) as publisher:
        async with Subscriber(
            "127.0.0.1",
            port=publisher.port,
            filter_expression="FILTER ActiveMeasurements WHERE SignalType <> 'NONE'",
            auto_reconnect=False,
        ) as subscriber:
            await subscriber.wait_subscribed(10)
            for frame in frames:
                publisher.publish(frame)
                await publisher.drain()

            async def gather():
                async for batch in subscriber.batches():
                    received.extend((m.signal_id, m.value, m.timestamp, m.flags) for m in batch)
                    if len(received) >= len(sent):
                        return

            await asyncio.wait_for(gather(), 20)
    assert received == sent, (len(received), len(sent))
    return len(received)


print(f"clean install works: {asyncio.run(pair())} measurements exact")
"""


@pytest.mark.timeout(120)
def test_wheel_without_extras_runs_in_a_clean_virtualenv(wheel: Path, tmp_path: Path) -> None:
    """``pip install gridbind`` (no extras) is enough for an STTP pair and the 8-2 client/IED."""
    require(
        subprocess.run([sys.executable, "-c", "import venv, ensurepip"]).returncode == 0,
        "python3-venv (venv with ensurepip)",
    )
    venv = tmp_path / "venv"
    # the base interpreter, not this test environment: nothing of .venv leaks into the new one
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=60)
    python = venv / "bin" / "python"
    # pip's cache is reused; the base dependencies may come from the index
    out = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    out = subprocess.run(
        [str(python), "-c", CLEAN_CHECK, str(venv)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
    )
    assert out.returncode == 0, out.stdout + out.stderr[-3000:]
    assert "clean install works: 100 measurements exact" in out.stdout

    # the generator is shipped, but says which extra it needs instead of a traceback
    out = subprocess.run(
        [str(venv / "bin" / "gridbind"), "codegen", "all", "--check", "--root", str(ROOT)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
    )
    assert out.returncode == 2, out.stdout + out.stderr
    assert "pip install 'gridbind[codegen]'" in out.stderr


@pytest.mark.timeout(60)
def test_mypy_resolves_the_three_source_folders(tmp_path: Path) -> None:
    """Type checkers follow the editable install (.ci/setup: editable_mode=strict)."""
    mypy = shutil.which("mypy", path=str(Path(sys.executable).parent))
    require(mypy is not None, "mypy (the test extra)")
    modules = ["gridbind.sttp.measurement", "gridbind.codegen.errors", "gridbind.generated"]
    # a module that does not exist is the control: the check must be able to fail
    code = "import " + ", ".join(modules + ["gridbind.nowhere"])
    out = subprocess.run(
        [mypy, "--follow-imports=silent", "--cache-dir", str(tmp_path), "-c", code],
        capture_output=True,
        text=True,
        timeout=50,
        cwd=tmp_path,
    )
    missing = [line for line in out.stdout.splitlines() if "import-not-found" in line]
    assert len(missing) == 1 and '"gridbind.nowhere"' in missing[0], out.stdout + out.stderr
