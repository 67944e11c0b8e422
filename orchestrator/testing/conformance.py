"""Importable pytest classes that check a backend against the canonical NumPy reference.

Subclass ``BackendConformance`` in a test module of your plugin and name the backend::

    from orchestrator.testing import BackendConformance

    class TestMyBackend(BackendConformance):
        backend_name = "mybackend"

pytest then runs, against your backend: the component list, the lecture's worked numbers, every
loss (value and gradient, probabilities and logits, edge cases), every norm and recurrent layer
(forward in training and evaluation mode, running statistics, gradients with respect to inputs
and weights by backpropagation through time), every optimizer (one step and 100 steps), identical
initialization from a spec and a seed, and one training step of small models (loss, updated
weights, full-batch accumulation). The expected values come from ``orchestrator.canonical.reference``
(float64, straight from the formulas in ``docs/canonical.md``), gradients from central finite
differences of the reference. Tolerances are in ``orchestrator.testing.assertions.TOLERANCES``.

Override the ``backend`` fixture to construct your backend differently (a device, options);
set ``required_components`` to a narrower mapping only for a deliberately partial backend
(``orchestrator plugins`` shows what is missing). Components your backend does not declare are
skipped, not failed, unless they are required.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import numpy as np
import pytest

from orchestrator.canonical import catalogue, reference
from orchestrator.contract.backend import Backend
from orchestrator.canonical.initializers import init_weights
from orchestrator.plugins.registry import BackendInfo
from orchestrator.canonical.specs import ModelSpec, trainable_names, weight_shapes
from orchestrator.testing import cases
from orchestrator.testing.assertions import TOLERANCES, assert_close, assert_weights_close

DTYPES = ("float64", "float32")
LOSS_CASES = cases.loss_cases()
LAYER_CASES = cases.layer_cases()
TRAINING_CASES = cases.training_cases()

# Non-default hyperparameters too, so that a backend cannot pass by hard-coding defaults.
OPTIMIZER_SETTINGS: list[tuple[str, dict]] = [
    ("gd", {}), ("sgd", {"lr": 0.05}), ("momentum", {}), ("momentum", {"momentum": 0.5}),
    ("nesterov", {}), ("nesterov", {"lr": 0.02, "momentum": 0.7}), ("adagrad", {}),
    ("adagrad", {"initial_accumulator": 0.1, "eps": 1e-4}), ("rmsprop", {}),
    ("rmsprop", {"rho": 0.8, "eps": 1e-5}), ("adam", {}),
    ("adam", {"lr": 0.01, "beta1": 0.8, "beta2": 0.99, "eps": 1e-6}), ("adamw", {}),
    ("adamw", {"weight_decay": 0.1, "lr": 0.003}),
]


def _optimizer_id(setting: tuple[str, dict]) -> str:
    name, params = setting
    return name + "".join(f"-{k}{v}" for k, v in params.items())


class _BackendFixtures:
    """The fixtures every conformance class uses."""

    backend_name: ClassVar[str]
    required_components: ClassVar[Mapping[str, tuple[str, ...]] | None] = None  # None: all

    @pytest.fixture(scope="class")
    @classmethod
    def info(cls) -> BackendInfo:
        from orchestrator.plugins import manager as plugin_manager

        return plugin_manager.backends().info(cls.backend_name)

    @pytest.fixture(scope="class")
    @classmethod
    def backend(cls, info: BackendInfo) -> Backend:
        from orchestrator.plugins import manager as plugin_manager

        return plugin_manager.backends().load(info.name)

    @staticmethod
    def require(info: BackendInfo, kind: str, name: str) -> None:
        if not info.provides(kind, name):
            pytest.skip(f"backend {info.name!r} does not declare {kind} {name!r}")


class ComponentListTests(_BackendFixtures):
    def test_declares_required_components(self, info: BackendInfo) -> None:
        required = self.required_components or catalogue.all_names()
        missing = {kind: [n for n in names if not info.provides(kind, n)]
                   for kind, names in required.items()}
        assert not any(missing.values()), f"{info.name} lacks {missing}"

    def test_backend_class_and_versions(self, backend: Backend, info: BackendInfo) -> None:
        assert isinstance(backend, Backend)
        assert backend.name == info.name
        versions = backend.framework_versions()
        assert versions and all(isinstance(v, str) and v for v in versions.values())


class WorkedNumberTests(_BackendFixtures):
    """The lecture's worked numbers, to the digits the lecture prints."""

    WORKED = [
        ("bce-y1-p0.9", "binary_crossentropy", {}, [1.0], [0.9], 0.105, 5e-4),
        ("bce-y0-p0.2", "binary_crossentropy", {}, [0.0], [0.2], 0.223, 5e-4),
        ("cce-class3-p0.8", "categorical_crossentropy", {},
         [[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]],
         [[0.01, 0.05, 0.02, 0.80, 0.03, 0.02, 0.01, 0.03, 0.02, 0.01]], 0.223, 5e-4),
        ("scce-class3-p0.8", "sparse_categorical_crossentropy", {}, [3],
         [[0.01, 0.05, 0.02, 0.80, 0.03, 0.02, 0.01, 0.03, 0.02, 0.01]], 0.223, 5e-4),
        # the lecture multiplies rounded factors (0.25 * 0.64 * 1.609 = 0.2574); exact: 0.2575
        ("focal-fraud", "binary_focal", {"gamma": 2.0, "alpha": 0.25}, [1.0], [0.2], 0.257, 1e-3),
        ("focal-legit", "binary_focal", {"gamma": 2.0, "alpha": 0.25}, [0.0], [0.2], 0.0067,
         5e-5),
        ("focal-easy-g2", "binary_focal", {"gamma": 2.0, "alpha": None}, [1.0], [0.95],
         0.00013, 5e-6),
        ("focal-hard-g2", "binary_focal", {"gamma": 2.0, "alpha": None}, [1.0], [0.2], 1.030,
         5e-4),
        ("focal-easy-g0", "binary_focal", {"gamma": 0.0, "alpha": None}, [1.0], [0.95], 0.051,
         5e-4),
        ("focal-hard-g0", "binary_focal", {"gamma": 0.0, "alpha": None}, [1.0], [0.2], 1.609,
         5e-4),
        ("triplet-lecture", "triplet", {"margin": 0.5}, [0.0],
         [[[1, 1, 1], [1.2, 1.1, 0.9], [3, 3, 3]]], 0.0, 1e-12),
    ]

    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize("case", WORKED, ids=[w[0] for w in WORKED])
    def test_lecture_loss(self, backend: Backend, info: BackendInfo, case: tuple,
                          dtype: str) -> None:
        _, name, params, y_true, y_pred, expected, tol = case
        self.require(info, "loss", name)
        spec = catalogue.resolve("loss", name, params)
        value, _ = backend.loss_value_and_grad(spec, np.array(y_true), np.array(y_pred),
                                               dtype=dtype)
        assert value == pytest.approx(expected, abs=tol)

    def test_triplet_distances(self, backend: Backend, info: BackendInfo) -> None:
        """0.06 and 12: with margin m the loss is max(d_ap - d_an + m, 0), so a margin of
        12 - 0.06 + 1 exposes d_an - d_ap = 11.94 as a loss of exactly 1."""
        self.require(info, "loss", "triplet")
        triplet = np.array([[[1, 1, 1], [1.2, 1.1, 0.9], [3, 3, 3]]], dtype=float)
        spec = catalogue.resolve("loss", "triplet", {"margin": 12.94})
        value, grad = backend.loss_value_and_grad(spec, np.zeros(1), triplet)
        assert value == pytest.approx(1.0, abs=1e-9)
        # d/dP of d_ap = 2 (P - A) = [0.4, 0.2, -0.2]; d/dN of -d_an = -2 (N - A) = [-4, -4, -4]
        np.testing.assert_allclose(grad[0, 1], [0.4, 0.2, -0.2], atol=1e-9)
        np.testing.assert_allclose(grad[0, 2], [-4, -4, -4], atol=1e-9)

    @pytest.mark.parametrize("dtype", DTYPES)
    def test_rnn_slide_forward(self, backend: Backend, info: BackendInfo, dtype: str) -> None:
        """x = [1, 1], sigmoid: y3 = 0.5250, y4 = 0.8808, y5 = 0.5097."""
        self.require(info, "recurrent", "rnn")
        weights = cases.rnn_slide_weights()
        model = backend.build_model(cases.rnn_slide_spec(), weights, dtype=dtype)
        y5 = model.predict(np.array([[[1.0, 1.0]]]))
        assert y5.shape == (1, 1)
        assert y5[0, 0] == pytest.approx(0.5097, abs=5e-5)
        hidden_spec = ModelSpec((1, 2), cases.rnn_slide_spec().layers[:1])
        hidden = backend.build_model(
            hidden_spec, {k: v for k, v in weights.items() if k.startswith("0.")}, dtype=dtype)
        np.testing.assert_allclose(hidden.predict(np.array([[[1.0, 1.0]]]))[0],
                                   [0.5250, 0.8808], atol=5e-5)


