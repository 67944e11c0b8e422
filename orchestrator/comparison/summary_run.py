"""Side-by-side comparison: one summary run per experiment, read back from MLflow.

After an invocation, each experiment gets a run tagged ``orchestrator.kind=summary`` holding a
table of its runs (variant, backend, seed, status, main metric, time) and plots that overlay the
per-epoch curves of every run, so variants and backends can be compared at a glance (and in the
MLflow UI's compare view, by selecting the runs).
"""

from __future__ import annotations

import re
from collections import defaultdict

from orchestrator.orchestration.worker import RunOutcome
from orchestrator.orchestration.plan import PlannedRun

CURVES = ("train/loss", "val/loss")


def comparison_rows(plan: list[PlannedRun], outcomes: list[RunOutcome]) -> list[dict]:
    by_label = {o.label: o for o in outcomes}
    rows = []
    for run in plan:
        outcome = by_label.get(run.label)
        if outcome is None:
            continue
        rows.append({"experiment": run.experiment.name, "variant": run.experiment.variant or "-",
                     "backend": run.backend, "seed": run.seed, "status": outcome.status,
                     "metric": outcome.metric, "value": outcome.value,
                     "seconds": round(outcome.seconds, 1), "run_id": outcome.run_id})
    return rows


def log_summaries(uri: str, plan: list[PlannedRun], outcomes: list[RunOutcome]) -> list[str]:
    """One summary run per experiment that has at least one finished run; returns their ids."""
    import pandas as pd
    from mlflow.tracking import MlflowClient

    from orchestrator.evaluation.plots import curves
    from orchestrator.tracking.runs import RunLogger
    from orchestrator.tracking.store import experiment_id

    client = MlflowClient(uri)
    groups: dict[str, list[dict]] = defaultdict(list)
    for row in comparison_rows(plan, outcomes):
        groups[row["experiment"]].append(row)
    summary_ids = []
    for name, rows in groups.items():
        finished = [r for r in rows if r["status"] == "FINISHED" and r["run_id"]]
        if not finished:
            continue
        with RunLogger(uri, experiment_id(name, uri), run_name="summary",
                       tags={"orchestrator.kind": "summary",
                             "orchestrator.runs": ",".join(r["run_id"] for r in rows
                                                           if r["run_id"])}) as logger:
            logger.log_table(pd.DataFrame(rows), "comparison.csv")
            for key in CURVES:
                series = {}
                for row in finished:
                    history = client.get_metric_history(row["run_id"], key)
                    if history:
                        label = " ".join(filter(lambda p: p != "-", (row["variant"],
                                                                     row["backend"])))
                        label += f" s{row['seed']}" if len({r["seed"] for r in rows}) > 1 else ""
                        series[label] = ([m.step for m in history], [m.value for m in history])
                if series:
                    logger.log_figure(curves(series, xlabel="epoch", ylabel=key,
                                             title=f"{name}: {key}", logy=key.endswith("loss")),
                                      f"plots/{key.replace('/', '_')}.png")
            values = {f"{r['variant']}/{r['backend']}/seed{r['seed']}": r["value"]
                      for r in finished if r["value"] is not None}
            if values:
                logger.log_metrics({_metric_key(f"summary/{k}"): v for k, v in values.items()},
                                   heartbeat=False)
            summary_ids.append(logger.run_id)
    return summary_ids


def _metric_key(text: str) -> str:
    """MLflow metric names allow letters, digits, ``_ - . / `` and spaces only."""
    return re.sub(r"[^A-Za-z0-9_\-./ ]", "_", text)
