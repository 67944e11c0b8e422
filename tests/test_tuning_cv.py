"""Cross-validation, early stopping and the tuning that rests on them, executed on real data
(UCI hypothyroid, a few epochs): folds of a run, the restore of the best weights, cross-validated
search objectives, pruning across folds, a tuned matrix with its verdict, resume, bad input."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pytest
import yaml
from mlflow.tracking import MlflowClient

from orchestrator.evaluation.statistics import paired, summarize

DATA = {"source": "hypothyroid", "test_size": 0.2, "val_size": 0.15,
        "log_features": ["tsh", "t3", "tt4", "t4u", "fti", "tbg"]}
BCE = {"name": "binary_crossentropy", "from_logits": True}
FOCAL = {"name": "binary_focal", "from_logits": True}
METRIC = "val/average_precision"


def _base(name: str, **extra) -> dict:
    return {"name": name, "task": "imbalanced", "data": dict(DATA), "model": {"hidden": [8]},
            "loss": dict(BCE), "optimizer": {"name": "adam", "lr": 0.01},
            "train": {"epochs": 2, "batch_size": 256}, "backends": ["torch"], **extra}


def _tune(name: str, trials: int, **extra) -> dict:
    return {"metric": METRIC, "direction": "maximize", "trials": trials,
            "sampler": {"name": "random", "seed": 5}, "pruner": {"name": "none"},
            "verdict": None, "space": {
                "optimizer.lr": {"type": "float", "low": 1e-3, "high": 0.05, "log": True}},
            **extra}


def _write(tmp_path: Path, config: dict) -> Path:
    path = tmp_path / f"{config['name']}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _env(root: Path) -> dict[str, str]:
    env = {**os.environ, "ORCHESTRATOR_MLRUNS": str(root)}
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], text=True,
                          capture_output=True, env=_env(tmp_path / "mlruns"), timeout=900)


def _runs(root: Path, experiment: str) -> dict[str, list]:
    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    exp = client.get_experiment_by_name(experiment)
    out: dict[str, list] = {}
    for run in client.search_runs([exp.experiment_id], max_results=2000):
        out.setdefault(run.data.tags.get("orchestrator.kind"), []).append(run)
    return out


def _study(root: Path, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{root / 'optuna.db'}")


# --- runs: cross-validation and early stopping ------------------------------------------------


def test_early_stopping_restores_the_best_weights(tmp_path, monkeypatch) -> None:
    """After an early stop the model holds the weights of the best epoch, not the last."""
    from orchestrator.config.loader import resolve
    from orchestrator.orchestration.plan import PlannedRun
    from orchestrator.orchestration.trainer import train_and_evaluate
    from orchestrator.plugins import manager as plugin_manager
    from orchestrator.tracking.runs import RunLogger
    from orchestrator.tracking.store import ensure_store, experiment_id

    monkeypatch.setenv("ORCHESTRATOR_MLRUNS", str(tmp_path / "mlruns"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    config = _base("restore")
    config["train"].update(epochs=6, early_stopping={"metric": "train/loss", "mode": "max",
                                                     "patience": 2})
    (exp,) = resolve(config, "restore.yaml")
    task = plugin_manager.tasks().get("imbalanced")()
    real = plugin_manager.backends().load("torch")

    class Remembering:  # the real backend; remembers the model it builds
        model = None

        def build_model(self, *args, **kwargs):
            Remembering.model = real.build_model(*args, **kwargs)
            return Remembering.model

        def __getattr__(self, name):
            return getattr(real, name)

    snapshots = {}

    def snapshot(entry) -> None:
        snapshots[entry.epoch] = Remembering.model.get_weights()

    uri = ensure_store()
    prepared = task.prepare(exp.data, seed=0, folds=None)
    with RunLogger(uri, experiment_id("restore", uri), run_name="r", tags={}) as logger:
        train_and_evaluate(PlannedRun(exp, "torch", 0), task, Remembering(), prepared,
                           prepared.splits[0], logger, False, log_model_uri=None,
                           extra_callbacks=(snapshot,))
    assert sorted(snapshots) == [1, 2, 3]  # stopped after `patience` epochs without gain
    final = Remembering.model.get_weights()
    for name, value in snapshots[1].items():
        np.testing.assert_array_equal(final[name], value, err_msg=name)
    assert any(not np.array_equal(final[n], snapshots[3][n]) for n in final)


# --- tuning: cross-validated objectives, matrix, verdict ---------------------------------------


def test_tuned_matrix_with_cv_objectives_and_verdict(tmp_path) -> None:
    """matrix x backends: one study each with the same sampler seed; the objective is the mean
    of the logged per-fold values; the verdict's numbers are those recomputed from its runs."""
    config = _base("tmx", cv={"folds": 2}, backends=["torch", "tensorflow"],
                   matrix={"loss": [BCE, FOCAL]})
    config["train"]["epochs"] = 1
    config["tune"] = _tune("tmx", 2, verdict={"seeds": 2, "ensemble": True})
    config["tune"]["space"]["loss.gamma"] = {"type": "float", "low": 0.5, "high": 4.0,
                                             "when": {"loss.name": ["binary_focal"]}}
    proc = _cli(tmp_path, "tune", str(_write(tmp_path, config)))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Verdict of tmx" in proc.stdout
    root = tmp_path / "mlruns"
    names = [f"tmx-loss={loss}-{backend}" for loss in ("binary_crossentropy", "binary_focal")
             for backend in ("torch", "tensorflow")]
    params = {}
    for name in names:
        study = _study(root, name)
        assert len(study.trials) == 2
        assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
        params[name] = [t.params for t in study.trials]
        assert all(("loss.gamma" in t.params) == ("focal" in name) for t in study.trials)
    # the same sampler seed in every study: the same draws for the same space (backends), the
    # same first draw of a dimension every variant shares
    assert params[names[0]] == params[names[1]] and params[names[2]] == params[names[3]]
    assert params[names[0]][0]["optimizer.lr"] == params[names[2]][0]["optimizer.lr"]
    runs = _runs(root, "tmx")
    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    parents = {r.data.tags["optuna.study_name"]: r for r in runs["study"]}
    assert sorted(parents) == sorted(names)
    assert {p.data.tags["optuna.sampler_seed"] for p in parents.values()} == {"5"}
    trials = {r.info.run_id: r for r in runs["trial"]}
    for name in names:
        for trial in _study(root, name).trials:
            run = trials[trial.user_attrs["mlflow_run_id"]]
            per_fold = client.get_metric_history(run.info.run_id, f"fold/{METRIC}")
            assert sorted(m.step for m in per_fold) == [0, 1]
            assert trial.value == pytest.approx(np.mean([m.value for m in per_fold]))
            assert run.data.metrics["objective"] == pytest.approx(trial.value)
            folds = [r for r in runs["fold"]
                     if r.data.tags["mlflow.parentRunId"] == run.info.run_id]
            assert len(folds) == 2
            assert sorted(r.data.metrics[METRIC] for r in folds) == pytest.approx(
                sorted(m.value for m in per_fold))
    # the verdict: two seeds per study, recomputed here from the verdict runs
    values: dict[tuple[str, str], dict[int, float]] = {}
    for run in runs["verdict"]:
        assert run.info.status == "FINISHED"
        parent = next(p for p in runs["study"]
                      if p.info.run_id == run.data.tags["mlflow.parentRunId"])
        best = _study(root, parent.data.tags["optuna.study_name"]).best_trial
        assert run.data.tags["optuna.trial_number"] == str(best.number)
        arm = (parent.data.tags["orchestrator.variant"], parent.data.tags["orchestrator.contract.backend"])
        values.setdefault(arm, {})[int(run.data.tags["orchestrator.seed"])] = \
            run.data.metrics["test/average_precision"]
    assert all(sorted(v) == [0, 1] for v in values.values()) and len(values) == 4
    key = "verdict/test/average_precision"
    for (variant, backend), seeds in values.items():
        parent = parents[f"tmx-{variant}-{backend}"]
        s = summarize([seeds[0], seeds[1]])
        assert parent.data.metrics[f"{key}_mean"] == pytest.approx(s.mean)
        assert parent.data.metrics[f"{key}_ci_low"] == pytest.approx(s.low)
        assert parent.data.metrics[f"{key}_ci_high"] == pytest.approx(s.high)
    focal, bce = "loss_binary_focal", "loss_binary_crossentropy"
    for backend in ("torch", "tensorflow"):
        p = paired([values[("loss=binary_focal", backend)][k] for k in (0, 1)],
                   [values[("loss=binary_crossentropy", backend)][k] for k in (0, 1)])
        metrics = parents[f"tmx-loss=binary_focal-{backend}"].data.metrics
        prefix = f"verdict/{focal} {backend} - {bce} {backend}/diff_"
        assert metrics[prefix + "mean"] == pytest.approx(p.mean)
        assert metrics[prefix + "ci_low"] == pytest.approx(p.low)
    p = paired([values[("loss=binary_focal", "torch")][k] for k in (0, 1)],
               [values[("loss=binary_focal", "tensorflow")][k] for k in (0, 1)])
    metrics = parents["tmx-loss=binary_focal-tensorflow"].data.metrics
    assert metrics[f"verdict/{focal} torch - {focal} tensorflow/diff_mean"] == \
        pytest.approx(p.mean)
    # the ensemble: the two seeds' test outputs averaged and scored again here
    ensembles = {}
    for arm, outputs in _verdict_outputs(client, runs["verdict"], tmp_path).items():
        variant, backend = arm
        ensembles[arm] = _ap(outputs)
        metrics = parents[f"tmx-{variant}-{backend}"].data.metrics
        label = f"{variant.replace('=', '_')} {backend}"
        assert metrics[f"{key}_n"] == 2 and metrics["verdict/ensemble/test/average_precision"
                                                     "_n"] == 1
        assert metrics["verdict/ensemble/test/average_precision_mean"] == \
            pytest.approx(ensembles[arm])
        assert metrics[f"verdict/{label} ensemble - {label} seeds/diff_mean"] == \
            pytest.approx(ensembles[arm] - np.mean(list(values[arm].values())))
    metrics = parents["tmx-loss=binary_focal-torch"].data.metrics
    assert metrics[f"verdict/{focal} torch ensemble - {bce} torch ensemble/diff_mean"] == \
        pytest.approx(ensembles[("loss=binary_focal", "torch")]
                      - ensembles[("loss=binary_crossentropy", "torch")])
    assert "ensemble" in proc.stdout


