"""Every shipped experiment, in a smoke version (tiny budget, first variant), end to end on both
backends, read back from a real SQLite MLflow store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from orchestrator.plugins import manager as plugin_manager

FILES = sorted(Path("experiments").glob("*.yaml"))

# What shrinks a task's data for the smoke run (the budget, not the code path).
SMOKE_DATA = {
    "text": {"max_train_chars": 20000, "max_eval_chars": 5000},
}


def _smoke(config: dict) -> dict:
    """The smoke version: one epoch, first variant, one seed, no folds, no early stopping."""
    config = {**config, "seeds": [0], "cv": None}
    config.pop("matrix", None)
    config["train"] = {**config.get("train", {}), "epochs": 1, "early_stopping": None}
    if config["task"] in SMOKE_DATA:
        config["data"] = {**config.get("data", {}), **SMOKE_DATA[config["task"]]}
    return config


@pytest.fixture(scope="module")
def smoke_store(tmp_path_factory) -> Path:
    """Every shipped file's smoke version in ONE `orchestrator run` (two jobs, the warm
    workers shared by all files, as `make demo` runs them); the store it filled."""
    tmp = tmp_path_factory.mktemp("smoke")
    paths = []
    for path in FILES:
        copy = tmp / path.name  # same file name: the experiment name defaults to its stem
        copy.write_text(yaml.safe_dump(_smoke(yaml.safe_load(path.read_text()))))
        paths.append(str(copy))
    root = tmp / "mlruns"
    env = {**os.environ, "ORCHESTRATOR_MLRUNS": str(root)}
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.run([sys.executable, "-m", "orchestrator", "run", "--quiet", "--jobs", "2",
                           *paths], capture_output=True, text=True, env=env, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return root


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_shipped_experiment_runs_end_to_end(path: Path, smoke_store: Path) -> None:
    root = smoke_store
    config = yaml.safe_load(path.read_text())
    task = plugin_manager.tasks().get(config["task"])
    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(config.get("name", path.stem))
    runs = [r for r in client.search_runs([experiment.experiment_id])
            if r.data.tags.get("orchestrator.kind") == "run"]
    assert sorted(r.data.tags["orchestrator.contract.backend"] for r in runs) == sorted(
        config.get("backends", ["tensorflow", "torch"]))
    for run in runs:
        assert run.info.status == "FINISHED"
        assert task.main_metric in run.data.metrics, sorted(run.data.metrics)
        assert "train/loss" in run.data.metrics
        assert run.data.tags["orchestrator.task"] == config["task"]
        assert run.data.tags["orchestrator.dataset_digest"]
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"config.json", "model_example.npz", "plots"} <= artifacts
        for key in run.data.metrics:  # never NaN (a tag says why), never a step twice
            history = client.get_metric_history(run.info.run_id, key)
            steps = [m.step for m in history]
            assert len(steps) == len(set(steps)), (key, steps)
            assert all(m.value == m.value for m in history), key
