"""Optuna studies for a ``tune:`` experiment: storage, sampler, pruner, the exact trial budget.

The budget is exact across workers, machines and restarts: the coordinator (``orchestrator
tune``) tops the study up with empty WAITING trials so that finished + running + waiting equals
the total budget, and workers only ever *pop* a waiting trial (an atomic state change in the
storage); they never create one. A retry (a trial whose worker died, or one interrupted by
Ctrl-C/SIGTERM) is re-enqueued with the same parameters and the trial it replaces stops
counting.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

from orchestrator.config.loader import ResolvedExperiment
from orchestrator.redaction import redact

RETRY_HISTORY_ATTR = "retry_history"  # Optuna's: the trials a retry replaces


@dataclass(frozen=True)
class StudyRef:
    """Enough to open a study from any process."""

    name: str
    storage_url: str
    backend: str
    heartbeat: tuple[int, int, int]  # interval, grace, max retries
    outer: int | None = None  # the outer fold of a nested cross-validation


def default_storage() -> str:
    from orchestrator.tracking.store import mlruns_root

    root = mlruns_root()
    root.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{root / 'optuna.db'}"


def study_name(exp: ResolvedExperiment, backend: str, outer: int | None = None) -> str:
    """``<name>[-<variant>][-outer<i>]-<backend>``: one study per variant of a ``matrix:``,
    backend and (nested cross-validation) outer fold."""
    parts = [exp.tune.study_name or exp.name]
    if exp.variant:
        parts.append(exp.variant)
    if outer is not None:
        parts.append(f"outer{outer}")
    return "-".join([*parts, backend])


def study_ref(exp: ResolvedExperiment, backend: str, storage: str | None = None,
              outer: int | None = None) -> StudyRef:
    tune = exp.tune
    name = study_name(exp, backend, outer)
    beat = tune.heartbeat
    return StudyRef(name, storage or tune.storage or default_storage(), backend,
                    (beat.interval, beat.grace, beat.max_retry), outer)


# how long a write to an SQLite storage waits for another process's lock before it fails
SQLITE_LOCK_TIMEOUT_S = 60


class StorageError(ValueError):
    """An Optuna storage that cannot be opened: one line, with the URL redacted."""


def open_storage(ref: StudyRef) -> Any:
    """An Optuna storage; database URLs get a heartbeat that fails and retries dead trials.
    A URL that cannot be opened (unknown scheme, driver not installed, no such database, a
    server that does not answer) raises ``StorageError``."""
    import optuna

    url = ref.storage_url
    try:
        if url.startswith("journal:"):
            from optuna.storages.journal import JournalFileBackend

            return optuna.storages.JournalStorage(
                JournalFileBackend(url.removeprefix("journal:")))
        interval, grace, retries = ref.heartbeat
        if url.startswith("sqlite"):
            # several workers write one file: wait for each other's locks (bounded), do not fail
            engine = {"connect_args": {"timeout": SQLITE_LOCK_TIMEOUT_S}}
        else:
            engine = {"pool_pre_ping": True}
            if url.startswith("postgresql"):
                engine["connect_args"] = {"connect_timeout": 10}
        with warnings.catch_warnings():  # heartbeat and retry are "experimental" (Optuna 2.8)
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(
                _driver(url), heartbeat_interval=interval, grace_period=grace,
                heartbeat_stale_trial_callback=retry_callback(retries), engine_kwargs=engine)
    except (KeyboardInterrupt, StorageError):
        raise
    except Exception as error:  # noqa: BLE001  (any driver's, SQLAlchemy's or Optuna's)
        from orchestrator.redaction import redact_text, secrets_of
        from orchestrator.tracking.failures import store_problem

        why = store_problem(error) or f"{type(error).__name__}: {error}"
        why = why.removeprefix("store or storage failed: ")
        raise StorageError(redact_text(f"the Optuna storage {redact(url)} cannot be opened: "
                                       f"{why}", secrets_of(url))) from None


def _driver(url: str) -> str:
    """``postgresql://`` with the driver that is installed (``tracking.store.with_driver``)."""
    from orchestrator.tracking.store import with_driver

    return with_driver(url)


def retry_callback(max_retry: int) -> Any:
    """Re-enqueue a failed trial with the same parameters (Optuna records the lineage)."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)


def make_sampler(exp: ResolvedExperiment) -> Any:
    import optuna

    # multivariate/group TPE and the heartbeat are marked experimental, for years now
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

    config = exp.tune.sampler
    if config.name == "random":
        return optuna.samplers.RandomSampler(seed=config.seed)
    if config.name == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=config.seed,
                                            n_startup_trials=config.n_startup_trials)
    if config.name == "grid":  # the grid points are enqueued by `top_up`; nothing to sample
        return optuna.samplers.RandomSampler(seed=config.seed)
    return optuna.samplers.TPESampler(seed=config.seed, n_startup_trials=config.n_startup_trials,
                                      multivariate=True, group=True)


def grid_space(exp: ResolvedExperiment) -> dict[str, list[Any]]:
    """The grid sampler's search space: categorical choices, or int/float ranges with a step."""
    import numpy as np

    grid = {}
    for path, dim in exp.tune.space.items():
        if dim.type == "categorical":
            grid[path] = list(dim.choices)
        elif dim.step:
            values = np.arange(dim.low, dim.high + dim.step / 2, dim.step)
            grid[path] = [int(v) for v in values] if dim.type == "int" else values.tolist()
        elif dim.type == "int":
            grid[path] = list(range(int(dim.low), int(dim.high) + 1))
        else:
            raise ValueError(f"tune.space.{path}: a grid needs a step for float ranges")
    return grid


