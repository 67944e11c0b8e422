"""The two built-in backends against each other, directly (the kit compares each to the reference)."""

from __future__ import annotations

import numpy as np
import pytest

from orchestrator.canonical import catalogue, networks
from orchestrator.comparison import parity
from orchestrator.plugins import manager as plugin_manager
from orchestrator.canonical.initializers import init_weights
from orchestrator.canonical.specs import trainable_names
from orchestrator.testing.assertions import assert_weights_close

BACKENDS = ("torch", "tensorflow")

SPECS = {
    "har": networks.har_network(12, 6, 7, dropout=0.0),
    "normalization-batch": networks.normalization_network(64, 10, norm="batch"),
    "normalization-layer": networks.normalization_network(64, 10, norm="layer"),
    "char": networks.char_network(30, 10, embedding_dim=8, units=16),
}


def _batch(spec_id: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    if spec_id == "har":
        return rng.normal(0, 1, (16, 12, 6)), np.eye(7)[rng.integers(0, 7, 16)]
    if spec_id == "char":
        return rng.integers(0, 30, (8, 10)), rng.integers(0, 30, (8, 10))
    return rng.uniform(0, 1, (32, 64)), np.eye(10)[rng.integers(0, 10, 32)]


def _loss(spec_id: str):
    if spec_id == "char":
        return catalogue.resolve("loss", "sparse_categorical_crossentropy", {"from_logits": True})
    return catalogue.resolve("loss", "categorical_crossentropy")


@pytest.fixture(scope="module")
def backends():
    registry = plugin_manager.backends()
    return {name: registry.load(name) for name in BACKENDS}


@pytest.mark.parametrize("spec_id", SPECS)
def test_same_seed_gives_identical_initial_weights(backends, spec_id: str) -> None:
    spec = SPECS[spec_id]
    weights = {name: b.build_model(spec, init_weights(spec, seed=42)).get_weights()
               for name, b in backends.items()}
    for key, value in weights["torch"].items():
        np.testing.assert_array_equal(value, weights["tensorflow"][key], err_msg=key)
    other_seed = init_weights(spec, seed=43)
    assert any(not np.array_equal(other_seed[k], weights["torch"][k].astype(np.float64))
               for k in trainable_names(spec))


@pytest.mark.parametrize(("dtype", "optimizer", "tol"), [
    ("float64", "adam", 1e-5),
    ("float64", "nesterov", 1e-5),
    ("float32", "sgd", 1e-5),
])
@pytest.mark.parametrize("spec_id", SPECS)
def test_one_training_step_agrees(backends, spec_id: str, dtype: str, optimizer: str,
                                  tol: float) -> None:
    """Same spec, seed and batch, no dropout: the parameters after one step agree.

    float32 uses plain SGD: Adam's first step is lr * g / (|g| + eps), which turns float32
    rounding noise in a gradient that is truly zero (a bias right before batch norm) into a step
    of up to lr; in float64 that noise is far below eps.
    """
    spec = SPECS[spec_id]
    x, y = _batch(spec_id, np.random.default_rng(0))
    after, losses = {}, {}
    for name, backend in backends.items():
        model = backend.build_model(spec, init_weights(spec, seed=1), dtype=dtype)
        session = backend.training_session(model, _loss(spec_id),
                                           catalogue.resolve("optimizer", optimizer),
                                           n_train=len(x))
        session.train_step(x, y)
        losses[name] = session.end_epoch()["loss"]
        after[name] = model.get_weights()
    assert losses["torch"] == pytest.approx(losses["tensorflow"], rel=tol)
    assert_weights_close(after["tensorflow"], after["torch"], tol, f"{spec_id} after one step")


@pytest.mark.parametrize("spec_id", SPECS)
def test_backpropagation_agrees(backends, spec_id: str) -> None:
    spec = SPECS[spec_id]
    x, _ = _batch(spec_id, np.random.default_rng(1))
    upstream = np.random.default_rng(2).normal(0, 1, (len(x), *spec.output_shape))
    results = {name: b.build_model(spec, init_weights(spec, seed=5), dtype="float64")
               .vjp(x, upstream, training=True) for name, b in backends.items()}
    torch_result, tf_result = results["torch"], results["tensorflow"]
    np.testing.assert_allclose(tf_result.output, torch_result.output, rtol=1e-9, atol=1e-12)
    if torch_result.grad_input is not None:
        assert_weights_close({"x": tf_result.grad_input}, {"x": torch_result.grad_input}, 1e-8,
                             "d/dinput")
    assert_weights_close(tf_result.grad_weights, torch_result.grad_weights, 1e-8, "d/dweights")


def test_training_runs_in_separate_processes_follow_the_same_trajectory() -> None:
    """`orchestrator parity`: each backend in its own process, same weights and batches."""
    runs = parity.run(BACKENDS, epochs=2, batch_size=64, norm="batch", optimizer="adam",
                      dtype="float64")
    torch_run, tf_run = runs
    np.testing.assert_allclose(tf_run.losses, torch_run.losses, rtol=1e-6)
    assert tf_run.val_accuracy == torch_run.val_accuracy
    assert torch_run.losses[1] < torch_run.losses[0]
    assert parity.max_weight_difference(tf_run, torch_run) < 1e-5
