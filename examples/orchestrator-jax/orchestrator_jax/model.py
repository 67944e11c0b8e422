"""JaxModel: a ModelSpec's pure apply function and its weights, held in mutable ``Ref`` cells."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from orchestrator import BackendModel

from orchestrator_jax.layers import build_network


@dataclass
class Ref:
    """A mutable cell around an immutable JAX array: the contract's "framework variable"."""

    value: jax.Array


class JaxModel(BackendModel):
    """``variables`` maps every canonical weight name to a ``Ref`` (canonical layout, nothing
    transposed); ``apply`` is the network as one pure function (see ``layers.build_network``).
    Training-mode passes draw dropout masks from the backend's key and write the new running
    statistics back."""

    def build(self) -> dict[str, Any]:
        self.apply = build_network(self.spec, self.backend.norms, self.backend.recurrent)
        self.jnp_dtype = jnp.dtype(self.dtype)
        self._forward = jax.jit(self.apply, static_argnums=2)
        self._backprop = jax.jit(self._vjp, static_argnums=3)
        return {name: Ref(jnp.zeros(shape, self.jnp_dtype)) for name, shape in self.shapes.items()}

    @property
    def native(self) -> tuple[Any, dict[str, jax.Array]]:
        """(apply, weights): JAX has no model object; MLflow gets the generic pyfunc."""
        return self.apply, self.weights()

    def weights(self) -> dict[str, jax.Array]:
        return {name: ref.value for name, ref in self.variables.items()}

    def input_tensor(self, x: np.ndarray) -> jax.Array:
        return jnp.asarray(x, jnp.int64 if self.int_input else self.jnp_dtype)

    def read_variable(self, name: str) -> np.ndarray:
        return np.array(self.variables[name].value)

    def write_variable(self, name: str, value: np.ndarray) -> None:
        self.variables[name].value = jnp.asarray(value, self.jnp_dtype)

    def write_updates(self, updates: dict[str, jax.Array]) -> None:
        for name, value in updates.items():
            self.variables[name].value = value

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        key = self.backend.next_key() if training else None
        output, updates = self._forward(self.weights(), self.input_tensor(x), training, key)
        self.write_updates(updates)
        return np.asarray(output)

    def _vjp(self, weights: dict[str, jax.Array], x: jax.Array, upstream: jax.Array,
             training: bool, key: Any) -> tuple[jax.Array, Any, list[jax.Array], dict]:
        trainable = [weights[name] for name in self.trainable_names]

        def run(x: jax.Array, params: list[jax.Array]) -> tuple[jax.Array, dict]:
            w = {**weights, **dict(zip(self.trainable_names, params))}
            return self.apply(w, x, training, key)

        if self.int_input:  # token ids: gradients of the weights only
            output, pullback, updates = jax.vjp(lambda p: run(x, p), trainable, has_aux=True)
            (grads,) = pullback(upstream)
            return output, None, grads, updates
        output, pullback, updates = jax.vjp(run, x, trainable, has_aux=True)
        grad_x, grads = pullback(upstream)
        return output, grad_x, grads, updates

    def backprop(self, x: np.ndarray, upstream: np.ndarray, training: bool
                 ) -> tuple[np.ndarray, np.ndarray | None, list[np.ndarray]]:
        key = self.backend.next_key() if training else None
        output, grad_x, grads, updates = self._backprop(
            self.weights(), self.input_tensor(x), jnp.asarray(upstream, self.jnp_dtype),
            training, key)
        self.write_updates(updates)
        return (np.asarray(output), None if grad_x is None else np.asarray(grad_x),
                [np.asarray(g) for g in grads])
