"""The canonical losses in jax.numpy: one function per catalogue loss, mean, stable on logits.

Probabilities are clipped to [1e-7, 1 - 1e-7] before any log; the logits paths use softplus /
log_softmax. Targets arrive checked by the core (shape and dtype from the loss's target kind).
``LOSSES`` is the backend's table: canonical name -> builder ``spec -> (y_true, y_pred) -> mean``.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from orchestrator import ComponentSpec

CLIP = 1e-7

LossFn = Callable[[jax.Array | None, jax.Array], jax.Array]


def _clip(p: jax.Array) -> jax.Array:
    return jnp.clip(p, CLIP, 1.0 - CLIP)


def _binary_logs(y_pred: jax.Array, from_logits: bool) -> tuple[jax.Array, jax.Array]:
    """(log p, log(1 - p)) of the positive class."""
    if from_logits:
        return -jax.nn.softplus(-y_pred), -jax.nn.softplus(y_pred)
    p = _clip(y_pred)
    return jnp.log(p), jnp.log1p(-p)


def _class_log_probs(y_pred: jax.Array, from_logits: bool) -> jax.Array:
    if from_logits:
        return jax.nn.log_softmax(y_pred, axis=-1)
    return jnp.log(_clip(y_pred))


def binary_crossentropy(from_logits: bool) -> LossFn:
    def fn(y: jax.Array | None, y_pred: jax.Array) -> jax.Array:
        log_p, log_q = _binary_logs(y_pred, from_logits)
        return -jnp.mean(y * log_p + (1 - y) * log_q)
    return fn


def categorical_crossentropy(from_logits: bool) -> LossFn:
    def fn(y: jax.Array | None, y_pred: jax.Array) -> jax.Array:
        return -jnp.mean(jnp.sum(y * _class_log_probs(y_pred, from_logits), axis=-1))
    return fn


def sparse_categorical_crossentropy(from_logits: bool) -> LossFn:
    def fn(y: jax.Array | None, y_pred: jax.Array) -> jax.Array:
        if from_logits:
            log_p = jnp.take_along_axis(jax.nn.log_softmax(y_pred, axis=-1), y[..., None], -1)
        else:
            log_p = jnp.log(_clip(jnp.take_along_axis(y_pred, y[..., None], -1)))
        return -jnp.mean(log_p)
    return fn


def binary_focal(gamma: float, alpha: float | None, from_logits: bool) -> LossFn:
    a1, a0 = (1.0, 1.0) if alpha is None else (alpha, 1.0 - alpha)

    def fn(y: jax.Array | None, y_pred: jax.Array) -> jax.Array:
        if from_logits:
            # sigmoid(-z) for 1 - p keeps (1 - p)^gamma accurate where p rounds to 1
            p, q = jax.nn.sigmoid(y_pred), jax.nn.sigmoid(-y_pred)
        else:
            p = _clip(y_pred)
            q = 1 - p
        log_p, log_q = _binary_logs(y_pred, from_logits)
        return -jnp.mean(y * a1 * q ** gamma * log_p + (1 - y) * a0 * p ** gamma * log_q)
    return fn


def categorical_focal(gamma: float, alpha: tuple[float, ...] | None,
                      from_logits: bool) -> LossFn:
    def fn(y: jax.Array | None, y_pred: jax.Array) -> jax.Array:
        log_p = _class_log_probs(y_pred, from_logits)
        p = jnp.exp(log_p) if from_logits else _clip(y_pred)
        terms = (1 - p) ** gamma * y * log_p
        if alpha is not None:
            if len(alpha) != y_pred.shape[-1]:
                raise ValueError(f"categorical_focal: alpha has {len(alpha)} entries but the "
                                 f"predictions have {y_pred.shape[-1]} classes")
            terms = terms * jnp.asarray(alpha, y_pred.dtype)
        return -jnp.mean(jnp.sum(terms, axis=-1))
    return fn


def _pairwise_sq_dists(e: jax.Array) -> jax.Array:
    """d[a, b] = sum((e_a - e_b)^2) from broadcast differences (exact zero on the diagonal)."""
    return jnp.sum(jnp.square(e[:, None] - e[None, :]), axis=-1)


def triplet(margin: float, mining: str) -> LossFn:
    def explicit(y: jax.Array | None, y_pred: jax.Array) -> jax.Array:
        anchor, positive, negative = y_pred[:, 0], y_pred[:, 1], y_pred[:, 2]
        d_ap = jnp.sum(jnp.square(anchor - positive), axis=-1)
        d_an = jnp.sum(jnp.square(anchor - negative), axis=-1)
        return jnp.mean(jax.nn.relu(d_ap - d_an + margin))

    def masks(y: jax.Array) -> tuple[jax.Array, jax.Array]:
        same = y[None, :] == y[:, None]
        return same & ~jnp.eye(len(y), dtype=bool), ~same  # positive[a, p], negative[a, n]

    def batch_all(y: jax.Array | None, y_pred: jax.Array) -> jax.Array:
        d = _pairwise_sq_dists(y_pred)
        positive, negative = masks(y)
        valid = positive[:, :, None] & negative[:, None, :]  # [a, p, n]
        losses = jnp.where(valid, jax.nn.relu(d[:, :, None] - d[:, None, :] + margin), 0.0)
        return jnp.sum(losses) / jnp.maximum(jnp.sum(valid), 1).astype(y_pred.dtype)

    def batch_hard(y: jax.Array | None, y_pred: jax.Array) -> jax.Array:
        d = _pairwise_sq_dists(y_pred)
        positive, negative = masks(y)
        hardest_pos = jnp.max(jnp.where(positive, d, -jnp.inf), axis=1)
        hardest_neg = jnp.min(jnp.where(negative, d, jnp.inf), axis=1)
        valid = jnp.any(positive, axis=1) & jnp.any(negative, axis=1)
        # the masked-out rows compute relu(-inf): 0 with a zero gradient
        losses = jnp.where(valid, jax.nn.relu(hardest_pos - hardest_neg + margin), 0.0)
        return jnp.sum(losses) / jnp.maximum(jnp.sum(valid), 1).astype(y_pred.dtype)

    return {"none": explicit, "batch_all": batch_all, "batch_hard": batch_hard}[mining]


LOSSES: dict[str, Callable[[ComponentSpec], LossFn]] = {
    "binary_crossentropy": lambda s: binary_crossentropy(s["from_logits"]),
    "categorical_crossentropy": lambda s: categorical_crossentropy(s["from_logits"]),
    "sparse_categorical_crossentropy": lambda s: sparse_categorical_crossentropy(s["from_logits"]),
    "binary_focal": lambda s: binary_focal(s["gamma"], s["alpha"], s["from_logits"]),
    "categorical_focal": lambda s: categorical_focal(
        s["gamma"], None if s["alpha"] is None else tuple(map(float, s["alpha"])),
        s["from_logits"]),
    "triplet": lambda s: triplet(s["margin"], s["mining"]),
}
