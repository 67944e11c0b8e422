"""Finite-difference gradients: the reference for every backend's analytic gradients.

``numeric_grad`` is the central difference (f(x + h e_k) - f(x - h e_k)) / (2 h), one element at a
time, in float64, with a step scaled to the element, h = eps * max(|x_k|, 0.1): truncation error
O((h / x)^2) stays small for tiny probabilities (the log's curvature grows like 1 / p^2), rounding
error stays about 1e-16 / h.
``numeric_weight_grads`` applies it to the reference forward pass, giving what a backend's
``BackendModel.vjp`` must return: gradients of ``sum(output * upstream)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from orchestrator.canonical import specs
from orchestrator.canonical.reference.model import forward
from orchestrator.canonical.specs import ModelSpec


def numeric_grad(f: Callable[[np.ndarray], float], x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central finite differences of the scalar function ``f`` at ``x`` (x is not mutated)."""
    point = np.array(x, dtype=np.float64)
    grad = np.zeros_like(point)
    for k in np.ndindex(point.shape):
        original = point[k]
        step = eps * max(abs(original), 0.1)
        point[k] = original + step
        up = float(f(point.copy()))
        point[k] = original - step
        down = float(f(point.copy()))
        point[k] = original
        grad[k] = (up - down) / (2.0 * step)
    return grad


def numeric_weight_grads(spec: ModelSpec, weights: Mapping[str, np.ndarray], x: np.ndarray,
                         upstream: np.ndarray, training: bool = False,
                         eps: float = 1e-6) -> tuple[np.ndarray | None, dict[str, np.ndarray]]:
    """Gradients of ``sum(forward(spec, weights, x, training)[0] * upstream)``.

    Returns (gradient with respect to ``x``, or None for integer token input,
    {trainable weight name: gradient}) in canonical names and layouts. Every evaluation starts
    from the given weights, so batch-norm running statistics never leak between evaluations.
    """
    base = {name: np.array(value, dtype=np.float64) for name, value in weights.items()}
    up = np.asarray(upstream, dtype=np.float64)

    def objective(w: Mapping[str, np.ndarray], inputs: np.ndarray) -> float:
        return float(np.sum(forward(spec, w, inputs, training=training)[0] * up))

    grad_input = None
    if spec.input_dtype != "int":
        grad_input = numeric_grad(lambda xx: objective(base, xx), x, eps)
    grad_weights = {}
    for name in specs.trainable_names(spec):
        grad_weights[name] = numeric_grad(
            lambda value, name=name: objective({**base, name: value}, x), base[name], eps)
    return grad_input, grad_weights
