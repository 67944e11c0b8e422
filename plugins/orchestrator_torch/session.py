"""TorchTrainingSession: the eager training step (forward, loss, backward, foreach update)."""

from __future__ import annotations

import numpy as np
import torch

from orchestrator.contract.backend import TrainingSession
from orchestrator.canonical.catalogue import ComponentSpec

from orchestrator_torch.losses import TorchLoss, build_loss
from orchestrator_torch.model import TorchModel
from orchestrator_torch.optimizers import ForeachOptimizer
from orchestrator_torch.tensors import to_tensor


class TorchTrainingSession(TrainingSession):
    """A model bound to a canonical loss and optimizer.

    Mini-batch optimizers update after every batch. The full-batch optimizer (``gd``) instead
    lets the gradients accumulate in ``.grad``, each batch's loss scaled by
    batch_size / n_train, so that after the epoch ``.grad`` holds the full-set mean gradient;
    ``end_epoch`` applies it. The epoch loss is summed on the device and read once per epoch.
    """

    def __init__(self, model: TorchModel, loss: ComponentSpec, optimizer: ComponentSpec, *,
                 n_train: int) -> None:
        if n_train < 1:
            raise ValueError(f"n_train must be >= 1, got {n_train}")
        self.model = model
        self.n_train = int(n_train)
        self.loss: TorchLoss = build_loss(loss)
        self.params = model.trainable_params
        self.optimizer = ForeachOptimizer(optimizer, self.params)
        self.full_batch = self.optimizer.full_batch
        self._module = model.module
        self._loss_sum = torch.zeros((), dtype=torch.float64, device=model.device)
        self._samples = 0
        self._pending = False  # full batch: gradients accumulated but not applied yet
        self._zero_grad()  # no stale .grad from earlier use of the module

    # --- data ------------------------------------------------------------------------------

    def _target(self, y: np.ndarray | None) -> torch.Tensor | None:
        if self.loss.target == "ignored":
            return None
        dtype = torch.int64 if self.loss.target == "int" else self.model.torch_dtype
        return to_tensor(y, dtype, self.model.device)

    def _zero_grad(self) -> None:
        for p in self.params:  # set_to_none semantics, as Optimizer.zero_grad(set_to_none=True)
            p.grad = None

    def _grads(self) -> list[torch.Tensor]:
        # a parameter the loss does not reach gets a zero gradient (canonical: every parameter
        # is updated), not torch.optim's "skip it"
        return [torch.zeros_like(p) if p.grad is None else p.grad for p in self.params]

    # --- the contract ----------------------------------------------------------------------

    def train_step(self, x: np.ndarray, y: np.ndarray) -> None:
        inputs = self.model.input_tensor(x)
        target = self._target(y)
        batch = inputs.shape[0]
        self._module.train(True)
        if not self.full_batch:
            self._zero_grad()
        loss = self.loss(target, self._module(inputs))
        if self.full_batch:
            (loss * (batch / self.n_train)).backward()  # .grad sums to the full-set mean
            self._pending = True
        else:
            loss.backward()
            self.optimizer.step(self._grads())
        self._loss_sum += loss.detach().to(torch.float64) * batch  # no host sync here
        self._samples += batch

    def end_epoch(self) -> dict[str, float]:
        if self.full_batch and self._pending:
            self.optimizer.step(self._grads())
            self._zero_grad()
            self._pending = False
        samples = self._samples
        mean = float(self._loss_sum.item()) / samples if samples else float("nan")
        self._loss_sum.zero_()
        self._samples = 0
        return {"loss": mean}

    def evaluate(self, x: np.ndarray, y: np.ndarray, batch_size: int = 1024) -> dict[str, float]:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        n = len(x)
        if n == 0:
            return {"loss": float("nan")}
        self._module.train(False)
        total = torch.zeros((), dtype=torch.float64, device=self.model.device)
        with torch.inference_mode():
            for start in range(0, n, batch_size):
                xb = x[start:start + batch_size]
                yb = None if y is None else y[start:start + batch_size]
                loss = self.loss(self._target(yb), self._module(self.model.input_tensor(xb)))
                total += loss.to(torch.float64) * len(xb)
        return {"loss": float(total.item()) / n}

    def set_learning_rate(self, lr: float) -> None:
        self.optimizer.set_learning_rate(lr)
