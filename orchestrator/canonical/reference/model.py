"""Reference forward pass: a ``ModelSpec`` run layer by layer in float64 NumPy.

``forward`` reads every weight by its canonical name (``{i}.kernel``, ``{i}.forward.bias``...,
see ``orchestrator.canonical.specs``), checks names and shapes with ``specs.check_weights`` (the
check every backend shares) and returns the output with a copy of the weights whose batch-norm
running statistics are updated in training mode. It is the oracle the backends' ``predict`` and ``vjp`` are checked against.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from orchestrator.canonical import specs
from orchestrator.canonical.reference import layers as L
from orchestrator.canonical.specs import ModelSpec


def forward(spec: ModelSpec, weights: Mapping[str, np.ndarray], x: np.ndarray, *,
            training: bool = False) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Run ``spec`` on the batch ``x``; return (output, weights with updated running stats).

    ``training=True`` makes batch norm use and fold in batch statistics; dropout with a rate
    above 0 then raises ``ValueError`` (the reference is deterministic). The returned weights are
    a float64 copy of every entry; only batch-norm running statistics can differ from the input.
    """
    w = specs.check_weights(spec, weights)  # float64 copies, names and shapes checked
    h = specs.check_input(spec, x)
    if spec.input_dtype != "int":
        h = h.astype(np.float64)
    for i, layer in enumerate(spec.layers):
        if isinstance(layer, specs.Dense):
            h = L.dense(h, w[f"{i}.kernel"], w[f"{i}.bias"], layer.activation)
        elif isinstance(layer, specs.Activation):
            h = L.activation(h, layer.name)
        elif isinstance(layer, specs.Dropout):
            h = L.dropout(h, layer.rate, training)
        elif isinstance(layer, specs.Embedding):
            h = L.embedding(h, w[f"{i}.embeddings"])
        elif isinstance(layer, specs.Norm):
            h = _norm(i, layer, w, h, training)
        elif isinstance(layer, specs.Recurrent):
            h = _recurrent(i, layer, w, h)
        else:
            raise ValueError(f"layer {i}: unknown layer type {type(layer).__name__}")
    return h, w


def _norm(i: int, layer: specs.Norm, w: dict[str, np.ndarray], h: np.ndarray,
          training: bool) -> np.ndarray:
    kind, hp = layer.component.name, layer.component.params
    if kind == "none":
        return h
    if kind == "layer":
        return L.layer_norm(h, w[f"{i}.gamma"], w[f"{i}.beta"], eps=hp["eps"])
    if kind == "batch":
        y, w[f"{i}.running_mean"], w[f"{i}.running_var"] = L.batch_norm(
            h, w[f"{i}.gamma"], w[f"{i}.beta"], w[f"{i}.running_mean"], w[f"{i}.running_var"],
            momentum=hp["momentum"], eps=hp["eps"], training=training)
        return y
    raise ValueError(f"layer {i}: unknown norm {kind!r}")


def _lstm_weights(w: dict[str, np.ndarray], prefix: str) -> tuple[np.ndarray, ...]:
    return w[f"{prefix}.kernel"], w[f"{prefix}.recurrent_kernel"], w[f"{prefix}.bias"]


def _recurrent(i: int, layer: specs.Recurrent, w: dict[str, np.ndarray],
               h: np.ndarray) -> np.ndarray:
    cell = layer.component.name
    if cell == "rnn":
        seq = L.rnn(h, *_lstm_weights(w, str(i)), act=layer.component.params["activation"])
        last = seq[:, -1]
    elif cell == "lstm":
        seq = L.lstm(h, *_lstm_weights(w, str(i)))
        last = seq[:, -1]
    elif cell == "bilstm":
        seq, last = L.bilstm(h, _lstm_weights(w, f"{i}.forward"),
                             _lstm_weights(w, f"{i}.backward"))
    else:
        raise ValueError(f"layer {i}: unknown recurrent cell {cell!r}")
    return seq if layer.return_sequences else last
