"""Tuning with Optuna on real trials: conditional spaces, pruning, the MLflow run tree, NaN
trials, interrupt and resume on SQLite, and several workers on the real PostgreSQL server."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from mlflow.tracking import MlflowClient

from orchestrator.cli import main

BASE = {
    "task": "digits",
    "loss": {"name": "sparse_categorical_crossentropy", "from_logits": True},
    "optimizer": {"name": "adam"},
    "train": {"epochs": 2, "batch_size": 128},
    "backends": ["torch"],
}
SPACE = {
    "optimizer.name": {"type": "categorical", "choices": ["sgd", "momentum", "nesterov", "adam"]},
    "optimizer.lr": {"type": "float", "low": 1e-4, "high": 1.0, "log": True},
    "optimizer.momentum": {"type": "float", "low": 0.5, "high": 0.95,
                           "when": {"optimizer.name": ["momentum", "nesterov"]}},
    "optimizer.beta1": {"type": "float", "low": 0.8, "high": 0.95,
                        "when": {"optimizer.name": ["adam"]}},
}


def _config(name: str, trials: int, **tune) -> dict:
    return {**BASE, "name": name,
            "tune": {"metric": "val/loss", "direction": "minimize", "trials": trials,
                     "sampler": {"name": "random", "seed": 1},
                     "pruner": {"name": "median", "n_startup_trials": 2, "n_warmup_steps": 0},
                     "space": SPACE, "verdict": None, **tune}}


def _env(root: Path) -> dict[str, str]:
    env = {**os.environ, "ORCHESTRATOR_MLRUNS": str(root)}
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


def _write(tmp_path: Path, config: dict) -> Path:
    path = tmp_path / f"{config['name']}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _cli(tmp_path: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], text=True,
                          capture_output=True, env=_env(tmp_path / "mlruns"), timeout=timeout)


def _study(root: Path, name: str, storage: str | None = None) -> optuna.Study:
    from orchestrator.tuning.study import _driver

    return optuna.load_study(study_name=name,
                             storage=_driver(storage or f"sqlite:///{root / 'optuna.db'}"))


def _mlflow_runs(root: Path, experiment: str) -> dict[str, list]:
    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    out: dict[str, list] = {}
    for run in runs:
        out.setdefault(run.data.tags.get("orchestrator.kind"), []).append(run)
    return out


@pytest.mark.parametrize("backend", ["torch", "tensorflow"])
def test_tuning_smoke_builds_the_mlflow_tree(tmp_path, backend: str) -> None:
    # two good trials, then one that learns nothing in an epoch (SGD at lr 1e-4): the median
    # pruner prunes it on any CPU, not only when the seeded sampler happens to draw a bad one
    good = {"optimizer.name": "adam", "optimizer.lr": 0.01, "optimizer.beta1": 0.9}
    config = _config("tune-smoke", 6, enqueue=[good, good, {"optimizer.name": "sgd",
                                                            "optimizer.lr": 1e-4}])
    config["backends"] = [backend]
    proc = _cli(tmp_path, "tune", str(_write(tmp_path, config)))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Best per study" in proc.stdout
    root = tmp_path / "mlruns"
    study = _study(root, f"tune-smoke-{backend}")
    states = [t.state for t in study.trials]
    assert len(states) == 6 and states[2] == optuna.trial.TrialState.PRUNED
    # conditional space: each trial carries exactly the parameters of its branch
    for trial in study.trials:
        name = trial.params["optimizer.name"]
        expected = {"optimizer.name", "optimizer.lr"} | (
            {"optimizer.momentum"} if name in ("momentum", "nesterov") else
            {"optimizer.beta1"} if name == "adam" else set())
        assert set(trial.params) == expected, trial.params
    runs = _mlflow_runs(root, "tune-smoke")
    (parent,) = runs["study"]
    children = runs["trial"]
    assert len(children) == 6
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["optuna.study_name"] == f"tune-smoke-{backend}"
    assert study.user_attrs["mlflow_parent_run_id"] == parent.info.run_id
    by_number = {int(r.data.tags["optuna.trial_number"]): r for r in children}
    for trial in study.trials:
        run = by_number[trial.number]
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert trial.user_attrs["mlflow_run_id"] == run.info.run_id
        assert run.data.params["optimizer.name"] == trial.params["optimizer.name"]
        if trial.state == optuna.trial.TrialState.PRUNED:
            assert run.info.status == "KILLED"
            assert int(run.data.tags["optuna.pruned_at_epoch"]) == max(trial.intermediate_values)
        else:
            assert run.info.status == "FINISHED"
            assert run.data.metrics["objective"] == pytest.approx(trial.value)
    best = study.best_trial
    assert parent.data.metrics["best/value"] == pytest.approx(best.value)
    for key, value in best.params.items():
        assert parent.data.tags[f"best.{key}"] == str(value)
    assert parent.data.metrics["trials/pruned"] == states.count(optuna.trial.TrialState.PRUNED)
    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    plots = {a.path for a in client.list_artifacts(parent.info.run_id, "plots")}
    assert "plots/optimization_history.png" in plots
    import pandas as pd

    (export,) = (root / "tuning").glob(f"tune-smoke-{backend}-*.parquet")
    frame = pd.read_parquet(export)
    assert len(frame) == 6 and {"number", "value", "state", "duration"} <= set(frame.columns)


def test_a_nan_trial_fails_with_its_reason_and_the_study_goes_on(tmp_path) -> None:
    config = _config("tune-nan", 4, pruner={"name": "none"})
    # an lr beyond 10 is refused at validation; adagrad with an eps that is 0 in float32
    # divides 0 by 0 on the always-blank pixels' weights (zero gradient): NaN at epoch 1
    config["optimizer"] = {"name": "adagrad", "lr": 0.05}
    config["tune"]["sampler"] = {"name": "grid"}
    config["tune"]["space"] = {"optimizer.eps": {"type": "categorical",
                                                 "choices": [1e-300, 1e-7]}}
    config["tune"]["trials"] = 2
    proc = _cli(tmp_path, "tune", str(_write(tmp_path, config)))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    study = _study(tmp_path / "mlruns", "tune-nan-torch")
    by_eps = {t.params["optimizer.eps"]: t for t in study.trials}
    assert by_eps[1e-300].state == optuna.trial.TrialState.FAIL
    assert "training loss is" in by_eps[1e-300].user_attrs["fail_reason"]
    assert by_eps[1e-7].state == optuna.trial.TrialState.COMPLETE
    runs = _mlflow_runs(tmp_path / "mlruns", "tune-nan")["trial"]
    failed = next(r for r in runs if r.info.status == "FAILED")
    assert "NonFiniteLossError" in failed.data.tags["orchestrator.error"]


def _trial_states(db: Path) -> list[str]:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return [r[0] for r in conn.execute("SELECT state FROM trials")]
    except sqlite3.Error:
        return []


def _running_epochs(db: Path) -> int:
    """Epochs reported by the trial that is RUNNING (0 when none is)."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            row = conn.execute("SELECT count(*) FROM trial_intermediate_values v JOIN trials t "
                               "ON v.trial_id = t.trial_id WHERE t.state = 'RUNNING'").fetchone()
            return int(row[0])
    except sqlite3.Error:
        return 0


