"""Importable pytest classes that hold any backend to the canonical NumPy reference.

Subclass ``BackendConformance`` in a test module of your plugin and name the backend::

    from orchestrator.testing import BackendConformance

    class TestMyBackend(BackendConformance):
        backend_name = "mybackend"

pytest then runs, against your backend: the component list (and that the backend class's
component tables hold it), the lecture's worked numbers, every loss (value and gradient,
probabilities and logits, edge cases), targets of the wrong shape rejected (``TargetTests``),
every norm (at the default and at a large eps) and recurrent layer (forward in training and
evaluation mode, running statistics, gradients with respect to inputs and weights by
backpropagation through time, in float64 and float32: ``orchestrator.testing.layers``), inverted
dropout (a seeded statistical test), every optimizer (1 and 100 steps, and under a changing
learning rate), training sessions that follow the optimizer for every setting under a schedule,
identical initialization from a spec and a seed, and one training step of small models
(``orchestrator.testing.training``). The expected values come from
``orchestrator.canonical.reference`` (float64, straight from the formulas in
``docs/canonical.md``), gradients from central finite differences of the reference or, where an
exact replay is needed, from the backend's own checked gradients. Tolerances are in
``orchestrator.testing.assertions.TOLERANCES``.

To construct your backend differently (a device, options), override the classmethod
``create_backend(cls, info)``; see ``orchestrator.testing.fixtures`` (overriding the ``backend``
fixture itself needs ``@pytest.fixture(scope="class")`` above ``@classmethod``, as the kit
declares it; an instance-method class fixture raises pytest's deprecation warning). Set
``required_components`` to a narrower mapping only for a deliberately partial backend
(``orchestrator plugins`` shows what is missing). Components your backend does not declare are
skipped, not failed, unless they are required.
"""

from __future__ import annotations

import numpy as np
import pytest

from orchestrator.canonical import catalogue, networks, reference
from orchestrator.canonical.initializers import init_weights
from orchestrator.canonical.specs import ModelSpec
from orchestrator.contract.backend import Backend
from orchestrator.plugins import manager as plugin_manager
from orchestrator.plugins.registry import BackendInfo
from orchestrator.testing import cases
from orchestrator.testing.assertions import TOLERANCES, assert_close
from orchestrator.testing.fixtures import BackendFixtures
from orchestrator.testing.layers import DTYPES, DropoutTests, LayerTests
from orchestrator.testing.training import ModelTests, OptimizerTests

# the plugins' components (orchestrator_add_components) join the catalogue when the plugins
# load: load them before the cases are made, so that their losses are checked too
plugin_manager.state()
LOSS_CASES = cases.loss_cases()

__all__ = ["BackendConformance", "ComponentListTests", "DropoutTests", "LayerTests",
           "LossTests", "ModelTests", "OptimizerTests", "TargetTests", "WorkedNumberTests"]


class ComponentListTests(BackendFixtures):
    def test_declares_required_components(self, info: BackendInfo) -> None:
        required = self.required_components or catalogue.core_names()
        missing = {kind: [n for n in names if not info.provides(kind, n)]
                   for kind, names in required.items()}
        assert not any(missing.values()), f"{info.name} lacks {missing}"

    def test_backend_class_and_versions(self, backend: Backend, info: BackendInfo) -> None:
        assert isinstance(backend, Backend)
        assert backend.name == info.name
        versions = backend.framework_versions()
        assert versions and all(isinstance(v, str) and v for v in versions.values())

    def test_component_tables_hold_the_declared_components(self, backend: Backend,
                                                           info: BackendInfo) -> None:
        """What the plugin declares (without importing the framework) is what the backend
        class's component tables implement."""
        tables = backend.implemented()
        for kind, names in info.components.items():
            missing = [n for n in names if n not in tables.get(kind, ())]
            assert not missing, f"{info.name} declares {kind} {missing} but has no entry"


class WorkedNumberTests(BackendFixtures):
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


class LossTests(BackendFixtures):
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


class TargetTests(BackendFixtures):
    """Targets whose shape does not fit the loss and the predictions raise ``ValueError`` in
    ``train_step``, ``evaluate`` and ``loss_value_and_grad`` (never a silent broadcast)."""

    # (id, loss, outputs, bad y_true for 6 samples)
    CASES = [
        ("binary-flat-for-a-column", "binary_crossentropy", 1, np.zeros(6)),
        ("sparse-given-one-hot", "sparse_categorical_crossentropy", 3, np.eye(3)[[0, 1, 2] * 2]),
        ("categorical-given-ids", "categorical_crossentropy", 3, np.array([0, 1, 2] * 2)),
        ("sparse-given-a-column", "sparse_categorical_crossentropy", 3, np.zeros((6, 1), int)),
    ]

    @staticmethod
    def _setup(backend: Backend, info: BackendInfo, loss_name: str, outputs: int):
        BackendFixtures.require(info, "loss", loss_name)
        BackendFixtures.require(info, "optimizer", "sgd")
        spec = networks.mlp(4, outputs, hidden=(5,))
        loss = catalogue.resolve("loss", loss_name, {"from_logits": True})
        model = backend.build_model(spec, init_weights(spec, 0), dtype="float64")
        return model, loss

    @pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
    def test_wrong_target_shape_is_rejected(self, backend: Backend, info: BackendInfo,
                                            case: tuple) -> None:
        _, loss_name, outputs, y = case
        model, loss = self._setup(backend, info, loss_name, outputs)
        x = np.random.default_rng(0).normal(size=(6, 4))
        session = backend.training_session(model, loss, catalogue.resolve("optimizer", "sgd"),
                                           n_train=6)
        before = model.get_weights()
        with pytest.raises(ValueError):
            session.train_step(x, y)
        for name, value in model.get_weights().items():
            np.testing.assert_array_equal(value, before[name], err_msg=f"{name} changed")
        with pytest.raises(ValueError):
            session.evaluate(x, y)
        with pytest.raises(ValueError):
            backend.loss_value_and_grad(loss, y, np.zeros((6, outputs)))


class BackendConformance(ComponentListTests, WorkedNumberTests, LossTests, TargetTests,
                         LayerTests, DropoutTests, OptimizerTests, ModelTests):
    """Every conformance test; subclass it and set ``backend_name``."""
