"""Train one spec on several backends from the same weights and batches, and compare.

This is the tool's promise in one command (``orchestrator parity``): with canonical components,
identical initialization and identical batches, two frameworks follow the same trajectory, so any
difference left in a comparison is the framework's, not a hidden default's. Each backend trains in
its own process (``orchestrator.orchestration.isolation``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from orchestrator.canonical import catalogue, networks
from orchestrator.canonical.catalogue import ComponentSpec
from orchestrator.canonical.initializers import init_weights
from orchestrator.canonical.reference import relative_error
from orchestrator.canonical.specs import ModelSpec


@dataclass(frozen=True)
class BackendRun:
    backend: str
    versions: dict[str, str]
    losses: list[float]
    val_accuracy: list[float]
    weights: dict[str, np.ndarray]
    seconds: float


def digits(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 digits, scaled to [0, 1], split 80/20 with a fixed seed."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(seed).permutation(len(x))
    x, y = x[order] / 16.0, y[order]
    cut = int(0.8 * len(x))
    return x[:cut], y[:cut], x[cut:], y[cut:]


def train_on_backend(backend_name: str, spec: ModelSpec, loss: ComponentSpec,
                     optimizer: ComponentSpec, data: tuple[np.ndarray, ...], *, epochs: int,
                     batch_size: int, seed: int, dtype: str) -> BackendRun:
    """Train ``spec`` on one backend (meant to run in its own process)."""
    from orchestrator.plugins import manager as plugin_manager
    from orchestrator.contract.loop import Batches, fit

    x_train, y_train, x_val, y_val = data
    backend = plugin_manager.backends().load(backend_name)
    backend.seed(seed)
    model = backend.build_model(spec, init_weights(spec, seed), dtype=dtype)
    session = backend.training_session(model, loss, optimizer, n_train=len(x_train))

    def accuracy(_epoch: int) -> dict[str, float]:
        predicted = model.predict(x_val).argmax(axis=-1)
        return {"val/accuracy": float(np.mean(predicted == y_val))}

    started = time.perf_counter()
    result = fit(session, Batches(x_train, y_train, batch_size, seed=seed), epochs,
                 evaluate=accuracy)
    seconds = time.perf_counter() - started
    return BackendRun(backend_name, backend.framework_versions(), result.history("train/loss"),
                      result.history("val/accuracy"), model.get_weights(), seconds)


def run(backends: tuple[str, ...], *, norm: str = "batch", optimizer: str = "adam",
        epochs: int = 5, batch_size: int = 32, seed: int = 0, dtype: str = "float64",
        isolate: bool = True) -> list[BackendRun]:
    from orchestrator.orchestration.isolation import run_isolated

    data = digits(seed)
    spec = networks.normalization_network(data[0].shape[1], 10, norm=norm,
                                        output_activation="linear")
    loss = catalogue.resolve("loss", "sparse_categorical_crossentropy", {"from_logits": True})
    opt = catalogue.resolve("optimizer", optimizer)
    runs = []
    for name in backends:
        args = (name, spec, loss, opt, data)
        kwargs = dict(epochs=epochs, batch_size=batch_size, seed=seed, dtype=dtype)
        runs.append(run_isolated(train_on_backend, *args, **kwargs) if isolate
                    else train_on_backend(*args, **kwargs))
    return runs



def max_weight_difference(a: BackendRun, b: BackendRun) -> float:
    """Largest difference between the weights of two runs, relative to their largest weight.

    One scale for the whole model: a bias right before batch norm has a true gradient of zero
    and stays at rounding-noise size, so a per-array ratio would compare noise with noise.
    """
    scale = max(float(np.max(np.abs(w))) for w in b.weights.values())
    return max(relative_error(a.weights[k], b.weights[k], scale) for k in a.weights)
