"""Conformance of training: optimizer trajectories, and what a training session actually does.

``OptimizerTests`` replays exact gradients through ``optimizer_trajectory`` (1 and 100 steps, and
5 steps under a changing learning rate) against the reference optimizers, for every optimizer
setting. ``ModelTests`` checks training sessions: that ``train_step`` runs the same update as
``optimizer_trajectory`` for every optimizer setting under a schedule (float64, and a float32
subset with float32 tolerances), one step of small models of every layer kind against finite
differences, full-batch accumulation, the learning-rate change, evaluation, and seeded initial
weights.
"""

from __future__ import annotations

import numpy as np
import pytest

from orchestrator.canonical import catalogue, reference
from orchestrator.canonical.initializers import init_weights
from orchestrator.canonical.specs import trainable_names, weight_shapes
from orchestrator.contract.backend import Backend
from orchestrator.plugins.registry import BackendInfo
from orchestrator.testing import cases
from orchestrator.testing.assertions import TOLERANCES, assert_close, assert_weights_close
from orchestrator.testing.fixtures import BackendFixtures

DTYPES = ("float64", "float32")
TRAINING_CASES = cases.training_cases()

# Non-default hyperparameters too, so that a backend cannot pass by hard-coding defaults; the
# large-lr AdamW setting makes the order of decay and Adam step visible (lr * decay * step).
OPTIMIZER_SETTINGS: list[tuple[str, dict]] = [
    ("gd", {}), ("sgd", {"lr": 0.05}), ("momentum", {}), ("momentum", {"momentum": 0.5}),
    ("nesterov", {}), ("nesterov", {"lr": 0.02, "momentum": 0.7}), ("adagrad", {}),
    ("adagrad", {"initial_accumulator": 0.1, "eps": 1e-4}), ("rmsprop", {}),
    ("rmsprop", {"rho": 0.8, "eps": 1e-5}), ("adam", {}),
    ("adam", {"lr": 0.01, "beta1": 0.8, "beta2": 0.99, "eps": 1e-6}), ("adamw", {}),
    ("adamw", {"weight_decay": 0.1, "lr": 0.003}), ("adamw", {"weight_decay": 0.5, "lr": 0.3}),
]
FLOAT32_SETTINGS = [("sgd", {"lr": 0.05}), ("momentum", {}), ("adam", {}), ("gd", {})]
# learning-rate factors of consecutive steps, as a schedule changes them
SCHEDULE = (1.0, 0.5, 2.0, 0.25, 1.5)


def _optimizer_id(setting: tuple[str, dict]) -> str:
    name, params = setting
    return name + "".join(f"-{k}{v}" for k, v in params.items())


class OptimizerTests(BackendFixtures):
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

    @pytest.mark.parametrize("setting", OPTIMIZER_SETTINGS,
                             ids=[_optimizer_id(s) for s in OPTIMIZER_SETTINGS])
    def test_trajectory_under_a_schedule(self, backend: Backend, info: BackendInfo,
                                         setting: tuple) -> None:
        """The learning rate changes before every step: the lr inside momentum's velocity and
        the lr scaling AdamW's decay differ from other placements only then."""
        name, params = setting
        self.require(info, "optimizer", name)
        spec = catalogue.resolve("optimizer", name, params)
        start, grads = self._problem(len(SCHEDULE))
        rates = [spec["lr"] * factor for factor in SCHEDULE]
        got = backend.optimizer_trajectory(spec, start, grads, learning_rates=rates)
        expected = reference.trajectory(spec, start, grads, learning_rates=rates)
        for k in range(len(SCHEDULE)):
            assert_weights_close(_delta(got[k], start), _delta(expected[k], start),
                                 TOLERANCES["float64"].many_steps, f"{spec.name} step {k + 1}")


