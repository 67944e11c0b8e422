"""Two interleaved spirals (Lang & Witbrock 1988): a tiny 2-D classification no linear model
solves. Data are generated from the run's seed, in NumPy; the network is Dense layers on the two
coordinates, the norm and activation chosen in the YAML's ``model:`` section."""

from __future__ import annotations

import hashlib
from typing import Literal

import numpy as np
from orchestrator import (DataError, Dense, Evaluation, ModelSpec, Options, Prepared, Split, Task,
                          metrics, specs)
from pydantic import Field


class SpiralData(Options):
    points: int = Field(300, ge=10)          # per spiral
    turns: float = Field(1.5, gt=0)          # how far each spiral winds
    noise: float = Field(0.05, ge=0)         # Gaussian noise on the coordinates
    test_size: float = Field(0.25, gt=0, lt=1)
    val_size: float = Field(0.1, ge=0, lt=1)  # of the training part; 0: no validation set


class SpiralModel(Options):
    hidden: tuple[int, ...] = (32, 32)
    activation: Literal["relu", "tanh", "sigmoid"] = "tanh"
    norm: Literal["none", "batch", "layer"] = "none"


def spirals(points: int, turns: float, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``2 * points`` coordinates [N, 2] and their spiral (0 or 1)."""
    rng = np.random.default_rng(seed)
    t = np.sqrt(rng.uniform(0, 1, points)) * turns * 2 * np.pi
    arm = np.stack([t * np.cos(t), t * np.sin(t)], axis=1) / (turns * 2 * np.pi)
    x = np.concatenate([arm, -arm]) + rng.normal(0, noise, (2 * points, 2))
    y = np.concatenate([np.zeros(points, np.int64), np.ones(points, np.int64)])
    return x, y


class TwoSpiralsTask(Task):
    name = "two_spirals"
    summary = "two interleaved spirals, 2-D points in two classes (example plugin)"
    DataOptions = SpiralData
    ModelOptions = SpiralModel
    main_metric = "test/accuracy"
    losses = ("sparse_categorical_crossentropy", "categorical_crossentropy")

    def prepare(self, data: SpiralData, *, seed: int, folds: int | None) -> Prepared:
        if folds is not None:
            raise DataError("two_spirals: no cross-validation (cv:) in this example task")
        x, y = spirals(data.points, data.turns, data.noise, seed)
        order = np.random.default_rng(seed + 1).permutation(len(x))
        x, y = x[order], y[order]
        n_test = int(round(len(x) * data.test_size))
        n_val = int(round((len(x) - n_test) * data.val_size))
        if len(x) - n_test - n_val < 2:
            raise DataError("two_spirals: too few training points; raise data.points")
        test, val, train = np.split(np.arange(len(x)), [n_test, n_test + n_val])
        split = Split(x[train], y[train], x[val] if n_val else None, y[val] if n_val else None,
                      x[test], y[test])
        digest = hashlib.sha256(x.tobytes() + y.tobytes()).hexdigest()[:16]
        return Prepared((split,), digest, "generated:two_spirals", meta={"classes": 2})

    def model_spec(self, model: SpiralModel, prepared: Prepared) -> ModelSpec:
        layers = []
        for units in model.hidden:
            layers += [Dense(units), specs.norm(model.norm),
                       specs.Activation(model.activation)]
        return ModelSpec((2,), (*layers, Dense(2)), name="two_spirals")

    def check(self, data, model, loss) -> None:
        if not loss.params.get("from_logits", False):
            raise ValueError("loss.from_logits: must be true (the network outputs logits)")

    def epoch_metrics(self, model, split: Split, prepared: Prepared, loss) -> dict[str, float]:
        if split.x_val is None:
            return {}
        predicted = metrics.predict_in_batches(model, split.x_val).argmax(axis=-1)
        return {"val/accuracy": float(np.mean(predicted == split.y_val))}

    def evaluate(self, model, split: Split, prepared: Prepared, loss, history) -> Evaluation:
        predicted = metrics.predict_in_batches(model, split.x_test).argmax(axis=-1)
        scores, _ = metrics.multiclass(split.y_test, predicted, 2, "test")
        return Evaluation(scores)
