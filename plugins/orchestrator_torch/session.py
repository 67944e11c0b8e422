"""TorchTrainingSession: the eager fused training step (forward, loss, backward, foreach update)."""

from __future__ import annotations

import numpy as np
import torch

from orchestrator.contract.session import TrainingSession

from orchestrator_torch.tensors import to_tensor


class TorchTrainingSession(TrainingSession):
    """Mini-batch optimizers update after every batch. The full-batch optimizer (``gd``) lets the
    gradients accumulate in ``.grad``, each batch's loss scaled by batch / n_train, so that after
    the epoch ``.grad`` holds the full-set mean gradient. The epoch loss is summed on the device.
    """

    def setup(self) -> None:
        self.params = self.model.trainable_variables
        self._module = self.model.module
        self._loss_sum = torch.zeros((), dtype=torch.float64, device=self.model.device)
        self._zero_grad()  # no stale .grad from earlier use of the module

    def _target(self, y: np.ndarray | None) -> torch.Tensor | None:
        if y is None:
            return None
        dtype = torch.int64 if y.dtype == np.int64 else self.model.torch_dtype
        return to_tensor(y, dtype, self.model.device)

    def _zero_grad(self) -> None:
        for p in self.params:  # set_to_none semantics, as Optimizer.zero_grad(set_to_none=True)
            p.grad = None

    def _grads(self) -> list[torch.Tensor]:
        # a parameter the loss does not reach gets a zero gradient (canonical: every parameter
        # is updated), not torch.optim's "skip it"
        return [torch.zeros_like(p) if p.grad is None else p.grad for p in self.params]

    def step(self, x: np.ndarray, y: np.ndarray | None) -> None:
        inputs, target = self.model.input_tensor(x), self._target(y)
        self._module.train(True)
        if not self.full_batch:
            self._zero_grad()
        loss = self.loss_fn(target, self._module(inputs))
        if self.full_batch:
            (loss * (len(x) / self.n_train)).backward()  # .grad sums to the full-set mean
        else:
            loss.backward()
            self.optimizer.step(self._grads())
        self._loss_sum += loss.detach().to(torch.float64) * len(x)  # no host sync here

    def apply_accumulated(self) -> None:
        self.optimizer.step(self._grads())
        self._zero_grad()

    def take_loss_sum(self) -> float:
        total = float(self._loss_sum.item())
        self._loss_sum.zero_()
        return total

    def evaluation_loss(self, x: np.ndarray, y: np.ndarray | None) -> float:
        self._module.train(False)
        with torch.inference_mode():
            return float(self.loss_fn(self._target(y), self._module(self.model.input_tensor(x))))
