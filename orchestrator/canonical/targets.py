"""Target checks: the one place that decides whether a ``y_true`` fits a loss and a prediction.

Every loss declares the kind of target it reads on its catalogue entry (``ComponentDef.target``,
one of ``catalogue.TARGETS``). From that kind and the shape of the predictions this module
derives the shape ``y_true`` must have, and rejects anything else with a ``ValueError`` instead of
letting a framework broadcast it: a ``[B]`` target against ``[B, 1]`` predictions would otherwise
become a ``[B, B]`` loss, and one-hot rows fed to a sparse loss (or class ids to a categorical one)
would silently compute something else. The NumPy reference and every backend (through the
contract in ``orchestrator.contract``) call ``check_target``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from orchestrator.canonical.catalogue import ComponentSpec

_WORDS = {
    "binary": "float targets of the predictions' shape",
    "one_hot": "one-hot (or soft) class rows of the predictions' shape",
    "class_ids": "integer class ids, the predictions' shape without the class axis",
    "labels": "integer labels, the predictions' shape without the last axis",
}


def target_shape(kind: str, pred_shape: Sequence[int]) -> tuple[int, ...] | None:
    """The shape ``y_true`` must have for predictions of ``pred_shape`` (None: not read)."""
    pred_shape = tuple(int(d) for d in pred_shape)
    if kind in ("binary", "one_hot"):
        return pred_shape
    if kind in ("class_ids", "labels"):
        return pred_shape[:-1]
    if kind == "none":
        return None
    raise ValueError(f"unknown target kind {kind!r}")


def is_integer_target(kind: str) -> bool:
    """Whether targets of this kind hold integers (class ids, labels)."""
    return kind in ("class_ids", "labels")


def check_target(loss: ComponentSpec, y_true: object, pred_shape: Sequence[int]
                 ) -> np.ndarray | None:
    """``y_true`` checked against ``loss`` and predictions of ``pred_shape``.

    Returns None when the loss does not read targets, an int64 array for class ids and labels
    (whole-number floats are accepted and converted), and the array unchanged (no copy) for
    float targets. Raises ``ValueError`` naming the loss, both shapes and what is expected.
    """
    kind = loss.target
    expected = target_shape(kind, pred_shape)
    if expected is None:
        return None
    if y_true is None:
        raise ValueError(f"{loss.name}: y_true is missing; expected {_WORDS[kind]} {expected}")
    y = np.asarray(y_true)
    if y.shape != expected:
        hint = ""
        if kind in ("binary", "one_hot") and y.shape == expected[:-1]:
            hint = " (class ids or a flat vector? this loss reads " + _WORDS[kind] + ")"
        elif is_integer_target(kind) and y.shape[:-1] == expected and y.ndim == len(expected) + 1:
            hint = " (one-hot rows? this loss reads " + _WORDS[kind] + ")"
        raise ValueError(f"{loss.name}: y_true has shape {y.shape} but the predictions have "
                         f"shape {tuple(pred_shape)}, so y_true must have shape {expected}"
                         f"{hint}")
    if not is_integer_target(kind):
        if not (np.issubdtype(y.dtype, np.floating) or np.issubdtype(y.dtype, np.integer)
                or y.dtype == np.bool_):
            raise ValueError(f"{loss.name}: y_true must be numbers, got dtype {y.dtype}")
        return y
    if not np.issubdtype(y.dtype, np.integer):
        if not (np.issubdtype(y.dtype, np.floating) and np.all(np.equal(np.mod(y, 1), 0))):
            raise ValueError(f"{loss.name}: y_true must hold {_WORDS[kind]}, got dtype "
                             f"{y.dtype} with non-integer values")
        y = y.astype(np.int64)
    elif y.dtype != np.int64:
        y = y.astype(np.int64)
    if kind == "class_ids" and y.size:
        classes = int(pred_shape[-1])
        low, high = int(y.min()), int(y.max())
        if low < 0 or high >= classes:
            raise ValueError(f"{loss.name}: class ids must lie in [0, {classes - 1}] "
                             f"(the predictions have {classes} classes), got {low}..{high}")
    return y


def one_hot(class_ids: np.ndarray, classes: int) -> np.ndarray:
    """Class ids as one-hot float32 rows (the form a ``one_hot`` loss reads)."""
    return np.eye(classes, dtype=np.float32)[np.asarray(class_ids, dtype=np.int64)]
