"""``TensorFlowModel``: the framework primitives of a Keras model behind canonical weight names."""

from __future__ import annotations

from typing import Any

import numpy as np

from orchestrator.contract.model import BackendModel

from ._tf import compile_function, keras, tf
from .layers import build_keras_model


class TensorFlowModel(BackendModel):
    """One network built from a ``ModelSpec`` as a functional ``keras.Model``.

    ``variables`` maps every canonical name to the tf.Variable under the Keras variable holding
    it (what GradientTape differentiates and optimizers assign); the layouts agree with the
    canonical ones, so loading and reporting are plain copies.
    """

    def build(self) -> dict[str, Any]:
        with self.backend.placement():  # variables live where they are created
            self.keras_model, variables = build_keras_model(
                self.spec, self.dtype, self.backend.norms, self.backend.recurrent)
        self._forward = compile_function(self._forward_impl)
        self._vjp = compile_function(self._vjp_impl)
        return {name: var.value for name, var in variables.items()}

    @property
    def native(self) -> keras.Model:
        return self.keras_model

    def input_tensor(self, x: np.ndarray) -> tf.Tensor:
        """``x`` as the dtype the model is fed in (int32 token ids or the float dtype), so one
        traced function serves every call."""
        return tf.convert_to_tensor(np.asarray(x, "int32" if self.int_input else self.dtype))

    def read_variable(self, name: str) -> np.ndarray:
        return np.array(self.variables[name].numpy())

    def write_variable(self, name: str, value: np.ndarray) -> None:
        self.variables[name].assign(value)

    def _forward_impl(self, x: tf.Tensor, training: bool) -> tf.Tensor:
        return self.keras_model(x, training=training)

    def _vjp_impl(self, x: tf.Tensor, upstream: tf.Tensor,
                  training: bool) -> tuple[tf.Tensor, list[tf.Tensor]]:
        sources = self.trainable_variables
        with tf.GradientTape() as tape:
            if not self.int_input:
                tape.watch(x)
            output = self.keras_model(x, training=training)
            target = tf.reduce_sum(output * upstream)
        if not self.int_input:
            sources = [x, *sources]
        # Weights the output does not reach get zeros, not None (e.g. an unused bias).
        grads = tape.gradient(target, sources,
                              unconnected_gradients=tf.UnconnectedGradients.ZERO)
        return output, grads

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        return self._forward(self.input_tensor(x), training).numpy()

    def backprop(self, x: np.ndarray, upstream: np.ndarray, training: bool
                 ) -> tuple[np.ndarray, np.ndarray | None, list[np.ndarray]]:
        output, grads = self._vjp(self.input_tensor(x), tf.convert_to_tensor(upstream), training)
        grad_input = None
        if not self.int_input:
            grad_input, grads = grads[0].numpy(), grads[1:]
        # Embedding gradients arrive as IndexedSlices; densify to the canonical layout.
        return output.numpy(), grad_input, [tf.convert_to_tensor(g).numpy() for g in grads]
