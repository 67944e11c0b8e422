"""Plugin discovery through real entry points: built-ins, third parties, broken plugins, switches."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from orchestrator.canonical import catalogue
from orchestrator.plugins import manager as plugin_manager
from orchestrator.plugins.registry import BackendInfo, BackendRegistry, RegistryError

ORCHESTRATOR = [sys.executable, "-m", "orchestrator"]


def install_fake_distribution(root: Path, dist: str, entry_points: dict[str, str],
                              modules: dict[str, str]) -> Path:
    """Write an installed distribution (a ``.dist-info`` with an ``entry_points.txt``) and its
    modules into ``root``: what ``pip install`` leaves behind, found by importlib.metadata."""
    root.mkdir(parents=True, exist_ok=True)
    info = root / f"{dist}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    lines = "\n".join(f"{name} = {target}" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[orchestrator]\n{lines}\n")
    for name, source in modules.items():
        (root / f"{name}.py").write_text(textwrap.dedent(source))
    return root


def run_cli(*args: str, extra_path: Path | None = None, env: dict | None = None
            ) -> subprocess.CompletedProcess:
    environ = {**os.environ, **(env or {})}
    if extra_path is not None:
        environ["PYTHONPATH"] = os.pathsep.join(
            [str(extra_path), *filter(None, [environ.get("PYTHONPATH")])])
    return subprocess.run([*ORCHESTRATOR, *args], capture_output=True, text=True, env=environ,
                          timeout=120)


BROKEN = """
raise ImportError("this plugin is broken on purpose")
"""

RAISING_HOOK = """
from orchestrator import hookimpl

@hookimpl
def orchestrator_add_backends(registry):
    raise RuntimeError("registration exploded")
"""

THIRD_PARTY = """
from orchestrator import hookimpl
from orchestrator.plugins.registry import BackendInfo

@hookimpl
def orchestrator_add_backends(registry):
    registry.add_backend(BackendInfo(
        name="mirror",
        loader="mirror_backend:MirrorBackend",
        components={"loss": ("binary_crossentropy",), "optimizer": ("sgd",),
                    "norm": ("none",), "recurrent": ("lstm",)},
        distributions=("torch",),
        summary="a third-party backend: the torch backend under another name",
    ))
"""

MIRROR_BACKEND = """
from orchestrator_torch.backend import TorchBackend

class MirrorBackend(TorchBackend):
    name = "mirror"
