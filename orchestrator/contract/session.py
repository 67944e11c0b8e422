"""``TrainingSession``: a model bound to a loss and an optimizer, with ONE compiled step per batch.

The epoch loop lives in the core (``orchestrator.contract.loop``): it calls ``train_step`` for
every batch, then ``end_epoch``, and never swallows an exception. The session's concrete part
owns the bookkeeping every backend used to repeat:

- the ``n_train`` rule (a whole number >= 1: full-batch gradient descent weights each batch's
  gradient by ``batch / n_train``, so that the accumulated gradient is the full-set mean);
- the input check and the target check (``orchestrator.canonical.targets``): the target's dtype
  and shape follow from the loss's target kind, declared once on its catalogue entry, and the
  model's output shape; a ``[B]`` target for ``[B, 1]`` predictions, one-hot rows for a sparse
  loss or class ids for a categorical one raise ``ValueError`` in ``train_step`` and
  ``evaluate`` alike;
- the sample count and the epoch mean of the loss (the loss before each update, weighted by
  batch size), the pending full-batch update, the batching of ``evaluate``, the learning-rate
  check.

A backend subclasses it with the framework primitives:

- ``setup()``: compile the step and allocate the device-side loss sum (and, for a full-batch
  optimizer, the gradient accumulators);
- ``step(x, y)``: ONE compiled/fused call per batch: forward in training mode, loss, gradient,
  then either ``self.optimizer`` updates (mini-batch) or the gradient, weighted by
  ``batch / self.n_train``, is added to the accumulators (``self.full_batch``); the loss times
  the batch size is added to the device-side sum. No host synchronisation: the loss stays on
  the device until ``end_epoch``;
- ``apply_accumulated()``: one optimizer update with the accumulated gradient, then zero it;
- ``take_loss_sum()``: read the device-side sum (one host sync per epoch) and reset it;
- ``evaluation_loss(x, y)``: the mean loss of one batch in evaluation mode, as a float.

``x`` arrives checked (``specs.check_input``); ``y`` arrives as NumPy in the dtype the loss
reads (the model's float dtype, or int64 class ids and labels), or None when the loss reads no
target.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

import numpy as np

from orchestrator.canonical import specs
from orchestrator.canonical.catalogue import ComponentSpec
from orchestrator.canonical.targets import check_target, is_integer_target
from orchestrator.contract.model import BackendModel

if TYPE_CHECKING:
    from orchestrator.contract.backend import Backend


def check_n_train(n_train: int) -> int:
    """``n_train`` (training samples per epoch) if it is a whole number >= 1."""
    if isinstance(n_train, bool) or not isinstance(n_train, (int, np.integer)) or n_train < 1:
        raise ValueError(f"n_train must be a whole number >= 1, got {n_train!r}")
    return int(n_train)


class TrainingSession(ABC):
    """A model bound to a canonical loss and optimizer (see the module docstring).

    Created by ``Backend.training_session`` as ``session_class(backend, model, loss, optimizer,
    n_train=...)``. Attributes the primitives use: ``model``, ``loss_fn`` (the backend's loss
    function for ``loss``), ``optimizer`` (an ``Optimizer`` over ``model.trainable_variables``),
    ``full_batch`` and ``n_train``.
    """

    def __init__(self, backend: Backend, model: BackendModel, loss: ComponentSpec,
                 optimizer: ComponentSpec, *, n_train: int) -> None:
        self.n_train = check_n_train(n_train)
        self.backend = backend
        self.model = model
        self.loss = loss
        self.loss_fn = backend.loss_function(loss)
        self.optimizer = backend.optimizer_class(backend, optimizer, model.trainable_variables,
                                                 model.dtype)
        self.full_batch = self.optimizer.full_batch
        self._integer_target = is_integer_target(loss.target)
        self._samples = 0
        self._pending = False  # full batch: gradients accumulated but not applied yet
        self.setup()

    def targets(self, y: Any, batch: int) -> np.ndarray | None:
        """``y`` checked for ``batch`` samples and converted to the dtype the loss reads."""
        y = check_target(self.loss, y, (batch, *self.model.spec.output_shape))
        if y is None or self._integer_target:
            return y
        return np.asarray(y, dtype=self.model.dtype)  # no copy when it already is

    # --- the contract the core calls --------------------------------------------------------

    def train_step(self, x: np.ndarray, y: np.ndarray | None) -> None:
        """One mini-batch: forward, loss, backward, optimizer update, in one compiled step. For
        a full-batch optimizer (``gd``) the gradient is accumulated instead (weighted by batch
        size) and applied in ``end_epoch``."""
        x = specs.check_input(self.model.spec, x)
        self.step(x, self.targets(y, len(x)))
        self._samples += len(x)
        self._pending = self.full_batch

    def end_epoch(self) -> dict[str, float]:
        """Apply a pending full-batch update and return ``{"loss": mean training loss}`` over
        the epoch's samples (the loss before each update); NaN if no batch was trained."""
        if self._pending:
            self.apply_accumulated()
            self._pending = False
        total = float(self.take_loss_sum())
        samples, self._samples = self._samples, 0
        return {"loss": total / samples if samples else float("nan")}

    def evaluate(self, x: np.ndarray, y: np.ndarray | None,
                 batch_size: int = 1024) -> dict[str, float]:
        """``{"loss": ...}`` in evaluation mode (no dropout, running statistics), the mean over
        every sample of ``x``, computed ``batch_size`` samples at a time."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or batch_size < 1:
            raise ValueError(f"batch_size must be a whole number >= 1, got {batch_size!r}")
        x = specs.check_input(self.model.spec, x)
        n = len(x)
        targets = self.targets(y, n)
        if n == 0:
            return {"loss": float("nan")}
        total = 0.0
        for start in range(0, n, batch_size):
            xb = x[start:start + batch_size]
            yb = None if targets is None else targets[start:start + batch_size]
            total += float(self.evaluation_loss(xb, yb)) * len(xb)
        return {"loss": total / n}

    def set_learning_rate(self, lr: float) -> None:
        """Change the learning rate from the next step on, without recompiling (schedules)."""
        self.optimizer.set_learning_rate(lr)

    # --- framework primitives ---------------------------------------------------------------

    @abstractmethod
    def setup(self) -> None:
        """Compile the step; allocate the device-side loss sum (and gradient accumulators when
        ``self.full_batch``)."""

    @abstractmethod
    def step(self, x: np.ndarray, y: np.ndarray | None) -> None:
        """One compiled training step on a checked batch (see the module docstring)."""

    @abstractmethod
    def apply_accumulated(self) -> None:
        """Full batch: one optimizer update with the accumulated gradient, then zero it."""

    @abstractmethod
    def take_loss_sum(self) -> float:
        """The sum of ``loss * batch size`` since the last call, read once; reset it to 0."""

    @abstractmethod
    def evaluation_loss(self, x: np.ndarray, y: np.ndarray | None) -> float:
        """The mean loss of one checked batch in evaluation mode."""
