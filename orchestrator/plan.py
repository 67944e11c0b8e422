"""The plan: every run an invocation will make (experiment variant x backend x seed), and the
Optuna studies of experiments with a ``tune:`` section (one per backend).

Pure data computed from resolved experiments; ``orchestrator run --dry-run`` / ``plan`` /
``tune --dry-run`` print it without touching data, frameworks, MLflow or the Optuna storage.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.config.loader import ResolvedExperiment


@dataclass(frozen=True)
class PlannedRun:
    experiment: ResolvedExperiment
    backend: str
    seed: int

    @property
    def run_name(self) -> str:
        variant = f"{self.experiment.variant}-" if self.experiment.variant else ""
        return f"{variant}{self.backend}-seed{self.seed}"

    @property
    def label(self) -> str:
        return f"{self.experiment.label} {self.backend} seed {self.seed}"


def make_plan(experiments: list[ResolvedExperiment]) -> list[PlannedRun]:
    """Runs in a stable order: file, variant, seed, then backend (so that the backends of one
    configuration run next to each other and can be compared as soon as both are done)."""
    return [PlannedRun(experiment, backend, seed)
            for experiment in experiments
            for seed in experiment.seeds
            for backend in experiment.backends]


def plan_table(plan: list[PlannedRun]):
    """A rich table of the plan."""
    from rich.table import Table

    table = Table(title=f"Plan (orchestrator run): {len(plan)} run(s)", title_justify="left")
    for column in ("experiment", "variant", "task", "backend", "seed", "folds", "epochs",
                   "loss", "optimizer"):
        table.add_column(column)
    for run in plan:
        e = run.experiment
        table.add_row(e.name, e.variant or "-", e.task, run.backend, str(run.seed),
                      str(e.folds or "-"), str(e.train.epochs), e.loss.name, e.optimizer.name)
    return table


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

    from orchestrator.tuning.study import redact, study_name

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
