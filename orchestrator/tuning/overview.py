"""What ``orchestrator tune`` would make or resume, as tables: studies, budgets, search spaces.

Pure: printed by ``plan`` and ``tune --dry-run`` without touching data, MLflow or the storage.
"""

from __future__ import annotations

from orchestrator.config.loader import ResolvedExperiment


def _distribution(dim) -> str:
    if dim.type == "categorical":
        return "one of " + ", ".join(str(c) for c in dim.choices)
    number = int if dim.type == "int" else float
    text = f"{dim.type} in [{number(dim.low):g}, {number(dim.high):g}]"
    return text + (", log scale" if dim.log else f", step {dim.step:g}" if dim.step else "")


def study_tables(experiments: list[ResolvedExperiment], storage: str | None = None) -> list:
    """For each experiment with a ``tune:`` section, a header and a rich table of what
    ``orchestrator tune`` would make or resume: its studies (one per backend), objective,
    budget, sampler, pruner, storage and search space."""
    from rich.console import Group
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    from orchestrator.redaction import redact
    from orchestrator.tuning.study import study_name

    tables = []
    for e in experiments:
        if e.tune is None:
            continue
        tune = e.tune
        seed = f" (seed {tune.sampler.seed})" if tune.sampler.seed is not None else ""
        header = "\n".join((
            f"Tuning {e.label}: {len(e.backends)} study(ies), "
            + ", ".join(study_name(e, b) for b in e.backends),
            f"  {tune.trials} trials each, {tune.direction} {tune.metric}; "
            f"sampler {tune.sampler.name}{seed}, pruner {tune.pruner.name}"
            + (f", at most {tune.timeout:g} s per invocation" if tune.timeout else ""),
            f"  storage: {redact(storage or tune.storage or 'SQLite under mlruns/')}"))
        table = Table()
        for column in ("parameter", "values", "only when"):
            table.add_column(column)
        for key, dim in tune.space.items():
            when = "; ".join(f"{k} is " + " or ".join(str(v) for v in values)
                             for k, values in dim.when.items())
            table.add_row(escape(key), escape(_distribution(dim)), escape(when or "-"))
        tables.append(Group(Text(header), table))
    return tables
