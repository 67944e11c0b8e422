"""The example plugin packages of ``examples/``, pip-installed from their folders (real
distributions, real entry points) into a site directory put on the children's path:

- ``orchestrator-jax``: an external backend; ``orchestrator plugins`` lists it, the conformance
  kit passes (its float64 checks here: the whole kit, ``orchestrator plugins check jax``, costs
  about 150 s of CPU), the shipped ``experiments/normalization.yaml`` runs on torch, tensorflow
  and jax, and the jax run's generic pyfunc model loads (without jax) and predicts what the
  torch run's model predicts; uninstalled, everything else works and naming ``jax`` is one
  line of error;
- ``orchestrator-label-smoothing``: the ``orchestrator_add_components`` hook (a loss with its
  NumPy reference, implemented for torch, tensorflow and jax), checked by the kit and used in an
  experiment on both built-in backends;
- ``orchestrator-task-example``: a task (two spirals) run from a YAML experiment.

If jax is not installed, it is installed (``pip install jax jaxlib``), not skipped.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from plugin_helpers import install_fake_distribution, run_cli

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
EXPERIMENTS = ROOT / "experiments"
PACKAGES = {"jax": "orchestrator-jax", "label_smoothing": "orchestrator-label-smoothing",
            "two_spirals": "orchestrator-task-example"}


def pip_install(folder: Path, target: Path) -> Path:
    """``pip install`` an example package from its folder into ``target`` (no dependencies, no
    build isolation: nothing is downloaded)."""
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                           "--no-build-isolation", "--target", str(target), str(folder)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return target


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each example package installed into a site directory of its own (plugin name -> site)."""
    if importlib.util.find_spec("jax") is None:  # CI: install JAX rather than skip
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "jax", "jaxlib"],
                       check=True, timeout=600)
    root = tmp_path_factory.mktemp("example-sites")
    return {name: pip_install(EXAMPLES / folder, root / name) for name, folder in PACKAGES.items()}


def path_of(*sites: Path) -> Path | None:
    """One ``extra_path`` for ``run_cli`` holding several sites (os.pathsep-joined)."""
    import os

    return Path(os.pathsep.join(map(str, sites))) if sites else None


def test_plugins_lists_the_installed_examples(sites: dict[str, Path]) -> None:
    proc = run_cli("plugins", "--json", extra_path=path_of(*sites.values()))
    assert proc.returncode == 0, proc.stderr
    listing = json.loads(proc.stdout)
    assert listing["failures"] == []
    backends = {b["name"]: b for b in listing["backends"]}
    assert backends["jax"]["plugin"] == "jax"
    assert backends["jax"]["missing"] == {}
    for name in ("torch", "tensorflow", "jax"):  # the label-smoothing plugin's implementations
        assert "label_smoothing" in backends[name]["components"]["loss"], name
    assert "label_smoothing" in listing["components"]["loss"]
    assert {"name": "two_spirals", "plugin": "two_spirals",
            "summary": "two interleaved spirals, 2-D points in two classes (example plugin)"
            } in listing["tasks"]
    doctor = run_cli("plugins", "doctor", extra_path=path_of(*sites.values()))
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr


