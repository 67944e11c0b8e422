"""Plots shared by tasks and the runner (matplotlib, headless)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def pyplot():
    """matplotlib.pyplot on the headless Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


_pyplot = pyplot  # the former name


def integer_epochs(ax: Any) -> None:
    """Whole-number ticks on the x axis (epochs, trials): no 2.5th epoch."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def titled(figure: Any, label: str) -> Any:
    """Name the run (experiment, variant, backend, seed) above a task's figure, keeping the
    figure's own titles; returns the figure."""
    existing = figure.get_suptitle()
    if label not in existing:
        figure.suptitle(f"{label}: {existing}" if existing else label, fontsize=9)
        figure.tight_layout()
    return figure


def learning_curves(history: Mapping[str, Sequence[float]], title: str = "") -> Any:
    """Every per-epoch metric, losses on the left axis group, the rest on the right."""
    plt = pyplot()
    losses = {k: v for k, v in history.items() if k.endswith("loss")}
    others = {k: v for k, v in history.items() if not k.endswith("loss")}
    fig, axes = plt.subplots(1, 2 if others else 1, figsize=(11 if others else 6, 4),
                             squeeze=False)
    for ax, group, ylabel in ((axes[0][0], losses, "loss"),
                              *(((axes[0][1], others, "metric"),) if others else ())):
        for key, values in sorted(group.items()):
            ax.plot(range(1, len(values) + 1), values, marker="." if len(values) < 40 else None,
                    label=key)
        ax.set_xlabel("epoch")
        integer_epochs(ax)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if group:
            ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def confusion_matrix(matrix: np.ndarray, labels: Sequence[str], title: str = "") -> Any:
    """A confusion matrix with counts, rows = true class, normalized colours per row."""
    plt = pyplot()
    n = len(labels)
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * n, 0.8 + 0.6 * n))
    rows = matrix.sum(axis=1, keepdims=True)
    ax.imshow(matrix / np.maximum(rows, 1), cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), labels, rotation=45, ha="right")
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(n):
        for j in range(n):
            ax.text(j, i, str(int(matrix[i, j])), ha="center", va="center", fontsize=8,
                    color="white" if matrix[i, j] > 0.6 * max(rows[i, 0], 1) else "black")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def curves(series: Mapping[str, tuple[Sequence[float], Sequence[float]]], *, xlabel: str,
           ylabel: str, title: str = "", logy: bool = False) -> Any:
    """Several named (x, y) curves on one axis (comparisons across variants or backends)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, (x, y) in series.items():
        ax.plot(x, y, label=name)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    if xlabel == "epoch":
        integer_epochs(ax)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
