"""``TensorFlowBackend``: the TensorFlow 2 / Keras 3 primitives of the Backend contract."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from orchestrator.contract.backend import Backend, Resources

from ._tf import compile_function, keras, tf
from .layers import NORMS, RECURRENT
from .losses import LOSSES
from .model import TensorFlowModel
from .optimizers import UPDATES, TensorFlowOptimizer
from .session import TensorFlowTrainingSession


class TensorFlowBackend(Backend):
    """Builds Keras models from specs and runs the canonical losses and optimizers in TF ops.

    ``resources.device`` is a TensorFlow device string (``"/CPU:0"``, ``"/GPU:0"``); None lets
    TensorFlow place variables and ops itself. Variables are created under it (models,
    sessions, optimizer state); ops follow their variables.
    """

    name = "tensorflow"
    mlflow_flavor = "tensorflow"
    model_class = TensorFlowModel
    session_class = TensorFlowTrainingSession
    optimizer_class = TensorFlowOptimizer
    losses, optimizers, norms, recurrent = LOSSES, UPDATES, NORMS, RECURRENT

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
    def placement(self) -> Iterator[None]:
        """Create variables (and run ops) on ``self.device`` inside the block."""
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

    def training_session(self, *args: Any, **kwargs: Any) -> TensorFlowTrainingSession:
        with self.placement():
            return super().training_session(*args, **kwargs)

    def optimizer_trajectory(self, *args: Any, **kwargs: Any) -> list[dict[str, np.ndarray]]:
        with self.placement():
            return super().optimizer_trajectory(*args, **kwargs)

    def tensor(self, array: np.ndarray) -> tf.Tensor:
        return tf.convert_to_tensor(array)

    def variables(self, arrays: Sequence[np.ndarray]) -> list[tf.Variable]:
        return [tf.Variable(a, name=f"param_{k}") for k, a in enumerate(arrays)]

    def read_variables(self, variables: Sequence[tf.Variable]) -> list[np.ndarray]:
        return [np.array(v.numpy()) for v in variables]

    def loss_gradient(self, fn: Callable[..., Any], y_true: np.ndarray | None,
                      y_pred: np.ndarray) -> tuple[float, np.ndarray]:
        pred = tf.convert_to_tensor(y_pred)
        true = None if y_true is None else tf.convert_to_tensor(y_true)
        with self.placement(), tf.GradientTape() as tape:
            tape.watch(pred)
            value = fn(true, pred)
        grad = tape.gradient(value, pred, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        return float(value.numpy()), grad.numpy()

    def compile(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        return compile_function(fn)
