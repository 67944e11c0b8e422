"""Declarative model specs: plain frozen data that every backend builds the same network from.

A ``ModelSpec`` is a sequence of layers applied in order to a batch-first input. It names
components by their canonical names (resolved through ``orchestrator.canonical.catalogue``) and carries no
framework object, so it can cross the plugin boundary, be hashed into a config digest and be built
on any backend. ``weight_shapes`` defines the canonical weight names and layouts that
``orchestrator.canonical.initializers`` fills and that every backend loads and reports back;
``check_weights`` and ``check_input`` are the checks every consumer of weights and batches
shares (the reference and the backend contract).

Canonical weight layout (``x @ W`` convention):
- dense ``{i}.kernel`` [in, units], ``{i}.bias`` [units]
- embedding ``{i}.embeddings`` [input_dim, output_dim]
- norm ``{i}.gamma``, ``{i}.beta`` [features]; batch norm state ``{i}.running_mean``,
  ``{i}.running_var`` [features] (not trainable)
- rnn / lstm ``{i}.kernel`` [in, G*units], ``{i}.recurrent_kernel`` [units, G*units],
  ``{i}.bias`` [G*units] with G = 1 (rnn) or 4 (lstm, gate order i, f, g, o); one bias only
- bilstm: the lstm weights under ``{i}.forward.*`` and ``{i}.backward.*``
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np

from orchestrator.canonical import catalogue
from orchestrator.canonical.catalogue import ComponentSpec

ACTIVATIONS = ("linear", "relu", "tanh", "sigmoid", "softmax")


class SpecError(ValueError):
    """A model spec that cannot be built (bad shape, unknown layer, bad option)."""


@dataclass(frozen=True)
class Dense:
    units: int
    activation: str = "linear"


@dataclass(frozen=True)
class Activation:
    name: str


@dataclass(frozen=True)
class Norm:
    """A normalization layer; ``component`` is a resolved ``norm`` (batch, layer or none)."""

    component: ComponentSpec


@dataclass(frozen=True)
class Dropout:
    rate: float


@dataclass(frozen=True)
class Embedding:
    input_dim: int
    output_dim: int


@dataclass(frozen=True)
class Recurrent:
    """A recurrent layer; ``component`` is a resolved ``recurrent`` (rnn, lstm or bilstm)."""

    component: ComponentSpec
    units: int
    return_sequences: bool = False


Layer = Union[Dense, Activation, Norm, Dropout, Embedding, Recurrent]


@dataclass(frozen=True)
class ModelSpec:
    """A network: input shape without the batch axis, input kind and layers in order."""

    input_shape: tuple[int, ...]
    layers: tuple[Layer, ...]
    input_dtype: str = "float"  # "float" or "int" (token ids for an embedding)
    name: str = "model"
    meta: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.input_dtype not in ("float", "int"):
            raise SpecError(f"input_dtype must be 'float' or 'int', got {self.input_dtype!r}")
        weight_shapes(self)  # validates every layer and the shapes between them

    @property
    def output_shape(self) -> tuple[int, ...]:
        shape = tuple(self.input_shape)
        for layer in self.layers:
            shape = layer_output_shape(layer, shape)
        return shape


@dataclass(frozen=True)
class WeightInfo:
    shape: tuple[int, ...]
    trainable: bool = True
    init: str = "zeros"  # glorot_uniform, orthogonal, zeros, ones, uniform, lstm_bias


# --- constructors that resolve components ----------------------------------------------------


def norm(kind: str, **params: Any) -> Norm:
    return Norm(catalogue.resolve("norm", kind, params))


def recurrent(cell: str, units: int, *, return_sequences: bool = False, **params: Any) -> Recurrent:
    return Recurrent(catalogue.resolve("recurrent", cell, params), units, return_sequences)


# --- shapes and weights ----------------------------------------------------------------------


def layer_output_shape(layer: Layer, shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape (without the batch axis) that ``layer`` makes of an input of ``shape``."""
    if isinstance(layer, Dense):
        return (*shape[:-1], layer.units)
    if isinstance(layer, Embedding):
        return (*shape, layer.output_dim)
    if isinstance(layer, Recurrent):
        width = layer.units * (2 if layer.component.name == "bilstm" else 1)
        return (shape[0], width) if layer.return_sequences else (width,)
    return shape


def _recurrent_weights(prefix: str, cell: str, n_in: int, units: int) -> dict[str, WeightInfo]:
    gates = 4 if cell == "lstm" else 1
    return {
        f"{prefix}.kernel": WeightInfo((n_in, gates * units), init="glorot_uniform"),
        f"{prefix}.recurrent_kernel": WeightInfo((units, gates * units), init="orthogonal"),
        f"{prefix}.bias": WeightInfo((gates * units,), init="lstm_bias" if gates == 4 else "zeros"),
    }