def test_interrupt_and_resume_completes_the_budget_with_one_parent(tmp_path) -> None:
    config = _config("tune-resume", 4, pruner={"name": "none"})
    config["train"]["epochs"] = 12  # a trial under way has epochs left when the stop comes
    path = _write(tmp_path, config)
    root = tmp_path / "mlruns"
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "tune", str(path)],
                            env=_env(root), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    deadline = time.monotonic() + 300
    # two trials done and a third under way: it has reported an epoch and has more to go
    while not (_trial_states(root / "optuna.db").count("COMPLETE") >= 2
               and 1 <= _running_epochs(root / "optuna.db") < 10):
        assert time.monotonic() < deadline and proc.poll() is None, "no trial under way"
        time.sleep(0.05)
    completed_before = {t.number: t.params for t in _study(root, "tune-resume-torch").trials
                        if t.state == optuna.trial.TrialState.COMPLETE}
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    again = _cli(tmp_path, "tune", str(path))
    assert again.returncode == 0, again.stdout + again.stderr
    study = _study(root, "tune-resume-torch")
    finished = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(finished) == 4  # the total budget, not 4 more
    kept = {t.number: t.params for t in finished}
    assert all(kept[n] == p for n, p in completed_before.items())
    runs = _mlflow_runs(root, "tune-resume")
    assert len(runs["study"]) == 1 and runs["study"][0].info.status == "FINISHED"
    statuses = [r.info.status for r in runs["trial"]]
    assert "RUNNING" not in statuses
    assert statuses.count("FINISHED") == 4
    interrupted = [t for t in study.trials if t.state == optuna.trial.TrialState.FAIL]
    assert interrupted, "the stop interrupted no trial: the resume was not tested"
    for trial in interrupted:  # the interrupted trial was retried with the same parameters
        retry = next(t for t in study.trials
                     if t.system_attrs.get("failed_trial") == trial.number)
        assert retry.params == trial.params


