"""The backend contract: what a framework plugin implements, in NumPy terms at its edges.

A backend is a subclass of ``Backend`` registered through the ``orchestrator_add_backends`` hook.
Everything crossing this boundary is plain data: component specs from ``orchestrator.canonical.catalogue``
(every hyperparameter already resolved, so a backend never applies a default of its own), model
specs from ``orchestrator.canonical.specs`` and NumPy arrays. Weights travel under their canonical names and
layouts (see ``orchestrator.canonical.specs``), whatever the framework stores internally.

Three objects make a backend:

- ``Backend``: builds models, evaluates losses with their gradient and replays optimizer steps.
  The last two exist so that the conformance kit (``orchestrator.testing``) can check every
  component against the NumPy reference without knowing the framework.
- ``BackendModel``: one network, with canonical weight get/set, prediction and a vector-Jacobian
  product (gradients of ``sum(output * upstream)`` with respect to input and weights).
- ``TrainingSession``: the compiled training step of a model with a loss and an optimizer. The
  epoch loop lives in the core (``orchestrator.contract.loop``): it feeds the same NumPy batches to
  every backend, collects per-epoch metrics and lets exceptions (pruning, NaN) through.

Speed is part of the contract: ``train_step`` must run the framework's compiled/fused path
(``tf.function``, fused RNN kernels, vectorized optimizer updates), not a per-parameter Python loop.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from orchestrator.canonical.catalogue import ComponentSpec
from orchestrator.canonical.specs import ModelSpec

DTYPES = ("float32", "float64")
THREADS_ENV = "ORCHESTRATOR_THREADS"


@dataclass(frozen=True)
class Resources:
    """What the core hands a backend when it constructs it: its share of the machine.

    ``threads``: compute (intra-op) threads for this run; None lets the backend choose its own
    default. The core sets it for runs side by side (``--jobs``: the cores divided by the
    runs) and from ``ORCHESTRATOR_THREADS``; a backend applies it when it is constructed.
    ``device``: the framework's device string ("cuda:0", "/GPU:0"); None lets the backend
    choose (an accelerator when there is one).
    """

    threads: int | None = None
    device: str | None = None

    def __post_init__(self) -> None:
        if self.threads is not None and (isinstance(self.threads, bool)
                                         or not isinstance(self.threads, int)
                                         or self.threads < 1):
            raise ValueError(f"threads must be a whole number >= 1, got {self.threads!r}")

    @classmethod
    def from_environment(cls, threads: int | None = None) -> Resources:
        """``threads`` if given, else ``ORCHESTRATOR_THREADS`` (a whole number >= 1) if set."""
        import os

        if threads is None:
            text = os.environ.get(THREADS_ENV, "").strip()
            if text:
                if not text.isdigit() or int(text) < 1:
                    raise ValueError(f"{THREADS_ENV} must be a whole number >= 1, got {text!r}")
                threads = int(text)
        return cls(threads=threads)


@dataclass(frozen=True)
class VJP:
    """Output of a forward pass and the gradients of ``sum(output * upstream)``."""

    output: np.ndarray
    grad_input: np.ndarray | None  # None for integer (token) inputs
    grad_weights: dict[str, np.ndarray]  # trainable weights only, canonical names and layout


class BackendModel(ABC):
    """A network built by a backend from a ``ModelSpec``."""

    spec: ModelSpec
    dtype: str

    @abstractmethod
    def get_weights(self) -> dict[str, np.ndarray]:
        """Every canonical weight and state array (running statistics included), as NumPy."""

    @abstractmethod
    def set_weights(self, weights: Mapping[str, np.ndarray]) -> None:
        """Load canonical weights; every name of ``specs.weight_shapes(spec)`` must be given."""

    @abstractmethod
    def predict(self, x: np.ndarray, *, training: bool = False) -> np.ndarray:
        """Forward pass. ``training=True`` uses batch statistics (and updates the running ones)
        and applies dropout."""

    @abstractmethod
    def vjp(self, x: np.ndarray, upstream: np.ndarray, *, training: bool = False) -> VJP:
        """Forward pass plus gradients of ``sum(output * upstream)`` (backpropagation through
        time for recurrent layers). In training mode running statistics are updated as in
        ``predict``."""

    @property
    @abstractmethod
    def native(self) -> Any:
        """The framework's own model object (``torch.nn.Module``, ``keras.Model``...)."""


