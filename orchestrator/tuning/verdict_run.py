"""The verdict step of ``orchestrator tune``: once every study of an experiment has its budget
done, retrain each study's best (``tuning.verdict``), compute the numbers from MLflow and log
them on the parents (``tuning.verdict_report``), and hand the table to the terminal."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from orchestrator.tuning import verdict as retraining
from orchestrator.tuning import verdict_report
from orchestrator.tuning.splits import Study


def verdicts(done: list[tuple[Study, Any]], uri: str, workers: int, report: Any) -> list[dict]:
    """``done`` holds ``(study, StudyResult)`` for every study run by this invocation; returns
    the verdict rows of every experiment that got one."""
    groups: dict[str, list[tuple[Study, Any]]] = defaultdict(list)
    for study, result in done:
        groups[study.experiment.name].append((study, result))
    all_rows = []
    for name, items in groups.items():
        exp = items[0][0].experiment
        if exp.tune.verdict is None:
            continue
        waiting = [r.study_name for _, r in items if r.status != "FINISHED"]
        if waiting:
            report(f"verdict of {name}: not yet, the budget of {', '.join(waiting)} is not "
                   "done (rerun the same command to continue)")
            continue
        usable = [(s, r) for s, r in items if r.best_trial is not None]
        for _, r in items:
            if r.best_trial is None:
                report(f"verdict of {name}: {r.study_name} has no complete trial; left out")
        jobs = retraining.plan([(s, r.study_name, r.parent_run_id, r.best_trial, r.best_params)
                                for s, r in usable], uri)
        seeds = exp.tune.verdict.seeds
        report(f"verdict of {name}: the best of {len(usable)} study(ies) retrained with "
               f"{seeds} seed(s) each, scored on the untouched test part; {len(jobs)} "
               f"retraining(s) to run")
        if jobs:
            retraining.run(jobs, uri, workers)
        stale = bool(jobs) or _unlogged(uri, usable, exp.tune.verdict.ensemble)
        rows = _numbers(exp, usable, uri, log=stale)
        report(verdict_table(name, rows, _header(exp, usable)))
        all_rows.extend(rows)
    return all_rows


def _header(exp: Any, usable: list[tuple[Study, Any]]) -> str:
    metric = retraining.verdict_metric(usable[0][0]) if usable else "-"
    verdict = exp.tune.verdict
    nested = exp.tune.nested
    unit = (f"{nested.folds} outer folds (each the mean of {verdict.seeds} seed(s))" if nested
            else f"{verdict.seeds} seeds")
    together = (f"; 'ensemble': the mean of the {verdict.seeds} seeds' outputs scored as one "
                f"model{', per outer fold' if nested else ''}" if verdict.ensemble else "")
    return (f"Verdict of {exp.name}: {metric} on the untouched test part, over {unit}; "
            f"{verdict.confidence:.0%} t-intervals; differences paired by "
            f"{'outer fold' if nested else 'seed'}{together}")


def _arm_parents(usable: list[tuple[Study, Any]]) -> dict[tuple[str, str], str]:
    return {(s.experiment.variant, s.backend): r.nested_run_id or r.parent_run_id
            for s, r in usable}


def _unlogged(uri: str, usable: list[tuple[Study, Any]], ensemble: bool) -> bool:
    """Whether a parent lacks the verdict (or, newly asked for, the ensemble's numbers)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    for run_id in set(_arm_parents(usable).values()):
        data = client.get_run(run_id).data
        if "verdict.metric" not in data.tags or (
                ensemble and not any(k.startswith("verdict/ensemble/") for k in data.metrics)):
            return True
    return False


def _numbers(exp: Any, usable: list[tuple[Study, Any]], uri: str, log: bool) -> list[dict]:
    if not usable:
        return []
    metric = retraining.verdict_metric(usable[0][0])
    arms = verdict_report.arms([(s, r.parent_run_id, r.best_trial) for s, r in usable],
                               _arm_parents(usable), uri, metric,
                               ensemble=exp.tune.verdict.ensemble)
    variants = list(dict.fromkeys(s.experiment.variant for s, _ in usable))
    backends = list(dict.fromkeys(s.backend for s, _ in usable))
    confidence = exp.tune.verdict.confidence
    unit = "outer folds" if exp.tune.nested else "seeds"
    rows = verdict_report.table(arms, variants, backends, metric, confidence, unit)
    for row in rows:
        row["experiment"], row["metric"] = exp.name, metric
    if log:
        text = _header(exp, usable) + "\n\n" + verdict_report.markdown(rows, confidence)
        verdict_report.log(rows, arms, metric, uri, text)
    return rows


def verdict_table(name: str, rows: list[dict], header: str) -> Any:
    """A rich table of the verdict rows, headed by what they are."""
    from rich.console import Group
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    table = Table(title_justify="left")
    for column in ("what", "n", "mean", "interval", "p (t / Wilcoxon)", "note"):
        table.add_column(column)
    for r in rows:
        signed = r["kind"] != "arm"
        number = verdict_report._number
        interval = (f"[{number(r.get('ci_low'), signed)}, {number(r.get('ci_high'), signed)}]"
                    if r.get("ci_low") is not None else "-")
        p = (f"{r['p_t']:.3g} / {r['p_wilcoxon']:.3g}"
             if r.get("p_t") is not None and r["p_t"] == r["p_t"] else "-")
        table.add_row(escape(r["what"]), str(r.get("n", 0)),
                      number(r.get("mean"), signed), interval, p, escape(r.get("note", "")))
    return Group(Text(header), table)
