"""TorchModel: a built ModelSpec with canonical weight get/set, prediction and VJP."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from orchestrator.contract.backend import VJP, BackendModel, check_dtype
from orchestrator.canonical.specs import ModelSpec, weight_shapes

from orchestrator_torch.layers import Slot, build_network
from orchestrator_torch.tensors import to_numpy, to_tensor, torch_dtype


class TorchModel(BackendModel):
    """An ``nn.Sequential`` built from a spec; weights cross the boundary by canonical name."""

    def __init__(self, spec: ModelSpec, *, dtype: str = "float32",
                 device: torch.device | None = None) -> None:
        self.spec = spec
        self.dtype = check_dtype(dtype)
        self.torch_dtype = torch_dtype(dtype)
        self.device = device or torch.device("cpu")
        self.module, self.slots = build_network(spec, self.torch_dtype, self.device)
        self._shapes = {name: info.shape for name, info in weight_shapes(spec).items()}
        self.trainable_names = [n for n, s in self.slots.items() if s.trainable]
        # the exact tensors the optimizer updates (frozen b_hh and running stats excluded)
        self.trainable_params = [self.slots[n].tensor for n in self.trainable_names]
        self.input_is_int = spec.input_dtype == "int"

    @property
    def native(self) -> nn.Module:
        return self.module

    # --- weights ----------------------------------------------------------------------------

    def get_weights(self) -> dict[str, np.ndarray]:
        return {name: _canonical(slot, slot.tensor) for name, slot in self.slots.items()}

    def set_weights(self, weights: Mapping[str, np.ndarray]) -> None:
        missing = [n for n in self.slots if n not in weights]
        unknown = [n for n in weights if n not in self.slots]
        if missing or unknown:
            raise ValueError(f"set_weights for {self.spec.name!r}: missing {missing}, "
                             f"unknown {unknown}; expected exactly {list(self.slots)}")
        arrays = {}
        for name in self.slots:  # check everything before changing anything
            array = np.asarray(weights[name])
            if array.shape != tuple(self._shapes[name]):
                raise ValueError(f"set_weights for {self.spec.name!r}: {name} has shape "
                                 f"{array.shape}, expected {tuple(self._shapes[name])}")
            arrays[name] = array
        with torch.no_grad():
            for name, slot in self.slots.items():
                value = to_tensor(arrays[name], self.torch_dtype, self.device)
                slot.tensor.copy_(value.T if slot.transpose else value)

    # --- forward passes ---------------------------------------------------------------------

    def input_tensor(self, x: np.ndarray) -> torch.Tensor:
        dtype = torch.int64 if self.input_is_int else self.torch_dtype
        return to_tensor(x, dtype, self.device)

    def predict(self, x: np.ndarray, *, training: bool = False) -> np.ndarray:
        self.module.train(training)
        inputs = self.input_tensor(x)
        # training mode still needs real (non-inference) tensors for the running-stat update
        context = torch.no_grad() if training else torch.inference_mode()
        with context:
            return to_numpy(self.module(inputs))

    def vjp(self, x: np.ndarray, upstream: np.ndarray, *, training: bool = False) -> VJP:
        self.module.train(training)
        inputs = self.input_tensor(x)
        if not self.input_is_int:
            inputs = inputs.detach().clone().requires_grad_(True)
        # cuDNN has no RNN backward in eval mode: torch's own kernels compute it there
        with torch.enable_grad(), _cudnn_off(self.device.type == "cuda" and not training):
            output = self.module(inputs)
            up = to_tensor(upstream, output.dtype, self.device)
            if up.shape != output.shape:
                raise ValueError(f"upstream has shape {tuple(up.shape)}, output "
                                 f"{tuple(output.shape)}")
            wrt = ([] if self.input_is_int else [inputs]) + self.trainable_params
            # autograd.grad leaves every .grad untouched, so a training session is unaffected
            grads = torch.autograd.grad(output, wrt, grad_outputs=up, allow_unused=True)
        grad_input = None if self.input_is_int else to_numpy(grads[0])
        weight_grads = grads[len(wrt) - len(self.trainable_params):]
        grad_weights = {
            name: _canonical(self.slots[name],
                             torch.zeros_like(self.slots[name].tensor) if g is None else g)
            for name, g in zip(self.trainable_names, weight_grads)}
        return VJP(to_numpy(output), grad_input, grad_weights)


@contextmanager
def _cudnn_off(off: bool) -> Iterator[None]:
    """Disable cuDNN inside the block (only that flag: ``cudnn.flags()`` would also reset the
    TF32 settings ``use_ieee_float32`` made)."""
    if not off:
        yield
        return
    before = torch.backends.cudnn.enabled
    torch.backends.cudnn.enabled = False
    try:
        yield
    finally:
        torch.backends.cudnn.enabled = before


def _canonical(slot: Slot, tensor: torch.Tensor) -> np.ndarray:
    """``tensor`` (a slot's value or its gradient) as a NumPy array in canonical layout."""
    return to_numpy(tensor.T if slot.transpose else tensor)
