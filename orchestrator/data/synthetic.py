"""Synthetic long-range sequence tasks for the vanishing-gradient study, deterministic in a seed."""

from __future__ import annotations

import numpy as np

from orchestrator.data.errors import DataError


def _check(n: int, length: int, least: int) -> None:
    if n < 1 or length < least:
        raise DataError(f"data: n={n}, length={length}: need n >= 1 and length >= {least}")


def first_element_task(n: int, length: int, seed: int, noise: float = 1.0
                       ) -> tuple[np.ndarray, np.ndarray]:
    """``x [n, length, 1]`` float32, ``y [n]`` int64: the class is the sign of the first element.

    The first step is exactly -1 (class 0) or +1 (class 1); the other ``length - 1`` steps are
    Gaussian noise with standard deviation ``noise`` and carry no information. The only signal is
    ``length - 1`` steps before the prediction, so a plain RNN must carry a gradient that far:
    accuracy falls to chance (0.5) as ``length`` grows unless the cell keeps it (LSTM, GRU).
    """
    _check(n, length, 1)
    if noise < 0:
        raise DataError(f"data.noise: {noise} must be >= 0")
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=n, dtype=np.int64)
    x = rng.normal(0.0, noise, size=(n, length, 1))
    x[:, 0, 0] = 2.0 * y - 1.0
    return x.astype(np.float32), y


def adding_problem(n: int, length: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The adding problem (Hochreiter & Schmidhuber 1997): ``x [n, length, 2]``, ``y [n, 1]``.

    Channel 0 holds values uniform in [0, 1); channel 1 marks two steps with 1, one in each half
    of the sequence; the target is the sum of the two marked values (regression, float32).
    Predicting 1.0 always gives a mean squared error of about 0.167: the baseline to beat.
    """
    _check(n, length, 2)
    rng = np.random.default_rng(seed)
    values = rng.random((n, length))
    half = length // 2
    first = rng.integers(0, half, size=n)
    second = rng.integers(half, length, size=n)
    marks = np.zeros((n, length))
    rows = np.arange(n)
    marks[rows, first] = 1.0
    marks[rows, second] = 1.0
    y = values[rows, first] + values[rows, second]
    return np.stack([values, marks], axis=-1).astype(np.float32), y[:, None].astype(np.float32)
