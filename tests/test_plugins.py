"""Plugin discovery through real entry points: built-ins, third parties, broken plugins, switches."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest
from plugin_helpers import install_fake_distribution, run_cli

from orchestrator.canonical import catalogue
from orchestrator.plugins import manager as plugin_manager
from orchestrator.plugins.registry import BackendInfo, BackendRegistry, RegistryError

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
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


def test_builtins_are_registered_by_the_manager_once() -> None:
    """The built-ins are registered directly, as pytest does with its default plugins; an
    entry point naming one (an install made when they were entry points) loads nothing twice."""
    state = plugin_manager.build()
    assert {"torch", "tensorflow"} <= set(state.backends.names())
    builtins = {p.name: p for p in state.loaded if p.builtin}
    assert {name: p.target for name, p in builtins.items()} == dict(plugin_manager.BUILTIN_PLUGINS)
    assert all(p.api_version == plugin_manager.hookspecs.PLUGIN_API_VERSION
               for p in builtins.values())
    assert [p.name for p in state.loaded].count("torch") == 1
    assert state.failures == ()
    for name in ("torch", "tensorflow"):
        assert state.backends.info(name).missing() == {}
        assert state.backends.info(name).plugin == name


def test_entry_points_naming_a_builtin(tmp_path: Path, monkeypatch) -> None:
    """``torch = orchestrator_torch`` is the built-in itself: skipped. Another module under a
    built-in's name is a duplicate, reported."""
    install_fake_distribution(tmp_path, "stale", {"torch": "orchestrator_torch",
                                                  "tensorflow": "impostor"},
                              {"impostor": "raise ImportError('never imported')"})
    monkeypatch.syspath_prepend(str(tmp_path))
    state = plugin_manager.build()
    assert [p.name for p in state.loaded].count("torch") == 1
    assert [(f.name, f.kind) for f in state.failures] == [("tensorflow", "duplicate")]
    assert "already taken by the built-in plugin" in state.failures[0].error
    assert {"torch", "tensorflow"} <= set(state.backends.names())


