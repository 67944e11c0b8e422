"""The comparison's plots (matplotlib, headless): curves over seeds with the variant as colour and
the backend as line style, per-epoch differences between backends, the main metric with its
interval, and tuning histories. Every figure is titled with its experiment and backends, and
epoch axes have whole-number ticks.

Where two backends agree their curves coincide, so the first backend is drawn wide and pale and
the others thin and dashed on top: agreement shows as a dashed line inside a pale band, a
missing run as a lone line.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from orchestrator.evaluation.plots import integer_epochs, pyplot

STYLES = ({"linestyle": "-", "linewidth": 4.0, "alpha": 0.45},
          {"linestyle": "--", "linewidth": 1.4, "alpha": 1.0},
          {"linestyle": ":", "linewidth": 1.6, "alpha": 1.0},
          {"linestyle": "-.", "linewidth": 1.4, "alpha": 1.0})
FLOOR = 1e-17  # relative differences of exactly 0 on a log axis


def _colours(variants: list[str]) -> dict[str, Any]:
    plt = pyplot()
    cmap = plt.get_cmap("tab10")
    return {v: cmap(i % 10) for i, v in enumerate(variants)}


def _legend(ax: Any, variants: list[str], backends: list[str], colours: dict[str, Any]) -> None:
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=colours[v], linewidth=2, label=v) for v in variants
               if v != "-"]
    handles += [Line2D([], [], color="black", label=b, **STYLES[i % len(STYLES)])
                for i, b in enumerate(backends)]
    ax.legend(handles=handles, fontsize=7, loc="best")


def curves_figure(means: pd.DataFrame, variants: list[str], backends: list[str], *,
                  key: str, title: str) -> Any:
    """Mean over seeds per variant and backend, with the min-max band over seeds."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    colours = _colours(variants)
    for variant in variants:
        for i, backend in enumerate(backends):
            line = means[(means["variant"] == variant) & (means["backend"] == backend)]
            if line.empty:
                continue
            line = line.sort_values("step")
            ax.plot(line["step"], line["mean"], color=colours[variant],
                    **STYLES[i % len(STYLES)])
            if (line["n"] > 1).any():
                ax.fill_between(line["step"], line["low"], line["high"], color=colours[variant],
                                alpha=0.12, linewidth=0)
    if key.endswith("loss") and (means["low"] > 0).all() \
            and means["high"].max() > 20 * means["low"].min():
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel(key)
    integer_epochs(ax)
    ax.grid(alpha=0.3)
    _legend(ax, variants, backends, colours)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def difference_figure(epochs: pd.DataFrame, variants: list[str], rtol: float, *,
                      title: str) -> Any:
    """Per epoch, the relative train/loss difference of each other backend to the first: the
    mean over units as a line, the largest as dots."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.0))
    colours = _colours(variants)
    pairs = list(dict.fromkeys(epochs["backend"]))
    for variant in variants:
        for j, backend in enumerate(pairs):
            rows = epochs[(epochs["variant"] == variant) & (epochs["backend"] == backend)]
            if rows.empty:
                continue
            grouped = rows.groupby("epoch")["relative_difference"]
            mean = grouped.mean().clip(lower=FLOOR)
            ax.plot(mean.index, mean.values, color=colours[variant],
                    **STYLES[(j + 1) % len(STYLES)],
                    label=f"{variant} {backend}" if variant != "-" else backend)
            ax.scatter(mean.index, grouped.max().clip(lower=FLOOR).values, s=8,
                       color=colours[variant])
    ax.axhline(rtol, color="red", linewidth=0.8, label=f"rtol {rtol:g}")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("|other - first| / |first|, train/loss")
    integer_epochs(ax)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def metric_figure(summaries: pd.DataFrame, variants: list[str], backends: list[str], *,
                  metric: str, title: str) -> Any:
    """The metric per variant (rows) and backend (markers), mean and 95 % interval."""
    plt = pyplot()
    rows = summaries[summaries["metric"] == metric]
    fig, ax = plt.subplots(figsize=(7.5, 0.9 + 0.45 * len(variants) * max(len(backends), 1)))
    markers = ("o", "s", "^", "D")
    ticks, labels = [], []
    for i, variant in enumerate(variants):
        for j, backend in enumerate(backends):
            row = rows[(rows["variant"] == variant) & (rows["backend"] == backend)]
            y = i * (len(backends) + 1) + j
            ticks.append(y)
            labels.append(f"{variant} {backend}" if variant != "-" else backend)
            if row.empty or row.iloc[0]["n"] == 0:
                continue
            r = row.iloc[0]
            error = None if r["n"] < 2 else [[r["mean"] - r["low"]], [r["high"] - r["mean"]]]
            ax.errorbar([r["mean"]], [y], xerr=error, fmt=markers[j % len(markers)],
                        color=f"C{j}", capsize=3)
            ax.annotate(f"n={r['n']}", (r["mean"], y), textcoords="offset points",
                        xytext=(6, 4), fontsize=7)
    ax.set_yticks(ticks, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(f"{metric} (mean, 95 % t-interval)")
    ax.grid(alpha=0.3, axis="x")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def history_figure(histories: dict[str, pd.DataFrame], *, metric: str, title: str) -> Any:
    """Optimization history per backend: each complete trial's value, the best so far."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.0))
    for i, (backend, frame) in enumerate(histories.items()):
        ax.scatter(frame["number"], frame["value"], s=12, color=f"C{i}", alpha=0.6)
        ax.step(frame["number"], frame["best"], where="post", color=f"C{i}",
                label=f"{backend}: best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(metric)
    integer_epochs(ax)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def png(figure: Any) -> bytes:
    """The figure as PNG bytes (and closed)."""
    import io

    plt = pyplot()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    return buffer.getvalue()


