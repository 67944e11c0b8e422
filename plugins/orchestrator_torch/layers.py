"""torch.nn modules for the spec layers, each mapping its tensors to canonical weight names.

Every layer module with weights has ``slots(prefix)``: canonical name -> ``Slot`` (the torch
tensor, and whether the canonical layout is its transpose). The model reads, writes and reports
gradients only through these slots, so torch's internal layouts never leak out. ``NORMS`` and
``RECURRENT`` are the backend's tables: canonical name -> module factory.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
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
                f"{prefix}.running_mean": Slot(self.running_mean),
                f"{prefix}.running_var": Slot(self.running_var)}


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
    """An rnn / lstm / bilstm torch module (fused kernels) on batch-first input.

    torch adds two biases (b_ih + b_hh); the canonical single bias is loaded into b_ih and b_hh
    is a frozen zero (no gradient, not optimized), so any optimizer sees exactly the canonical
    parameters.
    """

    def __init__(self, rnn: nn.Module, directions: int, return_sequences: bool) -> None:
        super().__init__()
        self.rnn, self.directions, self.return_sequences = rnn, directions, return_sequences
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


def _rnn(n_in: int, layer: specs.Recurrent, **factory: object) -> RecurrentLayer:
    act = layer.component["activation"]
    rnn = (SigmoidRNN(n_in, layer.units, **factory) if act == "sigmoid" else
           nn.RNN(n_in, layer.units, nonlinearity=act, batch_first=True, **factory))
    return RecurrentLayer(rnn, 1, layer.return_sequences)


def _lstm(n_in: int, layer: specs.Recurrent, bidirectional: bool = False,
          **factory: object) -> RecurrentLayer:
    rnn = nn.LSTM(n_in, layer.units, batch_first=True, bidirectional=bidirectional, **factory)
    return RecurrentLayer(rnn, 2 if bidirectional else 1, layer.return_sequences)


NORMS: dict[str, Callable[..., nn.Module]] = {
    "none": lambda n_in, p, **factory: nn.Identity(),
    "batch": lambda n_in, p, **factory: FeatureBatchNorm(n_in, eps=p["eps"],
                                                         momentum=p["momentum"], **factory),
    "layer": lambda n_in, p, **factory: FeatureLayerNorm(n_in, eps=p["eps"], **factory),
}
RECURRENT: dict[str, Callable[..., nn.Module]] = {
    "rnn": _rnn, "lstm": _lstm,
    "bilstm": lambda n_in, layer, **factory: _lstm(n_in, layer, True, **factory),
}


def build_layer(layer: specs.Layer, n_in: int, norms: Mapping[str, Callable[..., nn.Module]],
                recurrent: Mapping[str, Callable[..., nn.Module]], **factory: object) -> nn.Module:
    """The module of one spec layer, norms and recurrent layers from the backend's tables;
    ``factory`` holds dtype and device."""
    if isinstance(layer, specs.Dense):
        return DenseLayer(n_in, layer.units, layer.activation, **factory)
    if isinstance(layer, specs.Activation):
        return activation(layer.name)
    if isinstance(layer, specs.Dropout):
        return nn.Dropout(layer.rate)
    if isinstance(layer, specs.Embedding):
        return EmbeddingLayer(layer.input_dim, layer.output_dim, **factory)
    if isinstance(layer, specs.Norm):
        return norms[layer.component.name](n_in, layer.component.params, **factory)
    if isinstance(layer, specs.Recurrent):
        return recurrent[layer.component.name](n_in, layer, **factory)
    raise specs.SpecError(f"the torch backend cannot build {type(layer).__name__}")


def build_network(spec: ModelSpec, norms: Mapping[str, Callable[..., nn.Module]],
                  recurrent: Mapping[str, Callable[..., nn.Module]],
                  **factory: object) -> tuple[nn.Sequential, dict[str, Slot]]:
    """The network of ``spec`` and its canonical slots (in the order the modules give them)."""
    modules: list[nn.Module] = []
    slots: dict[str, Slot] = {}
    shape = tuple(spec.input_shape)
    for i, layer in enumerate(spec.layers):
        module = build_layer(layer, shape[-1], norms, recurrent, **factory)
        if hasattr(module, "slots"):
            slots.update(module.slots(str(i)))
        modules.append(module)
        shape = specs.layer_output_shape(layer, shape)
    return nn.Sequential(*modules), slots
