"""Speed and memory of the compared runs: samples per second and seconds per epoch (each run's
median over its epochs, so the first epoch's start-up does not dominate), peak resident memory,
and which runs shared the machine with other runs.

A run shares the cores when any other computing run of the store (any experiment; not the
waiting parents of studies, comparisons and parity checks, nor the run's own parent or folds)
was running at some time between its start and its end. Timings of such runs measure the
neighbours too, so the speed ratio between backends is computed from runs that ran alone only.
"""

from __future__ import annotations

import pandas as pd

from orchestrator.comparison.readback import IDLE_KINDS


def overlaps(units: pd.DataFrame, store: pd.DataFrame) -> pd.Series:
    """For each unit, how many other computing runs overlapped it in time."""
    if units.empty:
        return pd.Series(dtype=int)
    now = pd.Timestamp.now(tz="UTC")
    others = store[~store["kind"].isin(IDLE_KINDS)]
    ends = others["end_time"].fillna(now)
    counts = []
    for _, unit in units.iterrows():
        start, end = unit["start_time"], unit["end_time"] if pd.notna(unit["end_time"]) else now
        related = ((others["run_id"] == unit["run_id"]) | (others["run_id"] == unit["parent_id"])
                   | (others["parent_id"] == unit["run_id"]))
        during = (others["start_time"] < end) & (ends > start)
        counts.append(int((during & ~related).sum()))
    return pd.Series(counts, index=units.index, dtype=int)


def per_unit(units: pd.DataFrame, histories: pd.DataFrame, store: pd.DataFrame
             ) -> pd.DataFrame:
    """One row per unit: median samples/s and s/epoch, peak RSS, overlapping runs."""
    wide = histories[histories["key"].astype(str).str.startswith("system/")]
    if wide.empty:
        wide = pd.DataFrame({"run_id": ["-"], "key": ["system/none"], "value": [0.0]})
    medians = wide.groupby(["run_id", "key"])["value"].median().unstack()
    peaks = wide[wide["key"] == "system/peak_rss_mb"].groupby("run_id")["value"].max()
    frame = units[["experiment", "variant", "backend", "unit", "run_id"]].copy()
    frame["samples_per_second"] = frame["run_id"].map(
        medians.get("system/samples_per_second", pd.Series(dtype=float)))
    frame["epoch_seconds"] = frame["run_id"].map(
        medians.get("system/epoch_seconds", pd.Series(dtype=float)))
    frame["peak_rss_mb"] = frame["run_id"].map(peaks)
    frame["overlapping_runs"] = overlaps(units, store)
    frame["alone"] = frame["overlapping_runs"] == 0
    return frame


def speed_table(units: pd.DataFrame, experiment: str, backends: list[str]) -> pd.DataFrame:
    """Per variant and backend: runs, runs alone, mean samples/s and s/epoch (all runs and
    alone runs), mean peak RSS; ``ratio`` = alone samples/s over the first backend's."""
    mine = units[units["experiment"] == experiment]
    rows = []
    for variant, group in mine.groupby("variant", sort=False):
        reference = None
        for backend in backends:
            runs = group[group["backend"] == backend]
            if runs.empty:
                continue
            alone = runs[runs["alone"]]
            row = {"experiment": experiment, "variant": variant, "backend": backend,
                   "runs": len(runs), "alone": len(alone),
                   "samples_per_second": runs["samples_per_second"].mean(),
                   "epoch_seconds": runs["epoch_seconds"].mean(),
                   "alone_samples_per_second": alone["samples_per_second"].mean()
                   if len(alone) else float("nan"),
                   "peak_rss_mb": runs["peak_rss_mb"].mean()}
            if backend == backends[0]:
                reference = row["alone_samples_per_second"]
            row["ratio"] = (row["alone_samples_per_second"] / reference
                            if reference and reference == reference else float("nan"))
            rows.append(row)
    return pd.DataFrame(rows)
