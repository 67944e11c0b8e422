"""Real runs tracked in a real SQLite MLflow store: what is logged, and statuses that tell the truth
(FINISHED, FAILED on an exception, KILLED on SIGTERM, dead runs marked at the next start)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from mlflow.tracking import MlflowClient

DIGITS = {
    "name": "lifecycle",
    "task": "digits",
    "loss": {"name": "sparse_categorical_crossentropy", "from_logits": True},
    "optimizer": {"name": "adam"},
    "train": {"epochs": 2, "batch_size": 64},
    "backends": ["torch", "tensorflow"],
}


def _env(root: Path) -> dict[str, str]:
    env = {**os.environ, "ORCHESTRATOR_MLRUNS": str(root)}
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


def _client(root: Path) -> MlflowClient:
    return MlflowClient(f"sqlite:///{root / 'mlflow.db'}")


def _runs(root: Path, name: str, kind: str = "run"):
    client = _client(root)
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        return []
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])
    return [r for r in runs if r.data.tags.get("orchestrator.kind") == kind]


def _start(tmp_path: Path, config: dict, *args: str) -> subprocess.Popen:
    path = tmp_path / f"{config['name']}.yaml"
    path.write_text(yaml.safe_dump(config))
    return subprocess.Popen([sys.executable, "-m", "orchestrator", "run", "--quiet",
                             str(path), *args], env=_env(tmp_path / "mlruns"),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One real invocation on both backends, shared by the read-back tests."""
    tmp_path = tmp_path_factory.mktemp("finished")
    proc = _start(tmp_path, DIGITS)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    return tmp_path / "mlruns", out


def test_runs_are_logged_completely(finished) -> None:
    root, out = finished
    runs = _runs(root, "lifecycle")
    runs = sorted(runs, key=lambda r: r.data.tags["orchestrator.contract.backend"], reverse=True)
    assert [r.data.tags["orchestrator.contract.backend"] for r in runs] == ["torch", "tensorflow"]
    client = _client(root)
    for run in runs:
        assert run.info.status == "FINISHED"
        tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
        assert tags["orchestrator.task"] == "digits" and tags["orchestrator.seed"] == "0"
        assert len(tags["orchestrator.config_digest"]) == 16
        assert len(tags["orchestrator.dataset_digest"]) == 16
        backend = tags["orchestrator.contract.backend"]
        assert tags[f"framework.{backend}"]
        assert params["train.epochs"] == "2" and params["optimizer.name"] == "adam"
        assert params["optimizer.eps"] == "1e-08"  # canonical defaults are logged too
        history = client.get_metric_history(run.info.run_id, "train/loss")
        assert [m.step for m in history] == [1, 2]
        assert history[1].value < history[0].value
        for key in ("val/loss", "val/accuracy", "test/accuracy", "test/macro_f1",
                    "system/samples_per_second", "system/epoch_seconds", "system/peak_rss_mb"):
            assert key in metrics, key
        # the loss threshold (0.3) is not reached in 2 epochs: no NaN metric, a tag says why
        assert "train/epochs_to_threshold" not in metrics
        assert tags["orchestrator.no_value.train/epochs_to_threshold"] == \
            "train/loss never reached 0.3 in 2 epoch(s)"
        assert metrics["test/accuracy"] > 0.5
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        plots = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
        assert {"config.json", "model_example.npz"} <= artifacts  # the model: see the next test
        assert {"plots/learning_curves.png", "plots/confusion_matrix.png"} <= plots
        assert run.inputs.dataset_inputs[0].dataset.digest == tags["orchestrator.dataset_digest"]
    # both backends trained the same network from the same weights on the same batches
    a, b = (r.data.metrics["train/loss"] for r in runs)
    assert a == pytest.approx(b, rel=1e-3)
    comparison = _runs(root, "lifecycle", kind="comparison")
    assert len(comparison) == 1
    files = {a.path for a in client.list_artifacts(comparison[0].info.run_id, "plots")}
    assert "plots/train_loss.png" in files
    assert "FINISHED" in out and "tensorflow - torch (paired)" in out


@pytest.mark.parametrize("backend", ["torch", "tensorflow"])
def test_logged_model_loads_back_and_predicts_the_same(finished, backend: str) -> None:
    import mlflow

    root, _ = finished
    run = next(r for r in _runs(root, "lifecycle")
               if r.data.tags["orchestrator.contract.backend"] == backend)
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    folder = _client(root).download_artifacts(run.info.run_id, "model_example.npz")
    example = np.load(folder)
    uri = run.data.tags["orchestrator.model_uri"]  # models:/<id> of the LoggedModel
    assert uri.startswith("models:/")
    if backend == "torch":
        import torch

        model = mlflow.pytorch.load_model(uri)
        model.eval()
        with torch.no_grad():
            predicted = model(torch.from_numpy(example["x"])).numpy()
    else:
        import orchestrator_tensorflow.backend  # noqa: F401  (registers the custom layers)

        model = mlflow.tensorflow.load_model(uri)
        predicted = np.asarray(model.predict(example["x"], verbose=0))
    np.testing.assert_allclose(predicted, example["y"], rtol=1e-5, atol=1e-6)
    pyfunc = mlflow.pyfunc.load_model(uri)
    np.testing.assert_allclose(np.asarray(pyfunc.predict(example["x"])), example["y"],
                               rtol=1e-5, atol=1e-6)


