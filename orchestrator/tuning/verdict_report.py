"""The verdict's numbers, computed from the verdict runs in MLflow and logged back on the parents.

An *arm* is one variant on one backend. Its units are the seeds (one test part), or under
nested cross-validation the outer folds, each the mean over its seeds (seeds within a fold share
the test part, so they are not independent). Per arm: mean, standard deviation and t-interval
over the units. Comparisons are paired over the units both arms have (the same seed means the
same initial weights and batch order on every variant and backend; the same outer fold, the same
test part): every pair of variants on each backend (the later variant minus the earlier, in
``matrix:`` order) and every pair of backends for each variant (in ``backends:`` order).

Logged on the arm's parent run (the study's, or under nested cross-validation the run that holds
the outer folds' studies): ``verdict/<metric>`` per unit (step = seed or outer fold),
``verdict/<metric>_mean|_std|_ci_low|_ci_high|_n``, for each comparison the arm is in
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

    @property
    def label(self) -> str:
        return f"{self.variant} {self.backend}" if self.variant else self.backend


def _key(text: str) -> str:
    """MLflow metric names allow letters, digits, ``_ - . /`` and spaces only."""
    return re.sub(r"[^A-Za-z0-9_\-./ ]", "_", text)


def arms(studies: list[tuple[Study, str, int]], arm_parent: Mapping[tuple[str, str], str],
         uri: str, metric: str) -> list[Arm]:
    """The arms of one experiment from its verdict runs: ``studies`` holds ``(study, parent run
    id, best trial number)``; ``arm_parent`` the run each arm's numbers go to."""
    from orchestrator.tuning.verdict import finished_runs

    out: dict[tuple[str, str], Arm] = {}
    for study, parent_id, number in studies:
        variant, backend = study.experiment.variant, study.backend
        arm = out.setdefault((variant, backend),
                             Arm(variant, backend, arm_parent[(variant, backend)]))
        values = {seed: r.data.metrics[metric] for seed, r in
                  finished_runs(uri, parent_id, number).items() if metric in r.data.metrics}
        if study.outer is None:
            arm.units.update(values)
        elif values:
            arm.per_outer[study.outer] = values
            arm.units[study.outer] = sum(values.values()) / len(values)
    return list(out.values())


def table(arm_list: list[Arm], variants: list[str], backends: list[str], metric: str,
          confidence: float, unit: str) -> list[dict[str, Any]]:
    """Rows: one per arm, then one per paired comparison."""
    rows: list[dict[str, Any]] = []
    by = {(a.variant, a.backend): a for a in arm_list}
    for arm in arm_list:
        if not arm.units:
            rows.append({"kind": "arm", "what": arm.label, "variant": arm.variant,
                         "backend": arm.backend, "n": 0, "note": "no finished verdict run"})
            continue
        s = summarize([arm.units[k] for k in sorted(arm.units)], confidence)
        rows.append({"kind": "arm", "what": arm.label, "variant": arm.variant,
                     "backend": arm.backend, "n": s.n, "mean": s.mean, "std": s.std,
                     "ci_low": s.low, "ci_high": s.high, "units": unit,
                     "values": ", ".join(f"{k}:{arm.units[k]:.4f}" for k in sorted(arm.units)),
                     "note": s.note})
    pairs = [("variants", by.get((v2, b)), by.get((v1, b)))
             for b in backends for i, v1 in enumerate(variants) for v2 in variants[i + 1:]]
    pairs += [("backends", by.get((v, b1)), by.get((v, b2)))
              for v in variants for i, b1 in enumerate(backends) for b2 in backends[i + 1:]]
    for kind, a, b in pairs:
        if a is None or b is None:
            continue
        common = sorted(set(a.units) & set(b.units))
        row = {"kind": kind, "what": f"{a.label} - {b.label}", "a": a.label, "b": b.label,
               "variant": a.variant if kind == "backends" else "",
               "backend": a.backend if kind == "variants" else "", "n": len(common),
               "units": unit}
        if common:
            p = paired([a.units[k] for k in common], [b.units[k] for k in common], confidence)
            row.update({"mean": p.mean, "std": p.std, "ci_low": p.low, "ci_high": p.high,
                        "p_t": p.p_t, "p_wilcoxon": p.p_wilcoxon,
                        "note": p.verdict.replace("a >", f"{a.label} >").replace(
                            "a <", f"{a.label} <").replace("> b", f"> {b.label}").replace(
                            "< b", f"< {b.label}")})
        else:
            row["note"] = "no matched units"
        rows.append(row)
    return rows


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
        items = [Metric(_key(f"verdict/{metric}"), float(value), now, int(unit))
                 for unit, value in sorted(arm.units.items())]
        for row in rows:
            if row.get("mean") is None:
                continue
            if row["kind"] == "arm" and row["what"] == arm.label:
                prefix, fields = f"verdict/{metric}_", ("mean", "std", "ci_low", "ci_high", "n")
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
        client.log_text(arm.parent_run_id, buffer.getvalue(), "verdict.csv")
        client.log_text(arm.parent_run_id, text, "verdict.md")


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
