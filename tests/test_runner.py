"""Runs side by side (``orchestrator run --jobs N``): every run finishes and is reported in plan
order; a stop ends every run under way KILLED; the default comes from ORCHESTRATOR_JOBS."""

from __future__ import annotations

import signal

import pytest

from orchestrator.runner import default_jobs
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
    assert all(r.info.status == "KILLED" for r in runs)
    assert "interrupted: 2 of 3 run(s) done or stopped" in out
