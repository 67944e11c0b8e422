"""Initial weights drawn once in NumPy, so every backend starts a run from the same numbers.

Frameworks initialize differently (PyTorch draws LSTM weights from U(-1/sqrt(H), 1/sqrt(H)),
Keras uses glorot/orthogonal kernels and a forget-gate bias of 1). Here each canonical weight is
drawn from its own generator, seeded from (seed, weight name), so adding a layer never changes the
numbers of the others. Backends load the result with ``BackendModel.set_weights``.

Initializers (the Keras defaults, which train recurrent networks well):
- ``glorot_uniform``: U(-l, l), l = sqrt(6 / (fan_in + fan_out)) over the whole kernel.
- ``orthogonal``: an orthogonal [H, H] matrix per gate block (QR of a normal matrix).
- ``lstm_bias``: zeros, except 1 on the forget-gate block (Jozefowicz et al. 2015).
- ``uniform``: U(-0.05, 0.05) (embeddings); ``zeros``, ``ones``.
"""

from __future__ import annotations

import hashlib

import numpy as np

from orchestrator.canonical.specs import ModelSpec, WeightInfo, weight_shapes


def _rng(seed: int, name: str) -> np.random.Generator:
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _orthogonal(rng: np.random.Generator, n: int) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))  # sign fix makes the draw uniform over orthogonal matrices


def _draw(name: str, info: WeightInfo, seed: int) -> np.ndarray:
    shape = info.shape
    if info.init == "zeros":
        return np.zeros(shape)
    if info.init == "ones":
        return np.ones(shape)
    rng = _rng(seed, name)
    if info.init == "uniform":
        return rng.uniform(-0.05, 0.05, shape)
    if info.init == "glorot_uniform":
        fan_in, fan_out = shape
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, shape)
    if info.init == "orthogonal":
        units, width = shape
        return np.concatenate([_orthogonal(rng, units) for _ in range(width // units)], axis=1)
    if info.init == "lstm_bias":
        units = shape[0] // 4
        bias = np.zeros(shape)
        bias[units:2 * units] = 1.0
        return bias
    raise ValueError(f"unknown initializer {info.init!r} for {name}")


def init_weights(spec: ModelSpec, seed: int) -> dict[str, np.ndarray]:
    """Every canonical weight (and batch-norm state) of ``spec``, float64, keyed by name."""
    return {name: _draw(name, info, seed) for name, info in weight_shapes(spec).items()}