def _two_queued_trials(tmp_path: Path, monkeypatch, name: str):
    """A torch study ``<name>-torch`` with two trials queued, in a store under ``tmp_path``;
    (the store's folder, the experiment)."""
    from orchestrator.config.loader import load

    root = tmp_path / "mlruns"
    monkeypatch.setenv("ORCHESTRATOR_MLRUNS", str(root))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    path = _write(tmp_path, _config(name, 2, pruner={"name": "none"}))
    assert main(["tune", "--workers", "0", str(path)]) == 0  # the study, two trials queued
    (exp,) = load([path])
    return root, exp


def _work_until_sigterm(exp) -> None:
    """A tuning worker in this process, which a SIGTERM (sent by the test) stops; this
    process's signal handlers restored after."""
    from orchestrator.tracking.store import tracking_uri
    from orchestrator.tuning.study import study_ref
    from orchestrator.tuning.worker import work

    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
            work(exp, study_ref(exp, "torch"), tracking_uri())
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)


def test_a_stop_held_until_the_objective_is_told_keeps_the_trial_complete(
        tmp_path, monkeypatch) -> None:
    """A stop that comes while the objective is written takes effect after it: the trial stays
    COMPLETE and is neither failed again nor retried (the budget holds)."""
    root, exp = _two_queued_trials(tmp_path, monkeypatch, "tune-held")
    real_tell = optuna.study.Study.tell

    def tell(self, trial, values=None, state=None, **kwargs):
        if values is not None:  # SIGTERM arrives while the objective is being written
            os.kill(os.getpid(), signal.SIGTERM)
        return real_tell(self, trial, values, state, **kwargs)

    monkeypatch.setattr(optuna.study.Study, "tell", tell)
    _work_until_sigterm(exp)
    states = [t.state for t in _study(root, "tune-held-torch").trials]
    assert states == [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.WAITING]
    (run,) = _mlflow_runs(root, "tune-held")["trial"]
    assert run.info.status == "FINISHED"


