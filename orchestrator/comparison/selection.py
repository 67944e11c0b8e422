"""Choosing the runs a comparison is about, in the MLflow store: from experiment files (the
latest FINISHED run of each planned experiment x variant x backend x seed, matched by config
digest, so ``-o`` overrides select the runs made with the same overrides), from experiment names
(the latest FINISHED run of each variant x backend x seed, of the variant's latest
configuration), or from run ids (one experiment's).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from orchestrator.comparison.readonly import CompareError, describe

KIND_TAG = "orchestrator.kind"
BACKEND_TAGS = ("orchestrator.backend", "orchestrator.contract.backend")
PLAN_KINDS = ("run", "study")  # what can be compared (not folds, trials, comparisons)


def backend_of(row: pd.Series) -> str | None:
    for key in BACKEND_TAGS:
        value = row.get(f"tags.{key}")
        if isinstance(value, str) and value:
            return value
    value = row.get("params.backend")
    return value if isinstance(value, str) and value else None


def search(experiment_ids: list[str], kind: str, finished_only: bool = True) -> pd.DataFrame:
    import mlflow

    query = f"tags.`{KIND_TAG}` = '{kind}'"
    if finished_only:
        query += " AND attributes.status = 'FINISHED'"
    frame = mlflow.search_runs(experiment_ids, query, order_by=["attributes.start_time DESC"])
    if frame.empty:
        return pd.DataFrame(columns=["run_id", "experiment_id", "status", "start_time",
                                     "end_time"])
    return frame


def annotate(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """Experiment, variant, backend and seed columns from the runs' tags (and params)."""
    frame = frame.copy()
    frame["experiment"] = name
    frame["variant"] = frame.get("tags.orchestrator.variant", pd.Series("-", frame.index))
    frame["variant"] = frame["variant"].fillna("-").replace("", "-")
    frame["backend"] = [backend_of(row) for _, row in frame.iterrows()]
    seeds = frame.get("tags.orchestrator.seed", pd.Series(None, frame.index, dtype=object))
    frame["seed"] = pd.to_numeric(seeds, errors="coerce").astype("Int64")
    return frame


@dataclass
class Target:
    name: str
    experiment_id: str
    runs: pd.DataFrame  # chosen plain runs
    studies: pd.DataFrame
    backends: list[str]
    variants: list[str]
    task: str
    description: str


def choose(client: Any, targets: list[str], run_ids: list[str], overrides: list[str],
           uri: str, notes: list[str]) -> list[Target]:
    """The experiments and runs named by ``targets`` (files or names) or ``run_ids``."""
    if not targets and not run_ids:
        raise CompareError("name experiment files or experiment names, or give --runs ID...")
    if targets and run_ids:
        raise CompareError("give experiment files/names or --runs, not both")
    if run_ids:
        return [_from_run_ids(client, run_ids, uri)]
    files = [t for t in targets if _is_file(t)]
    chosen = _from_files(client, files, overrides, uri, notes) if files else []
    chosen += [_from_name(client, name, uri, notes) for name in targets if not _is_file(name)]
    names = [target.name for target in chosen]
    for name in names:
        if names.count(name) > 1:
            raise CompareError(f"experiment {name!r} is named twice")
    return chosen


def _is_file(target: str) -> bool:
    return Path(target).is_file() or target.endswith((".yaml", ".yml"))


def _experiment(client: Any, name: str, uri: str, where: str) -> Any:
    experiment = client.get_experiment_by_name(name)
    if experiment is None or experiment.lifecycle_stage == "deleted":
        raise CompareError(f"{where}experiment {name!r} has no runs in the store "
                           f"{describe(uri)}")
    return experiment


