"""``TensorFlowBackend``: the orchestrator's Backend contract on TensorFlow 2 / Keras 3."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import ClassVar

import numpy as np

from orchestrator.contract.backend import Backend, BackendModel, Resources, check_dtype
from orchestrator.canonical.catalogue import ComponentSpec
from orchestrator.canonical.specs import ModelSpec

from ._tf import compile_function, keras, tf
from .losses import make_loss, target_dtype
from .model import TensorFlowModel
from .optimizers import CanonicalOptimizer
from .session import TensorFlowTrainingSession




class TensorFlowBackend(Backend):
    """Builds Keras models from specs and runs the canonical losses and optimizers in TF ops.

    ``resources.device`` is a TensorFlow device string (``"/CPU:0"``, ``"/GPU:0"``); None lets
    TensorFlow place variables and ops itself.
    """

    name: ClassVar[str] = "tensorflow"
    mlflow_flavor: ClassVar[str] = "tensorflow"

    def __init__(self, resources: Resources | None = None) -> None:
        super().__init__(resources)
        threads = self.resources.threads
        if threads:  # runs side by side (``orchestrator run --jobs``) share the cores
            try:
                tf.config.threading.set_intra_op_parallelism_threads(threads)
                tf.config.threading.set_inter_op_parallelism_threads(threads)
            except RuntimeError:  # the runtime already started: too late, keep its pools
                pass

    @contextlib.contextmanager
    def _placement(self) -> Iterator[None]:
        # Variables live where they are created, so building under the scope places the model.
        if self.device is None:
            yield
        else:
            with tf.device(self.device):
                yield

    def reset_state(self) -> None:
        keras.backend.clear_session()  # graphs, layer name counters, Keras' global generator

    def framework_versions(self) -> dict[str, str]:
        return {"tensorflow": tf.__version__, "keras": keras.__version__}

    def seed(self, seed: int) -> None:
        keras.utils.set_random_seed(int(seed))  # Python, NumPy, TensorFlow and Keras' generator

    def build_model(self, spec: ModelSpec, weights: Mapping[str, np.ndarray], *,
                    dtype: str = "float32") -> TensorFlowModel:
        with self._placement():
            model = TensorFlowModel(spec, check_dtype(dtype))
        model.set_weights(weights)
        return model

    def loss_value_and_grad(self, loss: ComponentSpec, y_true: np.ndarray | None,
                            y_pred: np.ndarray, *,
                            dtype: str = "float64") -> tuple[float, np.ndarray]:
        fn = make_loss(loss)
        pred = tf.convert_to_tensor(np.asarray(y_pred, check_dtype(dtype)))
        if y_true is None:  # triplet loss without mining ignores y_true
            y_true = np.zeros(pred.shape[:1])
        true = tf.convert_to_tensor(np.asarray(y_true, target_dtype(loss, dtype).as_numpy_dtype))
        with self._placement(), tf.GradientTape() as tape:
            tape.watch(pred)
            value = fn(true, pred)
        grad = tape.gradient(value, pred, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        return float(value.numpy()), grad.numpy()

    def optimizer_trajectory(self, optimizer: ComponentSpec, params: Mapping[str, np.ndarray],
                             grads: Sequence[Mapping[str, np.ndarray]], *,
                             dtype: str = "float64") -> list[dict[str, np.ndarray]]:
        dtype = check_dtype(dtype)
        names = list(params)
        with self._placement():
            variables = [tf.Variable(np.asarray(params[n], dtype), name=n.replace(".", "_"))
                         for n in names]
            opt = CanonicalOptimizer(optimizer, variables, dtype)
        # The same update code as the training step, compiled the same way.
        step = compile_function(opt.apply)
        trajectory = []
        for k, grad in enumerate(grads):
            missing = [n for n in names if n not in grad]
            if missing:
                raise ValueError(f"optimizer_trajectory: step {k + 1} has no gradient for "
                                 f"{missing}")
            with self._placement():
                step([tf.convert_to_tensor(np.asarray(grad[n], dtype)) for n in names])
            trajectory.append({n: v.numpy().copy() for n, v in zip(names, variables)})
        return trajectory

    def training_session(self, model: BackendModel, loss: ComponentSpec,
                         optimizer: ComponentSpec, *, n_train: int) -> TensorFlowTrainingSession:
        if not isinstance(model, TensorFlowModel):
            raise TypeError(f"the tensorflow backend trains its own models, got "
                            f"{type(model).__name__}; build it with TensorFlowBackend.build_model")
        with self._placement():
            return TensorFlowTrainingSession(model, loss, optimizer, n_train=n_train)
