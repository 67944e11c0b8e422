"""The backend contract: what a framework plugin implements, in NumPy terms at its edges.

A backend is a subclass of ``Backend`` registered through the ``orchestrator_add_backends`` hook
(its ``BackendInfo`` names the class as ``"module:Class"``). Everything crossing this boundary is
plain data: component specs from ``orchestrator.canonical.catalogue`` (every hyperparameter
already resolved, so a backend never applies a default of its own), model specs from
``orchestrator.canonical.specs`` and NumPy arrays. Weights travel under their canonical names and
layouts (see ``orchestrator.canonical.specs``), whatever the framework stores internally.

The contract is narrow: ``Backend``, ``BackendModel`` (``orchestrator.contract.model``),
``TrainingSession`` (``orchestrator.contract.session``) and ``Optimizer``
(``orchestrator.contract.optimizer``) are concrete classes that own the shared bookkeeping
(weight, input and target checks, the optimizer trajectory loop, batching in ``evaluate``, epoch
means, the ``n_train`` rule, the learning-rate check) and call a small set of framework
primitives. A new backend is mostly formulas. It provides:

- class attributes: ``name`` (required: the name experiments use; it must equal the
  ``BackendInfo`` name), ``model_class``, ``session_class`` and ``optimizer_class`` (its
  subclasses of the three classes above), and the component tables ``losses``, ``optimizers``,
  ``norms`` and ``recurrent``, each keyed by canonical name (see ``component``);
- ``framework_versions()`` and ``seed(seed)``;
- ``tensor(array)``: a NumPy array as the framework's array, same dtype, on the backend's device;
- ``variables(arrays)`` and ``read_variables(variables)``: plain trainable variables holding
  copies of NumPy arrays, and their values back (``optimizer_trajectory`` runs on them);
- ``loss_gradient(fn, y_true, y_pred)``: a loss function's value and its gradient with respect
  to ``y_pred``, by automatic differentiation;
- optionally ``compile(fn)``: the framework's compiler (``tf.function``, ``jax.jit``); the
  default runs ``fn`` as it is; and ``reset_state()``: clear process-wide framework state
  between the runs of a warm worker process (default: nothing).

Component tables: ``losses[name](spec)`` returns a function ``(y_true, y_pred) -> scalar`` (the
mean loss, framework arrays; y_true None when the loss reads no target); ``optimizers[name]`` is
an update rule ``(optimizer, params, grads) -> None`` (see ``orchestrator.contract.optimizer``);
``norms`` and ``recurrent`` hold whatever the backend's ``build`` needs to make a layer of that
canonical name (a module class, a factory). The tables are plain mappings on the class, so a
later plugin can give existing backends a new component by adding an entry.

Both ``float32`` and ``float64`` are mandatory (the conformance kit checks float64 against the
NumPy reference; runs default to float32). Speed is part of the contract: ``TrainingSession.step``
is ONE compiled/fused step per batch (``tf.function`` around forward, loss, gradient and update;
fused RNN kernels; vectorized optimizer updates, never a per-parameter Python loop at run time),
and the loss stays on the device until ``end_epoch``.

``mlflow_flavor`` names the MLflow flavour that saves ``BackendModel.native`` ("pytorch",
"tensorflow"...), with ``mlflow_options`` passed to its ``log_model``. ``None`` means: MLflow has
no flavour for this framework; the run's model is then logged as a generic MLflow pyfunc holding
the canonical weights and the model spec, which loads and predicts with the NumPy reference
(``orchestrator.tracking.model_logging``), without the backend installed. Backends never import
MLflow.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np

from orchestrator.canonical.catalogue import ComponentSpec
from orchestrator.canonical.specs import ModelSpec
from orchestrator.canonical.targets import check_target, is_integer_target
from orchestrator.contract.model import DTYPES, VJP, BackendModel, check_dtype
from orchestrator.contract.optimizer import Optimizer, check_learning_rate
from orchestrator.contract.session import TrainingSession, check_n_train

__all__ = ["DTYPES", "THREADS_ENV", "VJP", "Backend", "BackendModel", "Optimizer", "Resources",
           "TrainingSession", "check_dtype", "check_learning_rate", "check_n_train"]

THREADS_ENV = "ORCHESTRATOR_THREADS"
# component kind -> the Backend class attribute holding its table
TABLES = {"loss": "losses", "optimizer": "optimizers", "norm": "norms", "recurrent": "recurrent"}


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



class Backend(ABC):
    """A framework plugin (see the module docstring for what a subclass provides).

    Instances are cheap; constructing one may import the framework (the registry only does so
    when a backend is actually used) and applies ``resources`` (threads, device).
    """

    name: ClassVar[str]
    mlflow_flavor: ClassVar[str | None] = None
    mlflow_options: ClassVar[Mapping[str, Any]] = MappingProxyType({})
    model_class: ClassVar[type[BackendModel]]
    session_class: ClassVar[type[TrainingSession]]
    optimizer_class: ClassVar[type[Optimizer]]
    losses: ClassVar[Mapping[str, Callable[[ComponentSpec], Callable[..., Any]]]] = {}
    optimizers: ClassVar[Mapping[str, Callable[..., None]]] = {}
    norms: ClassVar[Mapping[str, Any]] = {}
    recurrent: ClassVar[Mapping[str, Any]] = {}

    def __init__(self, resources: Resources | None = None) -> None:
        name = getattr(type(self), "name", None)
        if not isinstance(name, str) or not name:
            raise TypeError(f"{type(self).__name__} must set the class attribute name (the "
                            "backend name experiments use)")
        self.resources = resources or Resources()
        self.device = self.resources.device

    # --- components ---------------------------------------------------------------------------

    @classmethod
    def implemented(cls) -> dict[str, tuple[str, ...]]:
        """The canonical names in each component table, by kind."""
        return {kind: tuple(getattr(cls, attr)) for kind, attr in TABLES.items()}

    def component(self, spec: ComponentSpec) -> Any:
        """The entry of ``spec``'s kind table for its canonical name (``ValueError`` if none)."""
        table = getattr(self, TABLES[spec.kind])
        try:
            return table[spec.name]
        except KeyError:
            raise ValueError(f"the {self.name} backend has no {spec.kind} {spec.name!r}; it has "
                             f"{', '.join(table) or 'none'}") from None

    def loss_function(self, loss: ComponentSpec) -> Callable[..., Any]:
        """The backend's function ``(y_true, y_pred) -> mean loss`` for the resolved ``loss``."""
        if loss.kind != "loss":
            raise ValueError(f"expected a loss component, got a {loss.kind} ({loss.name!r})")
        return self.component(loss)(loss)

    # --- the contract the core calls ----------------------------------------------------------

    def build_model(self, spec: ModelSpec, weights: Mapping[str, np.ndarray], *,
                    dtype: str = "float32") -> BackendModel:
        """Build ``spec`` and load ``weights`` (canonical names, see ``orchestrator.canonical.specs``)."""
        model = self.model_class(self, spec, check_dtype(dtype))
        model.set_weights(weights)
        return model

    def training_session(self, model: BackendModel, loss: ComponentSpec,
                         optimizer: ComponentSpec, *, n_train: int) -> TrainingSession:
        """Bind ``model`` to a loss and an optimizer. ``n_train`` is the number of training
        samples per epoch (full-batch gradient descent weights its accumulation by it)."""
        if not isinstance(model, self.model_class):
            raise TypeError(f"the {self.name} backend trains its own models "
                            f"({self.model_class.__name__}), got {type(model).__name__}; build "
                            f"it with this backend's build_model")
        return self.session_class(self, model, loss, optimizer, n_train=n_train)

    def loss_value_and_grad(self, loss: ComponentSpec, y_true: np.ndarray | None,
                            y_pred: np.ndarray, *, dtype: str = "float64"
                            ) -> tuple[float, np.ndarray]:
        """The canonical loss and its gradient with respect to ``y_pred``; ``y_true`` is checked
        against the loss's target kind and ``y_pred``'s shape (``ValueError``)."""
        fn = self.loss_function(loss)
        pred = np.array(y_pred, dtype=check_dtype(dtype))
        target = check_target(loss, y_true, pred.shape)
        if target is not None and not is_integer_target(loss.target):
            target = np.array(target, dtype=dtype)
        value, grad = self.loss_gradient(fn, target, pred)
        grad = np.asarray(grad)
        if grad.shape != pred.shape:
            raise AssertionError(f"loss_gradient returned a gradient of shape {grad.shape} for "
                                 f"predictions of shape {pred.shape}")
        return float(value), grad

    def optimizer_trajectory(self, optimizer: ComponentSpec, params: Mapping[str, np.ndarray],
                             grads: Sequence[Mapping[str, np.ndarray]], *,
                             dtype: str = "float64",
                             learning_rates: Sequence[float] | None = None
                             ) -> list[dict[str, np.ndarray]]:
        """Apply ``grads[k]`` as step k + 1 of ``optimizer``, starting from ``params``, through
        the update code the training step uses (``optimizer_class``, compiled the same way);
        return the parameters after every step. ``learning_rates[k]``, when given, is set
        before step k + 1, as a schedule does."""
        dtype = check_dtype(dtype)
        names = list(params)
        starts = [np.array(params[n], dtype=dtype) for n in names]
        if learning_rates is not None and len(learning_rates) != len(grads):
            raise ValueError(f"optimizer_trajectory: {len(learning_rates)} learning rates for "
                             f"{len(grads)} steps")
        variables = self.variables(starts)
        opt = self.optimizer_class(self, optimizer, variables, dtype)
        step = self.compile(opt.step)
        trajectory = []
        for k, grad in enumerate(grads):
            if set(grad) != set(names):
                raise ValueError(f"optimizer_trajectory: step {k + 1} has gradients for "
                                 f"{sorted(grad)}, the parameters are {sorted(names)}")
            arrays = [np.array(grad[n], dtype=dtype) for n in names]
            for n, g, start in zip(names, arrays, starts):
                if g.shape != start.shape:
                    raise ValueError(f"optimizer_trajectory: step {k + 1}: the gradient of {n} "
                                     f"has shape {g.shape}, the parameter {start.shape}")
            if learning_rates is not None:
                opt.set_learning_rate(learning_rates[k])
            step([self.tensor(g) for g in arrays])
            trajectory.append(dict(zip(names, self.read_variables(variables))))
        return trajectory

    # --- framework primitives -----------------------------------------------------------------

    @abstractmethod
    def framework_versions(self) -> dict[str, str]:
        """Versions of the framework libraries this backend runs on, e.g. ``{"torch": "2.13.0"}``."""

    @abstractmethod
    def seed(self, seed: int) -> None:
        """Seed the framework's own random generators (dropout)."""

    @abstractmethod
    def tensor(self, array: np.ndarray) -> Any:
        """``array`` as the framework's array (same dtype) on this backend's device."""

    @abstractmethod
    def variables(self, arrays: Sequence[np.ndarray]) -> list[Any]:
        """Trainable framework variables holding copies of ``arrays``."""

    @abstractmethod
    def read_variables(self, variables: Sequence[Any]) -> list[np.ndarray]:
        """NumPy copies of ``variables``' values."""

    @abstractmethod
    def loss_gradient(self, fn: Callable[..., Any], y_true: np.ndarray | None,
                      y_pred: np.ndarray) -> tuple[float, np.ndarray]:
        """``fn(y_true, y_pred)`` and its gradient with respect to ``y_pred`` (NumPy in and out;
        y_true None when the loss reads no target)."""

    def compile(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn`` compiled by the framework (default: ``fn`` itself)."""
        return fn

    def reset_state(self) -> None:
        """Clear the framework's process-wide state that an earlier run may have left: a worker
        process runs run after run, and each must start as in a fresh process (Keras' global
        session and name counters, for instance). Called before ``seed`` at the start of every
        run; the default does nothing (seeding and a fresh model are enough)."""
