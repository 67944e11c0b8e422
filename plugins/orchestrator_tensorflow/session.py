"""``TensorFlowTrainingSession``: one compiled tf.function step, canonical loss and optimizer."""

from __future__ import annotations

import numpy as np

from orchestrator.contract.backend import TrainingSession
from orchestrator.canonical.catalogue import ComponentSpec

from ._tf import compile_function, tf
from .losses import make_loss, target_dtype
from .model import TensorFlowModel
from .optimizers import CanonicalOptimizer


class TensorFlowTrainingSession(TrainingSession):
    """A model bound to a canonical loss and optimizer.

    ``train_step`` is one ``tf.function`` (forward in training mode, loss, GradientTape,
    optimizer update), traced once per input signature; ``reduce_retracing`` relaxes the batch
    axis after a second batch size (the short last batch), so an epoch costs at most two traces.
    The epoch's loss stays in a variable and is read once, in ``end_epoch``.
    """

    def __init__(self, model: TensorFlowModel, loss: ComponentSpec, optimizer: ComponentSpec,
                 *, n_train: int) -> None:
        if n_train < 1:
            raise ValueError(f"n_train must be >= 1, got {n_train}")
        self.model = model
        self.loss_spec = loss
        self.n_train = int(n_train)
        self.loss_fn = make_loss(loss)
        self.optimizer = CanonicalOptimizer(optimizer, model.trainable_variables, model.dtype)
        self.full_batch = self.optimizer.full_batch
        self._y_dtype = target_dtype(loss, model.dtype)
        dtype = tf.as_dtype(model.dtype)
        # sum(loss * batch size) over the epoch; samples are counted in Python (known shapes).
        self._loss_sum = tf.Variable(0.0, dtype=tf.float64, trainable=False, name="loss_sum")
        self._seen = 0
        self._pending = False  # full batch: whether gradients were accumulated this epoch
        self._accumulators = [
            tf.Variable(tf.zeros_like(v), dtype=dtype, trainable=False, name=f"grad_sum_{k}")
            for k, v in enumerate(model.trainable_variables)] if self.full_batch else []
        self._step = compile_function(self._step_impl)
        self._loss = compile_function(self._loss_impl)
        self._apply_accumulated = compile_function(self._apply_accumulated_impl)

    # --- compiled pieces --------------------------------------------------------------------

    def _step_impl(self, x: tf.Tensor, y: tf.Tensor) -> None:
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            loss = self.loss_fn(y, self.model.keras_model(x, training=True))
        grads = tape.gradient(loss, variables, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        batch = tf.shape(x)[0]
        self._loss_sum.assign_add(tf.cast(loss, tf.float64) * tf.cast(batch, tf.float64))
        if self.full_batch:
            # The full-batch gradient is the sample-weighted mean of the batch gradients.
            weight = tf.cast(batch, loss.dtype) / self.n_train
            for acc, g in zip(self._accumulators, grads):
                acc.assign_add(weight * tf.convert_to_tensor(g))  # densify IndexedSlices
        else:
            self.optimizer.apply(grads)

    def _apply_accumulated_impl(self) -> None:
        self.optimizer.apply([acc.read_value() for acc in self._accumulators])
        for acc in self._accumulators:
            acc.assign(tf.zeros_like(acc))

    def _loss_impl(self, x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
        return self.loss_fn(y, self.model.keras_model(x, training=False))

    # --- the TrainingSession contract -------------------------------------------------------

    def _target(self, y: np.ndarray | None, batch: int) -> tf.Tensor:
        if y is None:  # triplet loss without mining ignores y_true
            y = np.zeros((batch,))
        return tf.convert_to_tensor(np.asarray(y, self._y_dtype.as_numpy_dtype))

    def train_step(self, x: np.ndarray, y: np.ndarray) -> None:
        x_t = self.model.input_tensor(x)
        self._step(x_t, self._target(y, int(x_t.shape[0])))
        self._seen += int(x_t.shape[0])
        self._pending = self.full_batch

    def end_epoch(self) -> dict[str, float]:
        if self._pending:
            self._apply_accumulated()
            self._pending = False
        loss = float(self._loss_sum.numpy()) / self._seen if self._seen else float("nan")
        self._loss_sum.assign(0.0)
        self._seen = 0
        return {"loss": loss}

    def evaluate(self, x: np.ndarray, y: np.ndarray, batch_size: int = 1024) -> dict[str, float]:
        n = len(x)
        if n == 0:
            return {"loss": float("nan")}
        total = 0.0
        for start in range(0, n, batch_size):
            xb = x[start:start + batch_size]
            yb = None if y is None else y[start:start + batch_size]
            loss = self._loss(self.model.input_tensor(xb), self._target(yb, len(xb)))
            total += float(loss.numpy()) * len(xb)
        return {"loss": total / n}

    def set_learning_rate(self, lr: float) -> None:
        if not lr >= 0:  # 0 is a legitimate end point of a schedule; NaN and negatives are not
            raise ValueError(f"learning rate must be >= 0, got {lr}")
        self.optimizer.set_learning_rate(lr)