def test_plugins_lists_everything_without_importing_frameworks() -> None:
    code = textwrap.dedent("""
        import io, json, sys, contextlib
        from orchestrator.cli import main
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            main(["plugins", "--json"])
        heavy = [m for m in ("torch", "tensorflow", "keras", "mlflow", "optuna")
                 if m in sys.modules]
        print(json.dumps({"heavy": heavy, "out": json.loads(out.getvalue())}))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    report = json.loads(proc.stdout)
    assert report["heavy"] == []
    backends = {b["name"]: b for b in report["out"]["backends"]}
    assert set(backends) >= {"torch", "tensorflow"}
    for name in ("torch", "tensorflow"):
        b = backends[name]
        assert b["missing"] == {} and b["unavailable"] is None
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


def test_hook_orchestrator_add_backends_third_party_backend_loads_and_runs(
        plugin_dir: Path, monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(plugin_dir))
    state = plugin_manager.build()
    backend = state.backends.load("mirror")
    spec = catalogue.resolve("loss", "binary_crossentropy")
    import numpy as np

    value, _ = backend.loss_value_and_grad(spec, np.array([1.0]), np.array([0.9]))
    assert value == pytest.approx(0.105, abs=5e-4)


TASK_PLUGIN = """
from orchestrator import hookimpl

PLUGIN_API_VERSION = "1"


@hookimpl
def orchestrator_add_tasks(registry):
    from orchestrator.tasks.digits import DigitsTask

    class SmallDigits(DigitsTask):
        name = "small_digits"
        summary = "digits, from a third-party plugin"

    registry.add_task(SmallDigits)
"""


def test_hook_orchestrator_add_tasks_third_party_task_validates(tmp_path: Path) -> None:
    site = install_fake_distribution(tmp_path / "site", "smalldigits",
                                     {"smalldigits": "smalldigits_plugin"},
                                     {"smalldigits_plugin": TASK_PLUGIN})
    listing = json.loads(run_cli("plugins", "--json", extra_path=site).stdout)
    assert {"name": "small_digits", "plugin": "smalldigits",
            "summary": "digits, from a third-party plugin"} in listing["tasks"]
    experiment = tmp_path / "small.yaml"
    experiment.write_text((EXPERIMENTS / "normalization.yaml").read_text()
                          .replace("task: digits", "task: small_digits"))
    proc = run_cli("validate", str(experiment), extra_path=site)
    assert proc.returncode == 0, proc.stderr
    assert "task small_digits" in proc.stdout
    assert run_cli("validate", str(experiment)).returncode == 2  # without the plugin


def test_disabling_autoload_keeps_the_builtins(plugin_dir: Path) -> None:
    proc = run_cli("plugins", "--json", extra_path=plugin_dir,
                   env={plugin_manager.DISABLE_AUTOLOAD_ENV: "1"})
    report = json.loads(proc.stdout)
    assert [b["name"] for b in report["backends"]] == ["torch", "tensorflow"]
    assert report["failures"] == []
    assert {t["plugin"] for t in report["tasks"]} == {"tasks"}
    validated = run_cli("validate", str(EXPERIMENTS / "normalization.yaml"),
                        env={plugin_manager.DISABLE_AUTOLOAD_ENV: "1"})
    assert validated.returncode == 0, validated.stderr


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
    assert state.backends.names() == ("torch", "tensorflow", "inline")
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


@pytest.fixture(scope="module")
def without_tensorflow(tmp_path_factory) -> dict[str, str]:
    """The environment of a child ``python -S`` whose only site directory holds everything of
    this virtualenv except TensorFlow and Keras (symbolic links): a real installation without
    them, found by imports and by package metadata alike."""
    import orchestrator
    import orchestrator_torch

    venv_site = Path(sysconfig.get_paths()["purelib"])
    site = tmp_path_factory.mktemp("site-without-tensorflow")
    for entry in venv_site.iterdir():
        if not entry.name.lower().startswith(("tensorflow", "keras", "tf_keras")):
            (site / entry.name).symlink_to(entry)
    project = [str(Path(orchestrator.__file__).parents[1]),
               str(Path(orchestrator_torch.__file__).parents[1])]
    return {"PYTHONPATH": os.pathsep.join([*project, str(site)])}


def run_without_tensorflow(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-S", "-m", "orchestrator", *args], text=True,
                          capture_output=True, env={**os.environ, **env}, timeout=120)


def test_a_builtin_without_its_framework_is_listed_as_unavailable(without_tensorflow) -> None:
    proc = run_without_tensorflow(without_tensorflow, "plugins", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    backends = {b["name"]: b for b in report["backends"]}
    assert backends["torch"]["unavailable"] is None
    assert backends["tensorflow"]["unavailable"].startswith("tensorflow and keras are not "
                                                            "installed")
    assert report["failures"] == []

    # an experiment without backends runs on what is installed; naming the missing one is an
    # error of one line, exit 2
    ok = run_without_tensorflow(without_tensorflow, "plan", str(EXPERIMENTS / "normalization.yaml"),
                                "-o", "backends=null")
    assert ok.returncode == 0, ok.stderr
    assert "torch" in ok.stdout and "tensorflow" not in ok.stdout
    named = run_without_tensorflow(without_tensorflow, "validate",
                                   str(EXPERIMENTS / "normalization.yaml"))
    assert named.returncode == 2
    assert named.stderr.strip().splitlines() == [
        f"error: {EXPERIMENTS / 'normalization.yaml'}: backends[1]: backend 'tensorflow' is "
        "unavailable: tensorflow and keras are not installed (pip install tensorflow keras)"]

    doctor = run_without_tensorflow(without_tensorflow, "plugins", "doctor", "--json")
    assert doctor.returncode == 0, doctor.stdout
    findings = json.loads(doctor.stdout)["findings"]
    assert [(f["severity"], f["problem"], f["plugin"]) for f in findings] == [
        ("warning", "backend unavailable", "tensorflow")]
