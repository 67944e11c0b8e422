"""Runs side by side (``orchestrator run --jobs N``): every run finishes and is reported in plan
order; a stop ends every run under way KILLED; the default comes from ORCHESTRATOR_JOBS."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
import yaml

from orchestrator.orchestration.parent import default_jobs
from plugin_helpers import install_fake_distribution
from test_run_lifecycle import DIGITS, _env, _poll_runs, _runs, _start

# A digits task whose model building waits until `model.meet` worker processes have each begun a
# run (one file per process id in $MEET_DIR): explicit synchronisation, so "two runs under way
# together" holds by construction and fails (the wait times out, the run FAILS) if they ran one
# after the other; no comparison of timestamps.
MEETING_TASK = """
import os
import time
from pathlib import Path

from orchestrator import hookimpl
from orchestrator.tasks.digits import DigitsModel, DigitsTask


class MeetModel(DigitsModel):
    meet: int = 1


class MeetingDigits(DigitsTask):
    name = "meeting_digits"
    summary = "digits whose runs wait until model.meet worker processes have begun one (tests)"
    ModelOptions = MeetModel

    def spec_bounds(self, data):
        return None  # validation builds no spec of this task: building one would wait

    def model_spec(self, model, prepared):
        folder = Path(os.environ["MEET_DIR"])
        (folder / str(os.getpid())).touch()
        deadline = time.monotonic() + 240
        while len(list(folder.iterdir())) < model.meet:
            if time.monotonic() > deadline:
                raise RuntimeError(f"no other run under way: {model.meet} never met")
            time.sleep(0.05)
        return super().model_spec(model, prepared)


@hookimpl
def orchestrator_add_tasks(registry):
    registry.add_task(MeetingDigits)
"""


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
    site = install_fake_distribution(tmp_path / "site", "meeting", {"meeting": "meeting_task"},
                                     {"meeting_task": MEETING_TASK})
    (tmp_path / "meet").mkdir()
    config = {**DIGITS, "name": "parallel", "task": "meeting_digits", "backends": ["torch"],
              "model": {"meet": 2}, "train": {"epochs": 2, "batch_size": 64},
              "matrix": {"optimizer": [{"name": "sgd"}, {"name": "adam"}, {"name": "rmsprop"}]}}
    path = tmp_path / "parallel.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {**_env(tmp_path / "mlruns"), "MEET_DIR": str(tmp_path / "meet")}
    env["PYTHONPATH"] = f"{site}:{env.get('PYTHONPATH', '')}"
    done = subprocess.run([sys.executable, "-m", "orchestrator", "run", "--quiet", "--jobs", "2",
                           str(path)], env=env, capture_output=True, text=True, timeout=600)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-4000:]
    runs = _runs(tmp_path / "mlruns", "parallel")
    # FINISHED: each of the first two runs built its model only once the other had begun (one
    # after the other, the first would have waited 240 s and FAILED)
    assert len(runs) == 3 and all(r.info.status == "FINISHED" for r in runs), out[-4000:]
    table = done.stdout[done.stdout.index("Summary"):]
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