def _verdict_outputs(client, verdict_runs, tmp_path: Path) -> dict[tuple, list[tuple]]:
    """Per arm (variant, backend; with the outer fold under nested cross-validation), the
    ``(truth, outputs)`` each verdict run logged; each run's own metric is checked against
    its outputs on the way."""
    from sklearn.metrics import average_precision_score

    out: dict[tuple, list[tuple]] = {}
    for run in verdict_runs:
        tags = run.data.tags
        local = client.download_artifacts(run.info.run_id, "verdict/test_outputs.npz",
                                          str(tmp_path / "outputs" / run.info.run_id))
        with np.load(local) as saved:
            truth, outputs = saved["truth"], saved["outputs"]
        assert average_precision_score(truth, outputs) == pytest.approx(
            run.data.metrics["test/average_precision"])
        arm = (tags["orchestrator.variant"], tags["orchestrator.contract.backend"])
        if "orchestrator.outer_fold" in tags:
            arm += (int(tags["orchestrator.outer_fold"]),)
        out.setdefault(arm, []).append((truth, outputs))
    return out


def _ap(outputs: list[tuple]) -> float:
    """Average precision of the mean of several runs' outputs on one test part."""
    from sklearn.metrics import average_precision_score

    truth = outputs[0][0]
    assert all(np.array_equal(t, truth) for t, _ in outputs)
    return float(average_precision_score(truth, np.mean([o for _, o in outputs], axis=0)))


