"""The two built-in backends against each other, directly (the kit compares each to the reference)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from mlflow.tracking import MlflowClient
from plugin_helpers import install_fake_distribution

from orchestrator.canonical import catalogue, networks
from orchestrator.plugins import manager as plugin_manager
from orchestrator.canonical.initializers import init_weights
from orchestrator.canonical.specs import trainable_names
from orchestrator.testing.assertions import assert_weights_close

BACKENDS = ("torch", "tensorflow")

SPECS = {
    "har": networks.har_network(12, 6, 7, dropout=0.0),
    "normalization-batch": networks.normalization_network(64, 10, norm="batch"),
    "normalization-layer": networks.normalization_network(64, 10, norm="layer"),
    "char": networks.char_network(30, 10, embedding_dim=8, units=16),
}


def _batch(spec_id: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    if spec_id == "har":
        return rng.normal(0, 1, (16, 12, 6)), np.eye(7)[rng.integers(0, 7, 16)]
    if spec_id == "char":
        return rng.integers(0, 30, (8, 10)), rng.integers(0, 30, (8, 10))
    return rng.uniform(0, 1, (32, 64)), np.eye(10)[rng.integers(0, 10, 32)]


def _loss(spec_id: str):
    if spec_id == "char":
        return catalogue.resolve("loss", "sparse_categorical_crossentropy", {"from_logits": True})
    return catalogue.resolve("loss", "categorical_crossentropy")


@pytest.fixture(scope="module")
def backends():
    registry = plugin_manager.backends()
    return {name: registry.load(name) for name in BACKENDS}


@pytest.mark.parametrize("spec_id", SPECS)
def test_same_seed_gives_identical_initial_weights(backends, spec_id: str) -> None:
    spec = SPECS[spec_id]
    weights = {name: b.build_model(spec, init_weights(spec, seed=42)).get_weights()
               for name, b in backends.items()}
    for key, value in weights["torch"].items():
        np.testing.assert_array_equal(value, weights["tensorflow"][key], err_msg=key)
    other_seed = init_weights(spec, seed=43)
    assert any(not np.array_equal(other_seed[k], weights["torch"][k].astype(np.float64))
               for k in trainable_names(spec))


@pytest.mark.parametrize(("dtype", "optimizer", "tol"), [
    ("float64", "adam", 1e-5),
    ("float64", "nesterov", 1e-5),
    ("float32", "sgd", 1e-5),
])
@pytest.mark.parametrize("spec_id", SPECS)
def test_one_training_step_agrees(backends, spec_id: str, dtype: str, optimizer: str,
                                  tol: float) -> None:
    """Same spec, seed and batch, no dropout: the parameters after one step agree.

    float32 uses plain SGD: Adam's first step is lr * g / (|g| + eps), which turns float32
    rounding noise in a gradient that is truly zero (a bias right before batch norm) into a step
    of up to lr; in float64 that noise is far below eps.
    """
    spec = SPECS[spec_id]
    x, y = _batch(spec_id, np.random.default_rng(0))
    after, losses = {}, {}
    for name, backend in backends.items():
        model = backend.build_model(spec, init_weights(spec, seed=1), dtype=dtype)
        session = backend.training_session(model, _loss(spec_id),
                                           catalogue.resolve("optimizer", optimizer),
                                           n_train=len(x))
        session.train_step(x, y)
        losses[name] = session.end_epoch()["loss"]
        after[name] = model.get_weights()
    assert losses["torch"] == pytest.approx(losses["tensorflow"], rel=tol)
    assert_weights_close(after["tensorflow"], after["torch"], tol, f"{spec_id} after one step")


@pytest.mark.parametrize("spec_id", SPECS)
def test_backpropagation_agrees(backends, spec_id: str) -> None:
    spec = SPECS[spec_id]
    x, _ = _batch(spec_id, np.random.default_rng(1))
    upstream = np.random.default_rng(2).normal(0, 1, (len(x), *spec.output_shape))
    results = {name: b.build_model(spec, init_weights(spec, seed=5), dtype="float64")
               .vjp(x, upstream, training=True) for name, b in backends.items()}
    torch_result, tf_result = results["torch"], results["tensorflow"]
    np.testing.assert_allclose(tf_result.output, torch_result.output, rtol=1e-9, atol=1e-12)
    if torch_result.grad_input is not None:
        assert_weights_close({"x": tf_result.grad_input}, {"x": torch_result.grad_input}, 1e-8,
                             "d/dinput")
    assert_weights_close(tf_result.grad_weights, torch_result.grad_weights, 1e-8, "d/dweights")


# --- orchestrator parity: any experiment file, one process per backend, exit 1 on disagreement

PARITY_FILE = {
    "name": "parity-check",
    "task": "digits",
    "loss": {"name": "sparse_categorical_crossentropy", "from_logits": True},
    "optimizer": {"name": "adam", "lr": 0.01},
    "train": {"epochs": 5, "batch_size": 128},
    "backends": ["torch", "tensorflow"],
}

# A backend that is deliberately wrong: it declares every optimizer, trains with plain SGD.
SGD_ONLY_PLUGIN = """
from orchestrator import hookimpl
from orchestrator.canonical import catalogue
from orchestrator.plugins.registry import BackendInfo

