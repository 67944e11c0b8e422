"""A tuning worker: pop a waiting trial, sample its parameters, train, report, repeat.

Each trial is a nested MLflow run under the study's parent run, with its sampled parameters and
per-epoch metrics. Its final state maps onto MLflow's: COMPLETE -> FINISHED, PRUNED -> KILLED
(tagged with the epoch), FAIL -> FAILED (with the reason). A trial interrupted by Ctrl-C or
SIGTERM is failed, re-enqueued with the same parameters and its run marked KILLED, so a rerun
completes the budget. Workers never create trials (see ``tuning.study``).
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from typing import Any

from orchestrator.tracking import interrupts
from orchestrator.config.loader import (ResolvedExperiment, config_conditions_hold,
                                        resolve_variant, set_sample)
from orchestrator.orchestration.plan import PlannedRun
from orchestrator.tuning.optuna_compat import (frozen_trial, heartbeat_thread,
                                               pop_waiting_trial, release_trial)
from orchestrator.tuning.splits import search_data
from orchestrator.tuning.study import StudyRef, budget_state, load_study, retry_callback

PARENT_ATTR = "mlflow_parent_run_id"


def sample(trial: Any, space: dict[str, Any], config: dict[str, Any] | None = None
           ) -> dict[str, Any]:
    """Suggest every dimension whose conditions hold, in declaration order. A condition on an
    earlier dimension reads its sampled value; one on a config path (``loss.name``) reads the
    variant's resolved ``config``."""
    values: dict[str, Any] = {}
    for path, dim in space.items():
        if any(values.get(c, _ABSENT) not in allowed for c, allowed in dim.when.items()
               if c in space):
            continue  # a branch this trial did not take: the parameter does not exist
        if config is not None and not config_conditions_hold(dim, space, config):
            continue  # a dimension of other variants
        if dim.type == "categorical":
            values[path] = trial.suggest_categorical(path, list(dim.choices))
        elif dim.type == "int":
            values[path] = trial.suggest_int(path, int(dim.low), int(dim.high),
                                             step=int(dim.step or 1), log=dim.log)
        else:
            values[path] = trial.suggest_float(path, dim.low, dim.high, step=dim.step,
                                               log=dim.log)
    return values


_ABSENT = object()


def trial_experiment(exp: ResolvedExperiment, backend: str, number: int,
                     values: dict[str, Any]) -> ResolvedExperiment:
    config = copy.deepcopy(exp.raw)
    for path, value in values.items():
        set_sample(config, path, value, exp.file)
    import dataclasses

    resolved = resolve_variant(f"{exp.file} (trial {number})", exp.file, exp.name,
                               f"trial-{number}", config, (backend,))
    return dataclasses.replace(resolved, tune=exp.tune)


def work(exp: ResolvedExperiment, ref: StudyRef, uri: str, *, interactive: bool = False,
         deadline: float | None = None) -> int:
    """Run trials of the study until none is left (or ``deadline``); returns how many ran."""
    import optuna
    from optuna.storages import fail_stale_trials

    from orchestrator.plugins import manager as plugin_manager

    from orchestrator.redaction import remember

    remember(ref.storage_url)  # errors of this process's trials go to MLflow without it
    interrupts.install()  # SIGTERM and Ctrl-C stop the trial, between storage writes
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    study = load_study(exp, ref, create=False)
    parent_run_id = study.user_attrs.get(PARENT_ATTR)
    task = plugin_manager.tasks().get(exp.task)()
    backend = plugin_manager.backends().load(ref.backend)
    data_tuned = any(path.startswith("data.") for path in exp.tune.space)
    prepared = None if data_tuned else search_data(task, exp, ref.outer)
    ran = 0
    while deadline is None or time.time() < deadline:
        trial_id = None
        try:
            with interrupts.shielded():
                fail_stale_trials(study)
                trial_id = pop_waiting_trial(study)
        except KeyboardInterrupt:  # a stop held during the pop: the trial never started
            if trial_id is not None:
                release_trial(study, trial_id)
            raise
        if trial_id is None:
            counts = budget_state(study)
            if counts["running"] == 0 and counts["waiting"] == 0:
                break
            time.sleep(min(ref.heartbeat[0], 2.0))  # others still run: one may die and retry
            continue
        trial = optuna.Trial(study, trial_id)
        with heartbeat_thread(study, trial_id):
            _run_trial(exp, ref, uri, study, trial, task, backend, prepared, parent_run_id,
                       interactive)
        ran += 1
    return ran


