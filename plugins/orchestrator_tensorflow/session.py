"""``TensorFlowTrainingSession``: one compiled tf.function step, canonical loss and optimizer."""

from __future__ import annotations

import numpy as np

from orchestrator.contract.session import TrainingSession

from ._tf import compile_function, tf


class TensorFlowTrainingSession(TrainingSession):
    """``step`` is one ``tf.function`` (forward in training mode, loss, GradientTape, optimizer
    update), traced once per input signature; ``reduce_retracing`` relaxes the batch axis after
    a second batch size (the short last batch), so an epoch costs at most two traces. The
    epoch's loss stays in a variable and is read once, in ``end_epoch``.
    """

    def setup(self) -> None:
        # sum(loss * batch size) over the epoch
        self._loss_sum = tf.Variable(0.0, dtype=tf.float64, trainable=False, name="loss_sum")
        self._accumulators = [
            tf.Variable(tf.zeros_like(v), trainable=False, name=f"grad_sum_{k}")
            for k, v in enumerate(self.model.trainable_variables)] if self.full_batch else []
        self._step = compile_function(self._step_impl)
        self._loss = compile_function(self._loss_impl)
        self._apply_accumulated = compile_function(self._apply_accumulated_impl)

    def _step_impl(self, x: tf.Tensor, y: tf.Tensor | None) -> None:
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
            self.optimizer.step(grads)

    def _apply_accumulated_impl(self) -> None:
        self.optimizer.step([acc.read_value() for acc in self._accumulators])
        for acc in self._accumulators:
            acc.assign(tf.zeros_like(acc))

    def _loss_impl(self, x: tf.Tensor, y: tf.Tensor | None) -> tf.Tensor:
        return self.loss_fn(y, self.model.keras_model(x, training=False))

    @staticmethod
    def _target(y: np.ndarray | None) -> tf.Tensor | None:
        return None if y is None else tf.convert_to_tensor(y)

    def step(self, x: np.ndarray, y: np.ndarray | None) -> None:
        self._step(self.model.input_tensor(x), self._target(y))

    def apply_accumulated(self) -> None:
        self._apply_accumulated()

    def take_loss_sum(self) -> float:
        total = float(self._loss_sum.numpy())
        self._loss_sum.assign(0.0)
        return total

    def evaluation_loss(self, x: np.ndarray, y: np.ndarray | None) -> float:
        return float(self._loss(self.model.input_tensor(x), self._target(y)).numpy())
