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

    from orchestrator.config.loader import config_conditions_hold
    from orchestrator.tuning.splits import outer_folds

    tables = []
    for e in experiments:
        if e.tune is None:
            continue
        tune = e.tune
        seed = f" (seed {tune.sampler.seed})" if tune.sampler.seed is not None else ""
        names = [study_name(e, b, o) for b in e.backends for o in outer_folds(e)]
        objective = (f"mean {tune.metric} over {e.folds} folds of the training part"
                     if e.folds else tune.metric)
        lines = [
            f"Tuning {e.label}: {len(names)} study(ies), " + ", ".join(names),
            f"  {tune.trials} trials each, {tune.direction} {objective}; "
            f"sampler {tune.sampler.name}{seed}, pruner {tune.pruner.name}"
            + (f", at most {tune.timeout:g} s per invocation" if tune.timeout else ""),
            f"  storage: {redact(storage or tune.storage or 'SQLite under mlruns/')}"]
        if tune.nested:
            lines.append(f"  nested cross-validation: a study per outer fold ({tune.nested.folds}"
                         "), each outer fold the test part once")
        if tune.verdict:
            lines.append(f"  verdict: the best of each study retrained with "
                         f"{tune.verdict.seeds} seed(s), scored on the untouched test part")
        table = Table()
        for column in ("parameter", "values", "only when"):
            table.add_column(column)
        for key, dim in tune.space.items():
            if not config_conditions_hold(dim, tune.space, e.config):
                continue  # a dimension of another variant's studies
            when = "; ".join(f"{k} is " + " or ".join(str(v) for v in values)
                             for k, values in dim.when.items() if k in tune.space)
            table.add_row(escape(key), escape(_distribution(dim)), escape(when or "-"))
        tables.append(Group(Text("\n".join(lines)), table))
    return tables
