"""The canonical catalogue, model specs and seeded initialization (pure, no framework)."""

from __future__ import annotations

import numpy as np
import pytest

from orchestrator.canonical import catalogue, networks, specs
from orchestrator.canonical.catalogue import ComponentError
from orchestrator.canonical.initializers import init_weights
from orchestrator.canonical.specs import Dense, Embedding, ModelSpec, SpecError

REQUIRED = {
    "loss": {"binary_crossentropy", "categorical_crossentropy",
             "sparse_categorical_crossentropy", "binary_focal", "categorical_focal", "triplet"},
    "optimizer": {"gd", "sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw"},
    "norm": {"none", "batch", "layer"},
    "recurrent": {"rnn", "lstm", "bilstm"},
}


def test_catalogue_has_every_component_of_the_lecture() -> None:
    assert {k: set(v) for k, v in catalogue.all_names().items()} == REQUIRED


def test_resolve_fills_every_default_so_backends_never_choose() -> None:
    adam = catalogue.resolve("optimizer", "adam")
    assert dict(adam.params) == {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}
    assert dict(catalogue.resolve("norm", "batch").params) == {"momentum": 0.1, "eps": 1e-5}
    focal = catalogue.resolve("loss", "binary_focal", {"gamma": 1})
    assert focal["gamma"] == 1.0 and isinstance(focal["gamma"], float)
    assert focal["alpha"] == 0.25 and focal["from_logits"] is False


def test_aliases_resolve_to_canonical_names() -> None:
    assert catalogue.resolve("optimizer", "nag").name == "nesterov"
    assert catalogue.resolve("loss", "bce").name == "binary_crossentropy"


@pytest.mark.parametrize(("kind", "name", "params", "message"), [
    ("optimizer", "adamm", {}, "unknown optimizer 'adamm' (did you mean 'adam'?)"),
    ("optimizer", "adam", {"betas": 0.9}, "adam has no hyperparameter 'betas' (did you mean"),
    ("optimizer", "adam", {"lr": -1.0}, "adam.lr: -1.0 is not allowed (0 < lr <= 10)"),
    ("optimizer", "momentum", {"momentum": 1.0}, "0 <= momentum < 1"),
    ("optimizer", "sgd", {"lr": "fast"}, "sgd.lr: expected a number, got 'fast'"),
    ("loss", "binary_focal", {"alpha": 1.5}, "0 <= alpha <= 1 or null"),
    ("loss", "binary_focal", {"from_logits": "yes"}, "expected true or false"),
    ("loss", "categorical_focal", {"alpha": [0.1, -1]}, "a list of numbers >= 0"),
    ("loss", "triplet", {"mining": "semi_hard"}, "none, batch_all or batch_hard"),
    ("norm", "batch", {"momentum": 0.0}, "0 < momentum <= 1"),
    ("recurrent", "rnn", {"activation": "gelu"}, "tanh, sigmoid or relu"),
    ("regularizer", "l2", {}, "unknown component kind 'regularizer'"),
])
def test_resolve_rejects_bad_input_with_the_fix(kind, name, params, message) -> None:
    with pytest.raises(ComponentError) as error:
        catalogue.resolve(kind, name, params, where="train.optimizer")
    assert message in str(error.value)


def test_spec_shapes_follow_the_layers() -> None:
    har = networks.har_network(200, 6, 7)
    assert har.output_shape == (7,)
    shapes = specs.weight_shapes(har)
    assert shapes["0.forward.kernel"].shape == (6, 128)
    assert shapes["1.backward.kernel"].shape == (64, 128)  # Bi-LSTM(32) feeds 64 features
    char = networks.char_network(84, 100, units=256)
    assert char.output_shape == (100, 84)
    norm_net = networks.normalization_network(64, norm="batch")
    state = [n for n, w in specs.weight_shapes(norm_net).items() if not w.trainable]
    assert state == ["1.running_mean", "1.running_var", "4.running_mean", "4.running_var"]


@pytest.mark.parametrize(("build", "message"), [
    (lambda: ModelSpec((5,), (specs.recurrent("lstm", 4),)), "needs [time, features] input"),
    (lambda: ModelSpec((5, 3), (Dense(0),)), "units must be >= 1"),
    (lambda: ModelSpec((5,), (Dense(3, "swish"),)), "unknown activation 'swish'"),
    (lambda: ModelSpec((5,), (Dense(3), Embedding(4, 2))), "embedding must be the first layer"),
    (lambda: ModelSpec((5,), (Dense(3),), input_dtype="int"), "int input needs an embedding"),
    (lambda: ModelSpec((0, 3), (Dense(3),)), "input_shape must be positive"),
])
def test_bad_specs_fail_at_construction(build, message) -> None:
    with pytest.raises(SpecError, match=message.replace("[", r"\[").replace("]", r"\]")):
        build()


def test_initialization_is_seeded_and_per_weight() -> None:
    spec = networks.har_network(20, 6, 7)
    a, b = init_weights(spec, 1), init_weights(spec, 1)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    c = init_weights(spec, 2)
    assert not np.array_equal(a["0.forward.kernel"], c["0.forward.kernel"])
    # adding a layer at the end leaves the others' numbers unchanged
    longer = ModelSpec(spec.input_shape, (*spec.layers, Dense(3)))
    d = init_weights(longer, 1)
    assert all(np.array_equal(a[k], d[k]) for k in a)


def test_initializers_follow_their_definitions() -> None:
    spec = networks.char_network(10, 5, embedding_dim=4, units=8)
    w = init_weights(spec, 0)
    bias = w["1.bias"]
    np.testing.assert_array_equal(bias[8:16], 1.0)  # forget gate
    np.testing.assert_array_equal(np.delete(bias, range(8, 16)), 0.0)
    recurrent = w["1.recurrent_kernel"]
    for gate in range(4):
        block = recurrent[:, gate * 8:(gate + 1) * 8]
        np.testing.assert_allclose(block.T @ block, np.eye(8), atol=1e-12)
    limit = np.sqrt(6 / (4 + 32))
    assert np.abs(w["1.kernel"]).max() <= limit
    assert np.abs(w["0.embeddings"]).max() <= 0.05


def test_lstm_gate_bias_options() -> None:
    """forget_bias sets the forget block; chrono draws log U(1, T_max - 1) there and its negative
    on the input block (Tallec & Ollivier 2018), per direction, reproducibly."""
    from orchestrator.canonical import specs
    from orchestrator.canonical.specs import ModelSpec

    units = 64
    spec = ModelSpec((200, 1), (specs.recurrent("bilstm", units, forget_bias=3.0), Dense(2)))
    bias = init_weights(spec, 0)["0.backward.bias"]
    np.testing.assert_array_equal(bias[units:2 * units], 3.0)
    np.testing.assert_array_equal(np.delete(bias, range(units, 2 * units)), 0.0)
    spec = ModelSpec((200, 1), (specs.recurrent("lstm", units, chrono=200), Dense(2)))
    first, again = init_weights(spec, 0)["0.bias"], init_weights(spec, 0)["0.bias"]
    np.testing.assert_array_equal(first, again)
    forget = first[units:2 * units]
    assert np.all(forget >= 0) and np.all(forget <= np.log(199))
    assert forget.max() > np.log(100)  # some units start with memories of ~T_max steps
    np.testing.assert_array_equal(first[:units], -forget)
    np.testing.assert_array_equal(first[2 * units:], 0.0)
    assert not np.array_equal(forget, init_weights(spec, 1)["0.bias"][units:2 * units])
    with pytest.raises(Exception, match="chrono"):
        specs.recurrent("lstm", 4, chrono=2)
