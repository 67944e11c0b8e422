"""Builds a ``keras.Model`` from a ModelSpec and maps canonical weight names to its variables.

``NORMS`` and ``RECURRENT`` are the backend's tables: canonical name -> Keras layer factory.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from orchestrator.canonical import specs
from orchestrator.canonical.specs import ModelSpec

from ._tf import keras, tf


@keras.saving.register_keras_serializable(package="orchestrator")
class CanonicalBatchNormalization(keras.layers.Layer):
    """Batch norm with the canonical meaning (Keras' own layer differs, see NUMERICS.md).

    Normalizes over every axis but the last. Training: batch mean and biased variance, then
    ``running = (1 - momentum) * running + momentum * batch`` with the *unbiased* batch variance
    (``momentum`` weighs the new batch, the PyTorch direction). Evaluation: running statistics.
    """

    def __init__(self, momentum: float = 0.1, epsilon: float = 1e-5, **kwargs) -> None:
        super().__init__(**kwargs)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        features = (input_shape[-1],)
        self.gamma = self.add_weight(name="gamma", shape=features, initializer="ones")
        self.beta = self.add_weight(name="beta", shape=features, initializer="zeros")
        self.running_mean = self.add_weight(name="running_mean", shape=features,
                                            initializer="zeros", trainable=False)
        self.running_var = self.add_weight(name="running_var", shape=features,
                                           initializer="ones", trainable=False)

    def call(self, inputs: tf.Tensor, training: bool | None = None) -> tf.Tensor:
        if not training:
            mean, var = self.running_mean, self.running_var
        else:
            axes = list(range(len(inputs.shape) - 1))
            mean, var = tf.nn.moments(inputs, axes=axes)  # biased variance normalizes
            n = tf.cast(tf.reduce_prod(tf.shape(inputs)[:-1]), inputs.dtype)
            unbiased = var * n / tf.maximum(n - 1.0, 1.0)
            m = self.momentum
            self.running_mean.assign((1.0 - m) * self.running_mean + m * mean)
            self.running_var.assign((1.0 - m) * self.running_var + m * unbiased)
        scale = self.gamma * tf.math.rsqrt(var + self.epsilon)
        return (inputs - mean) * scale + self.beta

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "momentum": self.momentum, "epsilon": self.epsilon}


def _lstm(units: int, return_sequences: bool, dtype: str, name: str) -> keras.layers.LSTM:
    # Zero initializers: the canonical weights are loaded right after building, so skip
    # Keras' orthogonal draws. Keras' gate order i, f, c, o is the canonical i, f, g, o.
    return keras.layers.LSTM(
        units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
        return_sequences=return_sequences, kernel_initializer="zeros",
        recurrent_initializer="zeros", bias_initializer="zeros", unit_forget_bias=False,
        dtype=dtype, name=name)


# The backend's tables: canonical name -> factory (layer index, spec layer or params, dtype).
NORMS: dict[str, Callable[..., keras.layers.Layer | None]] = {
    "none": lambda i, p, dtype: None,
    "batch": lambda i, p, dtype: CanonicalBatchNormalization(
        p["momentum"], p["eps"], dtype=dtype, name=f"{i}_batch_norm"),
    # Keras' LayerNormalization is the canonical formula (biased variance, eps inside rsqrt);
    # only its default epsilon differs, and the spec always gives one.
    "layer": lambda i, p, dtype: keras.layers.LayerNormalization(
        axis=-1, epsilon=p["eps"], dtype=dtype, name=f"{i}_layer_norm"),
}
RECURRENT: dict[str, Callable[..., keras.layers.Layer]] = {
    "rnn": lambda i, layer, dtype: keras.layers.SimpleRNN(
        layer.units, activation=layer.component.params["activation"],
        return_sequences=layer.return_sequences, kernel_initializer="zeros",
        recurrent_initializer="zeros", dtype=dtype, name=f"{i}_rnn"),
    "lstm": lambda i, layer, dtype: _lstm(layer.units, layer.return_sequences, dtype, f"{i}_lstm"),
    # Keras runs the backward copy with go_backwards and re-reverses its sequence output, so
    # output[t] = [fwd[t], bwd[t]] and the last state is [fwd[T-1], bwd at t=0].
    "bilstm": lambda i, layer, dtype: keras.layers.Bidirectional(
        _lstm(layer.units, layer.return_sequences, dtype, f"{i}_lstm"), merge_mode="concat",
        dtype=dtype, name=f"{i}_bilstm"),
}


def _keras_layer(i: int, layer: specs.Layer, dtype: str, norms: Mapping[str, Callable[..., Any]],
                 recurrent: Mapping[str, Callable[..., Any]]) -> keras.layers.Layer | None:
    """The Keras layer for spec layer ``i`` (None for the identity norm)."""
    if isinstance(layer, specs.Dense):
        return keras.layers.Dense(layer.units, activation=layer.activation,
                                  kernel_initializer="zeros", dtype=dtype, name=f"{i}_dense")
    if isinstance(layer, specs.Activation):
        return keras.layers.Activation(layer.name, dtype=dtype, name=f"{i}_{layer.name}")
    if isinstance(layer, specs.Dropout):
        return keras.layers.Dropout(layer.rate, dtype=dtype, name=f"{i}_dropout")
    if isinstance(layer, specs.Embedding):
        return keras.layers.Embedding(layer.input_dim, layer.output_dim,
                                      embeddings_initializer="zeros", dtype=dtype,
                                      name=f"{i}_embedding")
    if isinstance(layer, specs.Norm):
        return norms[layer.component.name](i, layer.component.params, dtype)
    if isinstance(layer, specs.Recurrent):
        return recurrent[layer.component.name](i, layer, dtype)
    raise specs.SpecError(f"layer {i}: unknown layer type {type(layer).__name__}")


def _canonical_variables(i: int, layer: specs.Layer,
                         built: keras.layers.Layer) -> dict[str, keras.Variable]:
    """Canonical names of spec layer ``i`` -> the built Keras layer's variables."""
    if isinstance(layer, specs.Dense):
        return {f"{i}.kernel": built.kernel, f"{i}.bias": built.bias}
    if isinstance(layer, specs.Embedding):
        return {f"{i}.embeddings": built.embeddings}
    if isinstance(layer, specs.Norm):
        return {f"{i}.{attr}": getattr(built, attr) for attr in
                ("gamma", "beta", "running_mean", "running_var") if hasattr(built, attr)}
    if isinstance(layer, specs.Recurrent):
        if isinstance(built, keras.layers.Bidirectional):
            cells = {f"{i}.forward": built.forward_layer.cell,
                     f"{i}.backward": built.backward_layer.cell}
        else:
            cells = {str(i): built.cell}
        return {f"{prefix}.{attr}": getattr(cell, attr) for prefix, cell in cells.items()
                for attr in ("kernel", "recurrent_kernel", "bias")}
    return {}


def build_keras_model(spec: ModelSpec, dtype: str, norms: Mapping[str, Callable[..., Any]],
                      recurrent: Mapping[str, Callable[..., Any]]
                      ) -> tuple[keras.Model, dict[str, keras.Variable]]:
    """A functional ``keras.Model`` for ``spec`` (norms and recurrent layers from the backend's
    tables) and its canonical-name -> variable map, in the order of ``specs.weight_shapes``."""
    input_dtype = "int32" if spec.input_dtype == "int" else dtype
    inputs = keras.Input(shape=tuple(spec.input_shape), dtype=input_dtype, name="inputs")
    x = inputs
    variables: dict[str, keras.Variable] = {}
    for i, layer in enumerate(spec.layers):
        built = _keras_layer(i, layer, dtype, norms, recurrent)
        if built is None:
            continue
        x = built(x)
        variables.update(_canonical_variables(i, layer, built))
    model = keras.Model(inputs, x, name=spec.name)
    return model, {name: variables[name] for name in specs.weight_shapes(spec)
                   if name in variables}
