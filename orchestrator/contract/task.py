"""The task contract: what an experiment's ``task:`` names, from data to model to metrics.

A task turns validated options into arrays (``prepare``), a model spec (``model_spec``) and
metrics (``evaluate``); the runner does the rest (backends, training, tracking). Tasks never
import a framework, MLflow or Optuna: they see a backend only through ``Predictor`` (a model's
``predict`` and ``vjp``) and hand the tracker plain data (metrics, matplotlib figures, text).

Register a task from a plugin::

    @hookimpl
    def orchestrator_add_tasks(registry):
        registry.add_task(MyTask)

Option classes are pydantic models with ``extra="forbid"``: unknown keys in ``data:`` or
``model:`` are rejected with the closest allowed name, before anything runs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, model_validator

from orchestrator.canonical import catalogue
from orchestrator.canonical.catalogue import ComponentSpec
from orchestrator.canonical.specs import ModelSpec
from orchestrator.canonical.targets import one_hot
from orchestrator.contract.model import BackendModel
from orchestrator.contract.written import as_written


class Options(BaseModel):
    """Base of every task's ``data:`` and ``model:`` option classes. Validation is strict
    (``true`` is no integer, ``"3"`` no number, ``.inf`` no float); YAML lists fill tuple
    fields and exact integral floats (``1e3``) integer fields (``contract.written``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _as_written(cls, data: Any) -> Any:
        return as_written(cls, data)


@dataclass(frozen=True)
class Split:
    """One training/validation/test split of a task's arrays (one fold under ``cv:``)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray | None
    y_val: np.ndarray | None
    x_test: np.ndarray
    y_test: np.ndarray
    fold: int | None = None
    info: Mapping[str, Any] = field(default_factory=dict)  # e.g. held-out subjects


@dataclass(frozen=True)
class Prepared:
    """Everything a run needs from the data, computed once before any run starts."""

    splits: tuple[Split, ...]  # one, or one per fold
    digest: str  # content digest of the data as used (logged with every run)
    source: str  # where it came from (a path, or "package:file")
    meta: Mapping[str, Any] = field(default_factory=dict)  # classes, vocabulary, shapes...
    table: Any = None  # a pandas DataFrame describing the data, for mlflow.log_input


@dataclass
class Evaluation:
    """What a task reports after training: metrics (``split/name``) and artifacts."""

    metrics: dict[str, float] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)  # artifact path -> matplotlib figure
    texts: dict[str, str] = field(default_factory=dict)  # artifact path -> text
    tables: dict[str, Any] = field(default_factory=dict)  # artifact path -> DataFrame
    # metrics that have no value, and why (e.g. a threshold never reached): recorded as
    # ``orchestrator.no_value.<key>`` tags instead of a NaN metric
    missing: dict[str, str] = field(default_factory=dict)
    # what the test metrics are computed from, one row per test example (class probabilities,
    # the positive class's probability): outputs of several trainings on the same test part can
    # be averaged and scored again by ``Task.score_outputs`` (the verdict's ensemble)
    outputs: np.ndarray | None = None


def require_logits(loss: ComponentSpec, output: str = "logits") -> None:
    """For tasks whose network ends in a linear layer: the loss must read logits."""
    if not loss.params.get("from_logits", False):
        raise ValueError(f"loss.from_logits: must be true (the network outputs {output})")


class Task(ABC):
    """A kind of experiment. Subclasses set the class attributes and implement the methods."""

    name: ClassVar[str]
    summary: ClassVar[str]
    DataOptions: ClassVar[type[Options]]
    ModelOptions: ClassVar[type[Options]]
    main_metric: ClassVar[str]  # e.g. "test/average_precision"
    direction: ClassVar[Literal["maximize", "minimize"]] = "maximize"
    # the losses that fit this task's targets (configs naming another are rejected; a loss a
    # plugin added fits if it reads the same target kind as one of these, see ``fits``)
    losses: ClassVar[tuple[str, ...]] = ()
    # the folds ``prepare`` builds under ``cv:``: "stratified" (by class), "grouped" (whole
    # groups, e.g. subjects, in one fold), or None when the task cannot cross-validate
    cv_split: ClassVar[Literal["stratified", "grouped"] | None] = None
    # the keys ``epoch_metrics`` reports (when there is a validation part); with the runner's
    # own ``train/loss`` and ``val/loss`` these are what ``train.early_stopping.metric`` and
    # ``tune.metric`` may name. None: not declared, names are not checked before the run
    epoch_metric_names: ClassVar[tuple[str, ...] | None] = None
    # the keys ``evaluate`` reports (``tune.verdict.metric`` may name a test/ one); None: not
    # declared
    final_metric_names: ClassVar[tuple[str, ...] | None] = None

    def has_validation(self, data: Options) -> bool | None:
        """Whether ``prepare`` builds a validation part with these options (``val/...`` metrics
        exist only then). None (the default): not known before the data is read."""
        return None

    def spec_bounds(self, data: Options) -> Mapping[str, Any] | None:
        """The ``prepared.meta`` entries ``model_spec`` reads, at their smallest values that
        ``data`` allows, known without reading any data (e.g. ``{"inputs": 1}``). Validation
        builds ``model_spec`` with them (a spec is plain data: no weight is allocated) and
        refuses a model whose weights would need more memory than the limit. None (the
        default): the size is not checked before the run."""
        return None

    @classmethod
    def target_kinds(cls) -> tuple[str, ...]:
        """The target kinds (``catalogue.TARGETS``) of ``losses`` at their defaults."""
        return tuple(dict.fromkeys(catalogue.resolve("loss", name).target
                                   for name in cls.losses))

    @classmethod
    def fits(cls, loss: ComponentSpec) -> bool:
        """Whether ``loss`` fits this task: one of ``losses`` (all when empty), or a loss a
        plugin added (``orchestrator_add_components``) reading one of ``target_kinds``."""
        if not cls.losses or loss.name in cls.losses:
            return True
        return bool(loss.definition.plugin) and loss.target in cls.target_kinds()

    def check(self, data: Options, model: Options, loss: ComponentSpec) -> None:
        """Cross-checks that need no data: raise ``ValueError("key.path: what is wrong")``."""

    def components(self, model: Options) -> list[tuple[str, str]]:
        """The catalogue components (kind, name) the model uses, checked against every chosen
        backend before a run starts. Default: the options' ``norm`` and ``cell`` fields."""
        found = []
        for field_name, kind in (("norm", "norm"), ("cell", "recurrent")):
            value = getattr(model, field_name, None)
            if isinstance(value, str):
                found.append((kind, value))
        return found

    @abstractmethod
    def prepare(self, data: Options, *, seed: int, folds: int | None) -> Prepared:
        """Load (cached) data and split it; ``folds`` asks for k-fold cross-validation.
        Raise ``orchestrator.data.errors.DataError`` for bad data, before any run starts."""

    def prepare_search(self, data: Options, *, seed: int, folds: int,
                       outer: tuple[int, int] | None = None) -> Prepared:
        """Splits for a cross-validated search (``tune:`` with ``cv:``): the test part held out,
        untouched, and ``folds`` folds (of ``cv_split`` kind) over the rest, split ``j`` having
        fold ``j`` as its validation part and the other folds as its training part. The test
        part is ``prepare(folds=None).splits[0]``'s, or with ``outer = (i, k)`` (nested
        cross-validation) ``prepare(folds=k).splits[i]``'s. Every split carries that same test
        part. Optional: tasks without it cannot cross-validate a search."""
        raise NotImplementedError(f"task {self.name!r} cannot cross-validate a search")

    @classmethod
    def supports_search_folds(cls) -> bool:
        return cls.prepare_search is not Task.prepare_search

    def score_outputs(self, truth: np.ndarray, outputs: np.ndarray) -> dict[str, float]:
        """The test metrics (``test/...``, as ``evaluate`` names them) of ``outputs`` shaped as
        ``Evaluation.outputs``, e.g. the mean of several trainings' outputs, against the test
        labels ``truth``. Optional: tasks without it have no ensemble verdict."""
        raise NotImplementedError(f"task {self.name!r} cannot score averaged outputs")

    @classmethod
    def supports_ensemble(cls) -> bool:
        return cls.score_outputs is not Task.score_outputs

    @abstractmethod
    def model_spec(self, model: Options, prepared: Prepared) -> ModelSpec:
        """The network for these options and data."""

    def targets(self, y: np.ndarray, loss: ComponentSpec, prepared: Prepared) -> np.ndarray:
        """Labels in the form ``loss`` reads, from its target kind (declared once on its
        catalogue entry, ``loss.target``): one-hot rows of ``prepared.meta["classes"]`` classes
        for a ``one_hot`` loss, ``y`` as it is otherwise. The training session checks the
        result against the model's output (``orchestrator.canonical.targets``)."""
        if loss.target == "one_hot":
            return one_hot(y, int(prepared.meta["classes"]))
        return y

    @abstractmethod
    def evaluate(self, model: BackendModel, split: Split, prepared: Prepared,
                 loss: ComponentSpec, history: Mapping[str, list[float]]) -> Evaluation:
        """Metrics on the split's test (and validation) data, and artifacts (plots, samples).
        ``history`` holds the per-epoch metrics (``train/loss``...) of the training."""

    def epoch_metrics(self, model: BackendModel, split: Split, prepared: Prepared,
                      loss: ComponentSpec) -> dict[str, float]:
        """Cheap metrics computed after every epoch (for curves, early stopping, pruning).
        Default: none beyond the losses the runner computes."""
        return {}