class LossTests(_BackendFixtures):
    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize("case", LOSS_CASES, ids=[c.id for c in LOSS_CASES])
    def test_loss_value_and_gradient(self, backend: Backend, info: BackendInfo,
                                     case: cases.LossCase, dtype: str) -> None:
        self.require(info, "loss", case.spec.name)
        tol = TOLERANCES[dtype]
        value, grad = backend.loss_value_and_grad(case.spec, case.y_true, case.y_pred,
                                                  dtype=dtype)
        expected = reference.loss_value(case.spec, case.y_true, case.y_pred)
        assert np.isfinite(value), "loss is not finite"
        assert_close(value, expected,
                     tol.clipped_loss if case.gradient_is_zero_where_clipped else tol.loss,
                     f"{case.id} loss")
        if case.gradient_is_zero_where_clipped:
            expected_grad = np.zeros_like(case.y_pred, dtype=float)
        else:
            expected_grad = reference.numeric_grad(
                lambda p: reference.loss_value(case.spec, case.y_true, p),
                case.y_pred.astype(float))
        assert np.shape(grad) == np.shape(case.y_pred)
        assert_close(grad, expected_grad, tol.grad, f"{case.id} gradient")


class LayerTests(_BackendFixtures):
    @staticmethod
    def _require_all(info: BackendInfo, case: cases.LayerCase) -> None:
        for kind, name in case.components:
            _BackendFixtures.require(info, kind, name)

    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize("training", [False, True], ids=["eval", "train"])
    @pytest.mark.parametrize("case", LAYER_CASES, ids=[c.id for c in LAYER_CASES])
    def test_forward_and_state(self, backend: Backend, info: BackendInfo,
                               case: cases.LayerCase, training: bool, dtype: str) -> None:
        self._require_all(info, case)
        weights = _perturbed_weights(case)
        model = backend.build_model(case.spec, weights, dtype=dtype)
        out = model.predict(case.x, training=training)
        expected, expected_weights = reference.forward(case.spec, weights, case.x,
                                                       training=training)
        tol = TOLERANCES[dtype].forward
        assert_close(out, expected, tol, f"{case.id} output")
        # running statistics: updated by a training pass, untouched by an evaluation pass
        assert_weights_close(model.get_weights(), expected_weights, tol, f"{case.id} weights")

    @pytest.mark.parametrize("training", [False, True], ids=["eval", "train"])
    @pytest.mark.parametrize("case", LAYER_CASES, ids=[c.id for c in LAYER_CASES])
    def test_backpropagation(self, backend: Backend, info: BackendInfo, case: cases.LayerCase,
                             training: bool) -> None:
        self._require_all(info, case)
        weights = _perturbed_weights(case)
        model = backend.build_model(case.spec, weights, dtype="float64")
        # a different upstream gradient per sample: a batch-constant one has zero true gradient
        # through batch norm's input (the batch mean absorbs it) and would test nothing
        upstream = np.random.default_rng(3).normal(0, 1, (len(case.x), *case.spec.output_shape))
        result = model.vjp(case.x, upstream, training=training)
        grad_x, grad_w = reference.numeric_weight_grads(case.spec, weights, case.x, upstream,
                                                        training)
        tol = TOLERANCES["float64"].grad
        if grad_x is None:
            assert result.grad_input is None
        else:
            assert_close(result.grad_input, grad_x, tol, f"{case.id} d/dinput")
        assert sorted(result.grad_weights) == sorted(trainable_names(case.spec))
        assert_weights_close(result.grad_weights, grad_w, tol, f"{case.id} d/dweights")


