"""TorchModel: the framework primitives of a built ModelSpec (network, variables, forward, VJP)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import nn

from orchestrator.contract.model import BackendModel

from orchestrator_torch.layers import build_network
from orchestrator_torch.tensors import to_numpy, to_tensor, torch_dtype


class TorchModel(BackendModel):
    """An ``nn.Sequential`` built from a spec; ``variables`` are its torch tensors by canonical
    name (frozen b_hh excluded), ``transposed`` the names whose canonical layout is ``tensor.T``."""

    def build(self) -> dict[str, Any]:
        self.torch_dtype = torch_dtype(self.dtype)
        self.device: torch.device = self.backend.torch_device
        self.module, slots = build_network(self.spec, self.backend.norms, self.backend.recurrent,
                                           dtype=self.torch_dtype, device=self.device)
        self.transposed = {name for name, slot in slots.items() if slot.transpose}
        return {name: slot.tensor for name, slot in slots.items()}

    @property
    def native(self) -> nn.Module:
        return self.module

    def input_tensor(self, x: np.ndarray) -> torch.Tensor:
        return to_tensor(x, torch.int64 if self.int_input else self.torch_dtype, self.device)

    def _canonical(self, name: str, tensor: torch.Tensor) -> np.ndarray:
        return to_numpy(tensor.T if name in self.transposed else tensor)

    def read_variable(self, name: str) -> np.ndarray:
        return self._canonical(name, self.variables[name])

    @torch.no_grad()
    def write_variable(self, name: str, value: np.ndarray) -> None:
        tensor = to_tensor(value, self.torch_dtype, self.device)
        self.variables[name].copy_(tensor.T if name in self.transposed else tensor)

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        self.module.train(training)
        inputs = self.input_tensor(x)
        # training mode still needs real (non-inference) tensors for the running-stat update
        with torch.no_grad() if training else torch.inference_mode():
            return to_numpy(self.module(inputs))

    def backprop(self, x: np.ndarray, upstream: np.ndarray, training: bool
                 ) -> tuple[np.ndarray, np.ndarray | None, list[np.ndarray]]:
        self.module.train(training)
        inputs = self.input_tensor(x)
        if not self.int_input:
            inputs = inputs.detach().clone().requires_grad_(True)
        params = self.trainable_variables
        # cuDNN has no RNN backward in eval mode: torch's own kernels compute it there
        with torch.enable_grad(), _cudnn_off(self.device.type == "cuda" and not training):
            output = self.module(inputs)
            wrt = ([] if self.int_input else [inputs]) + params
            # autograd.grad leaves every .grad untouched, so a training session is unaffected
            grads = torch.autograd.grad(output, wrt, grad_outputs=to_tensor(
                upstream, output.dtype, self.device), allow_unused=True)
        grad_input = None if self.int_input else to_numpy(grads[0])
        weight_grads = [self._canonical(name, torch.zeros_like(p) if g is None else g)
                        for name, p, g in zip(self.trainable_names, params,
                                              grads[len(wrt) - len(params):])]
        return to_numpy(output), grad_input, weight_grads


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
