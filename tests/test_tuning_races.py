"""Tuning workers racing on one storage: a waiting trial goes to exactly one worker, on SQLite
and on PostgreSQL, and the storage problems a worker meets are one line.

The race is the pop itself, in two real processes released together by a barrier, 20 rounds per
storage, each round a fresh study of waiting trials that both processes pop until none is left
and finish at once (the smallest objective there is). With ``use_optuna_pop`` the same race
runs Optuna's own pop: on SQLite it handed one trial to both workers in 10 rounds (measured
when the atomic pop was written; not a test, as it needs a lost race to fail)."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys

import optuna
import pytest
import yaml

from pg_service import HOST, PORT, fresh_database

ROUNDS, TRIALS = 20, 8


def _racer(storage: str, barrier, results, use_optuna_pop: bool, rounds: int) -> None:
    """One worker: per round, wait for the other, pop trials until none waits, finish each."""
    import optuna

    from orchestrator.tuning.optuna_compat import pop_waiting_trial, storage_of

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    engine = {"connect_args": {"timeout": 60}} if storage.startswith("sqlite") else {}
    rdb = optuna.storages.RDBStorage(storage, engine_kwargs=engine)
    for round_ in range(rounds):
        study = optuna.load_study(study_name=f"race-{round_}", storage=rdb)
        popped = []
        barrier.wait()
        while True:
            trial_id = study._pop_waiting_trial_id() if use_optuna_pop \
                else pop_waiting_trial(study)
            if trial_id is None:
                break
            popped.append(trial_id)
            try:
                storage_of(study).set_trial_state_values(
                    trial_id, optuna.trial.TrialState.COMPLETE, [0.0])
            except optuna.exceptions.UpdateFinishedTrialError:
                assert use_optuna_pop  # the other worker ran and finished it too
        results.put((round_, popped))


def _race(storage: str, use_optuna_pop: bool = False, rounds: int = ROUNDS
          ) -> list[tuple[list[int], list[int]]]:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    rdb = optuna.storages.RDBStorage(storage)
    for round_ in range(rounds):
        study = optuna.create_study(study_name=f"race-{round_}", storage=rdb)
        for _ in range(TRIALS):
            study.enqueue_trial({}, skip_if_exists=False)
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(2), context.Queue()
    racers = [context.Process(target=_racer, args=(storage, barrier, results, use_optuna_pop,
                                                             rounds))
              for _ in range(2)]
    for racer in racers:
        racer.start()
    popped_in: dict[int, list[list[int]]] = {}
    for _ in range(2 * rounds):
        round_, popped = results.get(timeout=300)
        popped_in.setdefault(round_, []).append(popped)
    for racer in racers:
        racer.join(timeout=60)
        assert racer.exitcode == 0
    for round_ in range(rounds):
        states = [t.state for t in optuna.load_study(study_name=f"race-{round_}",
                                                     storage=rdb).trials]
        assert len(states) == TRIALS  # nobody created a trial
        if not use_optuna_pop:
            assert set(states) == {optuna.trial.TrialState.COMPLETE}, states
    return [tuple(popped_in[r]) for r in range(rounds)]


def _twice(rounds) -> int:
    return sum(len(a) + len(b) - len(set(a) | set(b)) for a, b in rounds)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_two_workers_never_pop_the_same_trial(tmp_path, kind: str) -> None:
    if kind == "sqlite":
        rounds = _race(f"sqlite:///{tmp_path / 'optuna.db'}")
    else:
        with fresh_database("race") as name:
            rounds = _race(f"postgresql+psycopg2://postgres@{HOST}:{PORT}/{name}")
    assert _twice(rounds) == 0
    for a, b in rounds:  # the budget is exact: every trial ran, once
        assert len(a) + len(b) == TRIALS


def _cli(tmp_path, *args: str) -> subprocess.CompletedProcess:
    import os

    env = {**os.environ, "ORCHESTRATOR_MLRUNS": str(tmp_path / "mlruns")}
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], cwd=tmp_path,
                          capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.parametrize("storage, expected", [
    ("redis://127.0.0.1:6379/0", "the Optuna storage redis://127.0.0.1:6379/0 cannot be opened"),
    ("not a url", "the Optuna storage not a url cannot be opened"),
    ("mysql://u:Sx9-pw@127.0.0.1:1/db", "the database driver"),
    (f"postgresql://postgres:Sx9-pw@{HOST}:{PORT}/no_such_db_here",
     "database \"no_such_db_here\" does not exist"),
])
def test_bad_storage_urls_are_one_line(tmp_path, storage: str, expected: str) -> None:
    config = {"name": "bad-storage", "task": "digits", "backends": ["torch"],
              "loss": {"name": "sparse_categorical_crossentropy", "from_logits": True},
              "optimizer": {"name": "adam"}, "train": {"epochs": 1},
              "tune": {"metric": "val/loss", "direction": "minimize", "trials": 1,
                       "space": {"optimizer.lr": {"type": "float", "low": 1e-3, "high": 1e-2}},
                       "verdict": None}}
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(config))
    done = _cli(tmp_path, "worker", "bad.yaml", "--storage", storage)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], lines
    assert "Sx9-pw" not in done.stdout + done.stderr


def test_negative_workers_are_refused(tmp_path) -> None:
    done = _cli(tmp_path, "tune", "x.yaml", "--workers", "-1")
    assert done.returncode == 2 and "-1 is negative" in done.stderr