def test_an_exception_fails_the_run_and_the_next_run_goes_on(tmp_path) -> None:
    # adagrad with an eps that is 0 in float32 divides 0 by 0 on the always-blank pixels'
    # weights (zero gradient): NaN at epoch 1 (an lr beyond 10 is refused at validation)
    diverging = {"name": "adagrad", "lr": 0.05, "eps": 1e-300}
    config = {**DIGITS, "name": "failing", "backends": ["torch"], "optimizer": diverging,
              "matrix": {"optimizer": [diverging, {"name": "adam"}]}}
    proc = _start(tmp_path, config, "--jobs", "1")
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 1, out
    failed, good = _runs(tmp_path / "mlruns", "failing")
    assert failed.info.status == "FAILED"
    assert "NonFiniteLossError" in failed.data.tags["orchestrator.error"]
    client = _client(tmp_path / "mlruns")
    assert "error.txt" in {a.path for a in client.list_artifacts(failed.info.run_id)}
    assert good.info.status == "FINISHED"


def _poll_runs(root: Path, ready, timeout: float = 240):
    """Poll the store until ``ready(runs, trained)`` gives a value: ``runs`` are the ids of the
    runs by start time, ``trained`` those that have logged an epoch.

    Reads the database read-only with sqlite3: an MlflowClient here could race the running
    invocation's creation of the store (its schema migrations).
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(1.0)
        try:
            with sqlite3.connect(f"file:{root / 'mlflow.db'}?mode=ro", uri=True) as db:
                runs = [r[0] for r in db.execute(
                    "SELECT run_uuid FROM runs r JOIN tags t USING (run_uuid) WHERE "
                    "t.key = 'orchestrator.kind' AND t.value = 'run' ORDER BY start_time")]
                trained = {r[0] for r in db.execute(
                    "SELECT DISTINCT run_uuid FROM metrics WHERE key = 'train/loss'")}
        except sqlite3.Error:
            continue  # not created yet
        value = ready(runs, trained)
        if value:
            return value
    raise AssertionError("training never started")


def _wait_for_training(root: Path, runs_before: int) -> str:
    """The id of the run being trained once it has logged an epoch."""
    return _poll_runs(root, lambda runs, trained: len(runs) > runs_before
                      and runs[-1] in trained and runs[-1])


def test_sigterm_marks_the_current_run_killed_and_keeps_the_finished_ones(tmp_path) -> None:
    config = {**DIGITS, "name": "terminated", "backends": ["torch"],
              "matrix": {"train.epochs": [1, 500]}}
    proc = _start(tmp_path, config, "--jobs", "1")  # one after the other (see test_runner.py)
    root = tmp_path / "mlruns"
    long_run = _wait_for_training(root, runs_before=1)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    finished, killed = _runs(root, "terminated")
    assert finished.info.status == "FINISHED"
    assert killed.info.run_id == long_run and killed.info.status == "KILLED"
    assert "SIGTERM" in killed.data.tags["orchestrator.error"]


def test_sigkill_leaves_running_which_the_next_start_marks_killed(tmp_path) -> None:
    config = {**DIGITS, "name": "sigkilled", "backends": ["torch"], "train": {"epochs": 500}}
    proc = _start(tmp_path, config)
    root = tmp_path / "mlruns"
    run_id = _wait_for_training(root, runs_before=0)
    os.killpg(proc.pid, signal.SIGKILL)  # the parent and its worker, no chance to clean up
    proc.wait(timeout=60)
    client = _client(root)
    assert client.get_run(run_id).info.status == "RUNNING"
    again = _start(tmp_path, {**DIGITS, "name": "after", "backends": ["torch"],
                              "train": {"epochs": 1}})
    out, _ = again.communicate(timeout=600)
    assert again.returncode == 0, out
    marked = client.get_run(run_id)
    assert marked.info.status == "KILLED"
    assert "no longer exists" in marked.data.tags["orchestrator.killed_reason"]


def test_ui_serves_the_same_store(tmp_path) -> None:
    from servers import answers, serve

    proc, port = serve(  # slow under load (uvicorn workers)
        lambda port: subprocess.Popen(
            [sys.executable, "-m", "orchestrator", "ui", "--port", str(port)],
            env=_env(tmp_path / "mlruns"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True),
        lambda port: answers(f"http://127.0.0.1:{port}/health"), timeout=300, what="the UI")
    try:
        assert (tmp_path / "mlruns" / "mlflow.db").exists()
        # the same server as a tracking server: MLFLOW_TRACKING_URI=http://... sends runs and
        # artifacts into its store, and the client makes no store of its own
        client_dir = tmp_path / "client"
        client_dir.mkdir()
        config = {**DIGITS, "name": "over-http", "backends": ["torch"],
                  "train": {"epochs": 1, "batch_size": 64}}
        (client_dir / "over-http.yaml").write_text(yaml.safe_dump(config))
        env = {**_env(client_dir / "mlruns"), "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{port}"}
        done = subprocess.run([sys.executable, "-m", "orchestrator", "run", "--quiet",
                               "over-http.yaml"], cwd=client_dir, env=env, capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert sorted(p.name for p in client_dir.iterdir()) == ["over-http.yaml"]
        (run,) = _runs(tmp_path / "mlruns", "over-http")
        assert run.info.status == "FINISHED" and "test/accuracy" in run.data.metrics
        stored = {p.name for p in (tmp_path / "mlruns" / "artifacts").rglob("*")}
        assert {"config.json", "model_example.npz", "learning_curves.png"} <= stored
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