def test_nested_search_verdict_per_outer_fold_with_ensemble(tmp_path) -> None:
    """Nested cross-validation: a study per outer fold under one ``nested`` run, the verdict
    per outer fold the mean of its seeds, the ensemble per outer fold the mean of the seeds'
    outputs; the nested run's numbers are those recomputed here from the verdict runs."""
    config = _base("tnest")
    config["train"]["epochs"] = 1
    config["tune"] = _tune("tnest", 1, nested={"folds": 2},
                           verdict={"seeds": 2, "ensemble": True})
    proc = _cli(tmp_path, "tune", str(_write(tmp_path, config)))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    root = tmp_path / "mlruns"
    runs = _runs(root, "tnest")
    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    (nested,) = runs["nested"]
    studies = sorted(runs["study"], key=lambda r: r.data.tags["optuna.study_name"])
    assert [r.data.tags["optuna.study_name"] for r in studies] == \
        ["tnest-outer0-torch", "tnest-outer1-torch"]
    assert {r.data.tags["mlflow.parentRunId"] for r in studies} == {nested.info.run_id}
    assert len(runs["verdict"]) == 4
    per_fold = {k: [r.data.metrics["test/average_precision"] for r in runs["verdict"]
                    if r.data.tags["orchestrator.outer_fold"] == str(k)] for k in (0, 1)}
    assert all(len(v) == 2 for v in per_fold.values())
    single = [float(np.mean(per_fold[k])) for k in (0, 1)]
    outputs = _verdict_outputs(client, runs["verdict"], tmp_path)
    ensemble = [_ap(outputs[("-", "torch", k)]) for k in (0, 1)]
    metrics = nested.data.metrics
    history = {m.step: m.value for m in client.get_metric_history(
        nested.info.run_id, "verdict/test/average_precision")}
    assert history == pytest.approx({0: single[0], 1: single[1]})
    s, e, d = summarize(single), summarize(ensemble), paired(ensemble, single)
    assert metrics["verdict/test/average_precision_mean"] == pytest.approx(s.mean)
    assert metrics["verdict/test/average_precision_ci_low"] == pytest.approx(s.low)
    assert metrics["verdict/ensemble/test/average_precision_mean"] == pytest.approx(e.mean)
    assert metrics["verdict/ensemble/test/average_precision_ci_high"] == pytest.approx(e.high)
    assert metrics["verdict/torch ensemble - torch seeds/diff_mean"] == pytest.approx(d.mean)
    assert metrics["verdict/torch ensemble - torch seeds/diff_ci_low"] == pytest.approx(d.low)
    # what the ensemble does without two readable outputs: no value, and why
    from types import SimpleNamespace

    from orchestrator.tuning.verdict import finished_runs
    from orchestrator.tuning.verdict_report import ensemble_value

    uri, study = f"sqlite:///{root / 'mlflow.db'}", SimpleNamespace(
        experiment=SimpleNamespace(task="imbalanced"))
    tags = next(r for r in runs["verdict"] if r.data.tags["orchestrator.outer_fold"] == "0"
                ).data.tags
    found = finished_runs(uri, tags["mlflow.parentRunId"], int(tags["optuna.trial_number"]))
    metric = "test/average_precision"
    assert ensemble_value(study, found, uri, metric) == (pytest.approx(ensemble[0]), "")
    value, why = ensemble_value(study, {0: found[0]}, uri, metric)
    assert value is None and why.startswith("1 finished verdict run(s)")
    artifacts = found[1].info.artifact_uri.removeprefix("file://")
    (Path(artifacts) / "verdict" / "test_outputs.npz").write_bytes(b"not a zip file")
    value, why = ensemble_value(study, found, uri, metric)
    assert value is None and "test_outputs.npz cannot be read" in why, why


