"""The reference implementation: the oracle every backend is checked against.

Each canonical component (losses, optimizers, norms, recurrent layers, the whole forward pass) is
written here straight from its formula in ``docs/canonical.md``, in float64 NumPy and with no deep
learning framework, favouring clarity over speed (explicit time loops, element-by-element finite
differences). Where a framework's default differs from the canonical meaning, this package is the
tie-breaker: the conformance kit (``orchestrator.testing``) compares every backend with it.

- ``loss_value(spec, y_true, y_pred)``: a canonical loss (``losses``).
- ``trajectory(spec, params, grads)``: parameters after each optimizer step (``optimizers``).
- ``forward(spec, weights, x, training=False)``: a ``ModelSpec``'s output and the weights with
  updated batch-norm running statistics (``model``, built on ``layers``).
- ``numeric_grad(f, x)`` and ``numeric_weight_grads(spec, weights, x, upstream, training)``:
  central finite differences (``gradcheck``).
- ``relative_error(actual, expected)``: the normwise relative error every check uses
  (``numerics``).
"""

from orchestrator.canonical.reference.gradcheck import numeric_grad, numeric_weight_grads
from orchestrator.canonical.reference.losses import loss_value
from orchestrator.canonical.reference.model import forward
from orchestrator.canonical.reference.numerics import relative_error
from orchestrator.canonical.reference.optimizers import trajectory

__all__ = ["forward", "loss_value", "numeric_grad", "numeric_weight_grads", "relative_error",
           "trajectory"]