def _run_trial(exp, ref, uri, study, trial, task, backend, prepared, parent_run_id,
               interactive) -> None:
    import optuna
    from optuna.trial import TrialState

    from orchestrator.orchestration.trainer import train_and_evaluate
    from orchestrator.orchestration.worker import git_commit
    from orchestrator.tracking.runs import RunLogger, flatten
    from orchestrator.tracking.store import experiment_id

    try:
        with interrupts.shielded():
            values = sample(trial, exp.tune.space, exp.config)
    except Exception as exc:  # e.g. a sampler that cannot handle the space: fail, go on
        with interrupts.shielded():
            trial.set_user_attr("fail_reason", f"sampling: {type(exc).__name__}: {exc}"[:1000])
            study.tell(trial, state=TrialState.FAIL)
        return
    tags = {"orchestrator.kind": "trial", "orchestrator.contract.backend": ref.backend,
            "orchestrator.task": exp.task, "orchestrator.file": exp.file,
            "optuna.study_name": ref.name, "optuna.trial_number": trial.number,
            "optuna.sampled": ",".join(values)}
    frozen = frozen_trial(study, trial)
    retried = frozen.system_attrs.get("failed_trial")
    if retried is not None:
        tags["optuna.retry_of"] = retried
        _close_dead_run(uri, frozen.user_attrs.get("mlflow_run_id"), trial.number)
    commit = git_commit()
    if commit:
        tags["mlflow.source.git.commit"] = commit
    logger = RunLogger(uri, experiment_id(exp.name, uri), run_name=f"trial-{trial.number}",
                       tags=tags, parent_run_id=parent_run_id)
    with interrupts.shielded():
        trial.set_user_attr("mlflow_run_id", logger.run_id)
    metric = exp.tune.metric
    pruned_at: list[tuple[int, int, int]] = []  # (step, fold, epoch)

    def reporter(fold: int, n_folds: int) -> Any:
        """Per epoch: report to the pruner at step fold * epochs + epoch (fold 0 without
        cv:), so trials are compared on the same fold and epoch."""
        def report(entry: Any) -> None:
            if metric not in entry.metrics:
                raise KeyError(f"tune.metric {metric!r} is not reported per epoch; reported: "
                               f"{', '.join(sorted(entry.metrics))}")
            step = fold * exp.train.epochs + entry.epoch
            with interrupts.shielded():
                trial.report(entry.metrics[metric], step)
                prune = trial.should_prune()
            if prune:
                pruned_at.append((step, fold, entry.epoch))
                where = f"fold {fold} of {n_folds}, " if n_folds > 1 else ""
                raise optuna.TrialPruned(f"pruned at {where}epoch {entry.epoch}")
        return report

    try:
        trial_exp = trial_experiment(exp, ref.backend, trial.number, values)
        logger.log_params({**flatten(trial_exp.config), "seed": exp.seeds[0],
                           "backend": ref.backend})
        data = prepared or search_data(task, trial_exp, ref.outer)
        if logger.run_id and data.table is not None and prepared is None:
            logger.log_input(data.table, name=f"{exp.task}-data", source=data.source,
                             digest=data.digest)
        run = PlannedRun(trial_exp, ref.backend, exp.seeds[0])
        if len(data.splits) == 1:
            metrics = train_and_evaluate(run, task, backend, data, data.splits[0], logger,
                                          interactive, log_model_uri=None,
                                          extra_callbacks=(reporter(0, 1),))
            value = metrics.get(metric)
        else:
            value = _cross_validated(run, task, backend, data, logger, uri, trial, metric,
                                     reporter, interactive)
        if value is None or not math.isfinite(value):
            raise FloatingPointError(f"objective {metric} is {value}")
        with interrupts.shielded():
            logger.log_metrics({"objective": value}, heartbeat=False)
            study.tell(trial, value)
            logger.end("FINISHED")
    except optuna.TrialPruned:
        step, fold, epoch = pruned_at[-1] if pruned_at else ("?", "?", "?")
        tags = {"optuna.pruned_at_epoch": epoch, "optuna.pruned_at_step": step}
        if exp.folds:
            tags["optuna.pruned_at_fold"] = fold
        with interrupts.shielded():
            logger.set_tags(tags)
            logger.end("KILLED")
            study.tell(trial, state=TrialState.PRUNED)
    except KeyboardInterrupt as exc:
        with interrupts.shielded():  # a second stop waits until the trial is re-enqueued
            logger.fail(exc, status="KILLED")  # nothing if the run has ended
            # a stop held until the end of the writes above (the trial told, the run ended)
            # leaves a finished trial: failing it again or retrying it would break the budget
            if not frozen_trial(study, trial).state.is_finished():
                study.tell(trial, state=TrialState.FAIL)
                retry_callback(ref.heartbeat[2])(study, frozen_trial(study, trial))
        raise
    except Exception as exc:  # recorded; the study goes on
        reason = f"{type(exc).__name__}: {exc}"
        with interrupts.shielded():
            trial.set_user_attr("fail_reason", reason[:1000])
            logger.fail(exc)
            study.tell(trial, state=TrialState.FAIL)


