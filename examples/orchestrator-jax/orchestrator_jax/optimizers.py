"""The canonical optimizers as pure JAX updates, the same code in every training step.

JAX arrays are immutable, so the contract's in-place update rule ``update(opt, params, grads)``
runs on plain Python lists inside a traced function: the rule replaces ``params[:]`` and the
entries of ``opt.state[slot]``, and ``JaxOptimizer.pure_update`` returns the lists. The session's
jit-compiled step and ``Backend.optimizer_trajectory`` (through ``apply``) trace the same
``pure_update``, so the conformance kit checks the update that trains. The learning rate and the
step count are arguments of the compiled functions: a schedule never recompiles.

The formulas are the catalogue's (lr inside the velocity for momentum/Nesterov, eps inside the
square root for Adagrad/RMSprop, Adam's Algorithm 1, AdamW's decay before the Adam step).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
from orchestrator import Optimizer

Arrays = list[jax.Array]


@dataclass
class Traced:
    """What an update rule reads while traced: ``hp``, ``lr``, ``t`` and ``state``."""

    hp: dict[str, Any]
    lr: jax.Array
    t: jax.Array
    state: dict[str, Arrays]


class JaxOptimizer(Optimizer):
    """``variables`` are the model's ``Ref`` holders; ``state[slot]`` lists of arrays."""

    def setup(self) -> None:
        self.t = 0  # host-side step count, passed to the compiled update as an argument
        self._apply = jax.jit(self.pure_update)

    def new_slot(self, variable: Any, value: float) -> jax.Array:
        return jnp.full(variable.value.shape, value, variable.value.dtype)

    def assign_learning_rate(self, lr: float) -> None:
        self.lr = lr

    def scalars(self) -> tuple[jax.Array, jax.Array]:
        """The learning rate and the step count as arrays of the parameters' dtype."""
        return jnp.asarray(self.lr, self.dtype), jnp.asarray(self.t, self.dtype)

    def pure_update(self, params: Arrays, state: dict[str, Arrays], grads: Arrays,
                    lr: jax.Array, t: jax.Array) -> tuple[Arrays, dict[str, Arrays]]:
        """One step of the update rule on arrays: (new params, new state)."""
        view = Traced(self.hp, lr, t, {slot: list(values) for slot, values in state.items()})
        params = list(params)
        self.update(view, params, [g.astype(p.dtype) for g, p in zip(grads, params)])
        return params, view.state

    def apply(self, grads: list[Any]) -> None:
        self.t += 1
        params, self.state = self._apply([v.value for v in self.variables], self.state,
                                         list(grads), *self.scalars())
        for variable, value in zip(self.variables, params):
            variable.value = value


def sgd(opt: Traced, params: Arrays, grads: Arrays) -> None:
    params[:] = [p - opt.lr * g for p, g in zip(params, grads)]


def momentum(opt: Traced, params: Arrays, grads: Arrays, nesterov: bool = False) -> None:
    mu, v = opt.hp["momentum"], opt.state["v"]
    v[:] = [mu * vi + opt.lr * g for vi, g in zip(v, grads)]  # lr inside the velocity
    if nesterov:
        params[:] = [p - (mu * vi + opt.lr * g) for p, vi, g in zip(params, v, grads)]
    else:
        params[:] = [p - vi for p, vi in zip(params, v)]


def adagrad(opt: Traced, params: Arrays, grads: Arrays) -> None:
    G, eps = opt.state["G"], opt.hp["eps"]
    G[:] = [a + g * g for a, g in zip(G, grads)]
    params[:] = [p - opt.lr * g / jnp.sqrt(a + eps) for p, g, a in zip(params, grads, G)]


def rmsprop(opt: Traced, params: Arrays, grads: Arrays) -> None:
    rho, eps, s = opt.hp["rho"], opt.hp["eps"], opt.state["s"]
    s[:] = [rho * si + (1 - rho) * g * g for si, g in zip(s, grads)]
    params[:] = [p - opt.lr * g / jnp.sqrt(si + eps) for p, g, si in zip(params, grads, s)]


def adam(opt: Traced, params: Arrays, grads: Arrays, decay: float = 0.0) -> None:
    b1, b2, eps, lr = opt.hp["beta1"], opt.hp["beta2"], opt.hp["eps"], opt.lr
    m, v = opt.state["m"], opt.state["v"]
    correction1, correction2 = 1 - b1 ** opt.t, 1 - b2 ** opt.t
    if decay:
        params[:] = [p - lr * decay * p for p in params]  # decoupled decay first, scaled by lr
    m[:] = [b1 * mi + (1 - b1) * g for mi, g in zip(m, grads)]
    v[:] = [b2 * vi + (1 - b2) * g * g for vi, g in zip(v, grads)]
    params[:] = [p - lr * (mi / correction1) / (jnp.sqrt(vi / correction2) + eps)
                 for p, mi, vi in zip(params, m, v)]


UPDATES = {
    "gd": sgd, "sgd": sgd, "momentum": momentum,
    "nesterov": lambda opt, params, grads: momentum(opt, params, grads, nesterov=True),
    "adagrad": adagrad, "rmsprop": rmsprop, "adam": adam,
    "adamw": lambda opt, params, grads: adam(opt, params, grads, opt.hp["weight_decay"]),
}
