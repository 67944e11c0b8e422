"""Reference optimizers: the update rules of ``docs/canonical.md`` replayed in float64 NumPy.

``trajectory`` applies ``grads[k]`` as step ``t = k + 1`` starting from ``params`` and returns the
parameters after every step. Each rule is written once per parameter array, with its state (as
the catalogue declares it: ``ComponentDef.state``) kept in a plain dict. ``gd`` and ``sgd`` share
one rule: they differ only in which gradient the training loop feeds them (full batch or
mini-batch).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from orchestrator.canonical import catalogue
from orchestrator.canonical.catalogue import ComponentSpec

State = dict[str, np.ndarray]


def _adam_step(hp: Mapping[str, Any], state: State, g: np.ndarray, t: int) -> np.ndarray:
    """Kingma & Ba, Algorithm 1: the step lr * m_hat / (sqrt(v_hat) + eps), eps OUTSIDE the root."""
    b1, b2 = hp["beta1"], hp["beta2"]
    state["m"] = b1 * state["m"] + (1.0 - b1) * g
    state["v"] = b2 * state["v"] + (1.0 - b2) * g ** 2
    m_hat = state["m"] / (1.0 - b1 ** t)
    v_hat = state["v"] / (1.0 - b2 ** t)
    return hp["lr"] * m_hat / (np.sqrt(v_hat) + hp["eps"])


def step(name: str, hp: Mapping[str, Any], state: State, theta: np.ndarray, g: np.ndarray,
         t: int) -> np.ndarray:
    """One update of one parameter array: returns the new theta and updates ``state`` in place.
    ``hp["lr"]`` is the learning rate of this step (a schedule changes it between steps)."""
    lr = hp["lr"]
    if name in ("gd", "sgd"):
        return theta - lr * g
    if name == "momentum":
        # The lecture's form: lr inside the velocity (equals PyTorch's only at a constant lr).
        state["v"] = hp["momentum"] * state["v"] + lr * g
        return theta - state["v"]
    if name == "nesterov":
        state["v"] = hp["momentum"] * state["v"] + lr * g
        return theta - (hp["momentum"] * state["v"] + lr * g)
    if name == "adagrad":
        state["G"] = state["G"] + g ** 2
        return theta - lr * g / np.sqrt(state["G"] + hp["eps"])  # eps INSIDE the root
    if name == "rmsprop":
        rho = hp["rho"]
        state["s"] = rho * state["s"] + (1.0 - rho) * g ** 2
        return theta - lr * g / np.sqrt(state["s"] + hp["eps"])  # eps INSIDE the root
    if name == "adam":
        return theta - _adam_step(hp, state, g, t)
    if name == "adamw":
        # Decoupled decay (Loshchilov & Hutter): on theta_{t-1}, scaled by lr, then Adam.
        decayed = theta - lr * hp["weight_decay"] * theta
        return decayed - _adam_step(hp, state, g, t)
    raise ValueError(f"unknown optimizer {name!r}")


def trajectory(spec: ComponentSpec, params: Mapping[str, np.ndarray],
               grads: Sequence[Mapping[str, np.ndarray]],
               learning_rates: Sequence[float] | None = None) -> list[dict[str, np.ndarray]]:
    """Parameters after each of ``len(grads)`` steps of the optimizer ``spec`` (float64).

    ``grads[k]`` must have exactly the keys and shapes of ``params``; the inputs are not mutated.
    ``learning_rates[k]``, when given, is the learning rate of step k + 1 (as a schedule sets
    it); otherwise every step uses ``spec``'s ``lr``. State starts as the catalogue declares
    (``ComponentDef.state``: zero, or Adagrad's ``initial_accumulator``).
    """
    resolved = catalogue.resolve("optimizer", spec.name, spec.params)
    name, hp = resolved.name, dict(resolved.params)
    if learning_rates is not None and len(learning_rates) != len(grads):
        raise ValueError(f"{len(learning_rates)} learning rates for {len(grads)} steps")
    initial = resolved.definition.initial_state(hp)
    theta = {key: np.array(value, dtype=np.float64) for key, value in params.items()}
    states = {key: {slot: np.full_like(value, init) for slot, init in initial.items()}
              for key, value in theta.items()}
    out: list[dict[str, np.ndarray]] = []
    for k, grad in enumerate(grads):
        if learning_rates is not None:
            hp["lr"] = float(learning_rates[k])
        if set(grad) != set(theta):
            raise ValueError(f"step {k + 1}: gradient keys {sorted(grad)} != parameter keys "
                             f"{sorted(theta)}")
        for key in theta:
            g = np.array(grad[key], dtype=np.float64)
            if g.shape != theta[key].shape:
                raise ValueError(f"step {k + 1}: gradient of {key} has shape {g.shape}, "
                                 f"parameter has {theta[key].shape}")
            theta[key] = step(name, hp, states[key], theta[key], g, k + 1)
        out.append({key: value.copy() for key, value in theta.items()})
    return out