def _perturbed_weights(case: cases.LayerCase) -> dict[str, np.ndarray]:
    """Initial weights with every entry moved, so that zero biases, unit gammas and fresh running
    statistics cannot hide a misplaced parameter."""
    rng = np.random.default_rng(11)
    return {name: w + rng.normal(0, 0.3, w.shape) if not name.endswith("running_var")
            else w * rng.uniform(0.5, 2.0, w.shape)
            for name, w in init_weights(case.spec, case.seed).items()}


class OptimizerTests(_BackendFixtures):
    @staticmethod
    def _problem(steps: int) -> tuple[dict, list[dict]]:
        rng = np.random.default_rng(5)
        params = {"w": rng.normal(0, 1, (3, 4)), "b": rng.normal(0, 1, (4,))}
        grads = [{"w": rng.normal(0, 1, (3, 4)), "b": rng.normal(0, 0.1, (4,))}
                 for _ in range(steps)]
        return params, grads

    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize("steps", [1, 100])
    @pytest.mark.parametrize("setting", OPTIMIZER_SETTINGS,
                             ids=[_optimizer_id(s) for s in OPTIMIZER_SETTINGS])
    def test_trajectory(self, backend: Backend, info: BackendInfo, setting: tuple,
                        steps: int, dtype: str) -> None:
        name, params = setting
        self.require(info, "optimizer", name)
        spec = catalogue.resolve("optimizer", name, params)
        start, grads = self._problem(steps)
        got = backend.optimizer_trajectory(spec, start, grads, dtype=dtype)
        expected = reference.trajectory(spec, start, grads)
        assert len(got) == steps
        tol = TOLERANCES[dtype]
        tolerance = tol.one_step if steps == 1 else tol.many_steps
        for k in (0, steps // 2, steps - 1):
            assert_weights_close(got[k], expected[k], tolerance, f"{spec.name} step {k + 1}")


class ModelTests(_BackendFixtures):
    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize("case", TRAINING_CASES, ids=[c.id for c in TRAINING_CASES])
    def test_initial_weights_are_the_seeded_ones(self, backend: Backend, case, dtype) -> None:
        weights = init_weights(case.spec, seed=7)
        model = backend.build_model(case.spec, weights, dtype=dtype)
        got = model.get_weights()
        assert sorted(got) == sorted(weight_shapes(case.spec))
        for name, w in weights.items():
            np.testing.assert_array_equal(got[name], w.astype(dtype), err_msg=name)

    @pytest.mark.parametrize("case", TRAINING_CASES, ids=[c.id for c in TRAINING_CASES])
    def test_one_training_step(self, backend: Backend, info: BackendInfo, case) -> None:
        """Loss before the step and every weight after it, against the reference (float64).

        Plain SGD, so that the step is linear in the gradient: an adaptive optimizer's first
        step is lr * g / |g|, which would turn the reference's finite-difference error on a
        near-zero gradient into a full-size difference (optimizers are checked on exact
        gradients in ``OptimizerTests``, and backend against backend in the project's tests).
        """
        self._require_case(info, case, "sgd")
        weights = init_weights(case.spec, seed=3)
        x, y = case.make_batch(np.random.default_rng(2))
        opt = catalogue.resolve("optimizer", "sgd", {"lr": 0.1})
        model = backend.build_model(case.spec, weights, dtype="float64")
        session = backend.training_session(model, case.loss, opt, n_train=len(x))
        session.train_step(x, y)
        reported = session.end_epoch()["loss"]
        expected_loss, expected = _reference_step(case, weights, [(x, y)], opt)
        tol = TOLERANCES["float64"].training_step
        assert_close(reported, expected_loss, TOLERANCES["float64"].loss, "training loss")
        assert_weights_close(model.get_weights(), expected, tol, f"{case.id} after one step")

    @pytest.mark.parametrize("case", TRAINING_CASES[:2], ids=[c.id for c in TRAINING_CASES[:2]])
    def test_full_batch_gradient_descent_accumulates(self, backend: Backend, info: BackendInfo,
                                                     case) -> None:
        """``gd`` over two mini-batches of unequal size makes one step along the mean gradient
        of the whole set (batch norm sees each mini-batch, as in training)."""
        self._require_case(info, case, "gd")
        weights = init_weights(case.spec, seed=4)
        x, y = case.make_batch(np.random.default_rng(8))
        batches = [(x[:2], y[:2]), (x[2:], y[2:])]
        opt = catalogue.resolve("optimizer", "gd", {"lr": 0.3})
        model = backend.build_model(case.spec, weights, dtype="float64")
        session = backend.training_session(model, case.loss, opt, n_train=len(x))
        for bx, by in batches:
            session.train_step(bx, by)
        reported = session.end_epoch()["loss"]
        expected_loss, expected = _reference_step(case, weights, batches, opt)
        assert_close(reported, expected_loss, TOLERANCES["float64"].loss, "epoch loss")
        assert_weights_close(model.get_weights(), expected, TOLERANCES["float64"].training_step,
                             f"{case.id} after one gd epoch")

    def test_learning_rate_can_change(self, backend: Backend, info: BackendInfo) -> None:
        """``set_learning_rate`` takes effect on the next step (schedules rely on it)."""
        case = TRAINING_CASES[0]
        self._require_case(info, case, "sgd")
        weights = init_weights(case.spec, seed=1)
        x, y = case.make_batch(np.random.default_rng(0))
        model = backend.build_model(case.spec, weights, dtype="float64")
        session = backend.training_session(
            model, case.loss, catalogue.resolve("optimizer", "sgd", {"lr": 0.5}), n_train=len(x))
        session.set_learning_rate(0.02)
        session.train_step(x, y)
        session.end_epoch()
        _, expected = _reference_step(case, weights, [(x, y)],
                                      catalogue.resolve("optimizer", "sgd", {"lr": 0.02}))
        assert_weights_close(model.get_weights(), expected, TOLERANCES["float64"].training_step,
                             "after a step at the changed learning rate")

    def test_evaluate_matches_reference(self, backend: Backend, info: BackendInfo) -> None:
        case = TRAINING_CASES[0]
        self._require_case(info, case, "sgd")
        weights = init_weights(case.spec, seed=5)
        x, y = case.make_batch(np.random.default_rng(4))
        model = backend.build_model(case.spec, weights, dtype="float64")
        session = backend.training_session(model, case.loss,
                                           catalogue.resolve("optimizer", "sgd"), n_train=len(x))
        out, _ = reference.forward(case.spec, weights, x, training=False)
        expected = reference.loss_value(case.loss, y, out)
        assert_close(session.evaluate(x, y, batch_size=4)["loss"], expected,
                     TOLERANCES["float64"].loss, "evaluation loss")

    def _require_case(self, info: BackendInfo, case, optimizer: str) -> None:
        self.require(info, "optimizer", optimizer)
        self.require(info, "loss", case.loss.name)
        for layer in case.spec.layers:
            component = getattr(layer, "component", None)
            if component is not None:
                self.require(info, component.kind, component.name)


def _reference_step(case, weights: dict, batches: list, opt) -> tuple[float, dict]:
    """Mean loss over ``batches`` and the weights after one optimizer step along the
    sample-weighted mean gradient (finite differences of the reference), with the batch-norm
    running statistics updated batch by batch."""
    names = trainable_names(case.spec)
    n = sum(len(bx) for bx, _ in batches)
    grads = {name: np.zeros_like(weights[name]) for name in names}
    total = 0.0
    state = dict(weights)
    for bx, by in batches:
        def loss_of(w: dict) -> float:
            out, _ = reference.forward(case.spec, w, bx, training=True)
            return reference.loss_value(case.loss, by, out)

        total += loss_of(weights) * len(bx)
        for name in names:
            def f(v: np.ndarray, name: str = name) -> float:
                return loss_of({**weights, name: v})
            grads[name] += reference.numeric_grad(f, weights[name]) * len(bx) / n
        _, updated = reference.forward(case.spec, state, bx, training=True)
        state = {**state, **{k: v for k, v in updated.items() if k not in names}}
    stepped = reference.trajectory(opt, {k: weights[k] for k in names}, [grads])[0]
    return total / n, {**state, **stepped}


class BackendConformance(ComponentListTests, WorkedNumberTests, LossTests, LayerTests,
                         OptimizerTests, ModelTests):
    """Every conformance test; subclass it and set ``backend_name``."""
