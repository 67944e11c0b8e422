"""scikit-learn's bundled 8x8 digits, the offline stand-in for MNIST in the normalization study."""

from __future__ import annotations

import numpy as np

from orchestrator.data.errors import DataError
from orchestrator.data.tabular import TabularSplit


def load_digits_split(test_size: float = 0.2, seed: int = 0) -> TabularSplit:
    """1,797 images as 64 float32 pixels scaled to [0, 1], labels 0-9, stratified split.

    The lecture's network is 784 -> 64 -> 32 -> 10 on MNIST (not shipped offline); digits keeps
    the shape of the problem (flat pixels in, 10 classes out) with 64 inputs.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if not 0.0 < test_size < 1.0:
        raise DataError(f"data.test_size: {test_size} must be between 0 and 1 (exclusive)")
    bunch = load_digits()
    x = (bunch.data / 16.0).astype(np.float32)  # pixel intensities are 0..16
    y = bunch.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test_size, random_state=seed,
                                              stratify=y)
    names = tuple(f"pixel_{r}_{c}" for r in range(8) for c in range(8))
    return TabularSplit(x_tr, y_tr, x_te, y_te, names)
