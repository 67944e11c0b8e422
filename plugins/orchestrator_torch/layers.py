"""torch.nn modules for the spec layers, each mapping its tensors to canonical weight names.

Every layer module has ``slots(prefix)``: canonical name -> ``Slot`` (the torch tensor, whether
the canonical layout is its transpose, whether it is trained). The model reads, writes and
reports gradients only through these slots, so torch's internal layouts never leak out.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from orchestrator.canonical import specs
from orchestrator.canonical.specs import ModelSpec


@dataclass(frozen=True)
class Slot:
    tensor: torch.Tensor
    transpose: bool = False  # canonical layout is tensor.T (torch stores (out, in))
    trainable: bool = True


_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "linear": nn.Identity, "relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}


def activation(name: str) -> nn.Module:
    if name == "softmax":
        return nn.Softmax(dim=-1)
    return _ACTIVATIONS[name]()


class DenseLayer(nn.Module):
    """x @ kernel + bias on the last axis, then the activation (Linear weight = kernel.T)."""

    def __init__(self, n_in: int, units: int, act: str, **factory: object) -> None:
        super().__init__()
        self.linear = nn.Linear(n_in, units, **factory)
        self.act = activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.linear(x))

    def slots(self, prefix: str) -> dict[str, Slot]:
        return {f"{prefix}.kernel": Slot(self.linear.weight, transpose=True),
                f"{prefix}.bias": Slot(self.linear.bias)}


class EmbeddingLayer(nn.Embedding):
    def slots(self, prefix: str) -> dict[str, Slot]:
        return {f"{prefix}.embeddings": Slot(self.weight)}


class FeatureBatchNorm(nn.BatchNorm1d):
    """Batch norm over every axis but the last: [..., F] is viewed as [N, F].

    torch's batch norm is the canonical one: biased batch variance for normalizing, unbiased
    (n - 1) variance in the running average, momentum = weight of the current batch.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.reshape(-1, x.shape[-1])).reshape(x.shape)

    def slots(self, prefix: str) -> dict[str, Slot]:
        return {f"{prefix}.gamma": Slot(self.weight), f"{prefix}.beta": Slot(self.bias),
                f"{prefix}.running_mean": Slot(self.running_mean, trainable=False),
                f"{prefix}.running_var": Slot(self.running_var, trainable=False)}


class FeatureLayerNorm(nn.LayerNorm):
    def slots(self, prefix: str) -> dict[str, Slot]:
        return {f"{prefix}.gamma": Slot(self.weight), f"{prefix}.beta": Slot(self.bias)}