class TrainingSession(ABC):
    """A model bound to a loss and an optimizer, with a compiled training step.

    Created by ``Backend.training_session``. The core calls, per epoch: ``train_step`` for every
    batch, then ``end_epoch``. Exceptions are never swallowed.
    """

    model: BackendModel

    @abstractmethod
    def train_step(self, x: np.ndarray, y: np.ndarray) -> None:
        """One mini-batch: forward, loss, backward, optimizer update. For a full-batch optimizer
        (``gd``) the gradient is accumulated instead (weighted by batch size) and applied in
        ``end_epoch``. The loss stays on the device until ``end_epoch``."""

    @abstractmethod
    def end_epoch(self) -> dict[str, float]:
        """Apply a pending full-batch update and return ``{"loss": mean training loss}`` over
        the epoch's samples (the loss before each update)."""

    @abstractmethod
    def evaluate(self, x: np.ndarray, y: np.ndarray, batch_size: int = 1024) -> dict[str, float]:
        """``{"loss": ...}`` in evaluation mode (no dropout, running statistics)."""

    @abstractmethod
    def set_learning_rate(self, lr: float) -> None:
        """Change the learning rate without recompiling (for schedules)."""


class Backend(ABC):
    """A framework plugin. Subclasses set ``name`` and implement the abstract methods.

    Instances are cheap; constructing one may import the framework (the registry only does so
    when a backend is actually used).
    """

    name: ClassVar[str]
    # The MLflow model flavour that saves ``BackendModel.native`` ("pytorch", "tensorflow"...);
    # None: models of this backend are not logged. Metadata only: backends never import MLflow.
    mlflow_flavor: ClassVar[str | None] = None

    def __init__(self, resources: Resources | None = None) -> None:
        self.resources = resources or Resources()
        self.device = self.resources.device

    def reset_state(self) -> None:
        """Clear the framework's process-wide state that an earlier run may have left: a worker
        process runs run after run, and each must start as in a fresh process (Keras' global
        session and name counters, for instance). Called before ``seed`` at the start of every
        run; the default does nothing (seeding and a fresh model are enough)."""

    @abstractmethod
    def framework_versions(self) -> dict[str, str]:
        """Versions of the framework libraries this backend runs on, e.g. ``{"torch": "2.13.0"}``."""

    @abstractmethod
    def seed(self, seed: int) -> None:
        """Seed the framework's own random generators (dropout)."""

    @abstractmethod
    def build_model(self, spec: ModelSpec, weights: Mapping[str, np.ndarray], *,
                    dtype: str = "float32") -> BackendModel:
        """Build ``spec`` and load ``weights`` (canonical names, see ``orchestrator.canonical.specs``)."""

    @abstractmethod
    def loss_value_and_grad(self, loss: ComponentSpec, y_true: np.ndarray, y_pred: np.ndarray,
                            *, dtype: str = "float64") -> tuple[float, np.ndarray]:
        """The canonical loss and its gradient with respect to ``y_pred``."""

    @abstractmethod
    def optimizer_trajectory(self, optimizer: ComponentSpec, params: Mapping[str, np.ndarray],
                             grads: Sequence[Mapping[str, np.ndarray]], *,
                             dtype: str = "float64") -> list[dict[str, np.ndarray]]:
        """Apply ``grads[k]`` as step k + 1 of ``optimizer``, starting from ``params``, through
        the same update code the training step uses; return the parameters after every step."""

    @abstractmethod
    def training_session(self, model: BackendModel, loss: ComponentSpec,
                         optimizer: ComponentSpec, *, n_train: int) -> TrainingSession:
        """Bind ``model`` to a loss and an optimizer. ``n_train`` is the number of training
        samples per epoch (full-batch gradient descent weights its accumulation by it)."""


def check_dtype(dtype: str) -> str:
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    return dtype