def test_jax_backend_passes_the_kit_in_float64(sites: dict[str, Path]) -> None:
    """The kit's float64 checks (166 of 480: every loss, norm, recurrent layer, optimizer
    trajectory and training session in float64). The whole kit: ``orchestrator plugins check
    jax`` (480 passed, about 150 s of CPU)."""
    proc = run_cli("plugins", "check", "jax", "-k", "float64", extra_path=sites["jax"],
                   env={"ORCHESTRATOR_THREADS": "1"}, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    summary = proc.stdout.strip().splitlines()[-1]
    assert summary.startswith("jax: ") and "passed" in summary and "failed" not in summary
    assert int(summary.split()[1]) >= 150, summary


LOAD_AND_PREDICT = textwrap.dedent("""
    import json, sys
    sys.modules["jax"] = None  # the generic pyfunc predicts without the backend's framework
    import mlflow, numpy as np
    from sklearn.datasets import load_digits

    mlflow.set_tracking_uri(sys.argv[1])
    x = (load_digits().data[:50] / 16.0).astype(np.float32)
    out = {}
    for uri in sys.argv[2:]:
        model = mlflow.pyfunc.load_model(uri)
        out[uri] = {"y": np.asarray(model.predict(x)).tolist(),
                    "flavors": sorted(model.metadata.flavors)}
    print(json.dumps(out))
""")


def _runs(uri: str) -> list:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(experiments, "tags.`orchestrator.kind` = 'run'")


def test_normalization_runs_on_torch_tensorflow_and_jax(sites: dict[str, Path],
                                                        tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = run_cli("run", str(EXPERIMENTS / "normalization.yaml"), "-q", "-j", "2",
                   "-o", "train.epochs=1", "-o", "matrix={model.norm: [batch]}",
                   "-o", "backends=[torch, tensorflow, jax]", extra_path=sites["jax"],
                   env={"MLFLOW_TRACKING_URI": uri}, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    runs = {run.data.params["backend"]: run for run in _runs(uri)}
    assert set(runs) == {"torch", "tensorflow", "jax"}
    jax_run = runs["jax"]
    assert jax_run.info.status == "FINISHED"
    assert jax_run.data.tags["orchestrator.contract.backend"] == "jax"
    assert "framework.jax" in jax_run.data.tags
    # same initial weights and batches: the backends end the epoch on the same loss
    losses = {b: r.data.metrics["train/loss"] for b, r in runs.items()}
    assert losses["jax"] == pytest.approx(losses["torch"], rel=1e-4), losses
    models = [runs[b].data.tags["orchestrator.model_uri"] for b in ("jax", "torch")]
    load = subprocess.run([sys.executable, "-c", LOAD_AND_PREDICT, uri, *models],
                          capture_output=True, text=True, timeout=300)
    assert load.returncode == 0, load.stderr[-3000:]
    loaded = json.loads(load.stdout.strip().splitlines()[-1])
    jax_model, torch_model = (loaded[m] for m in models)
    assert jax_model["flavors"] == ["python_function"]  # no JAX flavour: the generic pyfunc
    import numpy as np

    y = np.array(jax_model["y"])
    assert y.shape == (50, 10) and np.isfinite(y).all()
    np.testing.assert_allclose(y, np.array(torch_model["y"]), rtol=1e-3, atol=1e-4)


def test_uninstalled_jax_leaves_the_rest_working(sites: dict[str, Path], tmp_path: Path) -> None:
    site = tmp_path / "site"
    shutil.copytree(sites["jax"], site)
    assert run_cli("validate", str(EXPERIMENTS / "normalization.yaml"), "-o",
                   "backends=[jax, torch]", extra_path=site).returncode == 0
    shutil.rmtree(site)  # pip uninstall: the distribution and its module are gone
    listing = run_cli("plugins", "--json", extra_path=site)
    assert listing.returncode == 0, listing.stderr
    report = json.loads(listing.stdout)
    assert [b["name"] for b in report["backends"]] == ["torch", "tensorflow"]
    assert report["failures"] == []
    assert run_cli("validate", str(EXPERIMENTS / "normalization.yaml"),
                   extra_path=site).returncode == 0
    proc = run_cli("validate", str(EXPERIMENTS / "normalization.yaml"), "-o",
                   "backends=[jax, torch]", extra_path=site)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "backends[0]: unknown backend 'jax'" in lines[0]
    assert "no installed plugin provides 'jax'" in lines[0]


def test_label_smoothing_and_the_task_example_run(sites: dict[str, Path],
                                                  tmp_path: Path) -> None:
    """The plugin's loss, checked by the kit against its NumPy reference and used on both
    built-in backends; the example task from its YAML file."""
    both = path_of(sites["label_smoothing"], sites["two_spirals"])
    check = run_cli("plugins", "check", "torch", "-k", "label_smoothing", extra_path=both)
    assert check.returncode == 0, check.stdout[-3000:]
    assert check.stdout.strip().splitlines()[-1] == "torch: 24 passed"
    spirals = tmp_path / "two_spirals.yaml"
    spirals.write_text((EXAMPLES / "orchestrator-task-example" / "two_spirals.yaml").read_text()
                       .replace("backends: [torch, tensorflow]", "backends: [torch]"))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = run_cli("run", str(EXAMPLES / "orchestrator-label-smoothing" / "label_smoothing.yaml"),
                   str(spirals), "-q", "-j", "2", "-o", "train.epochs=2", "-o", "matrix={}",
                   extra_path=both, env={"MLFLOW_TRACKING_URI": uri}, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    runs = _runs(uri)
    done = {(r.data.tags["orchestrator.task"], r.data.params["backend"]): r for r in runs}
    assert set(done) == {("digits", "torch"), ("digits", "tensorflow"), ("two_spirals", "torch")}
    assert all(r.info.status == "FINISHED" for r in runs)
    smoothed = [done[("digits", b)].data.params for b in ("torch", "tensorflow")]
    assert all("label_smoothing" in json.dumps(p) for p in smoothed), smoothed
    assert done[("two_spirals", "torch")].data.metrics["test/accuracy"] > 0.5
    # same weights, batches and loss formula: the two backends agree on the training loss
    torch_loss, tf_loss = (done[("digits", b)].data.metrics["train/loss"]
                           for b in ("torch", "tensorflow"))
    assert tf_loss == pytest.approx(torch_loss, rel=1e-4)


# A plugin adding a loss whose torch implementation is wrong (s / (K - 1) instead of s / K):
# the kit must fail it against the reference.
WRONG_LOSS_PLUGIN = """
from orchestrator import catalogue, hookimpl
from orchestrator_label_smoothing import DEFINITION
import dataclasses

PLUGIN_API_VERSION = "1"


@hookimpl
def orchestrator_add_components(registry):
    registry.add_component(dataclasses.replace(DEFINITION, name="smoothing_wrong"))
    registry.add_implementation("torch", "loss", "smoothing_wrong", "wrongloss_torch:build")
"""
WRONG_LOSS_TORCH = """
import torch


def build(spec):
    s = spec["smoothing"]

    def fn(y, y_pred):
        log_p = torch.log_softmax(y_pred, dim=-1) if spec["from_logits"] else torch.log(
            torch.clamp(y_pred, 1e-7, 1 - 1e-7))
        smoothed = (1 - s) * y + s / (y.shape[-1] - 1)
        return -(smoothed * log_p).sum(dim=-1).mean()
    return fn
"""


def test_hook_orchestrator_add_components_a_wrong_implementation_fails_the_kit(
        sites: dict[str, Path], tmp_path: Path) -> None:
    site = install_fake_distribution(tmp_path / "site", "wrongloss",
                                     {"wrongloss": "wrongloss_plugin"},
                                     {"wrongloss_plugin": WRONG_LOSS_PLUGIN,
                                      "wrongloss_torch": WRONG_LOSS_TORCH})
    proc = run_cli("plugins", "check", "torch", "-k", "smoothing_wrong",
                   extra_path=path_of(site, sites["label_smoothing"]))
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert "smoothing_wrong" in proc.stdout and "FAIL" in proc.stdout
    # the default (smoothing 0.1) fails; at smoothing 0.0 nothing is smoothed, so it passes
    assert "smoothing_wrong-probs]" in proc.stdout or "smoothing_wrong-probs " in proc.stdout
    assert "smoothing_wrong-probs-smoothing0.0" not in proc.stdout


def test_hook_orchestrator_add_components_a_taken_name_is_a_duplicate() -> None:
    from orchestrator.canonical import catalogue
    from orchestrator.plugins import manager as plugin_manager

    class Plugin:
        PLUGIN_API_VERSION = "1"

        @staticmethod
        @plugin_manager.hookspecs.hookimpl
        def orchestrator_add_components(registry):
            registry.add_component(catalogue.ComponentDef(
                "loss", "triplet", "a second triplet", "-", target="labels",
                reference=lambda y, p: 0.0))

    try:
        state = plugin_manager.build(autoload=False, extra_plugins=(("dup", Plugin),))
        failures = [f for f in state.failures if f.name == "dup"]
        assert [(f.kind, f.stage) for f in failures] == [("duplicate",
                                                          "orchestrator_add_components")]
        assert "loss 'triplet' is already defined by the lecture's catalogue" in failures[0].error
        assert catalogue.get("loss", "triplet").plugin == ""  # the lecture's stays
    finally:
        plugin_manager.build(autoload=False)  # leaves the catalogue without plugin components
