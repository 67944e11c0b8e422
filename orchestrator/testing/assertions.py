"""Comparisons used by the conformance kit, with the tolerances it holds every backend to.

Every comparison measures a relative error against the reference; inside ``record_errors()``
each measurement (passing or failing) is also recorded, which is how ``orchestrator plugins
check`` reports the measured error per component (``orchestrator.testing.report``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from orchestrator.canonical.reference.numerics import relative_error


@dataclass(frozen=True)
class Tolerances:
    """Normwise relative tolerances: ``max|actual - expected| <= tol * max(max|expected|, 1e-12)``
    (for a set of weights, the largest expected value of the set).

    float64 figures are what the built-in backends reach, with a margin (measured on a CPU,
    torch 2.13 and TensorFlow 2.21, largest error over every case of the kit): losses 4e-16
    (clipped edges 2.5e-11), forward passes 4e-16, one optimizer step 1.3e-16, 100 steps
    5.6e-15, training sessions replaying the backend's gradients 2.2e-14. Checks against the
    reference's central finite differences are bounded by those instead: loss gradients
    3.5e-7, backpropagation 1.0e-8, one training step 4.1e-10. So tight that a layer norm
    ignoring its default eps of 1e-5 (an error of about 5e-6) fails.

    float32 figures are what single precision allows for these computations: a mean of a few
    hundred float32 terms (and a log of values clipped at 1e-7) carries a relative error of a
    few 1e-7 to 1e-6; float32 backpropagation reached 4.1e-7 and five float32 Adam steps 1.9e-5,
    while gradients rounded to float16 are off by up to 4.9e-4.
    """

    loss: float
    clipped_loss: float  # probabilities exactly 0 or 1, clipped to [1e-7, 1 - 1e-7]
    grad: float  # loss gradients against finite differences
    backprop: float  # vjp (input and weight gradients) against finite differences
    forward: float
    one_step: float
    many_steps: float
    training_step: float  # one step against finite-difference gradients
    trajectory: float  # updates of a training session replaying the backend's own gradients


TOLERANCES = {
    "float64": Tolerances(loss=1e-12, clipped_loss=1e-9, grad=2e-6, backprop=5e-8,
                          forward=1e-10, one_step=1e-12, many_steps=1e-10,
                          training_step=5e-9, trajectory=1e-10),
    # 1 - 1e-7 is not a float32: it rounds to 1 - 1.19e-7, so -log(1e-7) = 16.12 becomes
    # -log(1.19e-7) = 15.94 at a clipped p = 1 (1.1 %).
    # forward: cuDNN's float32 RNN kernels differ from float64 by up to 1.6e-5 (H200, cuDNN
    # 9.19, IEEE float32) and their backpropagation by up to 1.4e-5 (bilstm-last, same machine;
    # 4.1e-7 on a CPU); TF32 matmuls inside them give 1e-4 to 1e-3 (backpropagation 2.2e-4 and
    # up), which stays caught.
    # one_step: AdamW at lr 0.3 and decay 0.5 reached 1.2e-6 on TensorFlow.
    "float32": Tolerances(loss=1e-5, clipped_loss=2e-2, grad=1e-4, backprop=5e-5, forward=5e-5,
                          one_step=3e-6, many_steps=1e-4, training_step=1e-4, trajectory=1e-4),
}


@dataclass(frozen=True)
class Measurement:
    """One comparison against the reference: what was compared, its error and its tolerance."""

    what: str
    error: float  # normwise relative error (inf if the backend's value was not finite)
    tol: float


_recorders: list[list[Measurement]] = []


@contextmanager
def record_errors() -> Iterator[list[Measurement]]:
    """Collect the measurements of every ``assert_close`` (and ``assert_weights_close``) made
    inside the block, in order, including the one that failed."""
    found: list[Measurement] = []
    _recorders.append(found)
    try:
        yield found
    finally:
        _recorders.remove(found)


def assert_close(actual: np.ndarray | float, expected: np.ndarray | float, tol: float,
                 what: str, scale: float | None = None) -> None:
    err = relative_error(np.asarray(actual), np.asarray(expected), scale)
    for found in _recorders:
        found.append(Measurement(what, float(err), tol))
    if not err <= tol:
        raise AssertionError(f"{what}: relative error {err:.3g} > {tol:g}\n"
                             f"actual:   {np.asarray(actual)!r}\nexpected: {np.asarray(expected)!r}")


def assert_weights_close(actual: Mapping[str, np.ndarray], expected: Mapping[str, np.ndarray],
                         tol: float, what: str, names: list[str] | None = None) -> None:
    """Each array against ``tol`` relative to the largest expected value of the whole set.

    One scale for the set, because an array whose true value is zero (the gradient of a bias
    right before batch norm, which the norm cancels) is all rounding noise: compared to itself,
    noise of 1e-17 against 1e-10 would read as a 100 % error.
    """
    names = list(expected) if names is None else names
    missing = sorted(set(names) - set(actual))
    if missing:
        raise AssertionError(f"{what}: missing weights {missing}")
    scale = max((float(np.max(np.abs(expected[n]), initial=0.0)) for n in names), default=0.0)
    for name in names:
        assert_close(actual[name], expected[name], tol, f"{what} [{name}]", scale)
