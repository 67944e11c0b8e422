"""One planned run, inside its own worker process: data, model, training, evaluation, tracking.

The parent (``orchestrator.orchestration.parent``) spawns one process per run and calls ``execute_run``. Here
the run's MLflow lifecycle matches the process: FINISHED when it returns, FAILED (with the error)
on an exception, KILLED on Ctrl-C or SIGTERM; if the process is SIGKILLed the run stays RUNNING
and the next invocation marks it KILLED (``tracking.recovery``).
"""

from __future__ import annotations

import signal
import subprocess
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

from orchestrator.tracking import interrupts
from orchestrator.contract.backend import Resources
from orchestrator.orchestration.plan import PlannedRun
from orchestrator.orchestration.progress import Sink
from orchestrator.orchestration.trainer import cross_validate, train_and_evaluate


@dataclass(frozen=True)
class RunOutcome:
    label: str
    run_id: str | None
    status: str  # FINISHED, FAILED, KILLED
    metric: str
    value: float | None
    seconds: float
    error: str = ""
    metrics: dict[str, float] = field(default_factory=dict)



def die_with_parent() -> None:
    """Ask Linux to send SIGTERM here if the parent dies, so an orphan never trains on."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def execute_run(run: PlannedRun, uri: str, *, threads: int | None = None,
                display: bool | Sink = False, on_start: Any = None) -> RunOutcome:
    """Run ``run`` to the end and return its outcome (exceptions are recorded, then returned).
    ``on_start(run_id)`` is called as soon as the MLflow run exists; ``display`` is where
    progress goes (``progress.EpochProgress``). ``threads`` is this run's share of the cores
    (runs side by side), else ``ORCHESTRATOR_THREADS`` or the backend's default."""
    interrupts.install()  # SIGTERM and Ctrl-C end the run KILLED, between store writes
    die_with_parent()
    # MLflow hints that integer columns cannot hold missing values, once per logged schema
    warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer",
                            category=UserWarning)
    from orchestrator.plugins import manager as plugin_manager
    from orchestrator.tracking.runs import RunLogger, flatten
    from orchestrator.tracking.store import experiment_id

    exp = run.experiment
    task_cls = plugin_manager.tasks().get(exp.task)
    task = task_cls()
    started = time.perf_counter()
    backend = plugin_manager.backends().load(run.backend, Resources.from_environment(threads))
    backend.seed(run.seed)
    prepared = task.prepare(exp.data, seed=run.seed, folds=exp.folds)
    tags = {
        "orchestrator.contract.backend": run.backend, "orchestrator.task": exp.task,
        "orchestrator.seed": run.seed, "orchestrator.variant": exp.variant or "-",
        "orchestrator.config_digest": exp.digest, "orchestrator.file": exp.file,
        "orchestrator.dataset_digest": prepared.digest, "orchestrator.kind": "run",
        **{f"framework.{k}": v for k, v in backend.framework_versions().items()},
    }
    commit = git_commit()
    if commit:
        tags["mlflow.source.git.commit"] = commit
    logger = RunLogger(uri, experiment_id(exp.name, uri), run_name=run.run_name, tags=tags)
    if on_start is not None:
        on_start(logger.run_id)
    metrics: dict[str, float] = {}
    try:
        with logger:
            logger.log_params({**flatten(exp.config), "seed": run.seed, "backend": run.backend})
            logger.log_dict(exp.config, "config.json")
            if prepared.table is not None:
                logger.log_input(prepared.table, name=f"{exp.task}-data", source=prepared.source,
                                 digest=prepared.digest)
            if exp.folds:
                metrics = cross_validate(run, task, backend, prepared, logger, uri, display)
            else:
                metrics = train_and_evaluate(run, task, backend, prepared, prepared.splits[0],
                                              logger, display, log_model_uri=uri)
    except KeyboardInterrupt as exc:
        return _outcome(run, logger, task_cls, metrics, started, str(exc) or "interrupted")
    except Exception as exc:  # recorded on the run as FAILED; the invocation goes on
        return _outcome(run, logger, task_cls, metrics, started, f"{type(exc).__name__}: {exc}")
    return _outcome(run, logger, task_cls, metrics, started)


def _outcome(run: PlannedRun, logger: Any, task_cls: Any, metrics: dict[str, float],
             started: float, error: str = "") -> RunOutcome:
    metric = task_cls.main_metric
    key = f"cv/{metric}_mean" if run.experiment.folds else metric
    return RunOutcome(run.label, logger.run_id, logger.status, key, metrics.get(key),
                      time.perf_counter() - started, error, metrics)