def test_a_stop_during_the_pop_gives_the_trial_back_with_a_heartbeat_on_record(
        tmp_path, monkeypatch) -> None:
    """A stop that comes while a worker pops a waiting trial: the trial goes back to WAITING
    (left RUNNING, a resumed search would wait for it); and a popped trial has a heartbeat at
    once (a worker killed before its heartbeat thread beat left one Optuna never calls stale)."""
    from orchestrator.tuning import worker as tuning_worker

    root, exp = _two_queued_trials(tmp_path, monkeypatch, "tune-pop")
    real_pop, popped = tuning_worker.pop_waiting_trial, []

    def pop(study):
        popped.append(real_pop(study))
        with sqlite3.connect(root / "optuna.db") as db:
            popped.append(db.execute("SELECT count(*) FROM trial_heartbeats WHERE trial_id = ?",
                                     (popped[0],)).fetchone()[0])
        os.kill(os.getpid(), signal.SIGTERM)  # held until the pop's block ends
        return popped[0]

    monkeypatch.setattr(tuning_worker, "pop_waiting_trial", pop)
    _work_until_sigterm(exp)
    assert popped[0] is not None and popped[1] == 1  # RUNNING, with a heartbeat
    states = [t.state for t in _study(root, "tune-pop-torch").trials]
    assert states == [optuna.trial.TrialState.WAITING] * 2


@pytest.fixture
def postgres_url():
    """A fresh database on the PostgreSQL the docs promise; its absence fails (pg_service)."""
    from pg_service import fresh_database

    with fresh_database("orchestrator_test") as name:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"


def test_workers_on_postgres_finish_exactly_the_budget_despite_a_killed_worker(
        tmp_path, postgres_url) -> None:
    budget = 6
    config = _config("tune-pg", budget, pruner={"name": "none"},
                     heartbeat={"interval": 1, "grace": 4, "max_retry": 3})
    config["train"]["epochs"] = 6
    path = _write(tmp_path, config)
    root = tmp_path / "mlruns"
    created = _cli(tmp_path, "tune", str(path), "--workers", "0", "--storage", postgres_url)
    assert created.returncode == 0, created.stdout + created.stderr
    workers = [subprocess.Popen([sys.executable, "-m", "orchestrator", "worker", str(path),
                                 "--storage", postgres_url], env=_env(root),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True) for _ in range(3)]
    study = _study(root, "tune-pg-torch", postgres_url)
    deadline = time.monotonic() + 300
    victim = None
    while victim is None:
        assert time.monotonic() < deadline, "no trial started"
        time.sleep(0.5)
        running = [t for t in study.get_trials() if t.state == optuna.trial.TrialState.RUNNING
                   and t.intermediate_values]
        if running:
            victim = running[0]
    # kill the worker running that trial: find it through the trial's MLflow run pid tag
    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    pid = int(client.get_run(victim.user_attrs["mlflow_run_id"]).data.tags["orchestrator.pid"])
    killed = next(w for w in workers if _descends(pid, w.pid))
    os.killpg(killed.pid, signal.SIGKILL)
    for worker in workers:
        out, _ = worker.communicate(timeout=600)
        if worker is not killed:
            assert worker.returncode == 0, out
    trials = study.get_trials()
    states = [t.state for t in trials]
    dead = next(t for t in trials if t.number == victim.number)
    assert dead.state == optuna.trial.TrialState.FAIL
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == victim.number]
    assert len(retries) == 1 and retries[0].params == victim.params
    assert retries[0].state == optuna.trial.TrialState.COMPLETE
    assert states.count(optuna.trial.TrialState.COMPLETE) == budget
    assert len(trials) == budget + 1  # nothing ran twice except the retry
    dead_run = client.get_run(victim.user_attrs["mlflow_run_id"])
    assert dead_run.info.status == "KILLED"


