"""Initial weights drawn once in NumPy, so every backend starts a run from the same numbers.

Frameworks initialize differently (PyTorch draws LSTM weights from U(-1/sqrt(H), 1/sqrt(H)),
Keras uses glorot/orthogonal kernels and a forget-gate bias of 1). Here each canonical weight is
drawn from its own generator, seeded from (seed, weight name), so adding a layer never changes the
numbers of the others. Backends load the result with ``BackendModel.set_weights``.

Initializers (the Keras defaults, which train recurrent networks well):
- ``glorot_uniform``: U(-l, l), l = sqrt(6 / (fan_in + fan_out)) over the whole kernel.
- ``orthogonal``: an orthogonal [H, H] matrix per gate block (QR of a normal matrix).
- ``lstm_bias``: zeros, except the forget-gate block: the layer's ``forget_bias`` (default 1,
  Jozefowicz et al. 2015), or with ``chrono: T_max`` the chrono initialization of Tallec &
  Ollivier 2018: forget bias log U(1, T_max - 1) per unit, input-gate bias its negative.
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


def lstm_bias(units: int, forget_bias: float = 1.0, chrono: int | None = None,
              rng: np.random.Generator | None = None) -> np.ndarray:
    """An LSTM bias ``[4 units]`` (gate blocks i, f, g, o): zeros except the forget gate's
    ``forget_bias``; with ``chrono`` (T_max), forget bias ``log U(1, T_max - 1)`` per unit and
    input bias its negative, so unit j keeps its memory for about ``exp(b_f)`` steps."""
    bias = np.zeros(4 * units)
    if chrono is None:
        bias[units:2 * units] = forget_bias
        return bias
    if chrono < 3:
        raise ValueError(f"chrono: T_max must be >= 3, got {chrono}")
    if rng is None:
        raise ValueError("chrono initialization draws from a generator; pass rng")
    forget = np.log(rng.uniform(1.0, chrono - 1.0, units))
    bias[units:2 * units] = forget
    bias[:units] = -forget
    return bias


def _draw(name: str, info: WeightInfo, seed: int, params: dict | None = None) -> np.ndarray:
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
        params = params or {}
        return lstm_bias(shape[0] // 4, params.get("forget_bias", 1.0), params.get("chrono"),
                         rng)
    raise ValueError(f"unknown initializer {info.init!r} for {name}")


def init_weights(spec: ModelSpec, seed: int) -> dict[str, np.ndarray]:
    """Every canonical weight (and batch-norm state) of ``spec``, float64, keyed by name."""
    def params(name: str) -> dict | None:  # the component options of the weight's layer
        layer = spec.layers[int(name.split(".")[0])]
        component = getattr(layer, "component", None)
        return dict(component.params) if component is not None else None

    return {name: _draw(name, info, seed, params(name))
            for name, info in weight_shapes(spec).items()}
