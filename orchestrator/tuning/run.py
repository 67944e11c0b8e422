"""``orchestrator tune`` and ``orchestrator worker``: studies per backend, workers, the MLflow
parent run, and what is left after a study (best parameters, plots, a Parquet of all trials).

Optuna's storage and MLflow point at each other: the parent run carries the study name and
storage, the study carries the parent run id (``mlflow_parent_run_id``); every trial carries its
run id (``mlflow_run_id``) and every trial run its study name and trial number. Rerunning the same
command re-attaches to the same parent run and continues the study to its total budget.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.config.loader import ResolvedExperiment
from orchestrator.redaction import redact
from orchestrator.tuning.splits import Study, check_data, studies
from orchestrator.tuning.study import (StudyRef, budget_state, grid_space, load_study,
                                      report_steps, study_name, study_ref, top_up)
from orchestrator.tuning.worker import PARENT_ATTR, work


@dataclass
class StudyResult:
    experiment: str
    backend: str
    study_name: str
    status: str
    counts: dict[str, int]
    best_value: float | None = None
    best_params: dict[str, Any] = field(default_factory=dict)
    parquet: str | None = None
    parent_run_id: str | None = None
    epochs_run: int = 0
    best_test: dict[str, float] = field(default_factory=dict)
    best_trial: int | None = None
    nested_run_id: str | None = None
    epochs_budget: int = 0  # epochs the budget would train without pruning


def _parent_run(uri: str, exp: ResolvedExperiment, ref: StudyRef, study: Any,
                nested_run_id: str | None = None) -> Any:
    """The study's parent run: found again by the id the study stores, else created (under
    nested cross-validation, nested in the run that holds the outer folds' studies)."""
    from orchestrator.tracking.runs import RunLogger, flatten
    from orchestrator.tracking.store import experiment_id

    tags = {"orchestrator.kind": "study", "orchestrator.contract.backend": ref.backend,
            "orchestrator.task": exp.task, "orchestrator.file": exp.file,
            "optuna.study_name": ref.name, "optuna.storage": redact(ref.storage_url),
            "optuna.sampler": exp.tune.sampler.name,
            "optuna.sampler_seed": exp.tune.sampler.seed, "optuna.pruner": exp.tune.pruner.name,
            "optuna.direction": exp.tune.direction, "optuna.metric": exp.tune.metric,
            "optuna.budget": exp.tune.trials, "orchestrator.variant": exp.variant or "-"}
    if exp.folds:
        tags["orchestrator.cv_folds"] = exp.folds
    if ref.outer is not None:
        tags["orchestrator.outer_fold"] = ref.outer
    existing = study.user_attrs.get(PARENT_ATTR)
    logger = RunLogger(uri, experiment_id(exp.name, uri), run_name=f"study-{ref.name}",
                       tags=tags, run_id=existing, parent_run_id=nested_run_id)
    if existing is None:
        study.set_user_attr(PARENT_ATTR, logger.run_id)
        logger.log_params({**flatten(exp.config), "backend": ref.backend})
        settings = exp.tune.model_dump(mode="json")
        if settings.get("storage"):  # from the YAML or -o: its password stays out of MLflow
            settings["storage"] = redact(settings["storage"])
        logger.log_dict(settings, "tune.json")
    return logger


def _worker_main(exp: ResolvedExperiment, ref: StudyRef, uri: str, deadline: float | None
                 ) -> int:
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from orchestrator.orchestration.worker import die_with_parent
    from orchestrator.redaction import redact_stderr, remember

    remember(ref.storage_url)
    redact_stderr()  # a traceback or a library's warning may echo the storage URL
    die_with_parent()
    try:
        return work(exp, ref, uri, deadline=deadline)
    except KeyboardInterrupt:
        return -1


def enqueued(exp: ResolvedExperiment) -> list[dict[str, Any]]:
    """The ``tune.enqueue`` points, each cut to the dimensions this variant's studies have."""
    from orchestrator.config.loader import config_conditions_hold

    space = exp.tune.space
    return [{k: v for k, v in point.items()
             if config_conditions_hold(space[k], space, exp.config)} for point in exp.tune.enqueue]


