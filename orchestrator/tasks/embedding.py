"""Metric learning: embeddings of scikit-learn's 8x8 digits trained with the triplet loss.

An MLP maps 64 pixels to a ``dim``-dimensional embedding (linear output). The loss is the
lecture's triplet loss on squared L2 distances, with the triplets mined inside each mini-batch
from the labels (``mining: batch_hard`` or ``batch_all``); the batches are the core's shuffled
mini-batches, so ``train.batch_size`` must be large enough for every class to appear with a
positive pair (128 of 10 classes does).

Evaluation is retrieval: every held-out test image is a query, the training images are the
gallery. ``test/recall_at_1`` is the fraction of queries whose nearest gallery embedding
(squared L2) has the query's class (= 1-nearest-neighbour accuracy); ``test/knn_accuracy`` is
the majority vote of the 5 nearest.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
from pydantic import Field, PositiveInt

from orchestrator.canonical import networks
from orchestrator.canonical.catalogue import ComponentSpec
from orchestrator.evaluation.metrics import predict_in_batches
from orchestrator.canonical.specs import ModelSpec
from orchestrator.contract.task import Evaluation, Options, Prepared, Split, Task

CLASSES = 10
INPUTS = 64


class EmbeddingData(Options):
    test_size: float = Field(0.2, gt=0, lt=1)
    val_size: float = Field(0.1, ge=0, lt=1)  # of the training part; 0: no validation set
    knn: PositiveInt = 5  # k of test/knn_accuracy


class EmbeddingModel(Options):
    dim: PositiveInt = 32  # embedding size (linear output)
    hidden: tuple[PositiveInt, ...] = (128,)
    activation: Literal["relu", "tanh", "sigmoid"] = "relu"
    norm: Literal["none", "batch", "layer"] = "none"
    dropout: float = Field(0.0, ge=0, lt=1)


# --- retrieval metrics (NumPy) ----------------------------------------------------------------


def squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[len(a), len(b)] squared L2 distances, in float64 (clipped at 0 against rounding)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    d = (a * a).sum(1)[:, None] - 2.0 * a @ b.T + (b * b).sum(1)[None, :]
    return np.maximum(d, 0.0)


def nearest(query: np.ndarray, gallery: np.ndarray, k: int, batch: int = 1024) -> np.ndarray:
    """Indices [len(query), k] of the k nearest gallery rows per query, nearest first (ties:
    the lower gallery index)."""
    k = min(k, len(gallery))
    out = []
    for start in range(0, len(query), batch):
        d = squared_distances(query[start:start + batch], gallery)
        out.append(np.argsort(d, axis=1, kind="stable")[:, :k])
    return np.concatenate(out) if out else np.zeros((0, k), dtype=np.int64)


def recall_at_1(query: np.ndarray, query_labels: np.ndarray, gallery: np.ndarray,
                gallery_labels: np.ndarray) -> float:
    """Fraction of queries whose nearest gallery item (squared L2) has the same label."""
    if len(query) == 0:
        return float("nan")
    idx = nearest(query, gallery, 1)[:, 0]
    return float(np.mean(np.asarray(gallery_labels)[idx] == np.asarray(query_labels)))


def knn_accuracy(query: np.ndarray, query_labels: np.ndarray, gallery: np.ndarray,
                 gallery_labels: np.ndarray, k: int = 5) -> float:
    """Accuracy of the majority vote of the k nearest gallery items; a tied vote goes to the
    class of the nearest item among the tied classes."""
    if len(query) == 0:
        return float("nan")
    gallery_labels = np.asarray(gallery_labels)
    idx = nearest(query, gallery, k)
    predicted = np.empty(len(query), dtype=gallery_labels.dtype)
    for i, row in enumerate(gallery_labels[idx]):
        values, counts = np.unique(row, return_counts=True)
        tied = set(values[counts == counts.max()].tolist())
        predicted[i] = next(label for label in row if label in tied)  # nearest first
    return float(np.mean(predicted == np.asarray(query_labels)))


def pca_scatter(embeddings: np.ndarray, labels: np.ndarray, title: str) -> Any:
    """The embeddings projected on their first two principal components, coloured by class."""
    from orchestrator.evaluation.plots import _pyplot

    plt = _pyplot()
    e = np.asarray(embeddings, dtype=np.float64)
    centred = e - e.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    xy = centred @ vt[:2].T if vt.shape[0] >= 2 else np.hstack([centred, np.zeros_like(centred)])
    explained = (s[:2] ** 2) / max(float((s ** 2).sum()), 1e-300)
    fig, ax = plt.subplots(figsize=(6, 5))
    cmap = plt.get_cmap("tab10")
    for c in np.unique(labels):
        mask = labels == c
        ax.scatter(xy[mask, 0], xy[mask, 1], s=9, color=cmap(int(c) % 10), label=str(c),
                   alpha=0.8)
    ax.set_xlabel(f"PC1 ({explained[0]:.0%} of variance)")
    ax.set_ylabel(f"PC2 ({explained[1]:.0%})" if len(explained) > 1 else "PC2")
    ax.legend(fontsize=7, markerscale=1.5, ncol=2, title="class", title_fontsize=8)
    ax.grid(alpha=0.3)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


# --- the task ---------------------------------------------------------------------------------


class EmbeddingTask(Task):
    name = "embedding"
    summary = ("triplet-loss embeddings of scikit-learn digits with in-batch mining; "
               "nearest-neighbour retrieval (recall@1) against the training set")
    DataOptions = EmbeddingData
    ModelOptions = EmbeddingModel
    main_metric = "test/recall_at_1"
    direction = "maximize"
    losses = ("triplet",)
    cv_split = "stratified"
    epoch_metric_names = ("val/recall_at_1",)
    final_metric_names = ("test/recall_at_1", "test/knn_accuracy", "test/embedding_norm",
                          "val/recall_at_1")

    def has_validation(self, data: EmbeddingData) -> bool:
        return data.val_size > 0

    def spec_bounds(self, data: EmbeddingData) -> dict:
        return {}

    def check(self, data: EmbeddingData, model: EmbeddingModel, loss: ComponentSpec) -> None:
        if loss.params.get("mining", "none") == "none":
            raise ValueError(
                "loss.mining: 'none' expects the network to output (anchor, positive, negative) "
                "triplets [batch, 3, dim]; this task embeds labelled images one by one and mines "
                "the triplets inside each batch: use batch_hard or batch_all")

    def prepare(self, data: EmbeddingData, *, seed: int, folds: int | None) -> Prepared:
        from orchestrator.tasks.digits import digits_prepared

        return digits_prepared(data.test_size, data.val_size, seed=seed, folds=folds,
                               tag="digits-embedding",
                               meta={"classes": CLASSES, "knn": data.knn},
                               options=data.model_dump())

    def model_spec(self, model: EmbeddingModel, prepared: Prepared) -> ModelSpec:
        return networks.mlp(INPUTS, model.dim, hidden=tuple(model.hidden),
                          activation=model.activation, norm=model.norm, dropout=model.dropout,
                          output_activation="linear")

    def targets(self, y: np.ndarray, loss: ComponentSpec, prepared: Prepared) -> np.ndarray:
        return np.asarray(y, dtype=np.int64)  # the labels the miner compares

    def epoch_metrics(self, model: Any, split: Split, prepared: Prepared,
                      loss: ComponentSpec) -> dict[str, float]:
        if split.x_val is None:
            return {}
        gallery = predict_in_batches(model, split.x_train)
        return {"val/recall_at_1": recall_at_1(predict_in_batches(model, split.x_val),
                                               split.y_val, gallery, split.y_train)}

    def evaluate(self, model: Any, split: Split, prepared: Prepared, loss: ComponentSpec,
                 history: Mapping[str, list[float]]) -> Evaluation:
        gallery = predict_in_batches(model, split.x_train)
        test = predict_in_batches(model, split.x_test)
        k = int(prepared.meta["knn"])
        metrics = {
            "test/recall_at_1": recall_at_1(test, split.y_test, gallery, split.y_train),
            "test/knn_accuracy": knn_accuracy(test, split.y_test, gallery, split.y_train, k),
            "test/embedding_norm": float(np.linalg.norm(test, axis=1).mean()),
        }
        if split.x_val is not None:
            metrics["val/recall_at_1"] = recall_at_1(predict_in_batches(model, split.x_val),
                                                     split.y_val, gallery, split.y_train)
        where = f" (fold {split.fold})" if split.fold is not None else ""
        figure = pca_scatter(test, split.y_test,
                             f"test embeddings{where}, recall@1 {metrics['test/recall_at_1']:.3f}")
        return Evaluation(metrics, {"plots/embedding_pca.png": figure})
