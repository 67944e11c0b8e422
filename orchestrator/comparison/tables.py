"""The comparison as tables of text, one model rendered four ways: rich (terminal), markdown,
HTML (the report) and JSON (every number at full precision).

The main table has the backends as columns and one row per variant and metric: mean ± standard
deviation, the 95 % interval and n per backend, then the paired difference to the first backend.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from orchestrator.comparison.analysis import Comparison, ExperimentComparison


@dataclass
class TextTable:
    title: str
    columns: list[str]
    rows: list[list[str]]


def number(value: Any) -> str:
    """Metric values: 4 decimals (large values: 1 decimal; tiny ones, such as gradient norms,
    in scientific notation rather than 0.0000); missing: '-'."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    value = float(value)
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value != 0 and abs(value) < 1e-4:
        return f"{value:.2e}"
    return f"{value:.1f}" if abs(value) >= 1000 else f"{value:.4f}"


def signed(value: Any) -> str:
    """Differences: sign always; tiny ones in scientific notation."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    value = float(value)
    if value == 0 or abs(value) >= 1e-4:
        return f"{value:+.4f}"
    return f"{value:+.2e}"


def ratio(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{float(value):.2e}"


def p_value(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{float(value):.3g}"


def summary_cell(row: pd.Series) -> str:
    if row["n"] == 0:
        return "-"
    text = f"{number(row['mean'])}"
    if row["n"] > 1:
        text += f" ± {number(row['std'])} [{number(row['low'])}, {number(row['high'])}]"
    return text + f" n={row['n']}"


def difference_cell(row: pd.Series) -> str:
    if row["n"] == 0:
        return "no matched unit"
    text = signed(row["mean"])
    if row["n"] > 1:
        text += f" [{signed(row['low'])}, {signed(row['high'])}]"
    if row["n"] < 2:
        return f"{text} n={row['n']}, {row['test']}"
    return f"{text} n={row['n']}, paired t p={p_value(row['p_t'])}, " \
        f"Wilcoxon p={p_value(row['p_wilcoxon'])}"


def metrics_table(exp: ExperimentComparison) -> TextTable:
    backends = exp.info.backends
    columns = ["variant", "metric", *backends]
    columns += [f"{b} - {backends[0]} (paired)" for b in backends[1:]]
    rows = []
    if exp.summaries.empty:
        return TextTable(f"{exp.name}: no final metrics", columns, rows)
    for (variant, metric), group in exp.summaries.groupby(["variant", "metric"], sort=False):
        cells = {r["backend"]: summary_cell(r) for _, r in group.iterrows()}
        row = [variant, metric, *(cells.get(b, "-") for b in backends)]
        for backend in backends[1:]:
            match = exp.differences[(exp.differences["variant"] == variant)
                                    & (exp.differences["metric"] == metric)
                                    & (exp.differences["backend"] == backend)]
            row.append(difference_cell(match.iloc[0]) if not match.empty else "-")
        rows.append(row)
    units = "seeds x folds" if exp.units.get("unit", pd.Series(dtype=str)).str.contains(
        "fold").any() else "seeds"
    return TextTable(f"{exp.name}: mean ± std [95 % t-interval] over {units}, n stated",
                     columns, rows)


def agreement_table(exp: ExperimentComparison, rtol: float) -> TextTable:
    columns = ["variant", "backends", "units", "epochs", "epoch 1 rel. diff", "max rel. diff",
               f"first epoch > {rtol:g}"]
    rows = [[r["variant"], f"{r['backend']} vs {r['reference']}", str(r["units"]),
             str(r["epochs"]), ratio(r["first_epoch_difference"]), ratio(r["max_difference"]),
             "never" if r["first_epoch_over_rtol"] is None
             or pd.isna(r["first_epoch_over_rtol"]) else str(int(r["first_epoch_over_rtol"]))]
            for _, r in exp.agreement.iterrows()]
    return TextTable(f"{exp.name}: train/loss per epoch, |other - first| / |first|",
                     columns, rows)


def speed_table(exp: ExperimentComparison) -> TextTable:
    columns = ["variant", "backend", "runs (alone)", "samples/s", "s/epoch", "samples/s alone",
               "speed vs first (alone)", "peak RSS MB"]
    rows = [[r["variant"], r["backend"], f"{r['runs']} ({r['alone']})",
             number(r["samples_per_second"]), number(r["epoch_seconds"]),
             number(r["alone_samples_per_second"]),
             "-" if pd.isna(r["ratio"]) else f"{r['ratio']:.2f}x",
             "-" if pd.isna(r["peak_rss_mb"]) else f"{r['peak_rss_mb']:.0f}"]
            for _, r in exp.speed.iterrows()]
    return TextTable(f"{exp.name}: speed (median over epochs) and memory", columns, rows)


def studies_table(exp: ExperimentComparison) -> TextTable:
    columns = ["backend", "study", "status", "metric", "best value", "best trial",
               "complete / pruned / failed", "pruned share", "epochs trained"]
    rows = [[r["backend"], str(r["study"]), r["status"], f"{r['metric']} ({r['direction']})",
             number(r["best_value"]), "-" if r["best_trial"] is None
             or pd.isna(r["best_trial"]) else str(int(r["best_trial"])),
             f"{r['complete']} / {r['pruned']} / {r['failed']}",
             "-" if pd.isna(r["pruned_share"]) else f"{r['pruned_share']:.0%}",
             f"{r['epochs_trained']}" + (f" of {r['epochs_without_pruning']}"
                                         if r["epochs_without_pruning"] else "")]
            for _, r in exp.studies.iterrows()]
    return TextTable(f"{exp.name}: tuning studies", columns, rows)


def experiment_tables(exp: ExperimentComparison, rtol: float) -> list[TextTable]:
    tables = []
    if not exp.summaries.empty:
        tables.append(metrics_table(exp))
    if not exp.agreement.empty:
        tables.append(agreement_table(exp, rtol))
    if not exp.speed.empty:
        tables.append(speed_table(exp))
    if not exp.studies.empty:
        tables.append(studies_table(exp))
    return tables


# --- renderers ----------------------------------------------------------------------------


def to_rich(table: TextTable) -> Any:
    from rich.markup import escape
    from rich.table import Table

    out = Table(title=escape(table.title), title_justify="left")
    for column in table.columns:
        out.add_column(escape(column))
    for row in table.rows:
        out.add_row(*(escape(cell) for cell in row))
    return out


def to_markdown(table: TextTable) -> str:
    def clean(cell: str) -> str:
        return cell.replace("|", "\\|")

    lines = [f"**{clean(table.title)}**", "",
             "| " + " | ".join(clean(c) for c in table.columns) + " |",
             "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(clean(c) for c in row) + " |" for row in table.rows]
    return "\n".join(lines) + "\n"


def to_html(table: TextTable) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                   for row in table.rows)
    return (f"<h3>{html.escape(table.title)}</h3><table><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table>")


def _plain(value: Any) -> Any:
    """A JSON-ready Python value: NaN and missing as null, infinities as strings."""
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        value = float(value)
        if math.isnan(value):
            return None
        return value if math.isfinite(value) else ("inf" if value > 0 else "-inf")
    return value


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): _plain(v) for k, v in row.items()}
            for row in frame.to_dict(orient="records")]


def to_json(comparison: Comparison) -> dict[str, Any]:
    """Every number at full precision (NaN as null)."""
    return {
        "store": comparison.selection.uri, "rtol": comparison.rtol,
        "experiments": [{
            "name": exp.name, "experiment_id": exp.info.experiment_id,
            "backends": exp.info.backends, "variants": exp.info.variants,
            "main_metric": exp.info.main_metric, "compared_runs": exp.compared_ids,
            "metrics": _records(exp.summaries), "differences": _records(exp.differences),
            "curve_agreement": _records(exp.agreement), "speed": _records(exp.speed),
            "runs": _records(exp.units), "studies": _records(exp.studies),
            "notes": exp.notes,
        } for exp in comparison.experiments],
    }