def test_pruning_across_folds_stops_a_bad_trial_before_its_last_fold(tmp_path) -> None:
    config = _base("tprune", cv={"folds": 3})
    config["tune"] = _tune("tprune", 2, sampler={"name": "grid"},
                           pruner={"name": "median", "n_startup_trials": 1,
                                   "n_warmup_steps": 0})
    # the grid runs a good learning rate first, then one that cannot learn in 2 epochs
    config["tune"]["space"] = {"optimizer.lr": {"type": "categorical",
                                                "choices": [0.02, 1.0e-7]}}
    proc = _cli(tmp_path, "tune", str(_write(tmp_path, config)))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    root = tmp_path / "mlruns"
    good, bad = sorted(_study(root, "tprune-torch").trials, key=lambda t: t.number)
    assert good.state == optuna.trial.TrialState.COMPLETE and good.params["optimizer.lr"] == 0.02
    assert bad.state == optuna.trial.TrialState.PRUNED
    runs = _runs(root, "tprune")
    run = next(r for r in runs["trial"] if r.info.run_id == bad.user_attrs["mlflow_run_id"])
    assert run.info.status == "KILLED"
    assert int(run.data.tags["optuna.pruned_at_fold"]) < 2
    folds = [r for r in runs["fold"] if r.data.tags["mlflow.parentRunId"] == run.info.run_id]
    assert len(folds) < 3 and any(r.info.status == "KILLED" for r in folds)
    assert max(bad.intermediate_values) < 3 * 2  # steps fold * epochs + epoch, last fold unseen


