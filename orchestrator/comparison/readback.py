"""Reading runs back from the MLflow store into pandas: the compared runs' final metrics, their
per-epoch histories, the folds of cross-validated runs, tuning studies and their trials, and the
other runs of the store that ran at the same time.

Which runs are compared is decided in ``orchestrator.comparison.selection``; nothing here writes
to the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from orchestrator.comparison.readonly import open_store
from orchestrator.comparison.selection import Target, annotate, choose, search

CURVE_KEYS = ("train/loss", "val/loss")
SYSTEM_KEYS = ("system/samples_per_second", "system/epoch_seconds", "system/peak_rss_mb")
PER_EPOCH_PREFIXES = ("system/", "val/")  # with train/loss: not final metrics
IDLE_KINDS = ("study", "comparison", "summary", "parity")  # runs that only wait for others


@dataclass
class ExperimentInfo:
    name: str
    experiment_id: str
    backends: list[str]
    variants: list[str]
    task: str
    main_metric: str  # e.g. test/accuracy
    direction: str  # maximize | minimize
    description: str = ""

    @property
    def curve_key(self) -> str:
        """The per-epoch curve of the main metric: ``test/accuracy`` -> ``val/accuracy``."""
        return "val/" + self.main_metric.split("/", 1)[-1]


@dataclass
class Selection:
    """The compared runs, read back. ``units`` has one row per unit of the statistics: a run, or
    one fold of a cross-validated run (columns experiment, variant, backend, seed, fold, unit,
    run_id, parent_id, start_time, end_time and ``metrics.<key>`` for every final metric);
    ``histories`` the per-epoch values (run_id, key, step, value); ``store`` every run of the
    store around their time (for overlaps)."""

    uri: str
    experiments: dict[str, ExperimentInfo]
    units: pd.DataFrame
    histories: pd.DataFrame
    studies: pd.DataFrame
    trials: pd.DataFrame
    store: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    @property
    def compared_ids(self) -> dict[str, list[str]]:
        """Per experiment, the ids of the runs compared (planned runs and studies)."""
        out: dict[str, list[str]] = {name: [] for name in self.experiments}
        for frame, column in ((self.units, "parent_id"), (self.studies, "run_id")):
            if frame.empty or column not in frame:
                continue
            for name, ids in frame.groupby("experiment")[column]:
                out[name].extend(dict.fromkeys(ids))
        return out


def select(targets: list[str], run_ids: list[str], overrides: list[str], uri: str
           ) -> Selection:
    """Read back the runs named by ``targets`` (experiment files or names) or ``run_ids``.
    Bad input raises ``CompareError`` (or ``ConfigError`` for a bad file) before anything is
    written anywhere."""
    import mlflow

    client = open_store(uri)
    mlflow.set_tracking_uri(uri)
    notes: list[str] = []
    targets_found = choose(client, targets, run_ids, overrides, uri, notes)
    return read(client, uri, targets_found, notes)


def select_outcomes(run_ids: list[str], uri: str) -> Selection:
    """The runs an invocation of ``orchestrator run`` just made (several experiments)."""
    import mlflow
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    mlflow.set_tracking_uri(uri)
    by_experiment: dict[str, list[str]] = {}
    for run_id in run_ids:
        by_experiment.setdefault(client.get_run(run_id).info.experiment_id, []).append(run_id)
    notes: list[str] = []
    targets = [choose(client, [], ids, [], uri, notes)[0] for ids in by_experiment.values()]
    return read(client, uri, targets, notes)


def read(client: Any, uri: str, targets: list[Target], notes: list[str]) -> Selection:
    from orchestrator.plugins import manager as plugin_manager

    infos, units, studies, trials = {}, [], [], []
    tasks = plugin_manager.tasks()
    for target in targets:
        try:
            task = tasks.get(target.task)
            main, direction = task.main_metric, task.direction
        except Exception:  # a task whose plugin is gone: the first test metric
            main = next((c.removeprefix("metrics.") for c in target.runs.columns
                         if c.startswith("metrics.test/")), "test/?")
            direction = "maximize"
        infos[target.name] = ExperimentInfo(target.name, target.experiment_id, target.backends,
                                            target.variants, target.task, main, direction,
                                            target.description)
        units.append(_units(target))
        if not target.studies.empty:
            studies.append(target.studies)
            trials.append(_trials(target))
    unit_frame = _concat(units)
    history_keys = {name: (*CURVE_KEYS, info.curve_key, *SYSTEM_KEYS)
                    for name, info in infos.items()}
    histories = _histories(client, unit_frame, history_keys)
    return Selection(uri, infos, unit_frame, histories, _concat(studies), _concat(trials),
                     _store_around(unit_frame), notes)


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["experiment", "variant", "backend", "seed", "run_id"])


def _units(target: Target) -> pd.DataFrame:
    """One row per unit: the run itself, or each fold of a cross-validated run (its nested
    runs, which carry the parent's tags and the fold number)."""
    runs = target.runs.copy()
    if runs.empty:
        return runs
    runs["parent_id"] = runs["run_id"]
    runs["fold"] = pd.Series(pd.NA, index=runs.index, dtype="Int64")
    folds = annotate(search([target.experiment_id], "fold"), target.name)
    if not folds.empty and "tags.mlflow.parentRunId" in folds:
        folds = folds[folds["tags.mlflow.parentRunId"].isin(set(runs["run_id"]))].copy()
    else:
        folds = folds.iloc[0:0]
    if not folds.empty:
        folds["parent_id"] = folds["tags.mlflow.parentRunId"]
        folds["fold"] = pd.to_numeric(folds["tags.orchestrator.fold"]).astype("Int64")
        folds = folds.sort_values("start_time", ascending=False).drop_duplicates(
            ["parent_id", "fold"])
        runs = pd.concat([runs[~runs["run_id"].isin(set(folds["parent_id"]))], folds],
                         ignore_index=True)
    runs["unit"] = [f"seed {s}" + ("" if pd.isna(f) else f" fold {f}")
                    for s, f in zip(runs["seed"], runs["fold"])]
    keep = ["experiment", "variant", "backend", "seed", "fold", "unit", "run_id", "parent_id",
            "status", "start_time", "end_time"]
    final = [c for c in runs.columns if c.startswith("metrics.") and _is_final(c[8:])]
    return runs[keep + sorted(final)].reset_index(drop=True)


def _is_final(key: str) -> bool:
    """A metric logged once after training (test/..., cv/..., train/epochs_to_threshold),
    not a per-epoch curve."""
    return key != "train/loss" and not key.startswith(PER_EPOCH_PREFIXES)


def _histories(client: Any, units: pd.DataFrame, keys: dict[str, tuple[str, ...]]
               ) -> pd.DataFrame:
    rows = []
    for run_id, experiment in zip(units["run_id"], units["experiment"]):
        for key in dict.fromkeys(keys[experiment]):
            for metric in client.get_metric_history(run_id, key):
                rows.append((run_id, key, int(metric.step), float(metric.value)))
    return pd.DataFrame(rows, columns=["run_id", "key", "step", "value"])


def _trials(target: Target) -> pd.DataFrame:
    """Every trial of the chosen studies: number, state, objective, epochs trained."""
    import mlflow

    frame = annotate(search([target.experiment_id], "trial", finished_only=False), target.name)
    if frame.empty or "tags.mlflow.parentRunId" not in frame:
        return frame.iloc[0:0]
    frame = frame[frame["tags.mlflow.parentRunId"].isin(set(target.studies["run_id"]))].copy()
    pruned = frame.get("tags.optuna.pruned_at_epoch", pd.Series(None, frame.index))
    frame["state"] = ["PRUNED" if isinstance(p, str) and p else
                      {"FINISHED": "COMPLETE", "FAILED": "FAIL"}.get(s, s)
                      for s, p in zip(frame["status"], pruned)]
    frame["number"] = pd.to_numeric(frame["tags.optuna.trial_number"]).astype(int)
    frame["objective"] = frame.get("metrics.objective", pd.Series(float("nan"), frame.index))
    client = mlflow.MlflowClient()
    frame["epochs"] = [len(client.get_metric_history(r, "train/loss")) for r in frame["run_id"]]
    frame["study_id"] = frame["tags.mlflow.parentRunId"]
    return frame[["experiment", "backend", "study_id", "run_id", "number", "state",
                  "objective", "epochs"]].sort_values(["backend", "number"])


def _store_around(units: pd.DataFrame) -> pd.DataFrame:
    """Every run of the store (all experiments) that started before the last compared run
    ended: what may have shared the cores with them."""
    import mlflow

    if units.empty:
        return pd.DataFrame(columns=["run_id", "parent_id", "kind", "start_time", "end_time"])
    last = units["end_time"].max()
    end_ms = int(pd.Timestamp(last).timestamp() * 1000) + 1
    frame = mlflow.search_runs(filter_string=f"attributes.start_time < {end_ms}",
                               search_all_experiments=True)
    if frame.empty:
        return pd.DataFrame(columns=["run_id", "parent_id", "kind", "start_time", "end_time"])
    return pd.DataFrame({
        "run_id": frame["run_id"],
        "parent_id": frame.get("tags.mlflow.parentRunId", pd.Series(None, frame.index)),
        "kind": frame.get("tags.orchestrator.kind", pd.Series(None, frame.index)),
        "start_time": frame["start_time"], "end_time": frame["end_time"]})
