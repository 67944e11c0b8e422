"""The lecture's networks as model specs (plain data, buildable on any backend)."""

from __future__ import annotations

from orchestrator.canonical import specs
from orchestrator.canonical.specs import Activation, Dense, Dropout, Embedding, ModelSpec


def har_network(timesteps: int, channels: int, classes: int, *, units: int = 32,
                depth: int = 3, cell: str = "bilstm", dropout: float = 0.5,
                output_activation: str = "softmax") -> ModelSpec:
    """The lecture's activity-recognition network: ``depth`` stacked Bi-LSTM(``units``) layers
    (all but the last returning sequences), dropout, then a dense softmax over the classes."""
    layers: list[specs.Layer] = [
        specs.recurrent(cell, units, return_sequences=k < depth - 1) for k in range(depth)]
    if dropout:
        layers.append(Dropout(dropout))
    layers.append(Dense(classes, output_activation))
    return ModelSpec((timesteps, channels), tuple(layers), name="har_network")


def normalization_network(inputs: int, classes: int = 10, *, norm: str = "batch",
                          hidden: tuple[int, ...] = (64, 32), activation: str = "relu",
                          output_activation: str = "softmax", **norm_params: float) -> ModelSpec:
    """The lecture's normalization walk-through: Input -> 64 -> 32 -> classes, with the norm
    between each hidden layer's linear transform and its activation (Z = XW + b, BN, ReLU)."""
    layers: list[specs.Layer] = []
    for width in hidden:
        layers.append(Dense(width))
        if norm != "none":
            layers.append(specs.norm(norm, **norm_params))
        layers.append(Activation(activation))
    layers.append(Dense(classes, output_activation))
    return ModelSpec((inputs,), tuple(layers), name=f"normalization_network_{norm}")


def char_network(vocab_size: int, seq_len: int, *, embedding_dim: int = 64, units: int = 256,
                 depth: int = 1, cell: str = "lstm", dropout: float = 0.0) -> ModelSpec:
    """Character-level language model: embedding, ``depth`` recurrent layers returning
    sequences, dense logits over the vocabulary at every time step (use a loss with
    ``from_logits: true``)."""
    layers: list[specs.Layer] = [Embedding(vocab_size, embedding_dim)]
    for _ in range(depth):
        layers.append(specs.recurrent(cell, units, return_sequences=True))
        if dropout:
            layers.append(Dropout(dropout))
    layers.append(Dense(vocab_size))
    return ModelSpec((seq_len,), tuple(layers), input_dtype="int", name="char_network")


def mlp(inputs: int, outputs: int, *, hidden: tuple[int, ...] = (64, 32),
        activation: str = "relu", norm: str = "none", dropout: float = 0.0,
        output_activation: str = "linear") -> ModelSpec:
    """A plain multilayer perceptron (tabular tasks, embeddings)."""
    layers: list[specs.Layer] = []
    for width in hidden:
        layers.append(Dense(width))
        if norm != "none":
            layers.append(specs.norm(norm))
        layers.append(Activation(activation))
        if dropout:
            layers.append(Dropout(dropout))
    layers.append(Dense(outputs, output_activation))
    return ModelSpec((inputs,), tuple(layers), name="mlp")
