"""Task metrics computed in NumPy/scikit-learn from predictions (same code for every backend)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # overflow-free


def multiclass(y_true: np.ndarray, y_pred: np.ndarray, classes: int, prefix: str
               ) -> tuple[dict[str, float], np.ndarray]:
    """Accuracy and macro-F1 (as ``prefix/...``) and the confusion matrix."""
    from sklearn.metrics import confusion_matrix, f1_score

    metrics = {f"{prefix}/accuracy": float(np.mean(y_true == y_pred)),
               f"{prefix}/macro_f1": float(f1_score(y_true, y_pred, average="macro",
                                                    labels=range(classes), zero_division=0))}
    return metrics, confusion_matrix(y_true, y_pred, labels=range(classes))


def binary(y_true: np.ndarray, scores: np.ndarray, prefix: str, threshold: float = 0.5
           ) -> tuple[dict[str, float], np.ndarray]:
    """Average precision (PR-AUC), ROC-AUC, and F1/precision/recall of the positive (rare)
    class at ``threshold``; the 2x2 confusion matrix."""
    from sklearn.metrics import (average_precision_score, confusion_matrix, f1_score,
                                 precision_score, recall_score, roc_auc_score)

    predicted = (scores >= threshold).astype(int)
    both = len(np.unique(y_true)) == 2
    metrics = {
        f"{prefix}/average_precision": float(average_precision_score(y_true, scores))
        if both else float("nan"),
        f"{prefix}/roc_auc": float(roc_auc_score(y_true, scores)) if both else float("nan"),
        f"{prefix}/f1": float(f1_score(y_true, predicted, zero_division=0)),
        f"{prefix}/precision": float(precision_score(y_true, predicted, zero_division=0)),
        f"{prefix}/recall": float(recall_score(y_true, predicted, zero_division=0)),
    }
    return metrics, confusion_matrix(y_true, predicted, labels=[0, 1])


def epochs_to_threshold(losses: Sequence[float], threshold: float) -> float:
    """The first epoch (1-based) whose training loss is at or below ``threshold``; NaN if none."""
    for epoch, loss in enumerate(losses, start=1):
        if loss <= threshold:
            return float(epoch)
    return float("nan")


def predict_in_batches(model, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    return np.concatenate([model.predict(x[i:i + batch_size])
                           for i in range(0, len(x), batch_size)]) if len(x) else np.zeros((0,))


def class_probabilities(model, x: np.ndarray, from_logits: bool) -> np.ndarray:
    """A classifier's class probabilities for ``x`` (softmax of its outputs if they are
    logits), float32."""
    outputs = predict_in_batches(model, x)
    return np.asarray(softmax(outputs) if from_logits else outputs, dtype=np.float32)


def probability_scores(truth: np.ndarray, probabilities: np.ndarray, prefix: str = "test"
                       ) -> dict[str, float]:
    """``multiclass`` metrics of class probabilities (e.g. several networks' mean): their
    argmax against ``truth``, the classes counted from the last axis."""
    probabilities = np.asarray(probabilities)
    return multiclass(np.asarray(truth), probabilities.argmax(axis=-1), probabilities.shape[-1],
                      prefix)[0]


def validation_accuracy(model, split) -> dict[str, float]:
    """``val/accuracy`` of a classifier on the split's validation part (none without one)."""
    if split.x_val is None:
        return {}
    predicted = predict_in_batches(model, split.x_val).argmax(axis=-1)
    return {"val/accuracy": float(np.mean(predicted == split.y_val))}
