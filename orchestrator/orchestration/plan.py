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

