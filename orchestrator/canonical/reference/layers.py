"""Reference layers: one float64 NumPy function per layer kind of ``orchestrator.canonical.specs``.

Weights arrive in the canonical ``x @ W`` layout (see ``orchestrator.canonical.specs``). Recurrent layers are
batch-first ``[batch, time, features]``, start from ``h0 = c0 = 0`` and are written as explicit
time loops: this module is the oracle, so it says what the formula says, step by step.
"""

from __future__ import annotations

import numpy as np

# --- activations (last axis for softmax) ------------------------------------------------------


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)) as exp(-softplus(-x)): no overflow, full precision in both tails."""
    return np.exp(-np.logaddexp(0.0, -x))


def softmax(x: np.ndarray) -> np.ndarray:
    shifted = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return shifted / np.sum(shifted, axis=-1, keepdims=True)


def activation(x: np.ndarray, name: str) -> np.ndarray:
    if name == "linear":
        return x
    if name == "relu":
        return np.maximum(x, 0.0)
    if name == "tanh":
        return np.tanh(x)
    if name == "sigmoid":
        return sigmoid(x)
    if name == "softmax":
        return softmax(x)
    raise ValueError(f"unknown activation {name!r}")


# --- feed-forward layers ----------------------------------------------------------------------


def dense(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray, act: str = "linear") -> np.ndarray:
    """act(x @ kernel + bias) on the last axis; kernel [in, units], bias [units]."""
    return activation(x @ kernel + bias, act)


def dropout(x: np.ndarray, rate: float, training: bool) -> np.ndarray:
    """Identity at evaluation. The oracle is deterministic, so training with rate > 0 is refused."""
    if training and rate > 0:
        raise ValueError("the reference is deterministic: dropout with rate > 0 cannot run in "
                         "training mode (compare backends with training=False or rate 0)")
    return x


def embedding(ids: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Row lookup: ids [...] of ints in [0, input_dim) -> [..., output_dim]."""
    ids = np.asarray(ids)
    if not np.issubdtype(ids.dtype, np.integer):
        if not np.all(np.equal(np.mod(ids, 1), 0)):
            raise ValueError("embedding: token ids must be integers")
        ids = ids.astype(np.int64)
    if ids.size and (ids.min() < 0 or ids.max() >= table.shape[0]):
        raise ValueError(f"embedding: token ids must lie in [0, {table.shape[0] - 1}]")
    return table[ids]


def batch_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, running_mean: np.ndarray,
               running_var: np.ndarray, *, momentum: float, eps: float,
               training: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Batch normalization over every axis but the last (features).

    Training: normalize with the batch mean and the biased (n) batch variance; update
    running = (1 - momentum) * running + momentum * batch statistic, with the UNBIASED (n - 1)
    batch variance for the running variance (Ioffe & Szegedy's inference estimate).
    Evaluation: normalize with the running statistics. Returns (y, running_mean, running_var).
    """
    axes = tuple(range(x.ndim - 1))
    if training:
        n = int(np.prod([x.shape[a] for a in axes]))
        if n < 2:
            raise ValueError("batch_norm: training needs more than one value per feature")
        mean = np.mean(x, axis=axes)
        var = np.mean((x - mean) ** 2, axis=axes)  # biased: used to normalize
        unbiased = var * n / (n - 1)  # used for the running estimate
        new_mean = (1.0 - momentum) * running_mean + momentum * mean
        new_var = (1.0 - momentum) * running_var + momentum * unbiased
    else:
        mean, var = running_mean, running_var
        new_mean, new_var = running_mean.copy(), running_var.copy()
    x_hat = (x - mean) / np.sqrt(var + eps)
    return gamma * x_hat + beta, new_mean, new_var


def layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, *, eps: float) -> np.ndarray:
    """Per sample (and time step): normalize over the last axis with its biased variance."""
    mean = np.mean(x, axis=-1, keepdims=True)
    var = np.mean((x - mean) ** 2, axis=-1, keepdims=True)
    return gamma * (x - mean) / np.sqrt(var + eps) + beta


# --- recurrent layers -------------------------------------------------------------------------


def rnn(x: np.ndarray, kernel: np.ndarray, recurrent_kernel: np.ndarray, bias: np.ndarray, *,
        act: str) -> np.ndarray:
    """Elman RNN, h_t = act(x_t W + h_{t-1} U + b), h_0 = 0. Returns all states [B, T, H]."""
    batch, steps, _ = x.shape
    h = np.zeros((batch, recurrent_kernel.shape[0]))
    states = []
    for t in range(steps):
        h = activation(x[:, t] @ kernel + h @ recurrent_kernel + bias, act)
        states.append(h)
    return np.stack(states, axis=1)


def lstm(x: np.ndarray, kernel: np.ndarray, recurrent_kernel: np.ndarray,
         bias: np.ndarray) -> np.ndarray:
    """Standard LSTM (gate order i, f, g, o; one bias), h_0 = c_0 = 0. Returns all h [B, T, H].

        [i f g o] = x_t W + h_{t-1} U + b
        c_t = sigmoid(f) * c_{t-1} + sigmoid(i) * tanh(g)
        h_t = sigmoid(o) * tanh(c_t)
    """
    batch, steps, _ = x.shape
    units = recurrent_kernel.shape[0]
    h = np.zeros((batch, units))
    c = np.zeros((batch, units))
    states = []
    for t in range(steps):
        z = x[:, t] @ kernel + h @ recurrent_kernel + bias
        i, f, g, o = (z[:, k * units:(k + 1) * units] for k in range(4))
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(c)
        states.append(h)
    return np.stack(states, axis=1)


def bilstm(x: np.ndarray, forward: tuple[np.ndarray, np.ndarray, np.ndarray],
           backward: tuple[np.ndarray, np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Bidirectional LSTM: (sequence [B, T, 2H], last state [B, 2H]).

    The backward LSTM reads the reversed sequence; its outputs are reversed back so that
    output[t] = concat(fwd[t], bwd[t]). The last state is concat(fwd[T-1], bwd[0]): each
    direction's state after it has read the whole sequence.
    """
    fwd = lstm(x, *forward)
    bwd = lstm(x[:, ::-1], *backward)[:, ::-1]
    sequence = np.concatenate([fwd, bwd], axis=-1)
    last = np.concatenate([fwd[:, -1], bwd[:, 0]], axis=-1)
    return sequence, last
