"""Digits classification with the lecture's normalization network (normalization and optimizer
studies).

scikit-learn's bundled 8x8 digits stand in for MNIST: Input 64 -> 64 -> 32 -> 10, the norm
between each hidden layer's linear transform and its activation, batch 32 in the lecture. Besides
accuracy, each run reports the first epoch whose training loss reaches ``loss_threshold``: the
lecture claims normalization converges faster, and this measures it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np
from pydantic import Field, PositiveInt

from orchestrator.canonical import networks
from orchestrator.canonical.catalogue import ComponentSpec
from orchestrator.evaluation.metrics import (class_probabilities, epochs_to_threshold,
                                             multiclass, probability_scores,
                                             validation_accuracy)
from orchestrator.canonical.specs import ModelSpec
from orchestrator.contract.task import Evaluation, Options, Prepared, Split, Task, require_logits

CLASSES = 10


class DigitsData(Options):
    test_size: float = Field(0.2, gt=0, lt=1)
    val_size: float = Field(0.1, ge=0, lt=1)  # of the training part; 0: no validation set
    loss_threshold: float = Field(0.3, gt=0)  # for train/epochs_to_threshold


class DigitsModel(Options):
    norm: Literal["none", "batch", "layer"] = "batch"
    hidden: tuple[PositiveInt, ...] = (64, 32)
    activation: Literal["relu", "tanh", "sigmoid"] = "relu"


class DigitsTask(Task):
    name = "digits"
    summary = "the lecture's normalization network on scikit-learn digits (10 classes)"
    DataOptions = DigitsData
    ModelOptions = DigitsModel
    main_metric = "test/accuracy"
    losses = ("sparse_categorical_crossentropy", "categorical_crossentropy",
              "categorical_focal")

    cv_split = "stratified"
    epoch_metric_names = ("val/accuracy",)
    final_metric_names = ("test/accuracy", "test/macro_f1", "train/epochs_to_threshold")

    def has_validation(self, data: DigitsData) -> bool:
        return data.val_size > 0

    def spec_bounds(self, data: DigitsData) -> dict:
        return {}

    def prepare(self, data: DigitsData, *, seed: int, folds: int | None) -> Prepared:
        return self._prepare(data, seed, folds, None)

    def prepare_search(self, data: DigitsData, *, seed: int, folds: int,
                       outer: tuple[int, int] | None = None) -> Prepared:
        return self._prepare(data, seed, None, (folds, outer))

    def _prepare(self, data: DigitsData, seed: int, folds: int | None, search) -> Prepared:
        return digits_prepared(data.test_size, data.val_size, seed=seed, folds=folds,
                               tag="digits", meta={"classes": CLASSES,
                                                   "loss_threshold": data.loss_threshold},
                               options=data.model_dump(), search=search)

    def model_spec(self, model: DigitsModel, prepared: Prepared) -> ModelSpec:
        return networks.normalization_network(64, CLASSES, norm=model.norm, hidden=model.hidden,
                                            activation=model.activation,
                                            output_activation="linear")

    def check(self, data, model, loss: ComponentSpec) -> None:
        require_logits(loss)

    def epoch_metrics(self, model, split: Split, prepared: Prepared,
                      loss: ComponentSpec) -> dict[str, float]:
        return validation_accuracy(model, split)  # the main metric's curve

    def evaluate(self, model, split: Split, prepared: Prepared, loss: ComponentSpec,
                 history: Mapping[str, list[float]]) -> Evaluation:
        from orchestrator.evaluation.plots import confusion_matrix

        probabilities = class_probabilities(model, split.x_test,
                                            loss.params.get("from_logits", False))
        metrics, matrix = multiclass(split.y_test, probabilities.argmax(axis=-1), CLASSES,
                                     "test")
        losses, threshold = history.get("train/loss", []), prepared.meta["loss_threshold"]
        reached = epochs_to_threshold(losses, threshold)
        missing = {}
        if reached == reached:
            metrics["train/epochs_to_threshold"] = reached
        else:
            missing["train/epochs_to_threshold"] = (f"train/loss never reached {threshold} in "
                                                    f"{len(losses)} epoch(s)")
        figure = confusion_matrix(matrix, [str(c) for c in range(CLASSES)], "digits: test")
        return Evaluation(metrics, {"plots/confusion_matrix.png": figure}, missing=missing,
                          outputs=probabilities)

    def score_outputs(self, truth: np.ndarray, outputs: np.ndarray) -> dict[str, float]:
        return probability_scores(truth, outputs)


def digits_prepared(test_size: float, val_size: float, *, seed: int, folds: int | None,
                    tag: str, meta: dict, options: dict,
                    search: tuple[int, tuple[int, int] | None] | None = None) -> Prepared:
    """The digits split (or stratified folds), with a stratified validation part carved from
    each training part; shared by the digits and embedding tasks. ``search = (k, outer)``: k
    stratified folds over the training part of the split (or of outer fold ``outer = (i, K)``),
    each the validation part once (``Task.prepare_search``)."""
    import pandas as pd
    from sklearn.model_selection import train_test_split

    from orchestrator.data.cache import digest
    from orchestrator.data.digits import load_digits_split
    from orchestrator.data.tabular import inner_folds, stratified_folds

    whole = load_digits_split(test_size=test_size, seed=seed)
    x = np.concatenate([whole.x_train, whole.x_test])
    y = np.concatenate([whole.y_train, whole.y_test])
    if search is not None and search[1] is not None:
        index, outer = search[1]
        cuts = [stratified_folds(y, outer, seed, key="tune.nested.folds")[index]]
    elif folds:
        cuts = stratified_folds(y, folds, seed)
    else:
        n_train = len(whole.x_train)
        cuts = [(np.arange(n_train), np.arange(n_train, len(x)))]
    parts = [(train_idx, None, test_idx) for train_idx, test_idx in cuts]
    if search is not None:
        train_idx, _, test_idx = parts[0]
        parts = [(train_idx[inner], train_idx[held], test_idx)
                 for inner, held in inner_folds(y[train_idx], search[0], seed)]
    splits = []
    for k, (train_idx, val_idx, test_idx) in enumerate(parts):
        if val_idx is None and val_size:
            train_idx, val_idx = train_test_split(train_idx, test_size=val_size,
                                                  random_state=seed, stratify=y[train_idx])
        x_val = None if val_idx is None else x[val_idx]
        y_val = None if val_idx is None else y[val_idx]
        splits.append(Split(x[train_idx], y[train_idx], x_val, y_val, x[test_idx],
                            y[test_idx], fold=k if folds or search else None))
    table = pd.DataFrame(x, columns=list(whole.feature_names)).assign(label=y)
    return Prepared(tuple(splits), digest(tag, x, y, options, seed, folds, *([search] if search else [])),
                    "scikit-learn:load_digits", meta, table)