def _latest(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """The latest run (by start time) of each combination of ``keys``."""
    return frame.sort_values("start_time", ascending=False).drop_duplicates(keys)


def _from_files(client: Any, files: list[str], overrides: list[str], uri: str,
                notes: list[str]) -> list[Target]:
    from orchestrator.config.loader import load
    from orchestrator.orchestration.plan import make_plan

    experiments = load(files, overrides)  # ConfigError: bad input too
    out = []
    for name in dict.fromkeys(e.name for e in experiments):
        variants = [e for e in experiments if e.name == name]
        first = variants[0]
        experiment = _experiment(client, name, uri, f"{first.file}: ")
        runs = annotate(search([experiment.experiment_id], "run"), name)
        digests = runs.get("tags.orchestrator.config_digest",
                           pd.Series(None, runs.index, dtype=object))
        latest: dict[tuple, Any] = {}  # runs come newest first
        for index, key in zip(runs.index, zip(digests, runs["backend"], runs["seed"])):
            latest.setdefault((key[0], key[1], None if pd.isna(key[2]) else int(key[2])), index)
        chosen, missing = [], []
        for planned in make_plan(variants):
            index = latest.get((planned.experiment.digest, planned.backend, planned.seed))
            if index is None:
                missing.append(planned.label)
            else:
                chosen.append(index)
        studies = pd.DataFrame()
        if first.tune is not None:
            studies = _latest_studies(experiment.experiment_id, name, first.backends)
        if not chosen and studies.empty:
            other = len(runs)
            hint = (f"; {other} finished run(s) there have another configuration (an edited "
                    "file or other -o overrides?)" if other else "")
            raise CompareError(f"{first.file}: experiment {name!r} has no finished runs of "
                               f"this configuration in the store {describe(uri)}{hint}")
        if missing and first.tune is None:
            notes.append(f"{name}: no finished run for {len(missing)} planned run(s): "
                         + ", ".join(missing))
        out.append(Target(name, experiment.experiment_id, runs.loc[chosen], studies,
                           list(first.backends), [v.variant or "-" for v in variants],
                           first.task, str(first.raw.get("description") or "")))
    return out


def _from_name(client: Any, name: str, uri: str, notes: list[str]) -> Target:
    experiment = _experiment(client, name, uri, "")
    runs = annotate(search([experiment.experiment_id], "run"), name)
    studies = _latest_studies(experiment.experiment_id, name, None)
    if runs.empty and studies.empty:
        raise CompareError(f"experiment {name!r} has no finished runs in the store "
                           f"{describe(uri)}")
    if not runs.empty:
        digest = runs.get("tags.orchestrator.config_digest",
                          pd.Series("", runs.index, dtype=object)).fillna("")
        runs = runs.assign(digest=digest)
        newest = _latest(runs, ["variant"]).set_index("variant")["digest"]
        current = runs["digest"] == runs["variant"].map(newest)
        if (~current).any():
            notes.append(f"{name}: {int((~current).sum())} older finished run(s) with another "
                         "configuration of their variant left out")
        runs = _latest(runs[current], ["variant", "backend", "seed"])
    frame = runs if not runs.empty else studies
    task = str(frame.iloc[0].get("tags.orchestrator.task") or "")
    return Target(name, experiment.experiment_id, runs, studies, _backend_order(frame),
                   sorted(runs["variant"].unique()) if not runs.empty else ["-"], task,
                   str(experiment.tags.get("mlflow.note.content") or ""))


def _from_run_ids(client: Any, run_ids: list[str], uri: str) -> Target:
    from mlflow.exceptions import MlflowException

    found = []
    for run_id in dict.fromkeys(run_ids):
        try:
            found.append(client.get_run(run_id))
        except MlflowException:
            raise CompareError(f"--runs: no run {run_id!r} in the store "
                               f"{describe(uri)}") from None
    experiments = {r.info.experiment_id for r in found}
    if len(experiments) > 1:
        names = sorted(client.get_experiment(e).name for e in experiments)
        raise CompareError(f"--runs: the runs belong to different experiments "
                           f"({', '.join(names)}); compare one experiment's runs at a time")
    for run in found:
        kind = run.data.tags.get(KIND_TAG, "?")
        if kind not in PLAN_KINDS:
            raise CompareError(f"--runs: {run.info.run_id} is a {kind!r} run, not a training "
                               "run or a tuning study")
    (experiment_id,) = experiments
    name = client.get_experiment(experiment_id).name
    ids = {r.info.run_id for r in found}
    frames = {kind: annotate(search([experiment_id], kind, finished_only=False), name)
              for kind in PLAN_KINDS}
    runs = frames["run"][frames["run"]["run_id"].isin(ids)]
    studies = frames["study"][frames["study"]["run_id"].isin(ids)]
    frame = runs if not runs.empty else studies
    return Target(name, experiment_id, runs, studies, _backend_order(frame),
                   sorted(runs["variant"].unique()) if not runs.empty else ["-"],
                   str(frame.iloc[0].get("tags.orchestrator.task") or ""),
                   str(client.get_experiment(experiment_id).tags.get("mlflow.note.content")
                       or ""))


def _latest_studies(experiment_id: str, name: str, backends: Any) -> pd.DataFrame:
    studies = annotate(search([experiment_id], "study", finished_only=False), name)
    studies = studies[studies["status"] != "RUNNING"]
    if backends is not None:
        studies = studies[studies["backend"].isin(list(backends))]
    return _latest(studies, ["backend"]) if not studies.empty else studies


def _backend_order(frame: pd.DataFrame) -> list[str]:
    """The order of the experiment file (the ``backends`` param), else alphabetical."""
    present = list(dict.fromkeys(b for b in frame["backend"] if b))
    for text in frame.get("params.backends", pd.Series(dtype=object)).dropna():
        try:
            order = [b for b in json.loads(text) if b in present]
        except (ValueError, TypeError):
            continue
        return order + sorted(set(present) - set(order))
    return sorted(present)
