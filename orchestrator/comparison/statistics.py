"""Per variant and metric: each backend's summary over units, and each other backend's paired
difference to the first backend over the units both have (a seed present on one side only is
reported, never silently dropped).

A unit is one seed, or one (seed, fold) of a cross-validated run. The same seed means the same
initial weights and batches (and folds) on every backend, so the backends are compared unit by
unit: the difference ``other - first`` per unit, its mean and 95 % t-interval, the paired t-test
and the Wilcoxon signed-rank test on the same pairs (``orchestrator.evaluation.statistics``).
docs/comparison.md says how to read them (with 3 seeds Wilcoxon cannot go below p = 0.25).
"""

from __future__ import annotations

from dataclasses import asdict

import pandas as pd

from orchestrator.evaluation import statistics as stats

TESTS = "paired t-test and Wilcoxon signed-rank"


def summary(values: pd.Series) -> dict:
    """n, mean, std, low, high of the values that exist (all NaN when there is none)."""
    values = values.dropna()
    if values.empty:
        nan = float("nan")
        return {"n": 0, "mean": nan, "std": nan, "low": nan, "high": nan}
    result = stats.summarize(values.to_numpy(dtype=float))
    return {k: getattr(result, k) for k in ("n", "mean", "std", "low", "high")}


def difference(reference: pd.Series, other: pd.Series) -> dict:
    """``other - reference`` over the units (index) both have; the units only one has."""
    reference, other = reference.dropna(), other.dropna()
    matched = [u for u in reference.index if u in other.index]
    row = {"only_reference": tuple(u for u in reference.index if u not in other.index),
           "only_other": tuple(u for u in other.index if u not in reference.index)}
    nan = float("nan")
    if not matched:
        return {"n": 0, "mean": nan, "std": nan, "low": nan, "high": nan, "p_t": nan,
                "p_wilcoxon": nan, "test": "no matched unit", **row}
    result = stats.paired(other.loc[matched].to_numpy(dtype=float),
                          reference.loc[matched].to_numpy(dtype=float))
    values = {k: v for k, v in asdict(result).items() if k not in ("confidence", "note")}
    test = TESTS if result.n > 1 else f"no test possible ({result.n} matched unit)"
    return {**values, "test": test, **row}


def metric_columns(units: pd.DataFrame, main_metric: str) -> list[str]:
    """The final metrics that have a value somewhere, the main metric first."""
    keys = [c.removeprefix("metrics.") for c in units.columns
            if c.startswith("metrics.") and units[c].notna().any()]
    return sorted(keys, key=lambda k: (k != main_metric, k))


def metric_tables(units: pd.DataFrame, experiment: str, variants: list[str],
                  backends: list[str], main_metric: str
                  ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per variant, metric and backend the summary over units; per variant, metric and other
    backend the paired difference to the first backend."""
    mine = units[units["experiment"] == experiment]
    summaries, differences = [], []
    for variant in variants:
        rows = mine[mine["variant"] == variant]
        if rows.empty:
            continue
        for key in metric_columns(rows, main_metric):
            series = {b: rows[rows["backend"] == b].set_index("unit")[f"metrics.{key}"]
                      for b in backends}
            for backend in backends:
                summaries.append({"experiment": experiment, "variant": variant, "metric": key,
                                  "backend": backend, **summary(series[backend])})
            for backend in backends[1:]:
                differences.append({"experiment": experiment, "variant": variant,
                                    "metric": key, "reference": backends[0],
                                    "backend": backend,
                                    **difference(series[backends[0]], series[backend])})
    return pd.DataFrame(summaries), pd.DataFrame(differences)


def unmatched_notes(differences: pd.DataFrame) -> list[str]:
    """One line per variant, backend and set of units present on one side only (naming the
    metrics when not every metric is concerned, e.g. a threshold never reached)."""
    if differences.empty:
        return []
    groups: dict[tuple, list[str]] = {}
    every: dict[tuple, set[str]] = {}
    for _, row in differences.iterrows():
        where = (row["experiment"], row["variant"])
        every.setdefault(where, set()).add(row["metric"])
        for units, backend in ((row["only_reference"], row["reference"]),
                               (row["only_other"], row["backend"])):
            if units:
                groups.setdefault((*where, tuple(units), backend), []).append(row["metric"])
    notes = []
    for (experiment, variant, units, backend), metrics in groups.items():
        which = "" if set(metrics) == every[(experiment, variant)] else \
            f" for {', '.join(metrics)}"
        notes.append(f"{experiment}: [{variant}] {', '.join(units)} only on {backend}{which} "
                     "(left out of the paired differences)")
    return notes
