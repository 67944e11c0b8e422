"""``TensorFlowModel``: a Keras model behind canonical weight names, prediction and VJPs."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from orchestrator.contract.backend import VJP, BackendModel, check_dtype
from orchestrator.canonical.specs import ModelSpec, weight_shapes

from ._tf import compile_function, keras, tf
from .layers import build_keras_model


class TensorFlowModel(BackendModel):
    """One network built from a ``ModelSpec`` as a functional ``keras.Model``.

    ``variables`` maps every canonical name (``specs.weight_shapes`` order) to the Keras
    variable holding it; the layouts agree, so loading and reporting are plain copies.
    """

    def __init__(self, spec: ModelSpec, dtype: str = "float32") -> None:
        self.spec = spec
        self.dtype = check_dtype(dtype)
        self.shapes = weight_shapes(spec)
        self.keras_model, self.variables = build_keras_model(spec, dtype)
        self.trainable_names = [n for n, info in self.shapes.items() if info.trainable]
        # The underlying tf.Variables: what GradientTape differentiates and optimizers assign.
        self.trainable_variables = [self.variables[n].value for n in self.trainable_names]
        self._forward = compile_function(self._forward_impl)
        self._vjp = compile_function(self._vjp_impl)

    # --- data at the boundary ---------------------------------------------------------------

    @property
    def int_input(self) -> bool:
        return self.spec.input_dtype == "int"

    def input_tensor(self, x: np.ndarray) -> tf.Tensor:
        """``x`` as the dtype the model is fed in (int32 token ids or the float dtype), so one
        traced function serves every call."""
        return tf.convert_to_tensor(np.asarray(x, "int32" if self.int_input else self.dtype))

    # --- weights ----------------------------------------------------------------------------

    def get_weights(self) -> dict[str, np.ndarray]:
        return {name: np.array(var.numpy()) for name, var in self.variables.items()}

    def set_weights(self, weights: Mapping[str, np.ndarray]) -> None:
        missing = [n for n in self.shapes if n not in weights]
        unknown = [n for n in weights if n not in self.shapes]
        if missing or unknown:
            raise ValueError(
                f"set_weights on {self.spec.name!r}: "
                + (f"missing {missing}" if missing else "")
                + ("; " if missing and unknown else "")
                + (f"unknown {unknown}" if unknown else "")
                + f"; expected exactly {list(self.shapes)}")
        arrays = {}
        for name, info in self.shapes.items():  # check everything before assigning anything
            value = np.asarray(weights[name], dtype=self.dtype)
            if value.shape != info.shape:
                raise ValueError(f"set_weights on {self.spec.name!r}: {name} has shape "
                                 f"{value.shape}, expected {info.shape}")
            arrays[name] = value
        for name, value in arrays.items():
            self.variables[name].assign(value)

    # --- forward and backward ---------------------------------------------------------------

    def _forward_impl(self, x: tf.Tensor, training: bool) -> tf.Tensor:
        return self.keras_model(x, training=training)

    def _vjp_impl(self, x: tf.Tensor, upstream: tf.Tensor,
                  training: bool) -> tuple[tf.Tensor, list[tf.Tensor]]:
        sources = list(self.trainable_variables)
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

    def predict(self, x: np.ndarray, *, training: bool = False) -> np.ndarray:
        return self._forward(self.input_tensor(x), bool(training)).numpy()

    def vjp(self, x: np.ndarray, upstream: np.ndarray, *, training: bool = False) -> VJP:
        upstream_t = tf.convert_to_tensor(np.asarray(upstream, self.dtype))
        output, grads = self._vjp(self.input_tensor(x), upstream_t, bool(training))
        grad_input = None
        if not self.int_input:
            grad_input, grads = grads[0].numpy(), grads[1:]
        grad_weights = {}
        for name, grad in zip(self.trainable_names, grads):
            # Embedding gradients arrive as IndexedSlices; densify to the canonical layout.
            grad_weights[name] = tf.convert_to_tensor(grad).numpy()
        return VJP(output.numpy(), grad_input, grad_weights)

    @property
    def native(self) -> keras.Model:
        return self.keras_model
