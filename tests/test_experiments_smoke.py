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

# Extra overrides that shrink a task's data for the smoke run (the budget, not the code path).
SMOKE_DATA = {
    "text": ["data.max_train_chars=20000", "data.max_eval_chars=5000"],
}


def _overrides(path: Path) -> list[str]:
    config = yaml.safe_load(path.read_text())
    args = ["-o", "train.epochs=1", "-o", "matrix={}", "-o", "seeds=[0]", "-o",
            "cv=null", "-o", "train.early_stopping=null"]
    for override in SMOKE_DATA.get(config["task"], []):
        args += ["-o", override]
    return args


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_shipped_experiment_runs_end_to_end(path: Path, tmp_path: Path) -> None:
    root = tmp_path / "mlruns"
    env = {**os.environ, "ORCHESTRATOR_MLRUNS": str(root)}
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.run([sys.executable, "-m", "orchestrator", "run", "--quiet",
                           str(path), *_overrides(path)], capture_output=True, text=True,
                          env=env, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
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
