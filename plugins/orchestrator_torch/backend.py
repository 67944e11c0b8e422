"""TorchBackend: the PyTorch implementation of ``orchestrator.contract.backend.Backend``."""

from __future__ import annotations

import os
import random
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from orchestrator.contract.backend import (Backend, BackendModel, Resources, TrainingSession,
                                           check_dtype)
from orchestrator.canonical.catalogue import ComponentSpec
from orchestrator.canonical.specs import ModelSpec

from orchestrator_torch.losses import build_loss
from orchestrator_torch.model import TorchModel
from orchestrator_torch.optimizers import ForeachOptimizer
from orchestrator_torch.session import TorchTrainingSession
from orchestrator_torch.tensors import resolve_device, to_numpy, to_tensor, torch_dtype


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

    def build_model(self, spec: ModelSpec, weights: Mapping[str, np.ndarray], *,
                    dtype: str = "float32") -> BackendModel:
        model = TorchModel(spec, dtype=dtype, device=self.torch_device)
        model.set_weights(weights)
        return model

    def loss_value_and_grad(self, loss: ComponentSpec, y_true: np.ndarray, y_pred: np.ndarray,
                            *, dtype: str = "float64") -> tuple[float, np.ndarray]:
        fn = build_loss(loss)
        tdtype = torch_dtype(dtype)
        pred = to_tensor(y_pred, tdtype, self.torch_device).detach().clone().requires_grad_(True)
        if fn.target == "ignored":
            target = None
        else:
            target = to_tensor(y_true, torch.int64 if fn.target == "int" else tdtype,
                               self.torch_device)
        with torch.enable_grad():
            value = fn(target, pred)
            (grad,) = torch.autograd.grad(value, pred)
        return float(value.item()), to_numpy(grad)

    def optimizer_trajectory(self, optimizer: ComponentSpec, params: Mapping[str, np.ndarray],
                             grads: Sequence[Mapping[str, np.ndarray]], *,
                             dtype: str = "float64") -> list[dict[str, np.ndarray]]:
        tdtype = torch_dtype(check_dtype(dtype))
        names = list(params)
        tensors = [to_tensor(params[n], tdtype, self.torch_device).clone() for n in names]
        opt = ForeachOptimizer(optimizer, tensors)  # the training step's update code
        trajectory = []
        for k, step_grads in enumerate(grads):
            if set(step_grads) != set(names):
                raise ValueError(f"grads[{k}] has names {sorted(step_grads)}, "
                                 f"params have {sorted(names)}")
            opt.step([to_tensor(step_grads[n], tdtype, self.torch_device) for n in names])
            trajectory.append({n: to_numpy(t) for n, t in zip(names, tensors)})
        return trajectory

    def training_session(self, model: BackendModel, loss: ComponentSpec,
                         optimizer: ComponentSpec, *, n_train: int) -> TrainingSession:
        if not isinstance(model, TorchModel):
            raise TypeError(f"the torch backend trains TorchModel, got {type(model).__name__}")
        return TorchTrainingSession(model, loss, optimizer, n_train=n_train)
