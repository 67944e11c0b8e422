"""One planned run, inside a worker process: data, model, training, evaluation, tracking.

A warm worker process (``orchestration.pool``) calls ``warm_up`` once, then ``execute_run`` for
each run it takes. The run's MLflow lifecycle is truthful: FINISHED when it returns, FAILED (with
the error) on an exception, KILLED on Ctrl-C or SIGTERM; if the process is SIGKILLed the run
stays RUNNING and the next invocation marks it KILLED (``tracking.recovery``). Every run logs
its fixed cost, ``system/overhead_seconds``: its wall time in the worker, from the moment the
worker takes it, minus the time of its epochs.
"""

from __future__ import annotations

import functools
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
from orchestrator.orchestration.trainer import (cross_validate, train_and_evaluate,
                                                training_seconds)


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
    overhead: float | None = None  # seconds of the run that were not epochs


class DataDigestError(RuntimeError):
    """A run found a data set other than the one its plan was made with."""


def die_with_parent() -> None:
    """Ask Linux to send SIGTERM here if the parent dies, so an orphan never trains on."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def warm_up(backend_name: str, uri: str, threads: int | None) -> None:
    """Import, once per worker process, what every run needs: the backend's framework
    (constructed with the worker's thread share: TensorFlow fixes its pools at its first use),
    its MLflow model flavour, the tracking store's client and matplotlib."""
    import importlib

    from mlflow.tracking import MlflowClient

    import mlflow.data  # noqa: F401  (log_input)
    import mlflow.models  # noqa: F401  (the model signature)
    from orchestrator.evaluation.plots import _pyplot
    from orchestrator.plugins import manager as plugin_manager

    backend = plugin_manager.backends().load(backend_name, Resources.from_environment(threads))
    flavor = getattr(backend, "mlflow_flavor", None)
    if flavor:
        importlib.import_module(f"mlflow.{flavor}")
    _pyplot()
    MlflowClient(uri).search_experiments(max_results=1)


def execute_run(run: PlannedRun, uri: str, *, threads: int | None = None,
                display: bool | Sink = False, on_start: Any = None,
                expected_digest: str | None = None,
                extra_tags: dict[str, str] | None = None) -> RunOutcome:
    """Run ``run`` to the end and return its outcome (exceptions are recorded, then returned).
    ``on_start(run_id)`` is called as soon as the MLflow run exists; ``display`` is where
    progress goes (``progress.EpochProgress``). ``threads`` is this run's share of the cores
    (runs side by side), else ``ORCHESTRATOR_THREADS`` or the backend's default.
    ``expected_digest``: the data set digest the plan was made with; a run that finds other
    data (another node, another cache) fails instead of training on it. ``extra_tags`` go on
    the run (the executor's node, attempt...)."""
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
    started = time.perf_counter(), time.process_time()
    backend = plugin_manager.backends().load(run.backend, Resources.from_environment(threads))
    backend.reset_state()  # what an earlier run in this process left in the framework
    backend.seed(run.seed)
    prepared = task.prepare(exp.data, seed=run.seed, folds=exp.folds)
    tags = {
        "orchestrator.contract.backend": run.backend, "orchestrator.task": exp.task,
        "orchestrator.seed": run.seed, "orchestrator.variant": exp.variant or "-",
        "orchestrator.config_digest": exp.digest, "orchestrator.file": exp.file,
        "orchestrator.dataset_digest": prepared.digest, "orchestrator.kind": "run",
        **{f"framework.{k}": v for k, v in backend.framework_versions().items()},
        **(extra_tags or {}),
    }
    commit = git_commit()
    if commit:
        tags["mlflow.source.git.commit"] = commit
    try:
        logger = RunLogger(uri, experiment_id(exp.name, uri), run_name=run.run_name, tags=tags)
    except Exception as exc:  # noqa: BLE001  (the store took no run: nothing is RUNNING)
        from orchestrator.redaction import redact_text
        from orchestrator.tracking.failures import store_problem

        why = store_problem(exc) or f"{type(exc).__name__}: {exc}"
        return RunOutcome(run.label, None, "FAILED", task_cls.main_metric, None,
                          time.perf_counter() - started[0], redact_text(why), {}, None)
    if on_start is not None:
        on_start(logger.run_id)
    metrics: dict[str, float] = {}
    try:
        with logger:
            if expected_digest is not None and prepared.digest != expected_digest:
                raise DataDigestError(f"the data set here has digest {prepared.digest}, the "
                                      f"plan's has {expected_digest}: this node prepared other "
                                      f"data (another version of the source or of the code)")
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
             started: tuple[float, float], error: str = "") -> RunOutcome:
    metric = task_cls.main_metric
    key = f"cv/{metric}_mean" if run.experiment.folds else metric
    seconds, cpu = time.perf_counter() - started[0], time.process_time() - started[1]
    overhead = None
    if logger.status != "KILLED":  # a stop: leave at once, no more writes
        training, training_cpu = training_seconds(logger)
        overhead = max(0.0, seconds - training)
        try:  # after the end (MLflow takes metrics on ended runs): the end is a fixed cost too
            logger.client.log_batch(logger.run_id, metrics=[
                _metric(OVERHEAD_METRIC, overhead), _metric(RUN_SECONDS_METRIC, seconds),
                _metric(OVERHEAD_CPU_METRIC, max(0.0, cpu - training_cpu))])
        except Exception:  # noqa: BLE001  (a figure for the record; the outcome stands)
            pass
    return RunOutcome(run.label, logger.run_id, logger.status, key, metrics.get(key),
                      seconds, error, metrics, overhead)


OVERHEAD_METRIC = "system/overhead_seconds"
OVERHEAD_CPU_METRIC = "system/overhead_cpu_seconds"  # the same in CPU time: busy machines
RUN_SECONDS_METRIC = "system/run_seconds"


def _metric(key: str, value: float) -> Any:
    from mlflow.entities import Metric

    return Metric(key, float(value), int(time.time() * 1000), 0)

