"""How far an array is from its expected value: one normwise relative error for every check."""

from __future__ import annotations

import numpy as np


def relative_error(actual: np.ndarray, expected: np.ndarray, scale: float | None = None) -> float:
    """Normwise relative error ``max|actual - expected| / max(scale, 1e-12)``, the scale being
    ``max|expected|`` unless given."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if actual.shape != expected.shape:
        raise AssertionError(f"shape {actual.shape} != expected {expected.shape}")
    if actual.size == 0:
        return 0.0
    if not np.all(np.isfinite(actual)):
        return float("inf")
    if scale is None:
        scale = float(np.max(np.abs(expected)))
    return float(np.max(np.abs(actual - expected)) / max(scale, 1e-12))
