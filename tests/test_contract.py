"""The backend contract's own bookkeeping: target kinds, target/weight checks, the trajectory loop
with per-step learning rates, component tables, spec serialization, the required ``name``."""

from __future__ import annotations

import numpy as np
import pytest

from orchestrator.canonical import catalogue, networks, reference, specs
from orchestrator.canonical.initializers import init_weights
from orchestrator.canonical.serialization import spec_from_json, spec_to_json
from orchestrator.canonical.targets import check_target
from orchestrator.contract.backend import Backend
from orchestrator.plugins import manager as plugin_manager


def test_every_loss_declares_its_target_kind_once() -> None:
    for definition in catalogue.definitions():
        if definition.kind == "loss":
            params = catalogue.resolve("loss", definition.name).params
            assert definition.target_of(params) in catalogue.TARGETS, definition.name
    triplet = catalogue.resolve("loss", "triplet", {"mining": "batch_hard"})
    assert triplet.target == "labels"
    assert catalogue.resolve("loss", "triplet").target == "none"
    assert catalogue.resolve("loss", "cce").target == "one_hot"


@pytest.mark.parametrize(("loss", "y_true", "pred_shape", "message"), [
    ("binary_crossentropy", np.zeros(4), (4, 1), r"must have shape \(4, 1\)"),
    ("sparse_categorical_crossentropy", np.eye(3)[[0, 1]], (2, 3), "one-hot rows"),
    ("categorical_crossentropy", np.array([0, 2]), (2, 3), "class ids or a flat vector"),
    ("sparse_categorical_crossentropy", np.array([0, 3]), (2, 3), r"lie in \[0, 2\]"),
    ("sparse_categorical_crossentropy", np.array([0.5, 1.0]), (2, 3), "non-integer"),
    ("triplet", None, (4, 2), None),
])
def test_target_checks(loss: str, y_true, pred_shape, message) -> None:
    spec = catalogue.resolve("loss", loss, {"mining": "batch_all"} if loss == "triplet" else {})
    if loss == "triplet":  # labels are required when mining
        with pytest.raises(ValueError, match="y_true is missing"):
            check_target(spec, y_true, pred_shape)
        return
    with pytest.raises(ValueError, match=message):
        check_target(spec, y_true, pred_shape)


def test_whole_number_float_labels_are_accepted_as_ids() -> None:
    spec = catalogue.resolve("loss", "sparse_categorical_crossentropy")
    y = check_target(spec, np.array([0.0, 2.0]), (2, 3))
    assert y.dtype == np.int64 and y.tolist() == [0, 2]


def test_reference_and_backends_share_the_weight_check() -> None:
    spec = networks.mlp(4, 2, hidden=(3,))
    weights = init_weights(spec, 0)
    del weights["0.bias"]
    with pytest.raises(ValueError, match=r"missing \['0.bias'\]"):
        reference.forward(spec, weights, np.zeros((1, 4)))
    torch_backend = plugin_manager.backends().load("torch")
    with pytest.raises(ValueError, match=r"missing \['0.bias'\]"):
        torch_backend.build_model(spec, weights)
    wrong = {**init_weights(spec, 0), "0.kernel": np.zeros((3, 4))}
    with pytest.raises(ValueError, match=r"0.kernel has shape \(3, 4\), expected \(4, 3\)"):
        specs.check_weights(spec, wrong)


@pytest.fixture(scope="module", params=["torch", "tensorflow"])
def backend(request) -> Backend:
    return plugin_manager.backends().load(request.param)


def test_component_tables_match_the_declared_components(backend: Backend) -> None:
    info = plugin_manager.backends().info(backend.name)
    assert {k: tuple(v) for k, v in info.components.items()} == backend.implemented()


@pytest.mark.parametrize("name", ["momentum", "nesterov", "adam"])
def test_trajectory_with_a_learning_rate_per_step(backend: Backend, name: str) -> None:
    spec = catalogue.resolve("optimizer", name, {"lr": 0.1})
    rng = np.random.default_rng(0)
    params = {"w": rng.normal(size=(2, 3))}
    grads = [{"w": rng.normal(size=(2, 3))} for _ in range(6)]
    rates = [0.1, 0.05, 0.2, 0.0, 0.01, 0.3]
    got = backend.optimizer_trajectory(spec, params, grads, learning_rates=rates)
    expected = reference.trajectory(spec, params, grads, learning_rates=rates)
    constant = reference.trajectory(spec, params, grads)
    for k in range(6):
        np.testing.assert_allclose(got[k]["w"], expected[k]["w"], rtol=1e-12, atol=1e-12)
    assert not np.allclose(constant[-1]["w"], expected[-1]["w"])
    with pytest.raises(ValueError, match="learning rate must be a finite number >= 0"):
        backend.optimizer_trajectory(spec, params, grads[:1], learning_rates=[float("nan")])
    with pytest.raises(ValueError, match="2 learning rates for 1 steps"):
        backend.optimizer_trajectory(spec, params, grads[:1], learning_rates=[0.1, 0.1])
    with pytest.raises(ValueError, match="the gradient of w has shape"):
        backend.optimizer_trajectory(spec, params, [{"w": np.zeros(3)}])


def test_session_bookkeeping_errors(backend: Backend) -> None:
    spec = networks.mlp(4, 1, hidden=(3,))
    model = backend.build_model(spec, init_weights(spec, 0))
    bce = catalogue.resolve("loss", "binary_crossentropy", {"from_logits": True})
    sgd = catalogue.resolve("optimizer", "sgd")
    for n_train in (0, 2.5, True):
        with pytest.raises(ValueError, match="n_train must be a whole number >= 1"):
            backend.training_session(model, bce, sgd, n_train=n_train)
    session = backend.training_session(model, bce, sgd, n_train=8)
    with pytest.raises(ValueError, match="learning rate must be a finite number >= 0"):
        session.set_learning_rate(-1.0)
    with pytest.raises(ValueError, match=r"input of 'mlp' has shape \(8, 5\)"):
        session.train_step(np.zeros((8, 5)), np.zeros((8, 1)))
    with pytest.raises(ValueError, match="batch_size must be a whole number >= 1"):
        session.evaluate(np.zeros((8, 4)), np.zeros((8, 1)), batch_size=0)
    with pytest.raises(ValueError, match="has no optimizer 'nadam'"):
        backend.training_session(model, bce, catalogue.ComponentSpec("optimizer", "nadam",
                                                                     {"lr": 0.1}), n_train=8)
    assert session.end_epoch()["loss"] != session.end_epoch()["loss"]  # NaN: nothing trained


def test_a_backend_class_needs_a_name() -> None:
    torch_class = type(plugin_manager.backends().load("torch"))

    class Nameless(torch_class):
        name = ""

    with pytest.raises(TypeError, match="must set the class attribute name"):
        Nameless()


@pytest.mark.parametrize("spec", [
    networks.har_network(12, 6, 7), networks.normalization_network(64, norm="layer", eps=0.5),
    networks.char_network(30, 10), networks.mlp(5, 2, norm="batch", dropout=0.2),
    specs.ModelSpec((3, 2), (specs.recurrent("rnn", 2, activation="sigmoid"),), name="rnn",
                    meta={"classes": 2, "not_json": object()}),
], ids=["har", "layer-norm", "char", "mlp", "rnn"])
def test_specs_round_trip_through_json(spec: specs.ModelSpec) -> None:
    back = spec_from_json(spec_to_json(spec))
    assert back == spec
    assert specs.weight_shapes(back) == specs.weight_shapes(spec)
