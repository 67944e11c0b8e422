"""The ``tune:`` section: search space, objective, budget, sampler, pruner, storage, heartbeat.

A search-space entry is keyed by the dotted config path it sets (``optimizer.lr``,
``loss.gamma``, ``model.hidden``...). ``when`` makes it conditional: ``{optimizer.name: [sgd,
momentum]}`` samples it only when that earlier parameter took one of those values, so a trial
never carries parameters of a branch it did not take.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from orchestrator.config.base import Strict


class Dimension(Strict):
    type: Literal["float", "int", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = Field(None, gt=0)
    choices: list[Any] | None = None
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
    seed: int | None = 0
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

    interval: int = Field(10, ge=1)
    grace: int = Field(30, ge=2)
    max_retry: int = Field(3, ge=0)


class Tune(Strict):
    metric: str  # a per-epoch metric (val/...) for pruning; its final value is the objective
    direction: Literal["maximize", "minimize"]
    trials: int = Field(ge=1)  # the study's TOTAL budget, across restarts and workers
    timeout: float | None = Field(None, gt=0)  # seconds per invocation
    sampler: Sampler = Sampler()
    pruner: Pruner = Pruner()
    storage: str | None = None  # an Optuna storage URL; default: SQLite under mlruns/
    study_name: str | None = None  # default: "<experiment>-<backend>"
    heartbeat: Heartbeat = Heartbeat()
    space: dict[str, Dimension] = Field(min_length=1)
