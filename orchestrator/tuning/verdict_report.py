"""The verdict's numbers, computed from the verdict runs in MLflow and logged back on the parents.

An *arm* is one variant on one backend. Its units are the seeds (one test part), or under
nested cross-validation the outer folds, each the mean over its seeds (seeds within a fold share
the test part, so they are not independent). Per arm: mean, standard deviation and t-interval
over the units. Comparisons are paired over the units both arms have (the same seed means the
same initial weights and batch order on every variant and backend; the same outer fold, the same
test part): every pair of variants on each backend (the later variant minus the earlier, in
``matrix:`` order) and every pair of backends for each variant (in ``backends:`` order).

With ``verdict.ensemble``, each arm also has an *ensemble* arm: per unit (the test part, or
each outer fold) the mean of its seeds' test outputs (``verdict/test_outputs.npz`` on every
verdict run) scored by the task's ``score_outputs``; it is compared like the arms (variants,
backends) and with its own seeds scored one by one (``<arm> ensemble - <arm> seeds``: the
ensemble's value minus the seeds' mean, per unit).

Logged on the arm's parent run (the study's, or under nested cross-validation the run that holds
the outer folds' studies): ``verdict/<metric>`` per unit (step = seed or outer fold),
``verdict/<metric>_mean|_std|_ci_low|_ci_high|_n`` (the ensemble's as
``verdict/ensemble/<metric>...``), for each comparison the arm is in
``verdict/<a> - <b>/diff_mean|_ci_low|_ci_high|_p_t|_p_wilcoxon|_n``, and the whole table as
``verdict.csv`` and ``verdict.md``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.evaluation.statistics import paired, summarize
from orchestrator.tuning.splits import Study


@dataclass
class Arm:
    variant: str
    backend: str
    parent_run_id: str  # where the arm's numbers are logged
    units: dict[int, float] = field(default_factory=dict)  # seed or outer fold -> value
    per_outer: dict[int, dict[int, float]] = field(default_factory=dict)  # nested: fold -> seeds
    ensemble: bool = False  # the mean of the seeds' outputs, one value per test part
    # ensemble only: the seeds' mean per unit (what the ensemble is compared with), and why a
    # unit has no value
    seeds_mean: dict[int, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        base = f"{self.variant} {self.backend}" if self.variant else self.backend
        return f"{base} ensemble" if self.ensemble else base

    @property
    def prefix(self) -> str:
        return "verdict/ensemble/" if self.ensemble else "verdict/"


def _key(text: str) -> str:
    """MLflow metric names allow letters, digits, ``_ - . /`` and spaces only."""
    return re.sub(r"[^A-Za-z0-9_\-./ ]", "_", text)


def arms(studies: list[tuple[Study, str, int]], arm_parent: Mapping[tuple[str, str], str],
         uri: str, metric: str, ensemble: bool = False) -> list[Arm]:
    """The arms of one experiment from its verdict runs: ``studies`` holds ``(study, parent run
    id, best trial number)``; ``arm_parent`` the run each arm's numbers go to. ``ensemble``
    adds each arm's ensemble arm, scored from the runs' test outputs."""
    from orchestrator.tuning.verdict import finished_runs

    out: dict[tuple[str, str, bool], Arm] = {}
    for study, parent_id, number in studies:
        variant, backend = study.experiment.variant, study.backend
        arm = out.setdefault((variant, backend, False),
                             Arm(variant, backend, arm_parent[(variant, backend)]))
        runs = finished_runs(uri, parent_id, number)
        values = {seed: r.data.metrics[metric] for seed, r in runs.items()
                  if metric in r.data.metrics}
        seeds_mean = sum(values.values()) / len(values) if values else None
        if study.outer is None:
            arm.units.update(values)
        elif values:
            arm.per_outer[study.outer] = values
            arm.units[study.outer] = seeds_mean
        if not ensemble:
            continue
        together = out.setdefault((variant, backend, True), Arm(
            variant, backend, arm_parent[(variant, backend)], ensemble=True))
        unit = 0 if study.outer is None else study.outer
        value, why = ensemble_value(study, runs, uri, metric)
        if value is None:
            where = f"outer fold {unit}: " if study.outer is not None else ""
            together.notes.append(where + why)
        elif seeds_mean is not None:
            together.units[unit] = value
            together.seeds_mean[unit] = seeds_mean
    return list(out.values())


def ensemble_value(study: Study, runs: Mapping[int, Any], uri: str,
                   metric: str) -> tuple[float | None, str]:
    """``metric`` of the mean of the verdict runs' test outputs (``OUTPUTS_ARTIFACT``), by the
    study's task; or None and why not."""
    import tempfile

    import numpy as np
    from mlflow.tracking import MlflowClient

    from orchestrator.plugins import manager as plugin_manager
    from orchestrator.tracking.store import mlflow_settings
    from orchestrator.tuning.verdict import OUTPUTS_ARTIFACT

    if len(runs) < 2:
        return None, f"{len(runs)} finished verdict run(s): an ensemble needs 2 or more"
    client = MlflowClient(uri)
    outputs, truths = [], []
    quiet = mlflow_settings(MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false")  # no progress bar
    with tempfile.TemporaryDirectory() as tmp, quiet:
        for seed, run in sorted(runs.items()):
            try:
                local = client.download_artifacts(run.info.run_id, OUTPUTS_ARTIFACT,
                                                  f"{tmp}/{seed}")
            except Exception:  # noqa: BLE001 (MLflow raises several kinds for a missing file)
                return None, (f"verdict run {run.info.run_id} (seed {seed}) has no "
                              f"{OUTPUTS_ARTIFACT}")
            try:
                with np.load(local) as saved:  # no pickle: arrays only
                    outputs.append(np.asarray(saved["outputs"], dtype=np.float64))
                    truths.append(saved["truth"])
            except Exception as error:  # noqa: BLE001 (a damaged file: zip, format, key errors)
                return None, (f"verdict run {run.info.run_id} (seed {seed}): "
                              f"{OUTPUTS_ARTIFACT} cannot be read ({type(error).__name__})")
    if any(t.shape != truths[0].shape or not np.array_equal(t, truths[0]) for t in truths) \
            or any(o.shape != outputs[0].shape for o in outputs):
        return None, "the verdict runs were not tested on the same test part"
    task = plugin_manager.tasks().get(study.experiment.task)()
    scores = task.score_outputs(truths[0], np.mean(np.stack(outputs), axis=0))
    if metric not in scores:
        return None, f"the ensemble's outputs give no {metric}"
    return float(scores[metric]), ""


def table(arm_list: list[Arm], variants: list[str], backends: list[str], metric: str,
          confidence: float, unit: str) -> list[dict[str, Any]]:
    """Rows: one per arm, then one per paired comparison."""
    rows: list[dict[str, Any]] = []
    by = {(a.variant, a.backend, a.ensemble): a for a in arm_list}
    for arm in arm_list:
        what = "the test part" if arm.ensemble and unit == "seeds" else unit
        if not arm.units:
            rows.append({"kind": "arm", "what": arm.label, "variant": arm.variant,
                         "backend": arm.backend, "n": 0, "ensemble": arm.ensemble,
                         "note": "; ".join(arm.notes) or "no finished verdict run"})
            continue
        s = summarize([arm.units[k] for k in sorted(arm.units)], confidence)
        note = "; ".join([s.note, *arm.notes] if s.note else arm.notes)
        rows.append({"kind": "arm", "what": arm.label, "variant": arm.variant,
                     "backend": arm.backend, "n": s.n, "mean": s.mean, "std": s.std,
                     "ci_low": s.low, "ci_high": s.high, "units": what,
                     "ensemble": arm.ensemble,
                     "values": ", ".join(f"{k}:{arm.units[k]:.4f}" for k in sorted(arm.units)),
                     "note": note})
    pairs = []
    for together in (False, True):
        pairs += [("variants", by.get((v2, b, together)), by.get((v1, b, together)))
                  for b in backends for i, v1 in enumerate(variants) for v2 in variants[i + 1:]]
        pairs += [("backends", by.get((v, b1, together)), by.get((v, b2, together)))
                  for v in variants for i, b1 in enumerate(backends) for b2 in backends[i + 1:]]
    for kind, a, b in pairs:
        if a is None or b is None:
            continue
        rows.append(_comparison(kind, a.label, b.label, a.units, b.units, confidence, unit,
                                a.variant if kind == "backends" else "",
                                a.backend if kind == "variants" else ""))
    for arm in arm_list:
        if arm.ensemble:
            single = by[(arm.variant, arm.backend, False)].label
            rows.append(_comparison("ensemble", arm.label, f"{single} seeds", arm.units,
                                    arm.seeds_mean, confidence, unit, arm.variant,
                                    arm.backend))
    return rows


def _comparison(kind: str, a: str, b: str, a_units: Mapping[int, float],
                b_units: Mapping[int, float], confidence: float, unit: str, variant: str,
                backend: str) -> dict[str, Any]:
    """``a - b`` paired over the units both have."""
    common = sorted(set(a_units) & set(b_units))
    row = {"kind": kind, "what": f"{a} - {b}", "a": a, "b": b, "variant": variant,
           "backend": backend, "n": len(common), "units": unit}
    if common:
        p = paired([a_units[k] for k in common], [b_units[k] for k in common], confidence)
        row.update({"mean": p.mean, "std": p.std, "ci_low": p.low, "ci_high": p.high,
                    "p_t": p.p_t, "p_wilcoxon": p.p_wilcoxon,
                    "note": p.verdict.replace("a >", f"{a} >").replace(
                        "a <", f"{a} <").replace("> b", f"> {b}").replace("< b", f"< {b}")})
    else:
        row["note"] = "no matched units"
    return row


def log(rows: list[dict[str, Any]], arm_list: list[Arm], metric: str, uri: str,
        text: str) -> None:
    """Each arm's numbers and comparisons on its parent run; the whole table on every one
    (a finished parent keeps its state: MLflow takes metrics on ended runs)."""
    import io
    import math
    import time

    import pandas as pd
    from mlflow.entities import Metric, RunTag
    from mlflow.tracking import MlflowClient

    from orchestrator.tracking.interrupts import ShieldedClient

    client = ShieldedClient(MlflowClient(uri))
    buffer = io.StringIO()
    pd.DataFrame(rows).to_csv(buffer, index=False)
    now = int(time.time() * 1000)
    for arm in arm_list:
        items = [Metric(_key(f"{arm.prefix}{metric}"), float(value), now, int(unit))
                 for unit, value in sorted(arm.units.items())]
        for row in rows:
            if row.get("mean") is None:
                continue
            if row["kind"] == "arm" and row["what"] == arm.label:
                prefix = f"{arm.prefix}{metric}_"
                fields = ("mean", "std", "ci_low", "ci_high", "n")
            elif row["kind"] != "arm" and arm.label in (row["a"], row["b"]):
                prefix = f"verdict/{row['what']}/diff_"
                fields = ("mean", "ci_low", "ci_high", "p_t", "p_wilcoxon", "n")
            else:
                continue
            for name in fields:
                value = row.get(name)
                if value is not None and not (isinstance(value, float) and math.isnan(value)):
                    items.append(Metric(_key(prefix + name), float(value), now, 0))
        for start in range(0, len(items), 1000):
            client.log_batch(arm.parent_run_id, metrics=items[start:start + 1000],
                             tags=[RunTag("verdict.metric", metric)] if start == 0 else [])
    for parent_run_id in dict.fromkeys(arm.parent_run_id for arm in arm_list):
        client.log_text(parent_run_id, buffer.getvalue(), "verdict.csv")
        client.log_text(parent_run_id, text, "verdict.md")


def _number(value: Any, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    return f"{value:+.4f}" if signed else f"{value:.4f}"


def markdown(rows: list[dict[str, Any]], confidence: float = 0.95) -> str:
    lines = [f"| what | n | mean | {confidence:.0%} interval | p (t / Wilcoxon) | note |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        signed = r["kind"] != "arm"
        interval = (f"[{_number(r.get('ci_low'), signed)}, {_number(r.get('ci_high'), signed)}]"
                    if r.get("ci_low") is not None else "-")
        p = (f"{r['p_t']:.3g} / {r['p_wilcoxon']:.3g}" if r.get("p_t") is not None
             and r["p_t"] == r["p_t"] else "-")
        lines.append(f"| {r['what']} | {r.get('n', 0)} | {_number(r.get('mean'), signed)} | "
                     f"{interval} | {p} | {r.get('note', '')} |")
    return "\n".join(lines)
