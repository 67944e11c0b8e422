"""The canonical losses written in TensorFlow ops (no Keras loss classes, whose defaults differ).

Targets arrive checked by the core (shape and dtype from the loss's target kind), so nothing
here broadcasts them. ``LOSSES`` (at the end) is the backend's table: canonical name -> builder.
"""

from __future__ import annotations

from collections.abc import Callable

from orchestrator.canonical.catalogue import ComponentSpec

from ._tf import tf

EPSILON = 1e-7  # probabilities are clipped to [EPSILON, 1 - EPSILON] before any log

LossFn = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]

# --- log-probabilities: one place for clipping (probabilities) and stability (logits) ----------


def _binary_logs(y_pred: tf.Tensor, from_logits: bool) -> tuple[tf.Tensor, tf.Tensor]:
    """(log p, log(1 - p)) of a sigmoid output."""
    if from_logits:
        # log sigmoid(z) = -softplus(-z) and log(1 - sigmoid(z)) = -softplus(z): never log(0).
        return -tf.nn.softplus(-y_pred), -tf.nn.softplus(y_pred)
    # clip(1 - p) equals 1 - clip(p) in exact arithmetic, but in float32 1 - 1e-7 rounds to
    # 1 - 1.19e-7; clipping 1 - p itself keeps log(1 - p) >= log(1e-7) exactly as specified.
    return (tf.math.log(tf.clip_by_value(y_pred, EPSILON, 1.0 - EPSILON)),
            tf.math.log(tf.clip_by_value(1.0 - y_pred, EPSILON, 1.0 - EPSILON)))


def _class_log_probs(y_pred: tf.Tensor, from_logits: bool) -> tf.Tensor:
    """log p over the last (class) axis; probabilities are clipped, never renormalized."""
    if from_logits:
        return tf.nn.log_softmax(y_pred, axis=-1)
    return tf.math.log(tf.clip_by_value(y_pred, EPSILON, 1.0 - EPSILON))


def _one_hot(labels: tf.Tensor, like: tf.Tensor) -> tf.Tensor:
    return tf.one_hot(tf.cast(labels, tf.int32), tf.shape(like)[-1], dtype=like.dtype)


# --- cross entropies --------------------------------------------------------------------------


def binary_crossentropy(y_true: tf.Tensor, y_pred: tf.Tensor, from_logits: bool) -> tf.Tensor:
    log_p, log_q = _binary_logs(y_pred, from_logits)
    y = tf.cast(y_true, y_pred.dtype)
    return tf.reduce_mean(-(y * log_p + (1.0 - y) * log_q))


def categorical_crossentropy(y_true: tf.Tensor, y_pred: tf.Tensor,
                             from_logits: bool) -> tf.Tensor:
    y = tf.cast(y_true, y_pred.dtype)
    return tf.reduce_mean(-tf.reduce_sum(y * _class_log_probs(y_pred, from_logits), axis=-1))


def sparse_categorical_crossentropy(y_true: tf.Tensor, y_pred: tf.Tensor,
                                    from_logits: bool) -> tf.Tensor:
    log_p = _class_log_probs(y_pred, from_logits)
    return tf.reduce_mean(-tf.reduce_sum(_one_hot(y_true, y_pred) * log_p, axis=-1))


# --- focal losses -----------------------------------------------------------------------------


def binary_focal(y_true: tf.Tensor, y_pred: tf.Tensor, gamma: float, alpha: float | None,
                 from_logits: bool) -> tf.Tensor:
    log_p, log_q = _binary_logs(y_pred, from_logits)
    if from_logits:
        # 1 - sigmoid(z) = sigmoid(-z): exact where 1 - p would round to 0 in float32.
        p, q = tf.sigmoid(y_pred), tf.sigmoid(-y_pred)
    else:
        p = tf.clip_by_value(y_pred, EPSILON, 1.0 - EPSILON)
        q = tf.clip_by_value(1.0 - y_pred, EPSILON, 1.0 - EPSILON)
    a1, a0 = (1.0, 1.0) if alpha is None else (alpha, 1.0 - alpha)
    y = tf.cast(y_true, y_pred.dtype)
    loss = (y * a1 * tf.pow(q, gamma) * -log_p
            + (1.0 - y) * a0 * tf.pow(p, gamma) * -log_q)
    return tf.reduce_mean(loss)