def _descends(pid: int, ancestor: int) -> bool:
    """Whether ``pid`` is ``ancestor`` or one of its descendants (Linux /proc)."""
    while pid > 1:
        if pid == ancestor:
            return True
        try:
            with open(f"/proc/{pid}/stat") as handle:
                pid = int(handle.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            return False
    return False


@pytest.mark.parametrize(("change", "key", "words"), [
    ({"optimizer.lr": {"type": "float", "low": 1.0, "high": 0.1}}, "tune.space.optimizer.lr",
     "empty range"),
    ({"optimizer.lr": {"type": "float", "low": 0.0, "high": 0.1, "log": True}},
     "tune.space.optimizer.lr", "log-scale range needs low > 0"),
    ({"optimizer.betas": {"type": "float", "low": 0.1, "high": 0.2}},
     "tune.space.optimizer.betas", "no hyperparameter 'betas'"),
    ({"modle.hidden": {"type": "int", "low": 1, "high": 2}}, "tune.space.modle.hidden",
     "did you mean 'model'"),
    ({"optimizer.momentum": {"type": "float", "low": 0.1, "high": 0.9,
                             "when": {"optimizer.kind": ["sgd"]}}},
     "tune.space.optimizer.momentum.when.optimizer.kind", "declared earlier"),
    ({"loss.gamma": {"type": "float", "low": 0.0, "high": 5.0}}, "tune.space.loss.gamma",
     "no hyperparameter 'gamma'"),
])
def test_bad_search_spaces_are_rejected_before_launch(tmp_path, capsys, change, key,
                                                      words) -> None:
    config = _config("bad-space", 2)
    config["tune"]["space"] = {"optimizer.name": {"type": "categorical",
                                                  "choices": ["sgd", "adam"]}, **change}
    code = main(["validate", str(_write(tmp_path, config))])
    err = capsys.readouterr().err
    assert code == 2, err
    assert key in err and words in err, err


def test_tuning_on_test_data_is_refused(tmp_path, capsys) -> None:
    config = _config("leaky", 2)
    config["tune"]["metric"] = "test/accuracy"
    assert main(["validate", str(_write(tmp_path, config))]) == 2
    assert "would tune on the test data" in capsys.readouterr().err


def test_plan_and_dry_run_show_the_studies_without_touching_anything(tmp_path, capsys,
                                                                     monkeypatch) -> None:
    monkeypatch.setenv("ORCHESTRATOR_MLRUNS", str(tmp_path / "mlruns"))
    config = _config("planned", 7, timeout=120)
    config["backends"] = ["torch", "tensorflow"]
    path = str(_write(tmp_path, config))
    assert main(["plan", path]) == 0
    out = capsys.readouterr().out
    assert "Plan (orchestrator run): 2 run(s)" in out
    assert "planned-torch, planned-tensorflow" in out
    assert "7 trials each, minimize val/loss; sampler random (seed 1), pruner median" in out
    assert "at most 120 s per invocation" in out
    assert "float in [0.0001, 1], log scale" in out
    assert "optimizer.name is momentum or nesterov" in out
    storage = "postgresql://root:secret@127.0.0.1:1/none"  # never opened
    assert main(["tune", "--dry-run", "--storage", storage, path]) == 0
    out = capsys.readouterr().out
    assert "postgresql://root:***@127.0.0.1:1/none" in out and "secret" not in out
    assert "Plan (orchestrator run)" not in out
    assert not (tmp_path / "mlruns").exists()
    plain = {key: value for key, value in config.items() if key != "tune"}
    assert main(["tune", "--dry-run", str(_write(tmp_path, {**plain, "name": "plain"}))]) == 2
    assert "tune: is required by this command" in capsys.readouterr().err


def test_two_workers_on_a_journal_file_share_one_budget(tmp_path) -> None:
    config = _config("tune-journal", 4, pruner={"name": "none"})
    config["train"]["epochs"] = 1
    journal = tmp_path / "study.log"
    proc = _cli(tmp_path, "tune", str(_write(tmp_path, config)), "--workers", "2",
                "--storage", f"journal:{journal}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    study = optuna.load_study(study_name="tune-journal-torch",
                              storage=JournalStorage(JournalFileBackend(str(journal))))
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 4
    runs = _mlflow_runs(tmp_path / "mlruns", "tune-journal")
    assert len(runs["trial"]) == 4
    # at most the two workers ran them (which one takes how many is the scheduler's choice;
    # that no trial goes to both is tests/test_tuning_races.py)
    assert 1 <= len({r.data.tags["orchestrator.pid"] for r in runs["trial"]}) <= 2