def _complete(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return conn.execute("SELECT count(*) FROM trials WHERE state = 'COMPLETE'"
                                ).fetchone()[0]
    except sqlite3.Error:
        return 0


def test_resumed_study_with_cv_and_matrix_ends_at_exactly_the_budget(tmp_path) -> None:
    config = _base("tres", cv={"folds": 2}, matrix={"loss": [BCE, FOCAL]})
    config["tune"] = _tune("tres", 3)
    path = _write(tmp_path, config)
    root = tmp_path / "mlruns"
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "tune", str(path)],
                            env=_env(root), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    deadline = time.monotonic() + 600
    while _complete(root / "optuna.db") < 1:  # stopped inside the first study
        assert time.monotonic() < deadline and proc.poll() is None, "no trial completed"
        time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    again = _cli(tmp_path, "tune", str(path))
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    for variant in ("binary_crossentropy", "binary_focal"):
        study = _study(root, f"tres-loss={variant}-torch")
        states = [t.state for t in study.trials]
        assert states.count(optuna.trial.TrialState.COMPLETE) == 3, states
        assert optuna.trial.TrialState.WAITING not in states
    runs = _runs(root, "tres")
    assert len(runs["study"]) == 2
    assert all(r.info.status == "FINISHED" for r in runs["study"])
    assert "RUNNING" not in {r.info.status for r in runs["trial"] + runs["fold"]}


# --- bad input: one line, exit 2, nothing created ---------------------------------------------


