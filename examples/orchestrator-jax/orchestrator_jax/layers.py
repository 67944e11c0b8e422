"""A ModelSpec as one pure JAX function ``apply(weights, x, training, key) -> (y, updates)``.

JAX has no mutable modules: a network is a list of layer functions over a dict of arrays keyed by
canonical weight name (canonical layouts: ``x @ kernel``, gate order i, f, g, o, one bias, so no
weight is ever transposed). A layer function is ``layer(w, h, training, key) -> (h, updates)``;
``updates`` holds new values of non-trainable weights (batch norm's running statistics), which
the caller writes back. ``NORMS`` and ``RECURRENT`` are the backend's tables: canonical name ->
factory ``(prefix, ...) -> layer``. Recurrent layers are ``lax.scan`` over time, the input
projection of every step computed at once before the scan.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax
from orchestrator import specs

Arrays = Mapping[str, jax.Array]
Layer = Callable[[Arrays, jax.Array, bool, Any], tuple[jax.Array, dict[str, jax.Array]]]

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "linear": lambda x: x, "relu": jax.nn.relu, "tanh": jnp.tanh, "sigmoid": jax.nn.sigmoid,
    "softmax": lambda x: jax.nn.softmax(x, axis=-1)}


def _stateless(fn: Callable[[Arrays, jax.Array], jax.Array]) -> Layer:
    return lambda w, h, training, key: (fn(w, h), {})


def dense(prefix: str, act: str) -> Layer:
    f = ACTIVATIONS[act]
    return _stateless(lambda w, h: f(h @ w[f"{prefix}.kernel"] + w[f"{prefix}.bias"]))


def dropout(rate: float) -> Layer:
    def layer(w: Arrays, h: jax.Array, training: bool, key: Any) -> tuple[jax.Array, dict]:
        if not training or rate == 0:
            return h, {}
        keep = jax.random.bernoulli(key, 1.0 - rate, h.shape)
        return jnp.where(keep, h / (1.0 - rate), jnp.zeros((), h.dtype)), {}  # inverted
    return layer


# --- norms ----------------------------------------------------------------------------------


def batch_norm(prefix: str, p: Mapping[str, Any]) -> Layer:
    """Normalize with the batch mean and biased variance in training (running statistics get
    the unbiased one, weighted by momentum), with the running statistics in evaluation."""
    momentum, eps = p["momentum"], p["eps"]
    names = {k: f"{prefix}.{k}" for k in ("gamma", "beta", "running_mean", "running_var")}

    def layer(w: Arrays, h: jax.Array, training: bool, key: Any) -> tuple[jax.Array, dict]:
        updates = {}
        if training:
            axes = tuple(range(h.ndim - 1))
            n = h.size // h.shape[-1]
            mean = jnp.mean(h, axis=axes)
            var = jnp.mean(jnp.square(h - mean), axis=axes)
            unbiased = lax.stop_gradient(var) * (n / (n - 1))
            updates = {
                names["running_mean"]: (1 - momentum) * w[names["running_mean"]]
                + momentum * lax.stop_gradient(mean),
                names["running_var"]: (1 - momentum) * w[names["running_var"]]
                + momentum * unbiased}
        else:
            mean, var = w[names["running_mean"]], w[names["running_var"]]
        y = (h - mean) / jnp.sqrt(var + eps)
        return w[names["gamma"]] * y + w[names["beta"]], updates
    return layer


def layer_norm(prefix: str, p: Mapping[str, Any]) -> Layer:
    eps = p["eps"]

    def fn(w: Arrays, h: jax.Array) -> jax.Array:
        mean = jnp.mean(h, axis=-1, keepdims=True)
        var = jnp.mean(jnp.square(h - mean), axis=-1, keepdims=True)
        return w[f"{prefix}.gamma"] * (h - mean) / jnp.sqrt(var + eps) + w[f"{prefix}.beta"]
    return _stateless(fn)


NORMS: dict[str, Callable[[str, Mapping[str, Any]], Layer]] = {
    "none": lambda prefix, p: _stateless(lambda w, h: h),
    "batch": batch_norm,
    "layer": layer_norm,
}

# --- recurrent layers (batch-first in, time-major inside the scan) ---------------------------


def _scan_rnn(x: jax.Array, kernel: jax.Array, recurrent_kernel: jax.Array, bias: jax.Array,
              act: Callable[[jax.Array], jax.Array]) -> jax.Array:
    """h_t = act(x_t W + h_{t-1} U + b), h_0 = 0: every h, [B, T, H]."""
    projected = jnp.swapaxes(x @ kernel + bias, 0, 1)  # [T, B, H], all steps at once

    def cell(h: jax.Array, z: jax.Array) -> tuple[jax.Array, jax.Array]:
        h = act(z + h @ recurrent_kernel)
        return h, h

    h0 = jnp.zeros((x.shape[0], recurrent_kernel.shape[0]), x.dtype)
    _, states = lax.scan(cell, h0, projected)
    return jnp.swapaxes(states, 0, 1)


def _scan_lstm(x: jax.Array, kernel: jax.Array, recurrent_kernel: jax.Array,
               bias: jax.Array) -> jax.Array:
    """The canonical LSTM (gates i, f, g, o; one bias), h_0 = c_0 = 0: every h, [B, T, H]."""
    units = recurrent_kernel.shape[0]
    projected = jnp.swapaxes(x @ kernel + bias, 0, 1)  # [T, B, 4H]

    def cell(carry: tuple[jax.Array, jax.Array], z: jax.Array):
        h, c = carry
        z = z + h @ recurrent_kernel
        i, f, g, o = (z[:, k * units:(k + 1) * units] for k in range(4))
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (h, c), h

    zeros = jnp.zeros((x.shape[0], units), x.dtype)
    _, states = lax.scan(cell, (zeros, zeros), projected)
    return jnp.swapaxes(states, 0, 1)


def _weights(w: Arrays, prefix: str) -> tuple[jax.Array, jax.Array, jax.Array]:
    return w[f"{prefix}.kernel"], w[f"{prefix}.recurrent_kernel"], w[f"{prefix}.bias"]


def rnn(prefix: str, layer: specs.Recurrent) -> Layer:
    act = ACTIVATIONS[layer.component["activation"]]

    def fn(w: Arrays, h: jax.Array) -> jax.Array:
        states = _scan_rnn(h, *_weights(w, prefix), act)
        return states if layer.return_sequences else states[:, -1]
    return _stateless(fn)


def lstm(prefix: str, layer: specs.Recurrent) -> Layer:
    def fn(w: Arrays, h: jax.Array) -> jax.Array:
        states = _scan_lstm(h, *_weights(w, prefix))
        return states if layer.return_sequences else states[:, -1]
    return _stateless(fn)


def bilstm(prefix: str, layer: specs.Recurrent) -> Layer:
    """The backward LSTM reads the reversed sequence; its states are reversed back, so
    output[t] = [fwd[t], bwd[t]], and the last state is [fwd[T-1], bwd[0]]."""
    def fn(w: Arrays, h: jax.Array) -> jax.Array:
        fwd = _scan_lstm(h, *_weights(w, f"{prefix}.forward"))
        bwd = _scan_lstm(h[:, ::-1], *_weights(w, f"{prefix}.backward"))[:, ::-1]
        if layer.return_sequences:
            return jnp.concatenate([fwd, bwd], axis=-1)
        return jnp.concatenate([fwd[:, -1], bwd[:, 0]], axis=-1)
    return _stateless(fn)


RECURRENT: dict[str, Callable[[str, specs.Recurrent], Layer]] = {
    "rnn": rnn, "lstm": lstm, "bilstm": bilstm}


# --- the network ----------------------------------------------------------------------------


def build_layer(i: int, layer: Any, norms: Mapping[str, Any], recurrent: Mapping[str, Any]
                ) -> Layer:
    prefix = str(i)
    if isinstance(layer, specs.Dense):
        return dense(prefix, layer.activation)
    if isinstance(layer, specs.Activation):
        f = ACTIVATIONS[layer.name]
        return _stateless(lambda w, h: f(h))
    if isinstance(layer, specs.Dropout):
        return dropout(layer.rate)
    if isinstance(layer, specs.Embedding):
        return _stateless(lambda w, h: jnp.take(w[f"{prefix}.embeddings"], h, axis=0))
    if isinstance(layer, specs.Norm):
        return norms[layer.component.name](prefix, layer.component.params)
    if isinstance(layer, specs.Recurrent):
        return recurrent[layer.component.name](prefix, layer)
    raise specs.SpecError(f"the jax backend cannot build {type(layer).__name__}")


def build_network(spec: specs.ModelSpec, norms: Mapping[str, Any],
                  recurrent: Mapping[str, Any]) -> Callable[..., tuple[jax.Array, dict]]:
    """``apply(weights, x, training, key) -> (output, updates)`` for ``spec``; ``key`` (a JAX
    PRNG key) is read only by dropout layers in training mode and may be None otherwise."""
    layers = [build_layer(i, layer, norms, recurrent) for i, layer in enumerate(spec.layers)]
    random = [isinstance(layer, specs.Dropout) and layer.rate > 0 for layer in spec.layers]

    def apply(weights: Arrays, x: jax.Array, training: bool, key: Any
              ) -> tuple[jax.Array, dict[str, jax.Array]]:
        keys = (jax.random.split(key, len(layers)) if training and key is not None
                and any(random) else [None] * len(layers))
        updates: dict[str, jax.Array] = {}
        h = x
        for layer, k in zip(layers, keys):
            h, new = layer(weights, h, training, k)
            updates.update(new)
        return h, updates

    return apply
