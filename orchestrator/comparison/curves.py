"""Agreement of the training curves between backends: per epoch, the relative difference of
``train/loss`` (or any per-epoch key) between each backend and the first, unit by unit.

``relative difference = |other - reference| / |reference|``. Matched units started from the same
weights and saw the same batches, so the curves should coincide up to float rounding; the first
epoch already shows a wrong formula, a later first epoch over the tolerance shows rounding
growing through training.
"""

from __future__ import annotations

import math

import pandas as pd

DEFAULT_RTOL = 1e-3


def relative_difference(reference: float, other: float) -> float:
    if reference == other:
        return 0.0
    if reference == 0:
        return math.inf
    return abs(other - reference) / abs(reference)


def per_epoch(units: pd.DataFrame, histories: pd.DataFrame, experiment: str,
              backends: list[str], key: str = "train/loss") -> pd.DataFrame:
    """One row per variant, unit, other backend and epoch both have: the two values and their
    relative difference."""
    mine = units[units["experiment"] == experiment]
    curves = histories[histories["key"] == key]
    rows = []
    if len(backends) < 2 or mine.empty:
        return pd.DataFrame(rows, columns=["experiment", "variant", "unit", "reference",
                                           "backend", "epoch", "reference_value", "value",
                                           "relative_difference"])
    for (variant, unit), group in mine.groupby(["variant", "unit"], sort=False):
        run_of = dict(zip(group["backend"], group["run_id"]))
        if backends[0] not in run_of:
            continue
        base = curves[curves["run_id"] == run_of[backends[0]]].set_index("step")["value"]
        for backend in backends[1:]:
            if backend not in run_of:
                continue
            values = curves[curves["run_id"] == run_of[backend]].set_index("step")["value"]
            for epoch in sorted(set(base.index) & set(values.index)):
                rows.append({"experiment": experiment, "variant": variant, "unit": unit,
                             "reference": backends[0], "backend": backend, "epoch": int(epoch),
                             "reference_value": float(base[epoch]),
                             "value": float(values[epoch]),
                             "relative_difference": relative_difference(float(base[epoch]),
                                                                        float(values[epoch]))})
    return pd.DataFrame(rows, columns=["experiment", "variant", "unit", "reference", "backend",
                                       "epoch", "reference_value", "value",
                                       "relative_difference"])


def agreement(epochs: pd.DataFrame, rtol: float) -> pd.DataFrame:
    """Per variant and other backend: units compared, the first epoch's relative difference
    (largest over units), the largest over all epochs, and the first epoch where it exceeds
    ``rtol`` (earliest over units; missing if never)."""
    rows = []
    if epochs.empty:
        return pd.DataFrame(rows, columns=["experiment", "variant", "reference", "backend",
                                           "units", "epochs", "first_epoch_difference",
                                           "max_difference", "first_epoch_over_rtol"])
    for (experiment, variant, reference, backend), group in epochs.groupby(
            ["experiment", "variant", "reference", "backend"], sort=False):
        first = group[group["epoch"] == group["epoch"].min()]
        over = group[group["relative_difference"] > rtol]
        rows.append({"experiment": experiment, "variant": variant, "reference": reference,
                     "backend": backend, "units": int(group["unit"].nunique()),
                     "epochs": int(group["epoch"].nunique()),
                     "first_epoch_difference": float(first["relative_difference"].max()),
                     "max_difference": float(group["relative_difference"].max()),
                     "first_epoch_over_rtol": int(over["epoch"].min()) if not over.empty
                     else None})
    return pd.DataFrame(rows)


def mean_curves(units: pd.DataFrame, histories: pd.DataFrame, experiment: str, key: str
                ) -> pd.DataFrame:
    """Per variant, backend and epoch: mean, min and max of ``key`` over units (for plots)."""
    mine = units[units["experiment"] == experiment][["run_id", "variant", "backend"]]
    curves = histories[histories["key"] == key].merge(mine, on="run_id")
    if curves.empty:
        return pd.DataFrame(columns=["variant", "backend", "step", "mean", "low", "high", "n"])
    grouped = curves.groupby(["variant", "backend", "step"], sort=False)["value"]
    return grouped.agg(mean="mean", low="min", high="max", n="count").reset_index()
