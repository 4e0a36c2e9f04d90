"""Run time needs no generator: every runtime and generated module imports without gridbind.codegen.

Each check runs in a fresh interpreter whose import system refuses ``gridbind.codegen`` and the
codegen / test extras (jinja2, PyYAML, black, hypothesis), so an import that slips back in at
module level fails here, naming the module that pulled it.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
import textwrap

import gridbind
import gridbind.generated

BLOCKED = ("gridbind.codegen", "jinja2", "yaml", "black", "hypothesis")

# Installs a meta-path finder that raises for BLOCKED, then imports each module named on argv.
PROBE = textwrap.dedent("""
    import importlib, json, sys, traceback

    BLOCKED = {blocked!r}

    class Refuse:
        def find_spec(self, name, path=None, target=None):
            if any(name == b or name.startswith(b + ".") for b in BLOCKED):
                raise ImportError(f"{{name}} is blocked: run time must not need it", name=name)
            return None

    sys.meta_path.insert(0, Refuse())
    failed = {{}}
    for module in sys.argv[1:]:
        try:
            importlib.import_module(module)
        except BaseException:
            failed[module] = traceback.format_exc(limit=-3)
    leaked = sorted(m for m in sys.modules if any(m == b or m.startswith(b + ".") for b in BLOCKED))
    print(json.dumps({{"failed": failed, "leaked": leaked}}))
    """).format(blocked=BLOCKED)


def _modules(package) -> list[str]:
    names = [package.__name__]
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        # __main__ runs the command when imported; test_package.py runs it as python -m gridbind
        if info.name.startswith("gridbind.codegen") or info.name.endswith(".__main__"):
            continue
        names.append(info.name)
    return names


def _probe(modules: list[str]) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, *modules],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_every_runtime_and_generated_module_imports_without_codegen() -> None:
    modules = _modules(gridbind) + _modules(gridbind.generated)
    # the walk must see the whole runtime, not a partial install
    assert "gridbind.sttp.ieee2664.subscriber" in modules
    assert "gridbind.iec61850.client" in modules
    assert "gridbind.generated.sttp.ieee2664" in modules
    result = _probe(modules)
    assert result["failed"] == {}, "\n".join(result["failed"].values())
    assert result["leaked"] == []


def test_the_probe_catches_a_codegen_import() -> None:
    # the guard itself must bite: importing the generator is refused
    result = _probe(["gridbind.codegen.pipeline"])
    assert list(result["failed"]) == ["gridbind.codegen.pipeline"]
    assert "is blocked" in result["failed"]["gridbind.codegen.pipeline"]


def _run_cli(*argv: str) -> subprocess.CompletedProcess[str]:
    script = PROBE.replace("for module in sys.argv[1:]:", "for module in ():")
    script += f"\nimport gridbind.cli\nsys.exit(gridbind.cli.main({list(argv)!r}))\n"
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )


def test_command_line_works_without_codegen() -> None:
    out = _run_cli("--help")
    assert out.returncode == 0, out.stderr
    listing = out.stdout.split("COMMAND\n", 1)[1].split("options:", 1)[0]
    commands = {line.split()[0] for line in listing.splitlines() if line.startswith("    ")}
    assert "codegen" not in commands
    assert {"sttp", "iec61850", "demo"} <= commands


def test_demo_codegen_part_says_what_is_missing() -> None:
    out = _run_cli("demo", "--codegen")
    assert out.returncode != 0
    assert "pip install 'gridbind[codegen]'" in out.stderr