def report_steps(exp: ResolvedExperiment) -> int:
    """Steps a full trial reports to the pruner: epochs, times the folds under ``cv:`` (fold f,
    epoch e is step f * epochs + e)."""
    return exp.train.epochs * (exp.folds or 1)


def make_pruner(exp: ResolvedExperiment) -> Any:
    import optuna

    config = exp.tune.pruner
    if config.name == "none":
        return optuna.pruners.NopPruner()
    if config.name == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=config.min_resource,
                                                      reduction_factor=config.reduction_factor)
    if config.name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=config.min_resource,
                                              max_resource=report_steps(exp),
                                              reduction_factor=config.reduction_factor)
    return optuna.pruners.MedianPruner(n_startup_trials=config.n_startup_trials,
                                       n_warmup_steps=config.n_warmup_steps)


def load_study(exp: ResolvedExperiment, ref: StudyRef, *, create: bool) -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(ref)
    if create:
        study = optuna.create_study(study_name=ref.name, storage=storage,
                                    direction=exp.tune.direction, sampler=make_sampler(exp),
                                    pruner=make_pruner(exp), load_if_exists=True)
        wanted = optuna.study.StudyDirection[exp.tune.direction.upper()]
        if study.direction != wanted:  # load_if_exists does not check it
            raise ValueError(f"study {ref.name!r} in {redact(ref.storage_url)} exists with "
                             f"direction {study.direction.name.lower()}, the config says "
                             f"{exp.tune.direction}; use another tune.study_name")
        return study
    try:
        return optuna.load_study(study_name=ref.name, storage=storage,
                                 sampler=make_sampler(exp), pruner=make_pruner(exp))
    except KeyError:
        raise ValueError(f"no study {ref.name!r} in {redact(ref.storage_url)}; start it with "
                         f"`orchestrator tune {exp.file} --storage URL`") from None


def budget_state(study: Any) -> dict[str, int]:
    """Trials by what they mean for the budget."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    retried = {n for t in trials for n in t.system_attrs.get(RETRY_HISTORY_ATTR, ())}
    counts = {"complete": 0, "pruned": 0, "failed": 0, "retried": 0, "running": 0, "waiting": 0}
    for t in trials:
        if t.state == TrialState.FAIL and t.number in retried:
            counts["retried"] += 1
        elif t.state == TrialState.COMPLETE:
            counts["complete"] += 1
        elif t.state == TrialState.PRUNED:
            counts["pruned"] += 1
        elif t.state == TrialState.FAIL:
            counts["failed"] += 1
        elif t.state == TrialState.RUNNING:
            counts["running"] += 1
        elif t.state == TrialState.WAITING:
            counts["waiting"] += 1
    counts["done"] = counts["complete"] + counts["pruned"] + counts["failed"]
    return counts


def top_up(study: Any, budget: int, grid: dict[str, list[Any]] | None = None,
           first: list[dict[str, Any]] | None = None) -> int:
    """Enqueue trials until done + running + waiting == budget; returns how many.

    Trials are empty (the sampler fills them in) except for a grid search, whose points are
    enqueued in order, each once, so the budget is at most the grid's size. ``first`` (the
    ``tune.enqueue`` points) lead a study that has no trial yet."""
    import itertools

    counts = budget_state(study)
    missing = budget - counts["done"] - counts["running"] - counts["waiting"]
    if grid is None:
        fixed = list(first or []) if not study.get_trials(deepcopy=False) else []
        points: Any = itertools.islice(
            itertools.chain(fixed, ({} for _ in range(max(missing, 0)))), max(missing, 0))
    else:
        taken = {tuple(sorted(t.params.items())) for t in study.get_trials(deepcopy=False)}
        taken |= {tuple(sorted(t.system_attrs.get("fixed_params", {}).items()))
                  for t in study.get_trials(deepcopy=False)}
        keys = list(grid)
        fresh = (dict(zip(keys, values)) for values in itertools.product(*grid.values()))
        points = itertools.islice((p for p in fresh if tuple(sorted(p.items())) not in taken),
                                  max(missing, 0))
    added = 0
    for params in points:
        study.enqueue_trial(params, skip_if_exists=False)
        added += 1
    return added
