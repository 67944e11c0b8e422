"""The verdict after the studies: the best configuration of each study retrained with S seeds on
the full training part and scored on the untouched test part (``tuning.splits``).

Each retraining is a nested run (``orchestrator.kind=verdict``) under its study's parent run,
tagged with its seed, the best trial's number and (nested cross-validation) its outer fold. A
rerun reuses the verdict runs that finished. The numbers (``tuning.verdict_report``) are
computed from those runs only, so anyone can recompute them from MLflow.

The retrainings run in processes of their own, one backend per process (frameworks are not
mixed), as many side by side per backend as ``tune --workers``.
"""

from __future__ import annotations

import multiprocessing
from dataclasses import dataclass
from typing import Any

from orchestrator.orchestration.isolation import run_processes
from orchestrator.tuning.splits import Study

VERDICT_KIND = "verdict"
# every verdict run's test outputs and labels (``outputs``, ``truth``), for the ensemble
OUTPUTS_ARTIFACT = "verdict/test_outputs.npz"


@dataclass(frozen=True)
class Job:
    """One retraining: a study's best parameters with one seed."""

    study: Study
    study_name: str
    parent_run_id: str
    trial_number: int
    params: dict[str, Any]
    seed: int


def verdict_seeds(study: Study) -> list[int]:
    """The training seeds: the experiment's first seed and the next ones (the data split stays
    the one of the first seed, the search's)."""
    first = study.experiment.seeds[0]
    return [first + k for k in range(study.experiment.tune.verdict.seeds)]


def verdict_metric(study: Study) -> str:
    from orchestrator.plugins import manager as plugin_manager

    exp = study.experiment
    return exp.tune.verdict.metric or plugin_manager.tasks().get(exp.task).main_metric


def finished_runs(uri: str, parent_run_id: str, trial_number: int) -> dict[int, Any]:
    """The FINISHED verdict runs under a parent for its best trial, by seed (the latest)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    parent = client.get_run(parent_run_id)
    runs = client.search_runs(
        [parent.info.experiment_id],
        filter_string=(f"tags.mlflow.parentRunId = '{parent_run_id}' and "
                       f"tags.`orchestrator.kind` = '{VERDICT_KIND}' and "
                       f"tags.`optuna.trial_number` = '{trial_number}' and "
                       "attributes.status = 'FINISHED'"),
        max_results=1000, order_by=["attributes.start_time ASC"])
    return {int(r.data.tags["orchestrator.seed"]): r for r in runs}


def plan(done: list[tuple[Study, str, str, int, dict[str, Any]]], uri: str) -> list[Job]:
    """The retrainings still to do for ``(study, study name, parent run id, best trial number,
    best parameters)`` of every finished study."""
    jobs = []
    for study, name, parent_id, number, params in done:
        have = finished_runs(uri, parent_id, number)
        jobs.extend(Job(study, name, parent_id, number, params, seed)
                    for seed in verdict_seeds(study) if seed not in have)
    return jobs


def run(jobs: list[Job], uri: str, workers: int) -> None:
    """Every job, in spawned processes: per backend, up to ``workers`` side by side."""
    by_backend: dict[str, list[Job]] = {}
    for job in jobs:
        by_backend.setdefault(job.study.backend, []).append(job)
    context = multiprocessing.get_context("spawn")
    for backend_jobs in by_backend.values():
        count = max(1, min(workers, len(backend_jobs)))
        processes = [context.Process(target=_process_main, args=(backend_jobs[i::count], uri),
                                     name=f"orchestrator-verdict-{i}") for i in range(count)]
        run_processes(processes)  # each marks its run KILLED on a stop


def _process_main(jobs: list[Job], uri: str) -> None:
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from orchestrator.orchestration.worker import die_with_parent
    from orchestrator.tracking import interrupts

    die_with_parent()
    interrupts.install()
    cache: dict[tuple, Any] = {}
    try:
        for job in jobs:
            retrain(job, uri, cache)
    except KeyboardInterrupt:
        return


def verdict_experiment(study: Study, trial_number: int, params: dict[str, Any]) -> Any:
    """The best trial's configuration with ``tune.verdict.overrides`` applied."""
    from orchestrator.tuning.worker import trial_experiment

    overrides = study.experiment.tune.verdict.overrides
    return trial_experiment(study.experiment, study.backend, trial_number,
                            {**params, **overrides})


def retrain(job: Job, uri: str, cache: dict[tuple, Any] | None = None) -> dict[str, float]:
    """One verdict run: the best trial's configuration, one seed, trained on the verdict split
    and evaluated on its test part. Returns the evaluation's metrics (errors are recorded on
    the run as FAILED and returned as an empty dict)."""
    from orchestrator.orchestration.plan import PlannedRun
    from orchestrator.orchestration.trainer import train_and_evaluate
    from orchestrator.orchestration.worker import git_commit
    from orchestrator.plugins import manager as plugin_manager
    from orchestrator.tracking.runs import RunLogger, flatten
    from orchestrator.tracking.store import experiment_id
    from orchestrator.tuning.splits import verdict_data

    cache = {} if cache is None else cache
    study = job.study
    exp = verdict_experiment(study, job.trial_number, job.params)
    task = plugin_manager.tasks().get(exp.task)()
    if ("backend", study.backend) not in cache:
        cache[("backend", study.backend)] = plugin_manager.backends().load(study.backend)
    backend = cache[("backend", study.backend)]
    key = ("data", exp.task, exp.data.model_dump_json(), study.outer)
    if key not in cache:
        cache[key] = verdict_data(task, exp, study.outer)
    prepared = cache[key]
    tags = {"orchestrator.kind": VERDICT_KIND, "orchestrator.contract.backend": study.backend,
            "orchestrator.task": exp.task, "orchestrator.file": exp.file,
            "orchestrator.variant": study.experiment.variant or "-",
            "orchestrator.seed": job.seed, "orchestrator.dataset_digest": prepared.digest,
            "optuna.study_name": job.study_name, "optuna.trial_number": job.trial_number}
    if study.outer is not None:
        tags["orchestrator.outer_fold"] = study.outer
    commit = git_commit()
    if commit:
        tags["mlflow.source.git.commit"] = commit
    outer = f"-outer{study.outer}" if study.outer is not None else ""
    logger = RunLogger(uri, experiment_id(exp.name, uri),
                       run_name=f"verdict-trial{job.trial_number}{outer}-seed{job.seed}",
                       tags=tags, parent_run_id=job.parent_run_id)
    metrics: dict[str, float] = {}
    try:
        with logger:
            logger.log_params({**flatten(exp.config), "seed": job.seed,
                               "backend": study.backend})
            backend.seed(job.seed)
            metrics = train_and_evaluate(PlannedRun(exp, study.backend, job.seed), task,
                                          backend, prepared, prepared.splits[0], logger, False,
                                          log_model_uri=None,
                                          outputs_artifact=OUTPUTS_ARTIFACT)
    except KeyboardInterrupt:
        raise
    except Exception:  # recorded on the run (FAILED); the verdict reports what finished
        return {}
    return metrics
