"""Warm worker processes (``orchestration.pool``): run after run in one process per backend, each
run as isolated as in a fresh process, a crash costing only its own run, the fixed cost logged."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from plugin_helpers import install_fake_distribution
from test_run_lifecycle import DIGITS, _client, _env, _runs

# Two configurations per backend, the first leaving state behind (batch statistics, layers)
TWO = {**DIGITS, "name": "warm", "train": {"epochs": 2, "batch_size": 64},
       "matrix": {"model.norm": ["batch", "layer"]}}


def _plan_runs(root: Path, config: dict, runs_per_worker: int | None, variant: str = ""
               ) -> dict[str, object]:
    """Run ``config`` (its runs whose name starts with ``variant``) through ``run_plan`` with one
    job, in a store under ``root``; the runs by name."""
    import os

    from orchestrator.config.loader import resolve
    from orchestrator.orchestration.parent import run_plan
    from orchestrator.orchestration.plan import make_plan
    from orchestrator.tracking.store import ensure_store

    os.environ["ORCHESTRATOR_MLRUNS"] = str(root)
    uri = ensure_store()
    plan = [run for run in make_plan(resolve(config, "warm.yaml"))
            if run.run_name.startswith(variant)]
    outcomes = run_plan(plan, uri, interactive=False, jobs=1, runs_per_worker=runs_per_worker)
    assert [o.status for o in outcomes] == ["FINISHED"] * len(plan), outcomes
    assert all(o.overhead is not None and 0 <= o.overhead < o.seconds for o in outcomes)
    return {r.info.run_name: r for r in _runs(root, config["name"])}


def test_a_warm_worker_leaves_nothing_that_changes_the_next_run(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ORCHESTRATOR_MLRUNS", str(tmp_path))  # both restored after the test
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    warm = _plan_runs(tmp_path / "warm", TWO, runs_per_worker=None)
    # the second configuration alone, each backend in a process of its own
    fresh = _plan_runs(tmp_path / "fresh", TWO, runs_per_worker=1, variant="norm=layer")
    assert len(warm) == 4 and sorted(fresh) == sorted(n for n in warm if "norm=layer" in n)
    for backend in ("torch", "tensorflow"):  # warm: both runs of a backend in one process
        pids = {name: run.data.tags["orchestrator.pid"] for name, run in warm.items()
                if backend in name}
        assert len(set(pids.values())) == 1, pids
    for name, run in fresh.items():  # the second run in a worker, as in a process of its own
        ours = {k: v for k, v in warm[name].data.metrics.items() if not k.startswith("system/")}
        theirs = {k: v for k, v in run.data.metrics.items() if not k.startswith("system/")}
        assert sorted(ours) == sorted(theirs)
        np.testing.assert_equal(ours, theirs, err_msg=name)  # NaN == NaN here
    for run in warm.values():
        assert run.data.metrics["system/overhead_seconds"] >= 0
        assert run.data.metrics["system/overhead_cpu_seconds"] >= 0
        assert run.data.metrics["system/run_seconds"] > run.data.metrics[
            "system/overhead_seconds"]


CRASHING_TASK = """
import os

from orchestrator import hookimpl
from orchestrator.tasks.digits import DigitsModel, DigitsTask


class CrashModel(DigitsModel):
    crash: bool = False


class CrashingDigits(DigitsTask):
    name = "crashing_digits"
    summary = "digits whose model building kills its process when model.crash is set (tests)"
    ModelOptions = CrashModel

    def spec_bounds(self, data):
        return None  # validation builds no spec of this task: building one kills the process

    def model_spec(self, model, prepared):
        if model.crash:
            os._exit(3)  # no exception, no cleanup: the process is gone
        return super().model_spec(model, prepared)


@hookimpl
def orchestrator_add_tasks(registry):
    registry.add_task(CrashingDigits)
"""


def test_a_run_that_kills_its_worker_fails_and_the_next_runs_in_a_new_one(tmp_path) -> None:
    site = install_fake_distribution(tmp_path / "site", "crashing", {"crashing": "crashing_task"},
                                     {"crashing_task": CRASHING_TASK})
    config = {**DIGITS, "name": "crashing", "task": "crashing_digits", "backends": ["torch"],
              "train": {"epochs": 1, "batch_size": 64},
              "matrix": {"model.crash": [False, True, False]}}
    path = tmp_path / "crashing.yaml"
    path.write_text(yaml.safe_dump(config))
    env = _env(tmp_path / "mlruns")
    env["PYTHONPATH"] = f"{site}:{env.get('PYTHONPATH', '')}"
    done = subprocess.run([sys.executable, "-m", "orchestrator", "run", "--quiet", "--jobs", "1",
                           str(path)], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    first, crashed, last = _runs(tmp_path / "mlruns", "crashing")
    assert [first.info.status, crashed.info.status, last.info.status] == [
        "FINISHED", "FAILED", "FINISHED"]
    assert crashed.data.tags["orchestrator.error"] == "worker process exited with 3"
    pids = [r.data.tags["orchestrator.pid"] for r in (first, crashed, last)]
    assert pids[0] == pids[1] != pids[2]  # warm until the crash, then a new worker
    assert "worker process exited with 3" in done.stdout
    assert _client(tmp_path / "mlruns").get_run(last.info.run_id).data.metrics[
        "test/accuracy"] > 0.5


@pytest.mark.parametrize("text", ["0", "x"])
def test_runs_per_worker_must_be_a_whole_number(monkeypatch, text: str) -> None:
    from orchestrator.orchestration.parent import runs_per_worker_default

    monkeypatch.setenv("ORCHESTRATOR_RUNS_PER_WORKER", text)
    with pytest.raises(ValueError, match="ORCHESTRATOR_RUNS_PER_WORKER must be a whole number"):
        runs_per_worker_default()


def test_a_run_whose_data_differs_from_the_plan_fails_clearly(tmp_path, monkeypatch) -> None:
    from orchestrator.config.loader import resolve
    from orchestrator.orchestration.parent import check_data, data_key, run_plan
    from orchestrator.orchestration.plan import make_plan
    from orchestrator.tracking.store import ensure_store

    monkeypatch.setenv("ORCHESTRATOR_MLRUNS", str(tmp_path / "mlruns"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    experiments = resolve({**DIGITS, "name": "digest", "backends": ["torch"],
                           "train": {"epochs": 1}}, "digest.yaml")
    digests = check_data(experiments)
    (run,) = make_plan(experiments)
    assert len(digests[data_key(run.experiment, run.seed)]) == 16
    (outcome,) = run_plan([run], ensure_store(), interactive=False,
                          digests={0: "0123456789abcdef"})  # another node's data, say
    assert outcome.status == "FAILED"
    assert "DataDigestError: the data set here has digest" in outcome.error
    assert "the plan's has 0123456789abcdef" in outcome.error
    (failed,) = _runs(tmp_path / "mlruns", "digest")
    assert failed.info.status == "FAILED" and "digest" in failed.data.tags["orchestrator.error"]
