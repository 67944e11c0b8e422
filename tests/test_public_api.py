"""The public API for plugin authors, ``python -m orchestrator``, and the import cost of the
commands that must stay fast (no framework, MLflow or Optuna; CPU time, not wall time)."""

from __future__ import annotations

import importlib
import json
import resource
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from plugin_helpers import ORCHESTRATOR

import orchestrator
from orchestrator.plugins import hookspecs

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = sorted(str(p) for p in (ROOT / "experiments").glob("*.yaml"))
HEAVY = ("torch", "tensorflow", "keras", "jax", "mlflow", "optuna")

# command -> (arguments, CPU seconds it may take: the targets of issue 9)
COMMANDS = {
    "help": (["--help"], 0.5),
    "plugins": (["plugins"], 1.0),
    "validate": (["validate", *EXPERIMENTS], 1.5),
}

# Runs ``python -m orchestrator ARGS`` and, at exit, writes which heavy modules it imported.
WRAPPER = textwrap.dedent("""
    import atexit, json, runpy, sys
    out, heavy = sys.argv[1], tuple(sys.argv[2].split(","))
    atexit.register(lambda: open(out, "w").write(json.dumps(
        sorted(m for m in sys.modules if m.split(".")[0] in heavy))))
    sys.argv = ["orchestrator", *sys.argv[3:]]
    runpy.run_module("orchestrator", run_name="__main__", alter_sys=True)
""")


def test_public_names_import() -> None:
    assert len(orchestrator.__all__) == len(set(orchestrator.__all__))
    for name in orchestrator.__all__:
        assert getattr(orchestrator, name) is not None, name
    namespace: dict = {}
    exec(f"from orchestrator import {', '.join(orchestrator.__all__)}", namespace)
    assert orchestrator.PLUGIN_API_VERSION == hookspecs.PLUGIN_API_VERSION
    assert orchestrator.hookimpl is hookspecs.hookimpl
    assert issubclass(orchestrator.Backend, __import__("abc").ABC)
    with pytest.raises(AttributeError, match="no attribute 'execute'"):
        orchestrator.execute  # noqa: B018  (internal modules are not attributes)
    testing = importlib.import_module("orchestrator.testing")
    for name in testing.__all__:
        assert getattr(testing, name) is not None, name


def test_importing_orchestrator_is_light() -> None:
    code = ("import sys, json, orchestrator; "
            f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r} "
            "or m == 'numpy')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert json.loads(proc.stdout) == []


def test_python_dash_m_works_like_the_command() -> None:
    script = Path(sys.executable).with_name("orchestrator")
    assert script.exists(), "the console script is installed with the package"
    for args in (["--version"], ["--help"], ["validate", "no-such-file.yaml"]):
        by_module = subprocess.run([*ORCHESTRATOR, *args], capture_output=True, text=True)
        by_script = subprocess.run([str(script), *args], capture_output=True, text=True)
        assert by_module.returncode == by_script.returncode, args
        assert by_module.stdout == by_script.stdout, args
        assert by_module.stderr == by_script.stderr, args
    assert by_module.returncode == 2 and "no-such-file.yaml" in by_module.stderr


def _child_cpu_seconds(args: list[str]) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(args, capture_output=True, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


@pytest.fixture(scope="module")
def fast_commands(tmp_path_factory) -> dict[str, tuple[float, list[str]]]:
    """Each command run three times in a child process: the lowest CPU time (other processes
    on the machine inflate it: shared caches and cores), and the heavy modules it imported."""
    out = tmp_path_factory.mktemp("imports") / "modules.json"
    found = {}
    for name, (args, _) in COMMANDS.items():
        command = [sys.executable, "-c", WRAPPER, str(out), ",".join(HEAVY), *args]
        cpu = min(_child_cpu_seconds(command) for _ in range(3))
        found[name] = (cpu, json.loads(out.read_text()))
    return found


@pytest.mark.parametrize("command", COMMANDS)
def test_fast_commands_import_no_framework_mlflow_or_optuna(fast_commands, command) -> None:
    _, modules = fast_commands[command]
    assert modules == [], f"`orchestrator {command}` imported {modules}"


@pytest.mark.parametrize("command", COMMANDS)
def test_fast_commands_cpu_time(fast_commands, command) -> None:
    cpu, _ = fast_commands[command]
    budget = COMMANDS[command][1]
    assert cpu <= budget, f"`orchestrator {command}` took {cpu:.2f} s of CPU (budget {budget} s)"