def categorical_focal(y_true: tf.Tensor, y_pred: tf.Tensor, gamma: float,
                      alpha: tuple[float, ...] | None, from_logits: bool) -> tf.Tensor:
    log_p = _class_log_probs(y_pred, from_logits)
    p = tf.exp(log_p)  # from probabilities: the clipped p, consistent with its log
    y = tf.cast(y_true, y_pred.dtype)
    per_class = tf.pow(1.0 - p, gamma) * y * -log_p
    if alpha is not None:
        classes = y_pred.shape[-1]
        if classes is not None and classes != len(alpha):
            raise ValueError(f"categorical_focal: alpha has {len(alpha)} entries but y_pred "
                             f"has {classes} classes; give one alpha_i per class")
        per_class = per_class * tf.constant(alpha, dtype=y_pred.dtype)
    return tf.reduce_mean(tf.reduce_sum(per_class, axis=-1))


# --- triplet loss -----------------------------------------------------------------------------


def _squared_distances(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    # Broadcast differences, not |a|^2 - 2ab + |b|^2: exact zeros on the diagonal, no
    # cancellation, and the gradient is the plain 2 (a - b).
    return tf.reduce_sum(tf.square(a - b), axis=-1)


def triplet(y_true: tf.Tensor, y_pred: tf.Tensor, margin: float, mining: str) -> tf.Tensor:
    if mining == "none":
        anchor, positive, negative = y_pred[:, 0], y_pred[:, 1], y_pred[:, 2]
        gap = _squared_distances(anchor, positive) - _squared_distances(anchor, negative)
        return tf.reduce_mean(tf.nn.relu(gap + margin))
    dist = _squared_distances(y_pred[:, None, :], y_pred[None, :, :])  # [B, B]
    labels = tf.reshape(y_true, [-1])
    same = tf.equal(labels[:, None], labels[None, :])
    not_self = tf.logical_not(tf.eye(tf.shape(labels)[0], dtype=tf.bool))
    positive = tf.logical_and(same, not_self)  # [a, p]
    negative = tf.logical_not(same)  # [a, n]
    zero = tf.zeros([], y_pred.dtype)
    if mining == "batch_all":
        valid = tf.logical_and(positive[:, :, None], negative[:, None, :])  # [a, p, n]
        gaps = tf.nn.relu(dist[:, :, None] - dist[:, None, :] + margin)
        total = tf.reduce_sum(tf.where(valid, gaps, zero))
        count = tf.reduce_sum(tf.cast(valid, y_pred.dtype))
        return total / tf.maximum(count, 1.0)
    if mining == "batch_hard":
        # Masked entries get finite values that can never win the max/min (distances are >= 0),
        # so no inf enters the graph and no masked entry ties with a real one.
        hardest_pos = tf.reduce_max(tf.where(positive, dist, -tf.ones_like(dist)), axis=1)
        far = tf.stop_gradient(tf.reduce_max(dist)) + 1.0
        hardest_neg = tf.reduce_min(tf.where(negative, dist, far + tf.zeros_like(dist)), axis=1)
        valid = tf.logical_and(tf.reduce_any(positive, axis=1), tf.reduce_any(negative, axis=1))
        per_anchor = tf.where(valid, tf.nn.relu(hardest_pos - hardest_neg + margin), zero)
        count = tf.reduce_sum(tf.cast(valid, y_pred.dtype))
        return tf.reduce_sum(per_anchor) / tf.maximum(count, 1.0)
    raise ValueError(f"triplet: unknown mining {mining!r}; allowed: none, batch_all, batch_hard")


LOSSES: dict[str, Callable[[ComponentSpec], LossFn]] = {
    "binary_crossentropy": lambda s: lambda y, z: binary_crossentropy(y, z, s["from_logits"]),
    "categorical_crossentropy":
        lambda s: lambda y, z: categorical_crossentropy(y, z, s["from_logits"]),
    "sparse_categorical_crossentropy":
        lambda s: lambda y, z: sparse_categorical_crossentropy(y, z, s["from_logits"]),
    "binary_focal":
        lambda s: lambda y, z: binary_focal(y, z, s["gamma"], s["alpha"], s["from_logits"]),
    "categorical_focal":
        lambda s: lambda y, z: categorical_focal(y, z, s["gamma"], s["alpha"], s["from_logits"]),
    "triplet": lambda s: lambda y, z: triplet(y, z, s["margin"], s["mining"]),
}