def _cross_validated(run: PlannedRun, task: Any, backend: Any, data: Any, logger: Any, uri: str,
                     trial: Any, metric: str, reporter: Any, interactive: bool) -> float:
    """One nested run per fold under the trial's run; the objective is the mean of the folds'
    ``metric`` (at the epoch whose weights were kept). The trial's run holds every fold's value
    (``fold/<metric>``, step = fold) and their mean and standard deviation (``cv/``)."""
    import numpy as np
    import optuna

    from orchestrator.orchestration.trainer import train_and_evaluate
    from orchestrator.tracking.runs import RunLogger

    parent = logger.client.get_run(logger.run_id)
    base = {k: v for k, v in parent.data.tags.items() if not k.startswith("mlflow.")}
    values = []
    for fold, split in enumerate(data.splits):
        child = RunLogger(uri, parent.info.experiment_id, run_name=f"trial-{trial.number}-fold{fold}",
                          tags={**base, "orchestrator.kind": "fold", "orchestrator.fold": fold},
                          parent_run_id=logger.run_id)
        try:
            metrics = train_and_evaluate(run, task, backend, data, split, child, interactive,
                                          log_model_uri=None, artifacts=False,
                                          extra_callbacks=(reporter(fold, len(data.splits)),))
        except optuna.TrialPruned:
            with interrupts.shielded():
                child.set_tags({"optuna.pruned": "true"})
                child.end("KILLED")
            raise
        except BaseException as exc:
            with interrupts.shielded():
                child.fail(exc, status="KILLED" if isinstance(exc, KeyboardInterrupt)
                           else "FAILED")
            raise
        value = metrics.get(metric)
        if value is None or not math.isfinite(value):
            with interrupts.shielded():
                child.end("FAILED")
            raise FloatingPointError(f"objective {metric} is {value} in fold {fold}")
        values.append(value)
        with interrupts.shielded():
            child.end("FINISHED")
            logger.log_metrics({f"fold/{metric}": value}, step=fold, heartbeat=False)
    array = np.array(values)
    with interrupts.shielded():
        logger.log_metrics({f"cv/{metric}_mean": float(array.mean()),
                            f"cv/{metric}_std": float(array.std())}, heartbeat=False)
    return float(array.mean())


def _close_dead_run(uri: str, run_id: str | None, retry_number: int) -> None:
    """A retried trial inherits the run id of the attempt that died (its worker was killed):
    that run is still RUNNING; mark it KILLED."""
    if not run_id:
        return
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    if client.get_run(run_id).info.status == "RUNNING":
        client.set_tag(run_id, "orchestrator.killed_reason",
                       f"its worker died; retried as trial {retry_number}")
        client.set_terminated(run_id, "KILLED")
