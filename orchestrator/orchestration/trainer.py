"""Training one model on one split (or every fold) and logging it: the public training entry
point that runs and tuning trials share.

``train_and_evaluate`` builds the model from the task's spec and the run's seed, trains it with
the core epoch loop (schedules, early stopping with the best weights restored, progress), logs
every epoch's metrics with system metrics, evaluates, and logs plots, texts, tables and the model.
``cross_validate`` does it once per fold, in nested runs, and logs the mean and spread.
"""

from __future__ import annotations

import re
import resource
import time

import numpy as np

from orchestrator.orchestration.progress import Sink


class EarlyStop(Exception):
    """Raised by the early-stopping callback; ends training, not the run."""


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def training_seconds(logger) -> tuple[float, float]:
    """Wall and CPU seconds this run (with its folds) spent in its epochs, as
    ``train_and_evaluate`` counted them; the rest of a run's time is its fixed cost
    (``system/overhead_seconds``)."""
    return getattr(logger, "training_seconds", (0.0, 0.0))


def _add_training_seconds(logger, wall: float, cpu: float) -> None:
    before = training_seconds(logger)
    logger.training_seconds = (before[0] + wall, before[1] + cpu)


def model_name(run) -> str:
    """The logged model's name: experiment, variant and backend (MLflow allows no / : . % " ')."""
    parts = [run.experiment.name, run.experiment.variant, run.backend]
    return re.sub(r"[/:.%\"' ]+", "_", "-".join(p for p in parts if p))


def cross_validate(run, task, backend, prepared, logger, uri: str, display: bool | Sink
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
            per_fold.append(train_and_evaluate(run, task, backend, prepared, split, child,
                                                display, log_model_uri=None))
        _add_training_seconds(logger, *training_seconds(child))
    summary: dict[str, float] = {}
    for key in sorted({k for fold in per_fold for k in fold if k.startswith("test/")}):
        values = np.array([fold[key] for fold in per_fold if key in fold])
        summary[f"cv/{key}_mean"] = float(values.mean())
        summary[f"cv/{key}_std"] = float(values.std())
    logger.log_metrics(summary)
    return summary


def train_and_evaluate(run, task, backend, prepared, split, logger, display: bool | Sink,
                        log_model_uri: str | None, extra_callbacks: tuple = (),
                        artifacts: bool = True,
                        outputs_artifact: str | None = None) -> dict[str, float]:
    """Build, train and evaluate one model on one split, logging to ``logger``. Returns the
    evaluation metrics; ``extra_callbacks`` see every epoch (tuning reports and prunes).
    ``artifacts=False`` logs metrics only (no plots, texts or tables: a search's folds).
    ``outputs_artifact``: where to log the test outputs and labels (``outputs``, ``truth``)
    as ``.npz``, when the task gives them (``Evaluation.outputs``)."""
    from orchestrator.canonical.initializers import init_weights
    from orchestrator.evaluation.plots import learning_curves, titled
    from orchestrator.orchestration.progress import EpochProgress
    from orchestrator.contract.loop import Batches, EpochResult, fit

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
    fit_started = time.perf_counter(), time.process_time()
    with progress:
        try:
            fit(session, batches, train.epochs, evaluate=evaluate, callbacks=callbacks,
                step_lr=step_lr,
                on_batch=progress.batch if progress.enabled else None)
        except EarlyStop:
            logger.set_tags({"orchestrator.stopped_early_at": stopper.stopped_at,
                             "orchestrator.best_epoch": stopper.best_epoch})
        finally:
            _add_training_seconds(logger, time.perf_counter() - fit_started[0],
                                  time.process_time() - fit_started[1])
    if stopper:
        stopper.restore()
    evaluation = task.evaluate(model, split, prepared, exp.loss, history)
    epochs_run = len(history.get("train/loss", [])) or 1
    # a key also logged per epoch (val/...) is already at this step: never log a step twice
    logger.log_metrics({k: v for k, v in evaluation.metrics.items() if k not in history},
                       step=epochs_run, missing=evaluation.missing)
    if artifacts:
        label = run.label + (f" fold {split.fold}" if split.fold is not None else "")
        logger.log_figure(learning_curves(history, title=label), "plots/learning_curves.png")
        for path, figure in evaluation.figures.items():
            logger.log_figure(titled(figure, label), path)
        for path, text in evaluation.texts.items():
            logger.log_text(text, path)
        for path, frame in evaluation.tables.items():
            logger.log_table(frame, path)
    else:
        import matplotlib.pyplot as plt

        for figure in evaluation.figures.values():
            plt.close(figure)
    if outputs_artifact is not None and evaluation.outputs is not None:
        logger.log_arrays(outputs_artifact, outputs=evaluation.outputs,
                          truth=np.asarray(split.y_test))
    if log_model_uri is not None:
        from orchestrator.tracking.model_logging import log_model

        example = split.x_test[:4]
        if log_model(log_model_uri, logger.run_id, backend, model, example,
                     name=model_name(run), step=epochs_run):
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
