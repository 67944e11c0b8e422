"""The experiment YAML schema: top-level sections, training settings, cross-validation.

Task-specific sections (``data:``, ``model:``) are validated by the task's own option classes and
component sections (``loss:``, ``optimizer:``) by the catalogue, in ``orchestrator.config.loader``.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from orchestrator.config import limits
from orchestrator.config.base import Strict
from orchestrator.config.tune_schema import Tune


class EarlyStopping(Strict):
    """Stop when ``metric`` has not improved for ``patience`` epochs; keep the best weights."""

    metric: str = "val/loss"
    patience: int = Field(5, ge=1)
    mode: Literal["min", "max"] | None = None  # default: min for losses, max otherwise

    @property
    def resolved_mode(self) -> str:
        if self.mode:
            return self.mode
        return "min" if self.metric.endswith(("loss", "bits_per_char", "perplexity")) else "max"


class Schedule(Strict):
    """Learning-rate schedule: constant, cosine decay to ``min_factor`` x lr, or a step decay by
    ``factor`` every ``every`` epochs. ``per: epoch`` changes the rate between epochs;
    ``per: step`` moves the cosine along every optimizer step (for runs of one or a few long
    epochs, where a per-epoch schedule would hardly move)."""

    name: Literal["constant", "cosine", "step"] = "constant"
    min_factor: float = Field(0.0, ge=0, le=1)
    every: int = Field(10, ge=1)
    factor: float = Field(0.5, gt=0, le=1)
    per: Literal["epoch", "step"] = "epoch"

    @model_validator(mode="after")
    def _per_step_is_cosine(self) -> "Schedule":
        if self.per == "step" and self.name == "step":
            raise ValueError("per: step takes name cosine or constant (a step decay counts epochs)")
        return self

    def factor_at(self, epoch: int, epochs: int) -> float:
        """Multiplier of the base learning rate during ``epoch`` (1-based) of ``epochs``."""
        if self.name == "step":
            return self.factor ** ((epoch - 1) // self.every)
        return self.factor_of_progress((epoch - 1) / max(epochs - 1, 1))

    def factor_of_progress(self, progress: float) -> float:
        """Multiplier at ``progress`` in [0, 1] of the run (cosine and constant)."""
        if self.name == "cosine":
            return self.min_factor + (1 - self.min_factor) * 0.5 * (1 + math.cos(math.pi * progress))
        return 1.0


class Train(Strict):
    epochs: int = Field(ge=1, le=limits.MAX_EPOCHS)
    # null: the whole training set in one batch
    batch_size: int | None = Field(32, ge=1, le=limits.MAX_BATCH)
    dtype: Literal["float32", "float64"] = "float32"
    early_stopping: EarlyStopping | None = None
    schedule: Schedule = Schedule()
    eval_batch_size: int = Field(1024, ge=1, le=limits.MAX_BATCH)


class CrossValidation(Strict):
    """k-fold cross-validation. In a run, each fold is the test part once; in a ``tune:`` search,
    the folds split the training part and each is the validation part once (the test part stays
    untouched). ``split`` states the kind the task must build: ``stratified`` (by class) or
    ``grouped`` (whole groups, e.g. subjects, per fold); null: the task's own kind."""

    folds: int = Field(ge=2, le=50)
    split: Literal["stratified", "grouped"] | None = None


class RunResources(Strict):
    """What one run asks of a cluster node (``executor: ray`` or ``slurm``): CPUs, GPUs and
    memory. The local executor gives each run its share of this machine instead."""

    cpus: float = Field(1, gt=0, le=4096)
    gpus: float = Field(0, ge=0, le=1024)
    memory_gb: float | None = Field(None, gt=0, le=1_000_000)


class ExecutorConfig(Strict):
    """Where the runs go: ``local`` (this machine, the default), ``ray`` or ``slurm`` (or a
    plugin's executor); ``orchestrator run --executor`` and its options override it."""

    name: str = "local"
    address: str | None = None  # ray: the cluster (else RAY_ADDRESS, else a local instance)
    partition: str | None = None  # slurm
    time_minutes: int | None = Field(None, ge=1, le=525_600)  # slurm: each job's time limit
    retries: int = Field(2, ge=0, le=100)  # attempts after a node died under a run
    folder: str | None = None  # slurm: where submitit keeps jobs, logs, messages (shared)
    cluster: Literal["slurm", "local"] | None = None  # slurm: local = processes of this machine


class Experiment(Strict):
    """One experiment file. ``matrix`` expands into variants (the cartesian product of its
    dotted keys' values); every variant runs on every backend with every seed."""

    # the MLflow experiment name, and part of study names and their Parquet files' names
    name: str | None = Field(None, min_length=1, max_length=limits.MAX_NAME_CHARS)
    description: str = Field("", max_length=limits.MAX_DESCRIPTION_CHARS)  # an MLflow tag
    task: str
    data: dict[str, Any] = {}
    model: dict[str, Any] = {}
    loss: dict[str, Any]
    optimizer: dict[str, Any]
    train: Train
    backends: list[str] | None = Field(None, min_length=1)  # null: every available backend
    seeds: list[Annotated[int, Field(ge=0, le=limits.SEED_MAX)]] = Field(
        [0], min_length=1, max_length=limits.MAX_SEEDS)
    cv: CrossValidation | None = None
    matrix: dict[str, list[Any]] = {}
    tune: Tune | None = None
    executor: ExecutorConfig | None = None
    resources: RunResources = RunResources()

    @field_validator("executor", mode="before")
    @classmethod
    def _executor_by_name(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @field_validator("name")
    @classmethod
    def _name_is_a_name(cls, value: str | None) -> str | None:
        return limits.check_name(value)

    @field_validator("loss", "optimizer")
    @classmethod
    def _has_name(cls, value: dict[str, Any]) -> dict[str, Any]:
        if "name" not in value:
            raise ValueError("needs a 'name' (and optionally hyperparameters)")
        return value

    @field_validator("matrix")
    @classmethod
    def _non_empty_axes(cls, value: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in value.items():
            if not values:
                raise ValueError(f"matrix.{limits.short(key, 60)[1:-1]} has no values")
        return value

    @field_validator("seeds")
    @classmethod
    def _distinct_seeds(cls, value: list[int]) -> list[int]:
        if len(set(value)) != len(value):
            raise ValueError("lists a seed twice")
        return value
