"""Reference losses: every canonical loss of ``docs/canonical.md`` in float64 NumPy.

Straight from the formulas, for clarity rather than speed. Conventions shared by every loss:

- the result is a MEAN over every axis except a class axis (samples, and time steps for sequence
  outputs); a class axis (the last one of categorical losses) is summed;
- probabilities are clipped to ``[1e-7, 1 - 1e-7]`` before any logarithm;
- ``from_logits=True`` takes the stable path: ``log sigmoid(z) = -softplus(-z)``,
  ``log(1 - sigmoid(z)) = -softplus(z)`` and a max-shifted log-softmax; nothing is clipped there.

``loss_value`` resolves the spec through the catalogue (so a missing hyperparameter gets its one
canonical default) and calls the function of the same name, or, for a loss a plugin added,
the ``reference`` of its catalogue definition.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from orchestrator.canonical import catalogue
from orchestrator.canonical.catalogue import ComponentSpec
from orchestrator.canonical.targets import check_target

PROB_CLIP = 1e-7  # probabilities are clipped to [PROB_CLIP, 1 - PROB_CLIP] before a log


# --- numerically stable building blocks -------------------------------------------------------


def softplus(z: np.ndarray) -> np.ndarray:
    """log(1 + exp(z)), without overflow."""
    return np.logaddexp(0.0, z)


def log_softmax(z: np.ndarray) -> np.ndarray:
    """log softmax over the last axis, shifted by the maximum so that exp never overflows."""
    shifted = z - np.max(z, axis=-1, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))


def _clip(p: np.ndarray) -> np.ndarray:
    return np.clip(p, PROB_CLIP, 1.0 - PROB_CLIP)


def _f64(a: object) -> np.ndarray:
    return np.array(a, dtype=np.float64)


def _binary_logs(y_pred: np.ndarray,
                 from_logits: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(p, log p, log(1 - p)) for binary losses, from probabilities or logits."""
    if from_logits:
        log_p = -softplus(-y_pred)
        log_q = -softplus(y_pred)
        return np.exp(log_p), log_p, log_q
    p = _clip(y_pred)
    return p, np.log(p), np.log(1.0 - p)


def _class_logs(y_pred: np.ndarray, from_logits: bool) -> tuple[np.ndarray, np.ndarray]:
    """(p, log p) over the last (class) axis, from probabilities or logits."""
    if from_logits:
        log_p = log_softmax(y_pred)
        return np.exp(log_p), log_p
    p = _clip(y_pred)  # no renormalization: only clipping
    return p, np.log(p)


# --- the losses -------------------------------------------------------------------------------


def binary_crossentropy(y_true: np.ndarray, y_pred: np.ndarray, *, from_logits: bool) -> float:
    """mean of -[y log p + (1 - y) log(1 - p)] over every element."""
    y, z = _f64(y_true), _f64(y_pred)
    _, log_p, log_q = _binary_logs(z, from_logits)
    return float(np.mean(-(y * log_p + (1.0 - y) * log_q)))


def categorical_crossentropy(y_true: np.ndarray, y_pred: np.ndarray, *,
                             from_logits: bool) -> float:
    """-sum_i y_i log p_i per sample (last axis = classes), mean over the leading axes."""
    y, z = _f64(y_true), _f64(y_pred)
    _, log_p = _class_logs(z, from_logits)
    return float(np.mean(-np.sum(y * log_p, axis=-1)))


def sparse_categorical_crossentropy(y_true: np.ndarray, y_pred: np.ndarray, *,
                                    from_logits: bool) -> float:
    """-log p_y with integer labels y of shape y_pred.shape[:-1], mean over them."""
    z = _f64(y_pred)
    labels = np.asarray(y_true)
    _, log_p = _class_logs(z, from_logits)
    picked = np.take_along_axis(log_p, labels[..., None], axis=-1)[..., 0]
    return float(np.mean(-picked))


def binary_focal(y_true: np.ndarray, y_pred: np.ndarray, *, gamma: float, alpha: float | None,
                 from_logits: bool) -> float:
    """Lin et al. 2017: -alpha_t (1 - p_t)^gamma log p_t, written for soft labels as
    y a1 (1 - p)^gamma (-log p) + (1 - y) a0 p^gamma (-log(1 - p)), a1 = alpha, a0 = 1 - alpha
    (both 1 when alpha is None); mean over every element."""
    y, z = _f64(y_true), _f64(y_pred)
    p, log_p, log_q = _binary_logs(z, from_logits)
    a1, a0 = (1.0, 1.0) if alpha is None else (alpha, 1.0 - alpha)
    positive = y * a1 * (1.0 - p) ** gamma * (-log_p)
    negative = (1.0 - y) * a0 * p ** gamma * (-log_q)
    return float(np.mean(positive + negative))


