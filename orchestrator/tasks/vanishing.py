"""The lecture's reason for the LSTM: a plain RNN cannot carry a gradient over a long sequence.

Data (generated from the seed, ``orchestrator.data.synthetic.first_element_task``): sequences of
``length`` steps whose class is the sign of the FIRST element; every later step is noise. The
network (one recurrent layer, ``rnn`` or ``lstm``, then a dense layer with two logits) must carry
the first step's information to the end.

Besides the test accuracy, each run measures how much gradient reaches each time step: with
``BackendModel.vjp`` and the upstream gradient of the mean cross entropy with respect to the
logits, ``(softmax(z) - onehot(y)) / N`` (computed here in NumPy), the gradient of the loss with
respect to the input ``x [N, T, 1]`` is taken; its norm at step t, averaged over the batch, is the
gradient reaching step t. ``test/grad_norm_ratio_first_to_last`` is that norm at the first step
over the norm at the last one: it collapses towards 0 for an RNN as the length grows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np
from pydantic import Field

from orchestrator.canonical import specs
from orchestrator.canonical.catalogue import ComponentSpec
from orchestrator.evaluation.metrics import (multiclass, predict_in_batches, softmax,
                                  validation_accuracy)
from orchestrator.canonical.specs import Dense, ModelSpec
from orchestrator.contract.task import Evaluation, Options, Prepared, Split, Task

CLASSES = 2


class VanishingData(Options):
    length: int = Field(50, ge=2, le=10_000)  # time steps between the signal and the output
    n_train: int = Field(2000, ge=10, le=1_000_000)
    n_val: int = Field(0, ge=0, le=1_000_000)  # 0: no validation set
    n_test: int = Field(1000, ge=10, le=1_000_000)
    noise: float = Field(1.0, ge=0)  # standard deviation of the distracting steps
    grad_batch: int = Field(256, ge=1)  # test sequences for the gradient measurement


class VanishingModel(Options):
    cell: Literal["rnn", "lstm"] = "lstm"
    units: int = Field(32, ge=1)
    # LSTM gate-bias initialization (docs/canonical.md, "Initializers"): a constant forget bias,
    # or chrono (Tallec & Ollivier 2018) with T_max = the sequence length; the rnn cell has no
    # gates and ignores both (so one setting serves a matrix over cells)
    forget_bias: float = Field(1.0, ge=-20, le=20)
    chrono: bool = False


class VanishingTask(Task):
    name = "vanishing"
    summary = "long-range dependency (class = sign of the first step): rnn vs lstm gradients"
    DataOptions = VanishingData
    ModelOptions = VanishingModel
    main_metric = "test/accuracy"
    losses = ("sparse_categorical_crossentropy",)
    epoch_metric_names = ("val/accuracy",)
    final_metric_names = ("test/accuracy", "test/macro_f1", "test/grad_norm_first_step",
                          "test/grad_norm_last_step", "test/grad_norm_ratio_first_to_last")

    def has_validation(self, data: VanishingData) -> bool:
        return data.n_val > 0

    def spec_bounds(self, data: VanishingData) -> dict:
        return {"length": data.length}

    def check(self, data, model, loss: ComponentSpec) -> None:
        if not loss.params.get("from_logits", False):
            raise ValueError("loss.from_logits: must be true (the network outputs logits)")

    def prepare(self, data: VanishingData, *, seed: int, folds: int | None) -> Prepared:
        import pandas as pd

        from orchestrator.data.cache import digest
        from orchestrator.data.errors import DataError
        from orchestrator.data.synthetic import first_element_task

        if folds:
            raise DataError("cv: the vanishing task draws fresh data from the seed; "
                            "cross-validation is not supported (remove cv:)")
        n = data.n_train + data.n_val + data.n_test
        x, y = first_element_task(n, data.length, seed, noise=data.noise)
        a, b = data.n_train, data.n_train + data.n_val
        split = Split(x[:a], y[:a], x[a:b] if data.n_val else None,
                      y[a:b] if data.n_val else None, x[b:], y[b:])
        table = pd.DataFrame({"first_step": x[:, 0, 0], "label": y})
        return Prepared((split,), digest("vanishing", x, y, data.model_dump(), seed),
                        f"orchestrator.data.synthetic:first_element_task(seed={seed})",
                        {"classes": CLASSES, "length": data.length,
                         "grad_batch": data.grad_batch}, table)

    def model_spec(self, model: VanishingModel, prepared: Prepared) -> ModelSpec:
        length = int(prepared.meta["length"])
        init = {} if model.cell != "lstm" else {
            "forget_bias": model.forget_bias, "chrono": max(length, 3) if model.chrono else None}
        return ModelSpec((length, 1), (specs.recurrent(model.cell, model.units, **init),
                                       Dense(CLASSES)), name=f"vanishing_{model.cell}")

    def epoch_metrics(self, model, split: Split, prepared: Prepared,
                      loss: ComponentSpec) -> dict[str, float]:
        return validation_accuracy(model, split)

    def evaluate(self, model, split: Split, prepared: Prepared, loss: ComponentSpec,
                 history: Mapping[str, list[float]]) -> Evaluation:
        import pandas as pd

        from orchestrator.evaluation.plots import curves

        predicted = predict_in_batches(model, split.x_test).argmax(axis=-1)
        metrics, _ = multiclass(split.y_test, predicted, CLASSES, "test")
        count = int(prepared.meta["grad_batch"])
        norms = gradient_norm_per_step(model, split.x_test[:count], split.y_test[:count])
        metrics["test/grad_norm_first_step"] = float(norms[0])
        metrics["test/grad_norm_last_step"] = float(norms[-1])
        metrics["test/grad_norm_ratio_first_to_last"] = float(norms[0] / norms[-1]) \
            if norms[-1] > 0 else float("nan")
        steps = np.arange(1, len(norms) + 1)
        cell = model.spec.name.removeprefix("vanishing_")
        figure = curves({cell: (steps, np.maximum(norms, 1e-30))}, xlabel="time step",
                        ylabel="mean |d loss / d x_t|", logy=True,
                        title=f"gradient reaching each step, length {len(norms)}, {cell}")
        frame = pd.DataFrame({"step": steps, "grad_norm": norms})
        return Evaluation(metrics, {"plots/gradient_norm_per_step.png": figure},
                          tables={"tables/gradient_norm_per_step.csv": frame})


def loss_upstream(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """d(mean sparse cross entropy from logits)/d logits = (softmax(z) - onehot(y)) / N."""
    logits = np.asarray(logits, dtype=np.float64)
    grad = softmax(logits)
    grad[np.arange(len(y)), np.asarray(y, dtype=np.int64)] -= 1.0
    return grad / len(y)


def gradient_norm_per_step(model, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``[T]``: the norm of d loss / d x_t over the features, averaged over the batch."""
    logits = model.predict(x)
    upstream = loss_upstream(logits, y).astype(logits.dtype)
    result = model.vjp(x, upstream, training=False)
    grad = np.asarray(result.grad_input, dtype=np.float64)  # [N, T, F]
    return np.linalg.norm(grad, axis=-1).mean(axis=0)
