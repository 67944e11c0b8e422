"""The ``tune:`` section: search space, objective, budget, sampler, pruner, storage, heartbeat,
the verdict after the studies and nested cross-validation.

A search-space entry is keyed by the dotted config path it sets (``optimizer.lr``,
``loss.gamma``, ``model.hidden``...). ``when`` makes it conditional: ``{optimizer.name: [sgd,
momentum]}`` samples it only when that earlier parameter took one of those values, so a trial
never carries parameters of a branch it did not take; a condition on a config path that is not a
dimension (``loss.name``, a ``matrix:`` key) is read from the variant's config, so a dimension
can exist in some variants' studies only.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from orchestrator.config import limits
from orchestrator.config.base import Strict

MAX_VERDICT_SEEDS = 20  # each seed is one more full training per study


class Dimension(Strict):
    type: Literal["float", "int", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = Field(None, gt=0)
    choices: list[Any] | None = Field(None, max_length=limits.MAX_CHOICES)
    when: dict[str, list[Any]] = {}

    @model_validator(mode="after")
    def _consistent(self) -> Dimension:
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("a categorical dimension needs a non-empty 'choices' list")
            if any(not isinstance(c, (str, int, float, bool, type(None))) for c in self.choices):
                raise ValueError("categorical choices must be strings, numbers, booleans or "
                                 "null (Optuna stores them as such)")
            if self.low is not None or self.high is not None or self.log or self.step:
                raise ValueError("a categorical dimension takes 'choices' only, not "
                                 "low/high/log/step")
            return self
        if self.choices is not None:
            raise ValueError(f"a {self.type} dimension takes low/high, not 'choices'")
        if self.low is None or self.high is None:
            raise ValueError(f"a {self.type} dimension needs 'low' and 'high'")
        if not self.low < self.high:
            raise ValueError(f"empty range: low ({self.low}) must be below high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError(f"a log-scale range needs low > 0, got {self.low}")
        if self.log and self.step is not None:
            raise ValueError("'log' and 'step' cannot be combined")
        if self.type == "int" and not (float(self.low).is_integer()
                                       and float(self.high).is_integer()):
            raise ValueError("an int dimension needs integer low and high")
        return self


class Sampler(Strict):
    name: Literal["tpe", "random", "cmaes", "grid"] = "tpe"
    seed: int | None = Field(0, ge=0, le=limits.SEED_MAX)
    n_startup_trials: int = Field(5, ge=0)  # tpe, cmaes: random trials before modelling


class Pruner(Strict):
    name: Literal["median", "successive_halving", "hyperband", "none"] = "median"
    n_startup_trials: int = Field(3, ge=0)  # median: trials before pruning starts
    n_warmup_steps: int = Field(2, ge=0)  # median: epochs before a trial can be pruned
    min_resource: int = Field(1, ge=1)  # successive halving / hyperband
    reduction_factor: int = Field(3, ge=2)


class Heartbeat(Strict):
    """Database storages only: a worker that misses heartbeats for ``grace`` seconds is dead;
    its trial is failed and retried with the same parameters (up to ``max_retry`` times)."""

    interval: int = Field(10, ge=1, le=3600)
    grace: int = Field(30, ge=2, le=86_400)
    max_retry: int = Field(3, ge=0, le=100)


class Verdict(Strict):
    """After the studies: retrain each study's best configuration with ``seeds`` training seeds
    (initial weights and batch order; the data split stays the search's) on the full training
    part, evaluate on the untouched test part, and compare variants and backends over the
    matched seeds (and outer folds). ``metric``: the held-out metric compared (default: the
    task's main metric). ``overrides``: dotted config keys set for the retraining only.
    ``ensemble``: also score the mean of the seeds' test outputs (one model made of the S
    networks), next to the seeds scored one by one."""

    seeds: int = Field(5, ge=1, le=MAX_VERDICT_SEEDS)
    metric: str | None = None
    confidence: float = Field(0.95, gt=0.5, lt=1)
    # config changes for the retraining only, e.g. {data.val_subjects: 0} to train on the
    # whole training part when nothing needs a validation part; the test part must not change
    overrides: dict[str, Any] = {}
    ensemble: bool = False

    @model_validator(mode="after")
    def _ensemble_of_several(self) -> Verdict:
        if self.ensemble and self.seeds < 2:
            raise ValueError(f"ensemble: true averages the seeds' outputs and needs seeds >= 2 "
                             f"(seeds is {self.seeds})")
        return self


class Nested(Strict):
    """Nested cross-validation: an outer loop of ``folds`` folds around the search. Each outer
    fold is the test part once; a study per outer fold searches on the rest (with ``cv:``, by
    inner folds), and the verdict retrains its best on the rest and tests on that fold."""

    folds: int = Field(ge=2, le=20)


class Tune(Strict):
    metric: str  # a per-epoch metric (val/...) for pruning; its final value is the objective
    direction: Literal["maximize", "minimize"]
    # the study's TOTAL budget, across restarts and workers
    trials: int = Field(ge=1, le=limits.MAX_TRIALS)
    timeout: float | None = Field(None, gt=0)  # seconds per invocation
    sampler: Sampler = Sampler()
    pruner: Pruner = Pruner()
    storage: str | None = None  # an Optuna storage URL; default: SQLite under mlruns/
    # default: "<experiment>-<backend>"; names the study's Parquet file too
    study_name: str | None = Field(None, min_length=1, max_length=limits.MAX_NAME_CHARS)
    heartbeat: Heartbeat = Heartbeat()
    space: dict[str, Dimension] = Field(min_length=1, max_length=limits.MAX_DIMENSIONS)
    verdict: Verdict | None = Verdict()  # null: no retraining after the studies
    # points to evaluate first (before the sampler's), e.g. the config as written: a mapping of
    # dimensions to values each; a variant's study takes the dimensions it has
    enqueue: list[dict[str, Any]] = Field([], max_length=limits.MAX_ENQUEUED)
    nested: Nested | None = None

    @field_validator("study_name")
    @classmethod
    def _name_is_a_name(cls, value: str | None) -> str | None:
        return limits.check_name(value)