"""


@pytest.fixture
def plugin_dir(tmp_path: Path) -> Path:
    return install_fake_distribution(
        tmp_path / "site", "thirdparty",
        {"broken": "broken_plugin", "exploding": "exploding_plugin", "mirror": "mirror_plugin"},
        {"broken_plugin": BROKEN, "exploding_plugin": RAISING_HOOK,
         "mirror_plugin": THIRD_PARTY, "mirror_backend": MIRROR_BACKEND})


def test_builtin_backends_register_through_entry_points() -> None:
    state = plugin_manager.build()
    assert {"torch", "tensorflow"} <= set(state.backends.names())
    loaded = {name: target for name, target, _ in state.loaded}
    assert loaded["torch"] == "orchestrator_torch"
    assert loaded["tensorflow"] == "orchestrator_tensorflow"
    for name in ("torch", "tensorflow"):
        assert state.backends.info(name).missing() == {}


def test_plugins_lists_everything_fast_without_importing_frameworks() -> None:
    code = textwrap.dedent("""
        import io, json, sys, time, contextlib
        started = time.perf_counter()
        from orchestrator.cli import main
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            main(["plugins", "--json"])
        elapsed = time.perf_counter() - started
        heavy = [m for m in ("torch", "tensorflow", "keras", "mlflow", "optuna")
                 if m in sys.modules]
        print(json.dumps({"elapsed": elapsed, "heavy": heavy, "out": json.loads(out.getvalue())}))
    """)
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    wall = time.perf_counter() - started
    report = json.loads(proc.stdout)
    assert report["heavy"] == []
    assert wall < 1.0, f"`orchestrator plugins` took {wall:.2f} s of wall time"
    backends = {b["name"]: b for b in report["out"]["backends"]}
    assert set(backends) >= {"torch", "tensorflow"}
    for b in backends.values():
        assert b["missing"] == {}
        assert all(b["versions"].values()), b["versions"]
        assert {k: tuple(v) for k, v in b["components"].items()} == catalogue.all_names()


def test_plugins_table_shows_matrix() -> None:
    proc = run_cli("plugins")
    assert proc.returncode == 0, proc.stderr
    for word in ("torch", "tensorflow", "binary_focal", "nesterov", "bilstm", "layer"):
        assert word in proc.stdout


def test_broken_plugins_are_reported_and_the_others_load(plugin_dir: Path) -> None:
    proc = run_cli("plugins", "--json", extra_path=plugin_dir)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    failures = {f["name"]: f for f in report["failures"]}
    assert failures["broken"]["stage"] == "import"
    assert "broken on purpose" in failures["broken"]["error"]
    assert failures["exploding"]["stage"] == "orchestrator_add_backends"
    assert "registration exploded" in failures["exploding"]["error"]
    names = {b["name"] for b in report["backends"]}
    assert names == {"torch", "tensorflow", "mirror"}

    table = run_cli("plugins", extra_path=plugin_dir)
    assert "broken on purpose" in table.stdout
    assert "mirror" in table.stdout


def test_third_party_backend_declares_a_partial_component_list(plugin_dir: Path) -> None:
    proc = run_cli("plugins", "--json", extra_path=plugin_dir)
    mirror = next(b for b in json.loads(proc.stdout)["backends"] if b["name"] == "mirror")
    assert mirror["plugin"] == "mirror"
    assert "adam" in mirror["missing"]["optimizer"]
    assert mirror["components"]["recurrent"] == ["lstm"]


def test_third_party_backend_loads_and_runs(plugin_dir: Path, monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(plugin_dir))
    state = plugin_manager.build()
    backend = state.backends.load("mirror")
    spec = catalogue.resolve("loss", "binary_crossentropy")
    import numpy as np

    value, _ = backend.loss_value_and_grad(spec, np.array([1.0]), np.array([0.9]))
    assert value == pytest.approx(0.105, abs=5e-4)


def test_autoload_can_be_disabled(plugin_dir: Path) -> None:
    proc = run_cli("plugins", "--json", extra_path=plugin_dir,
                   env={plugin_manager.DISABLE_AUTOLOAD_ENV: "1"})
    report = json.loads(proc.stdout)
    assert report["backends"] == [] and report["failures"] == []


def test_plugins_can_be_blocked_by_name(plugin_dir: Path) -> None:
    proc = run_cli("plugins", "--json", extra_path=plugin_dir,
                   env={plugin_manager.BLOCK_ENV: "broken,exploding,tensorflow"})
    report = json.loads(proc.stdout)
    assert report["failures"] == []
    assert {b["name"] for b in report["backends"]} == {"torch", "mirror"}


def test_extra_plugin_objects_register_without_entry_points() -> None:
    class Plugin:
        @staticmethod
        @plugin_manager.hookspecs.hookimpl
        def orchestrator_add_backends(registry):
            registry.add_backend(BackendInfo("inline", "x:Y", {"optimizer": ("sgd",)}))

    state = plugin_manager.build(autoload=False, extra_plugins=(("inline", Plugin()),))
    assert state.backends.names() == ("inline",)
    assert state.backends.info("inline").plugin == "inline"


def test_duplicate_backend_is_reported_against_the_second_plugin() -> None:
    class Duplicate:
        @staticmethod
        @plugin_manager.hookspecs.hookimpl
        def orchestrator_add_backends(registry):
            registry.add_backend(BackendInfo("torch", "x:Y", {}))

    state = plugin_manager.build(extra_plugins=(("dup", Duplicate()),))
    failure = next(f for f in state.failures if f.name == "dup")
    assert "already registered" in failure.error
    assert state.backends.info("torch").plugin == "torch"


def test_registry_rejects_unknown_components_and_names_the_closest() -> None:
    registry = BackendRegistry()
    with pytest.raises(catalogue.ComponentError, match="did you mean 'nesterov'"):
        registry.add_backend(BackendInfo("b", "m:C", {"optimizer": ("nestorov",)}))
    with pytest.raises(RegistryError, match="loader must be"):
        registry.add_backend(BackendInfo("b", "no-colon", {}))
    with pytest.raises(RegistryError, match="did you mean 'torch'"):
        plugin_manager.backends().info("troch")


def test_help_lists_commands() -> None:
    proc = run_cli("--help")
    assert proc.returncode == 0
    assert "plugins" in proc.stdout
