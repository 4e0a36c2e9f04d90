"""The exception hierarchy: one root, one branch per package, local and remote told apart."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import gridbind
from gridbind import GridbindError, LocalError, RemoteError
from gridbind.c37118 import C37118Error
from gridbind.codegen import CodegenError
from gridbind.iec61850 import Iec61850Error
from gridbind.sttp import SttpError

BRANCHES = {
    "gridbind.sttp": SttpError,
    "gridbind.iec61850": Iec61850Error,
    "gridbind.c37118": C37118Error,
    "gridbind.codegen": CodegenError,
}


def _public_exceptions() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    names = ["gridbind"]
    # gridbind.codegen and gridbind.generated come from other folders: walk each package's path.
    for package in ("gridbind", "gridbind.codegen", "gridbind.generated"):
        path = importlib.import_module(package).__path__
        names += [info.name for info in pkgutil.walk_packages(path, package + ".")]
    for module_name in names:
        if module_name.endswith("__main__"):
            continue  # running it is the CLI
        module = importlib.import_module(module_name)
        for name, obj in vars(module).items():
            if (
                inspect.isclass(obj)
                and issubclass(obj, BaseException)
                and obj.__module__.startswith("gridbind.")
                and not name.startswith("_")
                and not obj.__name__.startswith("_")
            ):
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return found


#: Control-flow signals of the generated fast XER path: gridbind.iec61850.fastxer catches them and
#: falls back to the full codec, so they never reach a caller.
INTERNAL = {
    "gridbind.generated.iec61850_8_2.fastxer.NotCovered",
    "gridbind.generated.iec61850_8_2.fastxer.TooDeep",
}
#: The run-time support of the generated STTP modules (leaving gridbind.codegen for the runtime):
#: what it raises is about STTP bytes, so it is on the STTP branch wherever it lives.
STTP_SUPPORT = {"WireError", "ConstraintError"}

EXCEPTIONS = {k: v for k, v in _public_exceptions().items() if k not in INTERNAL}


def test_the_walk_finds_the_package_exceptions() -> None:
    # The walk must see the classes of every package, or the test below proves nothing.
    assert len(EXCEPTIONS) >= 60
    for branch in BRANCHES.values():
        assert sum(issubclass(cls, branch) for cls in EXCEPTIONS.values()) >= 2


@pytest.mark.parametrize("name", sorted(EXCEPTIONS))
def test_every_public_exception_is_a_gridbind_error(name: str) -> None:
    cls = EXCEPTIONS[name]
    assert issubclass(cls, GridbindError), cls.__mro__
    branch = next((b for prefix, b in BRANCHES.items() if name.startswith(prefix + ".")), None)
    if cls.__name__ in STTP_SUPPORT:
        branch = SttpError
    if cls not in (GridbindError, LocalError, RemoteError):
        assert branch is not None and issubclass(cls, branch), name
    assert not (issubclass(cls, LocalError) and issubclass(cls, RemoteError)), name


def test_the_two_metadata_errors_are_one_class() -> None:
    from gridbind.sttp import MetadataError
    from gridbind.sttp.draft import metadata as draft_metadata
    from gridbind.sttp.ieee2664 import metadata as ieee_metadata

    assert draft_metadata.MetadataError is ieee_metadata.MetadataError is MetadataError
    assert issubclass(MetadataError, ValueError)  # as before the root existed


def test_older_builtin_bases_are_kept() -> None:
    from gridbind.iec61850.codec import CodecError
    from gridbind.sttp.draft.transport import CommandError, SessionError

    assert issubclass(CodecError, ValueError)
    assert issubclass(SessionError, ConnectionError)
    assert issubclass(CommandError, RuntimeError)


# ------------------------------------------------------------------ representative bad input
def test_unknown_sttp_profile() -> None:
    with pytest.raises(gridbind.sttp.InvalidArgument) as info:
        gridbind.sttp.Subscriber(profile="no-such-profile")
    assert isinstance(info.value, LocalError) and isinstance(info.value, ValueError)


def test_hostile_sttp_metadata() -> None:
    from gridbind.sttp.ieee2664.metadata import DataSet

    with pytest.raises(gridbind.sttp.MetadataError):
        DataSet.from_xml("<DataSet><unclosed>")


def test_bad_connection_string_is_the_peers_fault() -> None:
    from gridbind.sttp.ieee2664.params import SubscriptionSettings

    with pytest.raises(SttpError) as info:
        SubscriptionSettings.parse("processingInterval=soon")
    assert isinstance(info.value, RemoteError)


def test_corrupt_tssc_block() -> None:
    from gridbind.sttp.tssc import TsscDecoder

    with pytest.raises(SttpError) as info:
        TsscDecoder(implementation="python").decode_payload(b"\x55\x00\x00\xff\xff")
    assert isinstance(info.value, RemoteError)


def test_8_2_codec_refuses_malformed_xml_as_remote() -> None:
    from gridbind.iec61850 import codec

    with pytest.raises(Iec61850Error) as info:
        codec.decode(b"<MMSpdu><unclosed")
    assert isinstance(info.value, RemoteError) and isinstance(info.value, ValueError)


def test_bad_object_reference() -> None:
    from gridbind.iec61850.references import parse_reference

    with pytest.raises(Iec61850Error):
        parse_reference("no slash at all")


def test_client_reference_without_fc_is_local() -> None:
    from gridbind.iec61850.client import mms_name

    with pytest.raises(gridbind.iec61850.InvalidArgument) as info:
        mms_name("LD0/LLN0.Mod.stVal")
    assert isinstance(info.value, LocalError)


def test_c37118_frame_with_bad_crc_is_remote() -> None:
    from gridbind.c37118.frames import HeaderFrame, Stamp, build_header, parse_header

    frame = build_header(HeaderFrame(Stamp(7), "station A"))
    assert parse_header(frame).text == "station A"
    corrupt = frame[:-1] + bytes([frame[-1] ^ 0xFF])
    with pytest.raises(C37118Error, match="CRC") as info:
        parse_header(corrupt)
    assert isinstance(info.value, RemoteError)


def test_codegen_spec_error_is_local() -> None:
    from gridbind.codegen.errors import SpecError

    assert issubclass(SpecError, CodegenError) and issubclass(SpecError, LocalError)


@pytest.mark.timeout(60)
def test_readme_errors_example_runs() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme[readme.index("## Errors") :]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "no python example under ## Errors"
    done = subprocess.run(
        [sys.executable, "-c", match.group(1)], capture_output=True, text=True, timeout=45
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("MalformedXml from the peer:"), done.stdout


def test_time_constraint_from_the_peer_is_remote() -> None:
    from gridbind.sttp.ieee2664.publisher import parse_time_constraint

    with pytest.raises(SttpError) as info:
        parse_time_constraint("next tuesday-ish")
    assert isinstance(info.value, RemoteError) and isinstance(info.value, ValueError)


def test_naive_e2e_time_is_a_local_mistake() -> None:
    from datetime import datetime

    from gridbind.iec61850.e2e.tokens import to_posix

    with pytest.raises(gridbind.iec61850.InvalidArgument):
        to_posix(datetime(2026, 1, 1))