class SigmoidRNN(nn.Module):
    """An Elman RNN with a sigmoid activation (nn.RNN only has tanh and relu): a time loop with
    the same parameter names as nn.RNN, returning (output, h_n) like it."""

    def __init__(self, n_in: int, units: int, **factory: object) -> None:
        super().__init__()
        self.weight_ih_l0 = nn.Parameter(torch.empty(units, n_in, **factory))
        self.weight_hh_l0 = nn.Parameter(torch.empty(units, units, **factory))
        self.bias_ih_l0 = nn.Parameter(torch.zeros(units, **factory))
        nn.init.uniform_(self.weight_ih_l0, -0.1, 0.1)  # overwritten by set_weights
        nn.init.uniform_(self.weight_hh_l0, -0.1, 0.1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        projected = F.linear(x, self.weight_ih_l0, self.bias_ih_l0)  # all steps at once
        h = x.new_zeros(x.shape[0], self.weight_hh_l0.shape[0])
        outputs = []
        for t in range(x.shape[1]):
            h = torch.sigmoid(projected[:, t] + h @ self.weight_hh_l0.T)
            outputs.append(h)
        return torch.stack(outputs, dim=1), h.unsqueeze(0)


class RecurrentLayer(nn.Module):
    """rnn / lstm / bilstm on batch-first input through the fused torch kernels.

    torch adds two biases (b_ih + b_hh); the canonical single bias is loaded into b_ih and b_hh
    is a frozen zero (no gradient, not optimized), so any optimizer sees exactly the canonical
    parameters.
    """

    def __init__(self, n_in: int, layer: specs.Recurrent, **factory: object) -> None:
        super().__init__()
        cell = layer.component.name
        self.cell, self.units, self.return_sequences = cell, layer.units, layer.return_sequences
        self.directions = 2 if cell == "bilstm" else 1
        if cell in ("lstm", "bilstm"):
            self.rnn: nn.Module = nn.LSTM(n_in, layer.units, batch_first=True,
                                          bidirectional=cell == "bilstm", **factory)
        elif layer.component["activation"] == "sigmoid":
            self.rnn = SigmoidRNN(n_in, layer.units, **factory)
        else:
            self.rnn = nn.RNN(n_in, layer.units, nonlinearity=layer.component["activation"],
                              batch_first=True, **factory)
        with torch.no_grad():
            for suffix in self._suffixes():
                b_hh = getattr(self.rnn, f"bias_hh_l0{suffix}", None)
                if b_hh is not None:
                    b_hh.zero_()
                    b_hh.requires_grad_(False)

    def _suffixes(self) -> tuple[str, ...]:
        return ("", "_reverse")[: self.directions]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        output, state = self.rnn(x)
        if self.return_sequences:
            return output  # bilstm: [fwd[t], bwd[t]], torch reverses the backward pass back
        h_n = state[0] if isinstance(state, tuple) else state  # [directions, B, H]
        # last state: fwd after step T-1, bwd after its whole (reversed) pass, i.e. bwd[0]
        return h_n[0] if self.directions == 1 else torch.cat([h_n[0], h_n[1]], dim=-1)

    def slots(self, prefix: str) -> dict[str, Slot]:
        out: dict[str, Slot] = {}
        names = [prefix] if self.directions == 1 else [f"{prefix}.forward", f"{prefix}.backward"]
        for name, suffix in zip(names, self._suffixes()):
            out[f"{name}.kernel"] = Slot(getattr(self.rnn, f"weight_ih_l0{suffix}"), True)
            out[f"{name}.recurrent_kernel"] = Slot(getattr(self.rnn, f"weight_hh_l0{suffix}"),
                                                   True)
            out[f"{name}.bias"] = Slot(getattr(self.rnn, f"bias_ih_l0{suffix}"))
        return out


def _output_shape(layer: specs.Layer, shape: tuple[int, ...]) -> tuple[int, ...]:
    if isinstance(layer, specs.Dense):
        return (*shape[:-1], layer.units)
    if isinstance(layer, specs.Embedding):
        return (*shape, layer.output_dim)
    if isinstance(layer, specs.Recurrent):
        width = layer.units * (2 if layer.component.name == "bilstm" else 1)
        return (shape[0], width) if layer.return_sequences else (width,)
    return shape


def build_layer(layer: specs.Layer, n_in: int, **factory: object) -> nn.Module:
    """The module of one spec layer; ``factory`` holds dtype and device."""
    if isinstance(layer, specs.Dense):
        return DenseLayer(n_in, layer.units, layer.activation, **factory)
    if isinstance(layer, specs.Activation):
        return activation(layer.name)
    if isinstance(layer, specs.Dropout):
        return nn.Dropout(layer.rate)
    if isinstance(layer, specs.Embedding):
        return EmbeddingLayer(layer.input_dim, layer.output_dim, **factory)
    if isinstance(layer, specs.Norm):
        kind, p = layer.component.name, layer.component.params
        if kind == "batch":
            return FeatureBatchNorm(n_in, eps=p["eps"], momentum=p["momentum"], **factory)
        if kind == "layer":
            return FeatureLayerNorm(n_in, eps=p["eps"], **factory)
        return nn.Identity()
    if isinstance(layer, specs.Recurrent):
        return RecurrentLayer(n_in, layer, **factory)
    raise specs.SpecError(f"the torch backend cannot build {type(layer).__name__}")


def build_network(spec: ModelSpec, dtype: torch.dtype,
                  device: torch.device) -> tuple[nn.Sequential, dict[str, Slot]]:
    """The network of ``spec`` and its canonical slots, in ``weight_shapes`` order."""
    modules: list[nn.Module] = []
    slots: dict[str, Slot] = {}
    shape = tuple(spec.input_shape)
    for i, layer in enumerate(spec.layers):
        module = build_layer(layer, shape[-1], dtype=dtype, device=device)
        if hasattr(module, "slots"):
            slots.update(module.slots(str(i)))
        modules.append(module)
        shape = _output_shape(layer, shape)
    expected = list(specs.weight_shapes(spec))
    if list(slots) != expected:  # a bug here would silently mislabel weights
        raise AssertionError(f"torch slots {list(slots)} differ from canonical {expected}")
    return nn.Sequential(*modules), slots
