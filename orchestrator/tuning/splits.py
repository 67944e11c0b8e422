"""Which data a study searches on and which the verdict retrains and tests on.

The data split is fixed by the experiment's first seed for the whole search and verdict (the
verdict's seeds vary initial weights and batch order only), so the test part the verdict scores
is the one the search never saw:

| experiment | a study searches on | the verdict trains on / tests on |
|---|---|---|
| no ``cv:``, no ``tune.nested`` | the task's split: train, validation | the same split: train / test |
| ``cv: {folds: k}`` | k folds of the training part (``Task.prepare_search``), each the validation part once | the task's split: train / test |
| ``tune.nested: {folds: K}`` | outer fold i's training part (its validation part, or k folds of it with ``cv:``) | ``prepare(folds=K).splits[i]``: train / test |
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from orchestrator.config.loader import ResolvedExperiment


@dataclass(frozen=True)
class Study:
    """One study of a ``tune:`` experiment: a variant (the experiment), a backend and, under
    nested cross-validation, an outer fold."""

    experiment: ResolvedExperiment
    backend: str
    outer: int | None = None

    @property
    def label(self) -> str:
        fold = f" outer fold {self.outer}" if self.outer is not None else ""
        return f"{self.experiment.label} {self.backend}{fold}"


def outer_folds(exp: ResolvedExperiment) -> list[int | None]:
    """The outer folds that each get a study: ``[None]`` without nested cross-validation."""
    nested = exp.tune.nested
    return list(range(nested.folds)) if nested is not None else [None]


def studies(experiments: list[ResolvedExperiment]) -> list[Study]:
    """Every study of these experiments, in a stable order: variant, backend, outer fold."""
    return [Study(e, b, o) for e in experiments if e.tune is not None for b in e.backends
            for o in outer_folds(e)]


def data_seed(exp: ResolvedExperiment) -> int:
    return exp.seeds[0]


def search_data(task: Any, exp: ResolvedExperiment, outer: int | None) -> Any:
    """The ``Prepared`` a study's trials train on: one split per (inner) fold."""
    nested = exp.tune.nested
    position = (outer, nested.folds) if nested is not None and outer is not None else None
    if exp.folds:
        return task.prepare_search(exp.data, seed=data_seed(exp), folds=exp.folds,
                                   outer=position)
    if position is not None:
        prepared = task.prepare(exp.data, seed=data_seed(exp), folds=nested.folds)
        return _only(prepared, outer)
    return task.prepare(exp.data, seed=data_seed(exp), folds=None)


def verdict_data(task: Any, exp: ResolvedExperiment, outer: int | None) -> Any:
    """The ``Prepared`` the verdict retrains on, with its one split (train / test)."""
    nested = exp.tune.nested
    if nested is not None and outer is not None:
        return _only(task.prepare(exp.data, seed=data_seed(exp), folds=nested.folds), outer)
    return task.prepare(exp.data, seed=data_seed(exp), folds=None)


def _only(prepared: Any, index: int) -> Any:
    import dataclasses

    return dataclasses.replace(prepared, splits=(prepared.splits[index],))


def check_data(task_for: Any, experiments: list[ResolvedExperiment]) -> None:
    """Prepare every study's search and verdict data once, before any study or run exists, so
    that bad data or impossible folds stop the command with one line (``DataError``). Tuned
    ``data.`` options are prepared per trial instead."""
    from orchestrator.data.errors import DataError

    seen = set()
    for study in studies(experiments):
        exp = study.experiment
        if any(path.startswith("data.") for path in exp.tune.space):
            continue
        key = (exp.task, exp.data.model_dump_json(), exp.folds, study.outer,
               exp.tune.nested.folds if exp.tune.nested else None)
        if key in seen:
            continue
        seen.add(key)
        task = task_for(exp.task)
        try:
            searched = search_data(task, exp, study.outer)
            if exp.tune.verdict is not None:
                from orchestrator.tuning.verdict import verdict_experiment

                retrained = verdict_experiment(study, -1, {})
                tested = verdict_data(task, retrained, study.outer).splits[0]
                if any(not _same_test_part(s, tested) for s in searched.splits):
                    raise DataError("tune.verdict.overrides: the verdict would test on other "
                                    "data than the test part the search left untouched")
        except DataError as exc:  # name the experiment file too
            raise DataError(f"{exp.file}: {exc}") from None


def _same_test_part(a: Any, b: Any) -> bool:
    """The same held-out rows, as far as a split shows them: the same labels in the same
    order and the same held-out groups (features differ: preprocessing is fitted on each
    split's own training part)."""
    return (np.array_equal(a.y_test, b.y_test)
            and a.info.get("test_subjects") == b.info.get("test_subjects"))
