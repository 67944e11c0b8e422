"""JaxBackend: the JAX primitives of orchestrator's ``Backend`` contract (public API only).

float64 is mandatory in the contract; JAX runs float32 unless ``jax_enable_x64`` is set, so the
backend sets it when it is constructed. With x64 on, every array keeps the dtype it is given
(the backend never lets a default dtype in: float32 runs stay float32).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jaxlib
import numpy as np
from orchestrator import Backend, Resources

from orchestrator_jax.layers import NORMS, RECURRENT
from orchestrator_jax.losses import LOSSES
from orchestrator_jax.model import JaxModel, Ref
from orchestrator_jax.optimizers import UPDATES, JaxOptimizer
from orchestrator_jax.session import JaxTrainingSession


def _threads_flag(threads: int | None) -> None:
    """One compute thread when the core gives this run one. XLA reads the flag when its CPU
    client starts (the first computation of the process), not at import."""
    if threads == 1:
        flags = os.environ.get("XLA_FLAGS", "")
        if "xla_cpu_multi_thread_eigen" not in flags:
            os.environ["XLA_FLAGS"] = (flags + " --xla_cpu_multi_thread_eigen=false").strip()


class JaxBackend(Backend):
    """JAX backend: pure functions over canonical weights, a jit-compiled training step,
    ``lax.scan`` recurrent layers. ``resources.device`` is a JAX platform name ("cpu", "gpu");
    None lets JAX choose."""

    name = "jax"
    mlflow_flavor = None  # MLflow has no JAX flavour: the core logs a generic pyfunc
    model_class = JaxModel
    session_class = JaxTrainingSession
    optimizer_class = JaxOptimizer
    losses, optimizers, norms, recurrent = LOSSES, UPDATES, NORMS, RECURRENT

    def __init__(self, resources: Resources | None = None) -> None:
        super().__init__(resources)
        _threads_flag(self.resources.threads)
        jax.config.update("jax_enable_x64", True)  # float64 support (the contract requires it)
        if self.device is not None:
            jax.config.update("jax_platform_name", self.device)
        self._jax = jax
        self.key = jax.random.PRNGKey(0)

    def framework_versions(self) -> dict[str, str]:
        return {"jax": self._jax.__version__, "jaxlib": jaxlib.__version__}

    def seed(self, seed: int) -> None:
        self.key = self._jax.random.PRNGKey(seed)  # dropout masks are drawn from this key

    def next_key(self) -> Any:
        self.key, subkey = self._jax.random.split(self.key)
        return subkey

    def tensor(self, array: np.ndarray) -> Any:
        return self._jax.numpy.asarray(array)

    def variables(self, arrays: Sequence[np.ndarray]) -> list[Any]:
        return [Ref(self.tensor(np.array(a))) for a in arrays]

    def read_variables(self, variables: Sequence[Any]) -> list[np.ndarray]:
        return [np.array(v.value) for v in variables]

    def loss_gradient(self, fn: Callable[..., Any], y_true: np.ndarray | None,
                      y_pred: np.ndarray) -> tuple[float, np.ndarray]:
        target = None if y_true is None else self.tensor(y_true)
        value, grad = self._jax.value_and_grad(lambda p: fn(target, p))(self.tensor(y_pred))
        return float(value), np.array(grad)
