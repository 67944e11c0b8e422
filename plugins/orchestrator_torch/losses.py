"""The canonical losses in torch: one function per catalogue loss, mean-reduced, stable on logits.

Every loss reduces by the mean over all axes except a class axis. Probabilities are clipped to
[1e-7, 1 - 1e-7] before any log (the canonical clipping, not ``BCELoss``'s log clamp at -100);
the logits paths use softplus / log_softmax and never take log(sigmoid(z)) directly. Targets
arrive checked by the core (shape and dtype from the loss's target kind), so nothing here
broadcasts or reshapes them. ``LOSSES`` is the backend's table: canonical name -> builder.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from orchestrator.canonical.catalogue import ComponentSpec

CLIP = 1e-7

LossFn = Callable[[torch.Tensor | None, torch.Tensor], torch.Tensor]


def _clip(p: torch.Tensor) -> torch.Tensor:
    return torch.clamp(p, CLIP, 1.0 - CLIP)


def _binary_logs(y_pred: torch.Tensor, from_logits: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(log p, log(1 - p)) of the positive class."""
    if from_logits:
        return -F.softplus(-y_pred), -F.softplus(y_pred)
    p = _clip(y_pred)
    return torch.log(p), torch.log1p(-p)


def binary_crossentropy(from_logits: bool) -> LossFn:
    def fn(y: torch.Tensor | None, y_pred: torch.Tensor) -> torch.Tensor:
        log_p, log_q = _binary_logs(y_pred, from_logits)
        return -(y * log_p + (1 - y) * log_q).mean()
    return fn


def _class_log_probs(y_pred: torch.Tensor, from_logits: bool) -> torch.Tensor:
    """log p over the last (class) axis: log_softmax of logits, or log of clipped probabilities
    (no renormalization)."""
    if from_logits:
        return torch.log_softmax(y_pred, dim=-1)
    return torch.log(_clip(y_pred))


def categorical_crossentropy(from_logits: bool) -> LossFn:
    def fn(y: torch.Tensor | None, y_pred: torch.Tensor) -> torch.Tensor:
        return -(y * _class_log_probs(y_pred, from_logits)).sum(dim=-1).mean()
    return fn


def sparse_categorical_crossentropy(from_logits: bool) -> LossFn:
    def fn(y: torch.Tensor | None, y_pred: torch.Tensor) -> torch.Tensor:
        n_classes = y_pred.shape[-1]
        if from_logits:
            # cross_entropy fuses log_softmax and the gather: the same math, one kernel.
            return F.cross_entropy(y_pred.reshape(-1, n_classes), y.reshape(-1))
        p_true = torch.gather(y_pred, -1, y.unsqueeze(-1)).squeeze(-1)
        return -torch.log(_clip(p_true)).mean()
    return fn


def binary_focal(gamma: float, alpha: float | None, from_logits: bool) -> LossFn:
    a1, a0 = (1.0, 1.0) if alpha is None else (alpha, 1.0 - alpha)

    def fn(y: torch.Tensor | None, y_pred: torch.Tensor) -> torch.Tensor:
        if from_logits:
            # sigmoid(-z) for 1 - p keeps (1 - p)^gamma accurate where p rounds to 1.
            p, q = torch.sigmoid(y_pred), torch.sigmoid(-y_pred)
        else:
            p = _clip(y_pred)
            q = 1 - p
        log_p, log_q = _binary_logs(y_pred, from_logits)
        loss = -(y * a1 * q.pow(gamma) * log_p + (1 - y) * a0 * p.pow(gamma) * log_q)
        return loss.mean()
    return fn


def categorical_focal(gamma: float, alpha: tuple[float, ...] | None,
                      from_logits: bool) -> LossFn:
    weights: dict[tuple[torch.dtype, torch.device], torch.Tensor] = {}  # alpha, made once

    def alpha_tensor(like: torch.Tensor) -> torch.Tensor:
        key = (like.dtype, like.device)
        if key not in weights:
            if len(alpha) != like.shape[-1]:
                raise ValueError(f"categorical_focal: alpha has {len(alpha)} entries but the "
                                 f"predictions have {like.shape[-1]} classes")
            weights[key] = torch.tensor(alpha, dtype=like.dtype, device=like.device)
        return weights[key]

    def fn(y: torch.Tensor | None, y_pred: torch.Tensor) -> torch.Tensor:
        log_p = _class_log_probs(y_pred, from_logits)
        p = torch.exp(log_p) if from_logits else _clip(y_pred)
        terms = (1 - p).pow(gamma) * y * log_p
        if alpha is not None:
            terms = terms * alpha_tensor(y_pred)
        return -terms.sum(dim=-1).mean()
    return fn


def _pairwise_sq_dists(e: torch.Tensor) -> torch.Tensor:
    """d[a, b] = sum((e_a - e_b)^2), from broadcast differences (exact zero on the diagonal,
    unlike the |a|^2 - 2ab + |b|^2 expansion)."""
    return (e.unsqueeze(1) - e.unsqueeze(0)).pow(2).sum(dim=-1)


def triplet(margin: float, mining: str) -> LossFn:
    def explicit(y: torch.Tensor | None, y_pred: torch.Tensor) -> torch.Tensor:
        anchor, positive, negative = y_pred.unbind(dim=1)
        d_ap = (anchor - positive).pow(2).sum(dim=-1)
        d_an = (anchor - negative).pow(2).sum(dim=-1)
        return F.relu(d_ap - d_an + margin).mean()

    def masks(y: torch.Tensor, d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        same = y.unsqueeze(0) == y.unsqueeze(1)
        eye = torch.eye(len(y), dtype=torch.bool, device=d.device)
        return same & ~eye, ~same  # positive[a, p], negative[a, n]

    def batch_all(y: torch.Tensor | None, y_pred: torch.Tensor) -> torch.Tensor:
        d = _pairwise_sq_dists(y_pred)
        positive, negative = masks(y, d)
        valid = positive.unsqueeze(2) & negative.unsqueeze(1)  # [a, p, n]
        losses = F.relu(d.unsqueeze(2) - d.unsqueeze(1) + margin) * valid
        # count stays a tensor: no host sync inside the training step
        return losses.sum() / valid.sum().clamp(min=1).to(y_pred.dtype)

    def batch_hard(y: torch.Tensor | None, y_pred: torch.Tensor) -> torch.Tensor:
        d = _pairwise_sq_dists(y_pred)
        positive, negative = masks(y, d)
        hardest_pos = torch.where(positive, d, float("-inf")).max(dim=1).values
        hardest_neg = torch.where(negative, d, float("inf")).min(dim=1).values
        valid = positive.any(dim=1) & negative.any(dim=1)
        losses = torch.where(valid, F.relu(hardest_pos - hardest_neg + margin), 0.0)
        return losses.sum() / valid.sum().clamp(min=1).to(y_pred.dtype)

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