def _check_layer(i: int, layer: Any, shape: tuple[int, ...], input_dtype: str) -> None:
    where = f"layer {i} ({type(layer).__name__.lower()})"
    if isinstance(layer, Dense):
        if layer.units < 1:
            raise SpecError(f"{where}: units must be >= 1, got {layer.units}")
        if layer.activation not in ACTIVATIONS:
            raise SpecError(f"{where}: " + catalogue.unknown_message(
                "activation", layer.activation, ACTIVATIONS))
    elif isinstance(layer, Activation):
        if layer.name not in ACTIVATIONS:
            raise SpecError(f"{where}: " + catalogue.unknown_message(
                "activation", layer.name, ACTIVATIONS))
    elif isinstance(layer, Dropout):
        if not 0 <= layer.rate < 1:
            raise SpecError(f"{where}: rate must be in [0, 1), got {layer.rate}")
    elif isinstance(layer, Embedding):
        if i != 0 or input_dtype != "int":
            raise SpecError(f"{where}: an embedding must be the first layer, on int input")
        if layer.input_dim < 1 or layer.output_dim < 1:
            raise SpecError(f"{where}: input_dim and output_dim must be >= 1")
    elif isinstance(layer, Recurrent):
        if layer.component.kind != "recurrent":
            raise SpecError(f"{where}: component must be a recurrent layer")
        if len(shape) != 2:
            raise SpecError(f"{where}: needs [time, features] input, got shape {shape}; "
                            "set return_sequences on the recurrent layer before it")
        if layer.units < 1:
            raise SpecError(f"{where}: units must be >= 1, got {layer.units}")
    elif isinstance(layer, Norm):
        if layer.component.kind != "norm":
            raise SpecError(f"{where}: component must be a norm")
    else:
        raise SpecError(f"layer {i}: unknown layer type {type(layer).__name__}")


def weight_shapes(spec: ModelSpec) -> dict[str, WeightInfo]:
    """Canonical weight names, shapes, trainability and initializer, in a fixed order."""
    shape = tuple(spec.input_shape)
    if not shape or any(not isinstance(d, int) or d < 1 for d in shape):
        raise SpecError(f"input_shape must be positive integers, got {spec.input_shape}")
    if spec.input_dtype == "int" and not (spec.layers and isinstance(spec.layers[0], Embedding)):
        raise SpecError("int input needs an embedding as the first layer")
    weights: dict[str, WeightInfo] = {}
    for i, layer in enumerate(spec.layers):
        _check_layer(i, layer, shape, spec.input_dtype)
        n_in = shape[-1]
        if isinstance(layer, Dense):
            weights[f"{i}.kernel"] = WeightInfo((n_in, layer.units), init="glorot_uniform")
            weights[f"{i}.bias"] = WeightInfo((layer.units,))
        elif isinstance(layer, Embedding):
            weights[f"{i}.embeddings"] = WeightInfo((layer.input_dim, layer.output_dim),
                                                    init="uniform")
        elif isinstance(layer, Norm) and layer.component.name != "none":
            weights[f"{i}.gamma"] = WeightInfo((n_in,), init="ones")
            weights[f"{i}.beta"] = WeightInfo((n_in,))
            if layer.component.name == "batch":
                weights[f"{i}.running_mean"] = WeightInfo((n_in,), trainable=False)
                weights[f"{i}.running_var"] = WeightInfo((n_in,), trainable=False, init="ones")
        elif isinstance(layer, Recurrent):
            cell = layer.component.name
            if cell == "bilstm":
                for direction in ("forward", "backward"):
                    weights.update(_recurrent_weights(f"{i}.{direction}", "lstm", n_in,
                                                       layer.units))
            else:
                weights.update(_recurrent_weights(str(i), cell, n_in, layer.units))
        shape = layer_output_shape(layer, shape)
    return weights


def trainable_names(spec: ModelSpec) -> list[str]:
    return [name for name, info in weight_shapes(spec).items() if info.trainable]


def check_weights(spec: ModelSpec, weights: Mapping[str, Any],
                  dtype: str = "float64") -> dict[str, np.ndarray]:
    """Every canonical weight of ``spec`` from ``weights``, checked and copied as ``dtype``.

    The one weight check of the project (the reference forward pass and every backend's
    ``set_weights`` call it): exactly the names of ``weight_shapes(spec)`` (missing and unknown
    names are both errors), each with its canonical shape, all checked before anything is
    returned. Raises ``ValueError``. The result is in ``weight_shapes`` order and never aliases
    the caller's arrays.
    """
    expected = weight_shapes(spec)
    missing = [name for name in expected if name not in weights]
    unknown = [name for name in weights if name not in expected]
    if missing or unknown:
        problems = "; ".join(f"{what} {names}" for what, names in
                             (("missing", missing), ("unknown", unknown)) if names)
        raise ValueError(f"weights of {spec.name!r}: {problems}; expected exactly "
                         f"{list(expected)}")
    out = {}
    for name, info in expected.items():
        value = np.array(weights[name], dtype=dtype)  # a copy: the caller's arrays stay
        if value.shape != info.shape:
            raise ValueError(f"weights of {spec.name!r}: {name} has shape {value.shape}, "
                             f"expected {info.shape}")
        out[name] = value
    return out


def check_input(spec: ModelSpec, x: Any) -> np.ndarray:
    """A batch for ``spec``: shape ``[batch, *input_shape]``; integer token ids (int64) for an
    ``int`` input, else the array as given (no copy). Raises ``ValueError``."""
    x = np.asarray(x)
    if x.shape[1:] != tuple(spec.input_shape):
        raise ValueError(f"input of {spec.name!r} has shape {x.shape}, expected "
                         f"[batch, {', '.join(map(str, spec.input_shape))}]")
    if spec.input_dtype == "int" and not np.issubdtype(x.dtype, np.integer):
        if not (np.issubdtype(x.dtype, np.floating) and np.all(np.equal(np.mod(x, 1), 0))):
            raise ValueError(f"input of {spec.name!r}: token ids must be integers, got {x.dtype}")
        x = x.astype(np.int64)
    return x
