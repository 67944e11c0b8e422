"""Tuning studies compared across backends: per backend, the best value and the trial that
reached it, how many trials were complete, pruned or failed, and the epochs trained (what pruning
saved against the full budget), read from the study's nested trial runs.
"""

from __future__ import annotations

import pandas as pd


def study_table(studies: pd.DataFrame, trials: pd.DataFrame, experiment: str) -> pd.DataFrame:
    rows = []
    if studies.empty:
        return pd.DataFrame(rows)
    for _, study in studies[studies["experiment"] == experiment].iterrows():
        mine = trials[trials["study_id"] == study["run_id"]]
        direction = study.get("tags.optuna.direction") or "maximize"
        complete = mine[(mine["state"] == "COMPLETE") & mine["objective"].notna()]
        best = None
        if not complete.empty:
            index = (complete["objective"].idxmax() if direction == "maximize"
                     else complete["objective"].idxmin())
            best = complete.loc[index]
        counts = mine["state"].value_counts()
        finished = int(counts.get("COMPLETE", 0) + counts.get("PRUNED", 0)
                       + counts.get("FAIL", 0))
        epochs = pd.to_numeric(study.get("params.train.epochs"), errors="coerce")
        rows.append({
            "experiment": experiment, "backend": study["backend"],
            "study": study.get("tags.optuna.study_name"), "status": study["status"],
            "metric": study.get("tags.optuna.metric"), "direction": direction,
            "trials": len(mine), "complete": int(counts.get("COMPLETE", 0)),
            "pruned": int(counts.get("PRUNED", 0)), "failed": int(counts.get("FAIL", 0)),
            "pruned_share": counts.get("PRUNED", 0) / finished if finished else float("nan"),
            "best_value": float(best["objective"]) if best is not None else float("nan"),
            "best_trial": int(best["number"]) if best is not None else None,
            "epochs_trained": int(mine["epochs"].sum()),
            "epochs_without_pruning": int(len(mine) * epochs) if epochs == epochs else None,
            "run_id": study["run_id"]})
    return pd.DataFrame(rows)


def history(trials: pd.DataFrame, study_id: str, direction: str) -> pd.DataFrame:
    """The optimization history of one study: each complete trial's value and the best so
    far, by trial number."""
    mine = trials[(trials["study_id"] == study_id) & (trials["state"] == "COMPLETE")]
    mine = mine.dropna(subset=["objective"]).sort_values("number")
    best = mine["objective"].cummax() if direction == "maximize" else mine["objective"].cummin()
    return pd.DataFrame({"number": mine["number"], "value": mine["objective"], "best": best})
