"""The comparison report: one self-contained HTML file (tables, and plots inline as base64 PNG,
so it opens without network access), plus the same plots as PNG files and the tables as CSV and
JSON for the ``comparison`` MLflow run.
"""

from __future__ import annotations

import base64
import datetime
import html
import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from orchestrator.comparison import curves, plots, studies, tables
from orchestrator.comparison.analysis import Comparison, ExperimentComparison
from orchestrator.comparison.readonly import describe

STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; max-width: 1200px; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 13px; }
th, td { border: 1px solid #bbb; padding: 3px 8px; text-align: left; }
th { background: #eee; }
img { max-width: 100%; border: 1px solid #ddd; margin: 0.5em 0; }
.note { color: #8a4b00; }
.caption { font-size: 12px; color: #555; margin-bottom: 1.5em; }
"""


@dataclass
class Section:
    """One experiment's part of the report."""

    comparison: ExperimentComparison
    tables: list[tables.TextTable]
    figures: dict[str, bytes] = field(default_factory=dict)  # plots/NAME.png -> PNG
    captions: dict[str, str] = field(default_factory=dict)


def build_section(exp: ExperimentComparison, comparison: Comparison) -> Section:
    info, units = exp.info, comparison.selection.units
    histories = comparison.selection.histories
    backends = " vs ".join(info.backends)
    section = Section(exp, tables.experiment_tables(exp, comparison.rtol))
    for key, path in (("train/loss", "plots/train_loss.png"),
                      (info.curve_key, f"plots/{info.curve_key.replace('/', '_')}.png")):
        means = curves.mean_curves(units, histories, info.name, key)
        if means.empty:
            continue
        section.figures[path] = plots.png(plots.curves_figure(
            means, info.variants, info.backends, key=key,
            title=f"{info.name}: {key} per epoch, {backends}"))
        section.captions[path] = (f"{key} per epoch: mean over seeds (line), smallest to "
                                  "largest seed (band); colour = variant, line style = "
                                  "backend (the first wide and pale, the others dashed).")
    if not exp.epochs.empty:
        path = "plots/train_loss_difference.png"
        section.figures[path] = plots.png(plots.difference_figure(
            exp.epochs, info.variants, comparison.rtol,
            title=f"{info.name}: train/loss relative difference per epoch, {backends}"))
        section.captions[path] = ("Relative difference of train/loss to the first backend per "
                                  "epoch: mean over matched seeds (line), largest (dots); "
                                  f"the red line is rtol {comparison.rtol:g}.")
    if not exp.summaries.empty:
        metric = info.main_metric if info.main_metric in set(exp.summaries["metric"]) \
            else exp.summaries["metric"].iloc[0]
        path = f"plots/{metric.replace('/', '_')}.png"
        section.figures[path] = plots.png(plots.metric_figure(
            exp.summaries, info.variants, info.backends, metric=metric,
            title=f"{info.name}: {metric} per variant, {backends}"))
        section.captions[path] = f"{metric}: mean and 95 % t-interval over seeds, n stated."
    if not exp.studies.empty:
        per_backend = {r["backend"]: studies.history(comparison.selection.trials, r["run_id"],
                                                     r["direction"])
                       for _, r in exp.studies.iterrows()}
        metric = str(exp.studies["metric"].iloc[0])
        path = "plots/optimization_history.png"
        section.figures[path] = plots.png(plots.history_figure(
            per_backend, metric=metric,
            title=f"{info.name}: optimization history, {' vs '.join(per_backend)}"))
        section.captions[path] = "Each complete trial's value (dots) and the best so far."
    return section


def _section_html(section: Section) -> str:
    exp = section.comparison
    parts = [f"<h2>{html.escape(exp.name)}</h2>"]
    if exp.info.description:
        parts.append(f"<p>{html.escape(exp.info.description)}</p>")
    parts.append(f"<p>backends: {html.escape(', '.join(exp.info.backends))}; main metric: "
                 f"{html.escape(exp.info.main_metric)}; runs compared: "
                 f"{len(exp.compared_ids)}</p>")
    parts += [tables.to_html(t) for t in section.tables]
    if exp.notes:
        parts.append("<h3>Notes</h3><ul>" + "".join(
            f'<li class="note">{html.escape(n)}</li>' for n in exp.notes) + "</ul>")
    for path, data in section.figures.items():
        encoded = base64.b64encode(data).decode("ascii")
        parts.append(f'<img alt="{html.escape(path)}" src="data:image/png;base64,{encoded}">'
                     f'<div class="caption">{html.escape(section.captions.get(path, ""))}'
                     "</div>")
    return "\n".join(parts)


def render_html(sections: list[Section], comparison: Comparison) -> str:
    names = ", ".join(s.comparison.name for s in sections)
    when = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    body = "\n".join(_section_html(s) for s in sections)
    return (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Comparison: "
            f"{html.escape(names)}</title><style>{STYLE}</style></head><body>"
            f"<h1>Comparison: {html.escape(names)}</h1>"
            f"<p>store {html.escape(describe(comparison.selection.uri))}, {when}; curves agree "
            f"within rtol {comparison.rtol:g}; statistics: docs/comparison.md</p>"
            f"{body}</body></html>")


def write_html(sections: list[Section], comparison: Comparison, folder: Path) -> Path:
    """``folder/comparison-<time>.html``, one file per invocation."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = folder / f"comparison-{stamp}.html"
    path.write_text(render_html(sections, comparison), encoding="utf-8")
    return path


def write_folder(section: Section, comparison: Comparison, folder: Path) -> None:
    """What the ``comparison`` run holds: report.html, plots/*.png, tables/*.csv and *.json."""
    exp = section.comparison
    (folder / "plots").mkdir(parents=True, exist_ok=True)
    (folder / "tables").mkdir(parents=True, exist_ok=True)
    (folder / "report.html").write_text(render_html([section], comparison), encoding="utf-8")
    for path, data in section.figures.items():
        (folder / path).write_bytes(data)
    frames: dict[str, pd.DataFrame] = {
        "metrics": exp.summaries, "differences": exp.differences,
        "curve_agreement": exp.agreement, "train_loss_per_epoch": exp.epochs,
        "speed": exp.speed, "runs": exp.units, "studies": exp.studies}
    document = tables.to_json(Comparison(comparison.selection, comparison.rtol, [exp]))
    for name, frame in frames.items():
        if not frame.empty:
            frame.to_csv(folder / "tables" / f"{name}.csv", index=False)
    (folder / "tables" / "comparison.json").write_text(json.dumps(document, indent=1),
                                                       encoding="utf-8")
