"""Conformance of layers: every norm and recurrent layer forward and backward, and dropout.

``LayerTests`` runs each ``cases.layer_cases()`` network (norms at the default and at a large
eps, every recurrent cell, stacks, embeddings) forward in training and evaluation mode against
the reference, running statistics included, and backward (``vjp``) against central finite
differences of the reference, in float64 and, for the training mode a float32 run takes, in
float32 with float32 tolerances. The finite differences are computed once per case and shared by
both dtypes.

``DropoutTests`` checks inverted dropout statistically (the reference is deterministic and
cannot): see ``test_inverted_dropout``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from orchestrator.canonical import reference
from orchestrator.canonical.initializers import init_weights
from orchestrator.canonical.specs import trainable_names
from orchestrator.contract.backend import Backend
from orchestrator.plugins.registry import BackendInfo
from orchestrator.testing import cases
from orchestrator.testing.assertions import TOLERANCES, assert_close, assert_weights_close
from orchestrator.testing.fixtures import BackendFixtures

DTYPES = ("float64", "float32")
LAYER_CASES = cases.layer_cases()
_NUMERIC: dict[tuple[str, bool], tuple] = {}  # (case id, training) -> finite differences


def perturbed_weights(case: cases.LayerCase) -> dict[str, np.ndarray]:
    """Initial weights with every entry moved, so that zero biases, unit gammas and fresh running
    statistics cannot hide a misplaced parameter."""
    rng = np.random.default_rng(11)
    return {name: w + rng.normal(0, 0.3, w.shape) if not name.endswith("running_var")
            else w * rng.uniform(0.5, 2.0, w.shape)
            for name, w in init_weights(case.spec, case.seed).items()}


def _upstream(case: cases.LayerCase) -> np.ndarray:
    # a different upstream gradient per sample: a batch-constant one has zero true gradient
    # through batch norm's input (the batch mean absorbs it) and would test nothing
    return np.random.default_rng(3).normal(0, 1, (len(case.x), *case.spec.output_shape))


def _numeric(case: cases.LayerCase, training: bool) -> tuple:
    key = (case.id, training)
    if key not in _NUMERIC:
        _NUMERIC[key] = reference.numeric_weight_grads(
            case.spec, perturbed_weights(case), case.x, _upstream(case), training)
    return _NUMERIC[key]


class LayerTests(BackendFixtures):
    @staticmethod
    def _require_all(info: BackendInfo, case: cases.LayerCase) -> None:
        for kind, name in case.components:
            BackendFixtures.require(info, kind, name)

    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize("training", [False, True], ids=["eval", "train"])
    @pytest.mark.parametrize("case", LAYER_CASES, ids=[c.id for c in LAYER_CASES])
    def test_forward_and_state(self, backend: Backend, info: BackendInfo,
                               case: cases.LayerCase, training: bool, dtype: str) -> None:
        self._require_all(info, case)
        weights = perturbed_weights(case)
        model = backend.build_model(case.spec, weights, dtype=dtype)
        out = model.predict(case.x, training=training)
        expected, expected_weights = reference.forward(case.spec, weights, case.x,
                                                       training=training)
        tol = TOLERANCES[dtype].forward
        assert_close(out, expected, tol, f"{case.id} output")
        # running statistics: updated by a training pass, untouched by an evaluation pass
        assert_weights_close(model.get_weights(), expected_weights, tol, f"{case.id} weights")

    @pytest.mark.parametrize(("training", "dtype"), [(False, "float64"), (True, "float64"),
                                                     (True, "float32")],
                             ids=["eval", "train", "train-float32"])
    @pytest.mark.parametrize("case", LAYER_CASES, ids=[c.id for c in LAYER_CASES])
    def test_backpropagation(self, backend: Backend, info: BackendInfo, case: cases.LayerCase,
                             training: bool, dtype: str) -> None:
        self._require_all(info, case)
        model = backend.build_model(case.spec, perturbed_weights(case), dtype=dtype)
        result = model.vjp(case.x, _upstream(case), training=training)
        grad_x, grad_w = _numeric(case, training)
        tol = TOLERANCES[dtype].backprop
        if grad_x is None:
            assert result.grad_input is None
        else:
            assert_close(result.grad_input, grad_x, tol, f"{case.id} d/dinput")
        assert sorted(result.grad_weights) == sorted(trainable_names(case.spec))
        assert_weights_close(result.grad_weights, grad_w, tol, f"{case.id} d/dweights")


class DropoutTests(BackendFixtures):
    SIGMAS = 6.0

    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize("rate", [0.25, 0.6])
    def test_inverted_dropout(self, backend: Backend, rate: float, dtype: str) -> None:
        """Training mode zeroes each value with probability ``rate`` and scales the others by
        1 / (1 - rate); evaluation mode is the identity.

        On ``n = 20000`` ones (after ``backend.seed``): every kept value must equal
        1 / (1 - rate) (to float rounding: exact, no statistics), and the number of zeros must
        lie within 6 standard deviations of ``n * rate`` (binomial, sigma = sqrt(n rate
        (1 - rate)), 61 for rate 0.25). For a correct backend the probability of failing is the
        two-sided normal tail beyond 6 sigma, about 2e-9 per test (one in 500 million); a rate
        off by 0.03 or more (e.g. the keep probability used as the drop rate) is outside it.
        """
        spec = cases.dropout_spec(rate)
        model = backend.build_model(spec, {}, dtype=dtype)
        x = np.ones((40, spec.input_shape[0]))
        backend.seed(1234)
        out = np.asarray(model.predict(x, training=True), dtype=np.float64)
        kept = out[out != 0.0]
        n = out.size
        assert_close(kept, np.full(kept.shape, 1.0 / (1.0 - rate)), TOLERANCES[dtype].forward,
                     f"kept values at rate {rate} (inverted dropout scales them by 1/(1 - rate))")
        zeros = n - kept.size
        sigma = math.sqrt(n * rate * (1.0 - rate))
        assert abs(zeros - n * rate) <= self.SIGMAS * sigma, (
            f"{zeros} of {n} values dropped at rate {rate}: expected {n * rate:.0f} "
            f"+- {self.SIGMAS * sigma:.0f} ({self.SIGMAS:g} sigma)")
        np.testing.assert_array_equal(model.predict(x, training=False), x.astype(dtype))