def _nested_run(uri: str, exp: ResolvedExperiment, backend: str, storage: str | None) -> str:
    """Under nested cross-validation, the run that holds one variant and backend's outer-fold
    studies and their verdict (found again by its tags, else created)."""
    from mlflow.tracking import MlflowClient

    from orchestrator.tracking.runs import RunLogger, flatten
    from orchestrator.tracking.store import experiment_id

    group = study_name(exp, backend)
    experiment = experiment_id(exp.name, uri)
    found = MlflowClient(uri).search_runs(
        [experiment], filter_string=f"tags.`orchestrator.kind` = 'nested' and "
                                    f"tags.`optuna.study_group` = '{group}'", max_results=1)
    if found:
        return found[0].info.run_id
    logger = RunLogger(uri, experiment, run_name=f"nested-{group}",
                       tags={"orchestrator.kind": "nested", "optuna.study_group": group,
                             "orchestrator.contract.backend": backend,
                             "orchestrator.task": exp.task, "orchestrator.file": exp.file,
                             "orchestrator.variant": exp.variant or "-",
                             "orchestrator.outer_folds": exp.tune.nested.folds,
                             "optuna.storage": redact(study_ref(exp, backend, storage)
                                                      .storage_url)})
    logger.log_params({**flatten(exp.config), "backend": backend})
    logger.end("FINISHED")
    return logger.run_id


def tune(experiments: list[ResolvedExperiment], *, workers: int = 1, storage: str | None = None,
         report: Any = print, executor: Any = None, verdict: bool = True) -> list[StudyResult]:
    """Run every study (one per variant, backend and outer fold) to its total budget, its
    workers where ``executor`` runs them (default: processes on this machine), then the verdict
    of every experiment whose studies are all done (``report`` gets its table)."""
    import warnings

    from optuna.exceptions import ExperimentalWarning
    from optuna.storages import fail_stale_trials

    from orchestrator.orchestration.executors.base import ExecutorSettings, load_executor
    from orchestrator.orchestration.executors.sharing import check_shared_storage
    from orchestrator.plugins import manager as plugin_manager
    from orchestrator.tracking.recovery import mark_dead_runs
    from orchestrator.tracking.store import ensure_store, tracking_uri

    executor = executor or load_executor(ExecutorSettings())
    if executor.remote:
        executor.check(experiments, tracking_uri())
        for item in studies(experiments):
            check_shared_storage(executor.name, study_ref(item.experiment, item.backend,
                                                          storage, item.outer).storage_url)
    tasks = plugin_manager.tasks()
    check_data(lambda name: tasks.get(name)(), experiments)
    uri = ensure_store()
    mark_dead_runs(uri)
    results = []
    done: list[tuple[Study, StudyResult]] = []
    deadlines: dict[str, float | None] = {}
    for item in studies(experiments):
        exp, backend = item.experiment, item.backend
        if exp.file not in deadlines:
            deadlines[exp.file] = time.time() + exp.tune.timeout if exp.tune.timeout else None
        ref = study_ref(exp, backend, storage, item.outer)
        nested_id = _nested_run(uri, exp, backend, storage) if item.outer is not None else None
        study = load_study(exp, ref, create=True)
        warnings.filterwarnings("ignore", category=ExperimentalWarning)
        fail_stale_trials(study)
        parent = _parent_run(uri, exp, ref, study, nested_id)
        grid = grid_space(exp) if exp.tune.sampler.name == "grid" else None
        added = top_up(study, exp.tune.trials, grid, first=enqueued(exp))
        counts = budget_state(study)
        report(f"study {ref.name}: {counts['done']} of {exp.tune.trials} trials done, "
               f"{added} queued now, {workers} worker(s)")
        try:
            _run_workers(exp, ref, uri, workers, deadlines[exp.file], executor)
        except KeyboardInterrupt as exc:
            parent.fail(exc, status="KILLED")
            results.append(finalize(exp, ref, uri, parent, interrupted=True))
            raise
        result = finalize(exp, ref, uri, parent)
        result.nested_run_id = nested_id
        results.append(result)
        done.append((item, result))
    if verdict:
        from orchestrator.tuning.verdict_run import verdicts

        verdicts(done, uri, workers, report)
    return results


def _run_workers(exp: ResolvedExperiment, ref: StudyRef, uri: str, workers: int,
                 deadline: float | None, executor: Any = None) -> None:
    """``workers`` tuning workers of the study, where the executor runs them (default: local
    processes); a stop stops them (each re-enqueues its trial) and is raised again."""
    from orchestrator.orchestration.executors.base import ExecutorSettings, load_executor

    if workers <= 0:
        return
    executor = executor or load_executor(ExecutorSettings())
    executor.run_workers(_worker_main, (exp, ref, uri, deadline), workers,
                         name="orchestrator-worker")


def join(experiments: list[ResolvedExperiment], storage: str) -> int:
    """``orchestrator worker``: join existing studies and work until their budgets are done.
    Each backend's trials run in a process of their own (frameworks are not mixed)."""
    from orchestrator.orchestration.isolation import run_isolated
    from orchestrator.tracking.store import ensure_store

    refs = [(item.experiment, study_ref(item.experiment, item.backend, storage, item.outer))
             for item in studies(experiments)]
    for exp, ref in refs:  # a clear error if `tune` has not created it, before any store
        load_study(exp, ref, create=False)
    uri = ensure_store()
    ran = 0
    deadlines: dict[str, float | None] = {}
    for exp, ref in refs:
        if exp.file not in deadlines:
            deadlines[exp.file] = time.time() + exp.tune.timeout if exp.tune.timeout else None
        ran += run_isolated(_worker_main, exp, ref, uri, deadlines[exp.file])
    return ran


