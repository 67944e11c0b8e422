"""Runs side by side (``orchestrator run --jobs N``): every run finishes and is reported in plan
order; a stop ends every run under way KILLED; the default comes from ORCHESTRATOR_JOBS."""

from __future__ import annotations

import signal

import pytest

from orchestrator.orchestration.parent import default_jobs
from test_run_lifecycle import DIGITS, _poll_runs, _runs, _start


def test_default_jobs(monkeypatch) -> None:
    monkeypatch.setenv("ORCHESTRATOR_JOBS", "3")
    assert default_jobs() == 3
    monkeypatch.delenv("ORCHESTRATOR_JOBS")
    assert 1 <= default_jobs() <= 4
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv("ORCHESTRATOR_JOBS", bad)
        with pytest.raises(ValueError, match="ORCHESTRATOR_JOBS must be a whole number >= 1"):
            default_jobs()


def test_runs_side_by_side_all_finish_in_plan_order(tmp_path) -> None:
    # One backend, so that both workers pay the same start-up (a TensorFlow worker imports for
    # seconds longer than a torch one, and a short torch run can end before it starts).
    config = {**DIGITS, "name": "parallel", "backends": ["torch"],
              "train": {"epochs": 20, "batch_size": 64},
              "matrix": {"optimizer": [{"name": "sgd"}, {"name": "adam"}, {"name": "rmsprop"}]}}
    proc = _start(tmp_path, config, "--jobs", "2")
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    runs = _runs(tmp_path / "mlruns", "parallel")
    assert len(runs) == 3 and all(r.info.status == "FINISHED" for r in runs)
    # two at a time: the first two runs were under way together
    first, second = sorted(runs, key=lambda r: r.info.start_time)[:2]
    assert second.info.start_time < first.info.end_time
    table = out[out.index("Summary"):]
    rows = [line for line in table.splitlines() if "parallel[" in line]
    assert [next(o for o in ("sgd", "adam", "rmsprop") if o in r) for r in rows] == [
        "sgd", "adam", "rmsprop"]


def test_sigterm_kills_every_run_under_way(tmp_path) -> None:
    config = {**DIGITS, "name": "stopped", "backends": ["torch"], "train": {"epochs": 500},
              "seeds": [0, 1, 2]}
    proc = _start(tmp_path, config, "--jobs", "2")
    root = tmp_path / "mlruns"
    training = _poll_runs(root, lambda runs, trained: len(trained) >= 2 and sorted(trained))
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    runs = _runs(root, "stopped")
    assert sorted(r.info.run_id for r in runs) == sorted(training)  # the third never started
    assert all(r.info.status == "KILLED" for r in runs), (
        [(r.info.status, r.data.tags.get("orchestrator.error")) for r in runs], out[-4000:])
    assert "interrupted: 2 of 3 run(s) done or stopped" in out


def test_side_by_side_runs_start_longest_first_from_their_last_duration(tmp_path,
                                                                        monkeypatch) -> None:
    from mlflow.tracking import MlflowClient

    from orchestrator.config.loader import resolve
    from orchestrator.orchestration.plan import make_plan
    from orchestrator.orchestration.parent import start_order
    from orchestrator.tracking.store import ensure_store

    monkeypatch.setenv("ORCHESTRATOR_MLRUNS", str(tmp_path / "mlruns"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = ensure_store()
    plan = make_plan(resolve({**DIGITS, "name": "sched", "seeds": [0, 1]}, "sched.yaml"))
    assert [(r.seed, r.backend) for r in plan] == [
        (0, "torch"), (0, "tensorflow"), (1, "torch"), (1, "tensorflow")]
    assert start_order(plan, uri) == [0, 1, 2, 3]  # nothing known: plan order
    client = MlflowClient(uri)
    experiment = client.create_experiment("sched")
    digest = plan[0].experiment.digest

    def finished(backend: str, seed: int, seconds: float, *, status: str = "FINISHED",
                 config: str = digest, start: int = 1_000_000) -> None:
        run = client.create_run(experiment, start_time=start, tags={
            "orchestrator.kind": "run", "orchestrator.config_digest": config,
            "orchestrator.contract.backend": backend, "orchestrator.seed": str(seed)})
        client.set_terminated(run.info.run_id, status, end_time=start + int(seconds * 1000))

    finished("torch", 0, 5)
    finished("tensorflow", 0, 50)
    finished("tensorflow", 0, 1, start=500_000)  # an older run of the same: the latest counts
    finished("torch", 1, 500, status="FAILED")  # only finished runs count
    finished("tensorflow", 1, 900, config="another config")  # nor other configs
    # unknown runs first in plan order, then the known ones longest first
    assert start_order(plan, uri) == [2, 3, 1, 0]