def categorical_focal(y_true: np.ndarray, y_pred: np.ndarray, *, gamma: float,
                      alpha: Sequence[float] | None, from_logits: bool) -> float:
    """-sum_i alpha_i (1 - p_i)^gamma y_i log p_i per sample (alpha_i = 1 when alpha is None),
    mean over the leading axes."""
    y, z = _f64(y_true), _f64(y_pred)
    classes = z.shape[-1]
    if alpha is None:
        weights = np.ones(classes)
    else:
        weights = _f64(alpha)
        if weights.shape != (classes,):
            raise ValueError(f"categorical_focal: alpha has {weights.size} entries, "
                             f"y_pred has {classes} classes")
    p, log_p = _class_logs(z, from_logits)
    per_class = -weights * (1.0 - p) ** gamma * y * log_p
    return float(np.mean(np.sum(per_class, axis=-1)))


def squared_distance(a: np.ndarray, b: np.ndarray) -> float:
    """||a - b||^2, the triplet loss's distance (squared, as in the lecture and FaceNet)."""
    return float(np.sum((a - b) ** 2))


def triplet(y_true: np.ndarray | None, y_pred: np.ndarray, *, margin: float, mining: str) -> float:
    """max(d(A, P) - d(A, N) + margin, 0) with d the squared L2 distance.

    - ``none``: y_pred [B, 3, D] holds (anchor, positive, negative); y_true is ignored; mean
      over the B triplets.
    - ``batch_all``: y_pred [B, D] embeddings, y_true [B] labels; every valid (a, p, n) with
      a != p, label(p) == label(a), label(n) != label(a); sum of the hinge terms divided by
      max(number of valid triplets, 1) (zero terms counted).
    - ``batch_hard``: per anchor with at least one positive (p != a) and one negative,
      max(max_p d(a, p) - min_n d(a, n) + margin, 0); mean over those anchors, 0 if none.
    """
    emb = _f64(y_pred)
    if mining == "none":
        if emb.ndim != 3 or emb.shape[1] != 3:
            raise ValueError(f"triplet (mining none): y_pred must be [batch, 3, dim], "
                             f"got {emb.shape}")
        terms = [max(squared_distance(a, p) - squared_distance(a, n) + margin, 0.0)
                 for a, p, n in emb]
        return float(np.mean(terms))
    if emb.ndim != 2:
        raise ValueError(f"triplet (mining {mining}): y_pred must be [batch, dim], got {emb.shape}")
    labels = np.asarray(y_true)
    batch = emb.shape[0]
    dist = np.array([[squared_distance(emb[i], emb[j]) for j in range(batch)]
                     for i in range(batch)])
    if mining == "batch_all":
        total, count = 0.0, 0
        for a in range(batch):
            for p in range(batch):
                if p == a or labels[p] != labels[a]:
                    continue
                for n in range(batch):
                    if labels[n] == labels[a]:
                        continue
                    total += max(dist[a, p] - dist[a, n] + margin, 0.0)
                    count += 1
        return total / max(count, 1)
    if mining == "batch_hard":
        terms = []
        for a in range(batch):
            positives = [dist[a, p] for p in range(batch) if p != a and labels[p] == labels[a]]
            negatives = [dist[a, n] for n in range(batch) if labels[n] != labels[a]]
            if positives and negatives:
                terms.append(max(max(positives) - min(negatives) + margin, 0.0))
        return float(np.mean(terms)) if terms else 0.0
    raise ValueError(f"triplet: unknown mining {mining!r}")


_LOSSES: dict[str, Callable[..., float]] = {
    "binary_crossentropy": binary_crossentropy,
    "categorical_crossentropy": categorical_crossentropy,
    "sparse_categorical_crossentropy": sparse_categorical_crossentropy,
    "binary_focal": binary_focal,
    "categorical_focal": categorical_focal,
    "triplet": triplet,
}


def loss_value(spec: ComponentSpec, y_true: np.ndarray | None, y_pred: np.ndarray) -> float:
    """The canonical loss ``spec`` (a ``loss`` component) of ``y_pred`` against ``y_true``.

    ``y_true`` is checked by ``orchestrator.canonical.targets.check_target`` (the check every
    backend shares): its shape follows from the loss's target kind and ``y_pred``'s shape.
    """
    resolved = catalogue.resolve("loss", spec.name, spec.params)
    y_true = check_target(resolved, y_true, np.shape(y_pred))
    fn = _LOSSES.get(resolved.name) or resolved.definition.reference  # a plugin's loss
    return float(fn(y_true, np.asarray(y_pred, dtype=np.float64), **resolved.params))