def finalize(exp: ResolvedExperiment, ref: StudyRef, uri: str, parent: Any,
             interrupted: bool = False) -> StudyResult:
    """Best value and parameters, trial counts and plots on the parent run; all trials to
    Parquet. The parent ends FINISHED once the budget is done."""
    import optuna

    from orchestrator.tracking.store import mlruns_root

    study = load_study(exp, ref, create=False)
    counts = budget_state(study)
    result = StudyResult(exp.label, ref.backend, ref.name, "RUNNING", counts,
                         parent_run_id=parent.run_id)
    # epochs actually trained (what pruning saves), against the budget's full length
    epochs_run = sum(len(t.intermediate_values) for t in study.trials)
    parent.log_metrics({**{f"trials/{k}": v for k, v in counts.items()},
                        "trials/epochs_run": epochs_run,
                        "trials/epochs_without_pruning": exp.tune.trials * report_steps(exp)},
                       heartbeat=False)
    result.epochs_run = epochs_run
    result.epochs_budget = exp.tune.trials * report_steps(exp)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if complete:
        best = study.best_trial
        result.best_value, result.best_params = best.value, dict(best.params)
        result.best_trial = best.number
        best_run = best.user_attrs.get("mlflow_run_id", "")
        held_out = {}
        if best_run:  # the best trial's held-out (test) metrics, for the record
            held_out = {f"best/{k}": v for k, v in
                        parent.client.get_run(best_run).data.metrics.items()
                        if k.startswith("test/")}
        result.best_test = {k.removeprefix("best/"): v for k, v in held_out.items()}
        parent.log_metrics({"best/value": best.value, "best/trial": best.number, **held_out},
                           heartbeat=False)
        parent.set_tags({**{f"best.{k}": v for k, v in best.params.items()},
                         "best.mlflow_run_id": best_run})
    frame = study.trials_dataframe(attrs=("number", "value", "params", "state", "duration",
                                          "datetime_start", "datetime_complete",
                                          "user_attrs"))
    if "duration" in frame:
        import pandas as pd

        frame["duration"] = pd.to_timedelta(frame["duration"]).dt.total_seconds()
    folder = mlruns_root() / "tuning"
    folder.mkdir(parents=True, exist_ok=True)
    # the parent run's id: two studies of one name (other storages, other files) keep their
    # own export; the same study resumed overwrites its own
    path = folder / f"{ref.name}-{parent.run_id[:12]}.parquet"
    frame.to_parquet(path, index=False)
    parent.client.log_artifact(parent.run_id, str(path), "trials")
    result.parquet = str(path)
    _log_plots(study, parent)
    budget_done = counts["done"] >= exp.tune.trials
    if not interrupted and parent.status == "RUNNING":
        parent.end("FINISHED" if budget_done else "KILLED")
    result.status = parent.status
    return result


def _log_plots(study: Any, parent: Any) -> None:
    """Optimization history, parameter importances, intermediate values (when computable)."""
    import warnings

    import optuna
    from optuna.visualization import matplotlib as vis

    from orchestrator.evaluation.plots import _pyplot

    _pyplot()
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # "no complete trials" and such
    plots = {"plots/optimization_history.png": vis.plot_optimization_history,
             "plots/param_importances.png": vis.plot_param_importances,
             "plots/intermediate_values.png": vis.plot_intermediate_values}
    for path, plot in plots.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                axes = plot(study)
        except (ValueError, RuntimeError, ZeroDivisionError):
            continue  # e.g. importances need two complete trials with varied parameters
        figure = getattr(axes, "figure", None) or axes.flat[0].figure
        parent.log_figure(figure, path)


def results_table(results: list[StudyResult]):
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="Best per study", title_justify="left")
    for column in ("study", "backend", "status", "complete", "pruned", "failed", "epochs",
                   "best value", "best parameters", "best trial on test"):
        table.add_column(column)
    for r in results:
        params = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                           for k, v in r.best_params.items())
        test = ", ".join(f"{k.removeprefix('test/')}={v:.4f}"
                         for k, v in sorted(r.best_test.items())[:3])
        table.add_row(escape(r.study_name), r.backend, r.status, str(r.counts["complete"]),
                      str(r.counts["pruned"]), str(r.counts["failed"]), str(r.epochs_run),
                      "-" if r.best_value is None else f"{r.best_value:.4f}", escape(params),
                      escape(test) or "-")
    return table


def parquet_paths(results: list[StudyResult]) -> list[Path]:
    return [Path(r.parquet) for r in results if r.parquet]