def _few_positives(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path / "few.csv"
    rows = ["a,b,label"] + [f"{rng.normal():.3f},{rng.normal():.3f},{int(i < 4)}"
                            for i in range(60)]
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize("case", ["folds_vs_class", "grouped", "seeds", "no_variant",
                                  "ensemble_of_one", "ensemble_task"])
def test_bad_tuning_input_is_one_line_and_creates_nothing(tmp_path, case: str) -> None:
    config = _base("tbad", cv={"folds": 2}, matrix={"loss": [BCE, FOCAL]})
    config["tune"] = _tune("tbad", 2)
    expected = {"folds_vs_class": "cv.folds: 5: need 2 <= k <= 3 (class 1 has 3 rows in the "
                                  "training part",
                "grouped": "cv.split: 'grouped': task 'imbalanced' has no groups",
                "seeds": "tune.verdict.seeds",
                "no_variant": "tune.space.loss.gamma: exists in no variant",
                "ensemble_of_one": "tune.verdict: ensemble: true averages the seeds' outputs "
                                   "and needs seeds >= 2 (seeds is 1)",
                "ensemble_task": "tune.verdict.ensemble: task 'vanishing' cannot score "
                                 "averaged outputs"}[case]
    if case == "folds_vs_class":
        config["data"] = {"path": str(_few_positives(tmp_path)), "test_size": 0.2,
                          "val_size": 0.0}
        config["cv"] = {"folds": 5}
    elif case == "grouped":
        config["cv"]["split"] = "grouped"
    elif case == "seeds":
        config["tune"]["verdict"] = {"seeds": 50}
    elif case == "ensemble_of_one":
        config["tune"]["verdict"] = {"seeds": 1, "ensemble": True}
    elif case == "ensemble_task":
        config = yaml.safe_load(Path("experiments/vanishing.yaml").read_text())
        config.update(name="tbad", backends=["torch"], tune=_tune("tbad", 2, metric="val/accuracy",
                                                                  verdict={"ensemble": True}))
    else:
        config["tune"]["space"]["loss.gamma"] = {"type": "float", "low": 0, "high": 2,
                                                 "when": {"loss.name": ["categorical_focal"]}}
    proc = _cli(tmp_path, "tune", str(_write(tmp_path, config)))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and expected in lines[0], proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    root = tmp_path / "mlruns"
    assert not (root / "optuna.db").exists() and not (root / "mlflow.db").exists()


# --- the shipped cross-validated and tuning files ---------------------------------------------


def test_shipped_cv_file_runs_folds_with_early_stopping(tmp_path) -> None:
    """experiments/cv/imbalanced_cv.yaml on a small budget (3 folds, one loss, torch): one
    nested run per fold and the parent's mean and standard deviation; early stopping ends each
    fold (train/loss watched for a maximum here: the best epoch is the first)."""
    path = Path("experiments/cv/imbalanced_cv.yaml")
    proc = _cli(tmp_path, "run", "--quiet", str(path), "-o", "cv.folds=3", "-o",
                "train.epochs=5", "-o", "matrix={}", "-o", "backends=[torch]", "-o",
                "train.early_stopping={metric: train/loss, mode: max, patience: 2}")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    runs = _runs(tmp_path / "mlruns", yaml.safe_load(path.read_text())["name"])
    (parent,) = runs["run"]
    folds = sorted(runs["fold"], key=lambda r: int(r.data.tags["orchestrator.fold"]))
    assert [int(r.data.tags["orchestrator.fold"]) for r in folds] == [0, 1, 2]
    assert {r.data.tags["mlflow.parentRunId"] for r in folds} == {parent.info.run_id}
    for fold in folds:
        assert fold.info.status == "FINISHED"
        assert fold.data.tags["orchestrator.best_epoch"] == "1"
        assert fold.data.tags["orchestrator.stopped_early_at"] == "3"
    values = np.array([r.data.metrics["test/average_precision"] for r in folds])
    assert parent.data.metrics["cv/test/average_precision_mean"] == pytest.approx(values.mean())
    assert parent.data.metrics["cv/test/average_precision_std"] == pytest.approx(values.std())


def test_shipped_searches_plan_their_studies(tmp_path) -> None:
    files = sorted(str(p) for p in Path("experiments/tune").glob("*.yaml"))
    proc = _cli(tmp_path, "tune", "--dry-run", *files)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in ("imbalanced-tune-loss=binary_focal-outer4-tensorflow",
                 "har-tune-outer0-torch", "nested cross-validation", "verdict"):
        assert name in proc.stdout.replace("\n", ""), name
    assert not (tmp_path / "mlruns").exists()
