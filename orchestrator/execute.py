"""One planned run, inside its own worker process: data, model, training, evaluation, tracking.

The parent (``orchestrator.runner``) spawns one process per run and calls ``execute_run``. Here
the run's MLflow lifecycle matches the process: FINISHED when it returns, FAILED (with the error)
on an exception, KILLED on Ctrl-C or SIGTERM; if the process is SIGKILLed the run stays RUNNING
and the next invocation marks it KILLED (``tracking.recovery``).
"""

from __future__ import annotations

import resource
import signal
import subprocess
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from orchestrator import interrupts
from orchestrator.plan import PlannedRun
from orchestrator.progress import Sink


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


class EarlyStop(Exception):
    """Raised by the early-stopping callback; ends training, not the run."""


def _die_with_parent() -> None:
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


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def execute_run(run: PlannedRun, uri: str, *, display: bool | Sink = False,
                on_start: Any = None) -> RunOutcome:
    """Run ``run`` to the end and return its outcome (exceptions are recorded, then returned).
    ``on_start(run_id)`` is called as soon as the MLflow run exists; ``display`` is where
    progress goes (``progress.EpochProgress``)."""
    interrupts.install()  # SIGTERM and Ctrl-C end the run KILLED, between store writes
    _die_with_parent()
    # MLflow hints that integer columns cannot hold missing values, once per logged schema
    warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer",
                            category=UserWarning)
    from orchestrator import plugin_manager
    from orchestrator.tracking.runs import RunLogger, flatten
    from orchestrator.tracking.store import experiment_id

    exp = run.experiment
    task_cls = plugin_manager.tasks().get(exp.task)
    task = task_cls()
    started = time.perf_counter()
    backend = plugin_manager.backends().load(run.backend)
    backend.seed(run.seed)
    prepared = task.prepare(exp.data, seed=run.seed, folds=exp.folds)
    tags = {
        "orchestrator.backend": run.backend, "orchestrator.task": exp.task,
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
                metrics = _cross_validate(run, task, backend, prepared, logger, uri, display)
            else:
                metrics = _train_and_evaluate(run, task, backend, prepared, prepared.splits[0],
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


def _cross_validate(run, task, backend, prepared, logger, uri: str, display: bool | Sink
                    ) -> dict[str, float]:
    """One nested run per fold; the parent run gets the mean and standard deviation."""
    from orchestrator.tracking.runs import RunLogger

    per_fold: list[dict[str, float]] = []
    experiment_id = logger.client.get_run(logger.run_id).info.experiment_id
    for split in prepared.splits:
        tags = {**logger.client.get_run(logger.run_id).data.tags, "orchestrator.kind": "fold",
                "orchestrator.fold": split.fold}
        tags = {k: v for k, v in tags.items() if not k.startswith("mlflow.")}
        with RunLogger(uri, experiment_id, run_name=f"{run.run_name}-fold{split.fold}",
                       tags=tags, parent_run_id=logger.run_id) as child:
            per_fold.append(_train_and_evaluate(run, task, backend, prepared, split, child,
                                                display, log_model_uri=None))
    summary: dict[str, float] = {}
    for key in sorted({k for fold in per_fold for k in fold if k.startswith("test/")}):
        values = np.array([fold[key] for fold in per_fold if key in fold])
        summary[f"cv/{key}_mean"] = float(values.mean())
        summary[f"cv/{key}_std"] = float(values.std())
    logger.log_metrics(summary)
    return summary


def _train_and_evaluate(run, task, backend, prepared, split, logger, display: bool | Sink,
                        log_model_uri: str | None, extra_callbacks: tuple = ()
                        ) -> dict[str, float]:
    """Build, train and evaluate one model on one split, logging to ``logger``. Returns the
    evaluation metrics; ``extra_callbacks`` see every epoch (tuning reports and prunes)."""
    from orchestrator.initializers import init_weights
    from orchestrator.plots import learning_curves
    from orchestrator.progress import EpochProgress
    from orchestrator.training import Batches, EpochResult, fit

    exp = run.experiment
    train = exp.train
    spec = task.model_spec(exp.model, prepared)
    model = backend.build_model(spec, init_weights(spec, run.seed), dtype=train.dtype)
    y_train = task.targets(split.y_train, exp.loss, prepared)
    session = backend.training_session(model, exp.loss, exp.optimizer, n_train=len(split.x_train))
    batches = Batches(split.x_train, y_train, train.batch_size, seed=run.seed)
    y_val = None if split.y_val is None else task.targets(split.y_val, exp.loss, prepared)
    base_lr = exp.optimizer.params["lr"]
    schedule = train.schedule
    step_lr = None  # per-step schedules set the rate in fit(); per-epoch ones in record()
    if schedule.per == "step" and schedule.name != "constant":
        last_step = max(len(batches) * train.epochs - 1, 1)

        def step_lr(k: int) -> float:
            return base_lr * schedule.factor_of_progress(k / last_step)
    else:
        session.set_learning_rate(base_lr * schedule.factor_at(1, train.epochs))
    history: dict[str, list[float]] = {}
    stopper = _EarlyStopping(train.early_stopping, model) if train.early_stopping else None

    def evaluate(_epoch: int) -> dict[str, float]:
        metrics = {}
        if split.x_val is not None:
            metrics["val/loss"] = session.evaluate(split.x_val, y_val, train.eval_batch_size)["loss"]
        metrics.update(task.epoch_metrics(model, split, prepared, exp.loss))
        return metrics

    def record(entry: EpochResult) -> None:
        system = {"system/epoch_seconds": entry.seconds,
                  "system/samples_per_second": entry.samples_per_second,
                  "system/peak_rss_mb": peak_rss_mb()}
        logger.log_metrics({**entry.metrics, **system}, step=entry.epoch)
        for key, value in entry.metrics.items():
            history.setdefault(key, []).append(value)
        if entry.epoch < train.epochs and step_lr is None:
            session.set_learning_rate(base_lr * schedule.factor_at(entry.epoch + 1, train.epochs))

    callbacks = [record]
    progress = EpochProgress(run.label + (f" fold {split.fold}" if split.fold is not None else ""),
                             train.epochs, task.main_metric, display=display)
    callbacks.append(progress.update)
    callbacks.extend(extra_callbacks)
    if stopper:
        callbacks.append(stopper)
    with progress:
        try:
            fit(session, batches, train.epochs, evaluate=evaluate, callbacks=callbacks,
                step_lr=step_lr,
                on_batch=progress.batch if progress.enabled else None)
        except EarlyStop:
            logger.set_tags({"orchestrator.stopped_early_at": stopper.stopped_at,
                             "orchestrator.best_epoch": stopper.best_epoch})
    if stopper:
        stopper.restore()
    evaluation = task.evaluate(model, split, prepared, exp.loss, history)
    epochs_run = len(history.get("train/loss", [])) or 1
    logger.log_metrics(evaluation.metrics, step=epochs_run)
    logger.log_figure(learning_curves(history, title=run.label), "plots/learning_curves.png")
    for path, figure in evaluation.figures.items():
        logger.log_figure(figure, path)
    for path, text in evaluation.texts.items():
        logger.log_text(text, path)
    for path, frame in evaluation.tables.items():
        logger.log_table(frame, path)
    if log_model_uri is not None:
        from orchestrator.tracking.models import log_model

        example = split.x_test[:4]
        if log_model(log_model_uri, logger.run_id, backend, model, example):
            logger.status = "FINISHED"  # ended by MLflow's active-run context
    # per-epoch metrics at the epoch whose weights were kept, then the evaluation's
    kept = stopper.best_epoch - 1 if stopper and stopper.best_weights is not None else -1
    return {**{key: values[kept] for key, values in history.items()}, **evaluation.metrics}


class _EarlyStopping:
    """Stop when the metric has not improved for ``patience`` epochs; remember the best weights
    (on a tie the later epoch: a saturated validation metric must not pin an early one)."""

    def __init__(self, config, model) -> None:
        self.metric, self.patience = config.metric, config.patience
        self.sign = 1.0 if config.resolved_mode == "min" else -1.0
        self.model = model
        self.best = float("inf")
        self.best_epoch = 0
        self.best_weights: dict[str, np.ndarray] | None = None
        self.stopped_at: int | None = None

    def __call__(self, entry) -> None:
        if self.metric not in entry.metrics:
            raise KeyError(f"train.early_stopping.metric: {self.metric!r} is not reported; "
                           f"reported: {', '.join(sorted(entry.metrics))}")
        value = self.sign * entry.metrics[self.metric]
        if value <= self.best:  # on a tie, the later (longer-trained) epoch
            self.best, self.best_epoch = value, entry.epoch
            self.best_weights = self.model.get_weights()
        elif entry.epoch - self.best_epoch >= self.patience:
            self.stopped_at = entry.epoch
            raise EarlyStop

    def restore(self) -> None:
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)
