"""TorchBackend: the PyTorch primitives of ``orchestrator.contract.backend.Backend``."""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from orchestrator.contract.backend import Backend, Resources

from orchestrator_torch.layers import NORMS, RECURRENT
from orchestrator_torch.losses import LOSSES
from orchestrator_torch.model import TorchModel
from orchestrator_torch.optimizers import UPDATES, TorchOptimizer
from orchestrator_torch.session import TorchTrainingSession
from orchestrator_torch.tensors import as_tensor, resolve_device, to_numpy

TF32_ENV = "ORCHESTRATOR_TORCH_TF32"


def use_ieee_float32() -> None:
    """Make float32 mean IEEE float32 on CUDA: cuDNN runs RNNs and convolutions in TF32 by
    default on Ampere and later GPUs (10 mantissa bits, ~1e-3 relative error), which no other
    backend does, so a cross-backend comparison would compare rounding modes.
    ORCHESTRATOR_TORCH_TF32=1 keeps torch's defaults (faster, not comparable)."""
    if os.environ.get(TF32_ENV) == "1":
        return
    cudnn = torch.backends.cudnn
    if hasattr(cudnn, "rnn") and hasattr(cudnn.rnn, "fp32_precision"):  # torch >= 2.9
        cudnn.rnn.fp32_precision = "ieee"
        cudnn.conv.fp32_precision = "ieee"
        torch.backends.cuda.matmul.fp32_precision = "ieee"
    else:
        cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False


class TorchBackend(Backend):
    """PyTorch backend: nn modules with fused RNN kernels, canonical losses and a foreach
    optimizer. ``resources.device`` is a torch device string; ``None`` means CUDA when
    available."""

    name = "torch"
    mlflow_flavor = "pytorch"  # BackendModel.native is a torch.nn.Module
    # a pickled module: MLflow 3's default "pt2" export traces the graph and needs an example
    # for every call pattern; pickling loads back wherever this package is installed
    mlflow_options = {"serialization_format": "pickle"}
    model_class = TorchModel
    session_class = TorchTrainingSession
    optimizer_class = TorchOptimizer
    losses, optimizers, norms, recurrent = LOSSES, UPDATES, NORMS, RECURRENT

    def __init__(self, resources: Resources | None = None) -> None:
        super().__init__(resources)
        self.torch_device = resolve_device(self.device)
        if self.torch_device.type == "cpu":
            # One intra-op thread by default: runs are one process each (and tuning workers run
            # side by side), and on a busy machine torch's spinning thread pool made small
            # steps 10-16x slower with 2 threads than with 1. Resources.threads (the core's
            # share for this run, or ORCHESTRATOR_THREADS) gives a large model more.
            torch.set_num_threads(self.resources.threads or 1)
        elif self.torch_device.type == "cuda":
            use_ieee_float32()

    def framework_versions(self) -> dict[str, str]:
        return {"torch": torch.__version__}

    def seed(self, seed: int) -> None:
        torch.manual_seed(seed)  # seeds the CPU and every CUDA generator (dropout masks)
        random.seed(seed)

    def tensor(self, array: np.ndarray) -> torch.Tensor:
        return as_tensor(array, self.torch_device)

    def variables(self, arrays: Sequence[np.ndarray]) -> list[torch.Tensor]:
        return [self.tensor(a).clone() for a in arrays]

    def read_variables(self, variables: Sequence[torch.Tensor]) -> list[np.ndarray]:
        return [to_numpy(v) for v in variables]

    def loss_gradient(self, fn: Callable[..., Any], y_true: np.ndarray | None,
                      y_pred: np.ndarray) -> tuple[float, np.ndarray]:
        pred = self.tensor(y_pred).detach().clone().requires_grad_(True)
        target = None if y_true is None else self.tensor(y_true)
        with torch.enable_grad():
            value = fn(target, pred)
            (grad,) = torch.autograd.grad(value, pred)
        return float(value.item()), to_numpy(grad)