def _delta(weights: dict, start: dict) -> dict:
    """How far each array moved from ``start``: updates are compared, not weights, so that an
    error in a small update is not hidden by the size of the weights."""
    return {k: np.asarray(weights[k], np.float64) - np.asarray(start[k], np.float64)
            for k in start}


class ModelTests(BackendFixtures):
    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize("case", TRAINING_CASES, ids=[c.id for c in TRAINING_CASES])
    def test_initial_weights_are_the_seeded_ones(self, backend: Backend, case, dtype) -> None:
        weights = init_weights(case.spec, seed=7)
        model = backend.build_model(case.spec, weights, dtype=dtype)
        got = model.get_weights()
        assert sorted(got) == sorted(weight_shapes(case.spec))
        for name, w in weights.items():
            np.testing.assert_array_equal(got[name], w.astype(dtype), err_msg=name)

    @pytest.mark.parametrize(("setting", "dtype"),
                             [(s, "float64") for s in OPTIMIZER_SETTINGS]
                             + [(s, "float32") for s in FLOAT32_SETTINGS],
                             ids=[_optimizer_id(s) for s in OPTIMIZER_SETTINGS]
                             + [f"{_optimizer_id(s)}-float32" for s in FLOAT32_SETTINGS])
    def test_training_follows_the_optimizer(self, backend: Backend, info: BackendInfo,
                                            setting: tuple, dtype: str) -> None:
        """Five steps through ``training_session``, the learning rate changed before each (as a
        schedule does), against the reference optimizer fed the backend's own gradients of the
        same batches (``loss_value_and_grad`` backpropagated by ``vjp``, both checked against
        finite differences elsewhere), so the comparison is exact to rounding. Fails a
        ``train_step`` whose update rule differs from the canonical one (even when
        ``optimizer_trajectory`` is right), a learning rate applied in the wrong place, and a
        float32 step that loses precision (float16 gradients)."""
        name, params = setting
        case = cases.trajectory_case()
        self._require_case(info, case, name)
        spec = catalogue.resolve("optimizer", name, params)
        weights = init_weights(case.spec, seed=6)
        names = trainable_names(case.spec)
        start = {n: weights[n] for n in names}
        batches = [case.make_batch(np.random.default_rng(20 + k)) for k in range(len(SCHEDULE))]
        rates = [spec["lr"] * factor for factor in SCHEDULE]
        model = backend.build_model(case.spec, weights, dtype=dtype)
        probe = backend.build_model(case.spec, weights, dtype=dtype)
        session = backend.training_session(model, case.loss, spec, n_train=len(batches[0][0]))
        current, grads = start, []
        for (x, y), lr in zip(batches, rates):
            session.set_learning_rate(lr)
            session.train_step(x, y)
            session.end_epoch()  # applies gd's full-batch step (one batch per epoch here)
            probe.set_weights({**weights, **current})
            _, upstream = backend.loss_value_and_grad(case.loss, y, probe.predict(x), dtype=dtype)
            grads.append(probe.vjp(x, upstream).grad_weights)
            current = reference.trajectory(spec, start, grads, learning_rates=rates[:len(grads)])[-1]
        got = {n: model.get_weights()[n] for n in names}
        assert_weights_close(_delta(got, start), _delta(current, start),
                             TOLERANCES[dtype].trajectory,
                             f"{spec.name} ({dtype}): updates after {len(SCHEDULE)} steps")

    @pytest.mark.parametrize("case", TRAINING_CASES, ids=[c.id for c in TRAINING_CASES])
    def test_one_training_step(self, backend: Backend, info: BackendInfo, case) -> None:
        """Loss before the step and every weight after it, against the reference (float64).

        Plain SGD, so that the step is linear in the gradient: an adaptive optimizer's first
        step is lr * g / |g|, which would turn the reference's finite-difference error on a
        near-zero gradient into a full-size difference (optimizers are checked on exact
        gradients in ``OptimizerTests`` and ``test_training_follows_the_optimizer``).
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