@hookimpl
def orchestrator_add_backends(registry):
    registry.add_backend(BackendInfo(
        name="sgdonly", loader="sgdonly_backend:SgdOnlyBackend",
        components=catalogue.all_names(), distributions=("torch",),
        summary="broken on purpose: every optimizer is plain SGD"))
"""
SGD_ONLY_BACKEND = """
from orchestrator.canonical import catalogue
from orchestrator_torch.backend import TorchBackend

class SgdOnlyBackend(TorchBackend):
    name = "sgdonly"

    def training_session(self, model, loss, optimizer, *, n_train):
        sgd = catalogue.resolve("optimizer", "sgd", {"lr": optimizer.params["lr"]})
        return super().training_session(model, loss, sgd, n_train=n_train)
"""


def _parity(tmp_path: Path, *args: str, extra_path: Path | None = None
            ) -> subprocess.CompletedProcess:
    path = tmp_path / "parity.yaml"
    path.write_text(yaml.safe_dump(PARITY_FILE))
    env = {**os.environ, "ORCHESTRATOR_MLRUNS": str(tmp_path / "mlruns")}
    env.pop("MLFLOW_TRACKING_URI", None)
    if extra_path is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(extra_path), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "orchestrator", "parity", str(path), *args],
                          capture_output=True, text=True, env=env, timeout=900)


def _parity_run(root: Path):
    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("parity-check")
    runs = client.search_runs([experiment.experiment_id])
    parent = next(r for r in runs if r.data.tags.get("orchestrator.kind") == "parity")
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    return client, parent, children


def test_parity_of_the_builtin_backends_passes_and_is_logged(tmp_path: Path) -> None:
    done = _parity(tmp_path, "--epochs", "2")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "agree within rtol 0.001" in done.stdout
    client, parent, children = _parity_run(tmp_path / "mlruns")
    assert parent.data.tags["orchestrator.parity"] == "agree"
    assert sorted(r.data.tags["orchestrator.backend"] for r in children) == ["tensorflow",
                                                                            "torch"]
    losses = {r.data.tags["orchestrator.backend"]:
              [m.value for m in client.get_metric_history(r.info.run_id, "train/loss")]
              for r in children}
    assert len(losses["torch"]) == 2 and losses["torch"][1] < losses["torch"][0]
    np.testing.assert_allclose(losses["tensorflow"], losses["torch"], rtol=1e-9)
    assert all(r.data.params["train.dtype"] == "float64" for r in children)
    table = client.download_artifacts(parent.info.run_id, "tables/parity.csv")
    assert "tensorflow rel. diff" in Path(table).read_text()
    for value in losses["torch"]:  # the printed table holds the logged values
        assert f"{value:.10f}" in done.stdout


def test_parity_fails_on_a_backend_that_ignores_the_optimizer(tmp_path: Path) -> None:
    site = install_fake_distribution(tmp_path / "site", "sgdonly", {"sgdonly": "sgdonly_plugin"},
                                     {"sgdonly_plugin": SGD_ONLY_PLUGIN,
                                      "sgdonly_backend": SGD_ONLY_BACKEND})
    done = _parity(tmp_path, "--epochs", "1", "--backends", "torch", "sgdonly",
                   extra_path=site)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    assert "DISAGREE" in done.stdout and "over rtol 0.001 from epoch 1" in done.stdout
    _, parent, _ = _parity_run(tmp_path / "mlruns")
    assert parent.data.tags["orchestrator.parity"] == "disagree"


@pytest.mark.parametrize(("args", "words"), [
    (["--backends", "torch", "tensorflw"], "did you mean 'tensorflow'"),
    (["--batch-size", "0"], "--batch-size must be a whole number >= 1, got 0"),
    (["--epochs", "-1"], "--epochs must be a whole number >= 1, got -1"),
    (["--rtol", "0"], "--rtol must be a number > 0"),
])
def test_parity_bad_input_is_one_line_and_exit_2(tmp_path: Path, capsys, monkeypatch, args,
                                                 words) -> None:
    from orchestrator.cli import main

    monkeypatch.setenv("ORCHESTRATOR_MLRUNS", str(tmp_path / "mlruns"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    path = tmp_path / "parity.yaml"
    path.write_text(yaml.safe_dump(PARITY_FILE))
    assert main(["parity", str(path), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err, err
    assert not (tmp_path / "mlruns").exists()
