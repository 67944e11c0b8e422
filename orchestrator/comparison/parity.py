"""``orchestrator parity``: any experiment trained on every chosen backend from the same weights
and batches, each backend in its own process, and the per-epoch training loss compared.

This is the tool's promise in one command: with canonical components, the same initial weights
(drawn in NumPy from the seed) and the same batches, two frameworks follow the same trajectory,
so a difference left in a comparison is the framework's, not a hidden default's. Every variant
of the file is trained with its first seed on one split (no folds), without early stopping, and
with dropout off (its masks come from each framework's own random generator), through the
public training entry point ``orchestrator.orchestration.trainer.train_and_evaluate``. The runs
are logged as nested runs of a ``parity`` run in the experiment, which holds the table.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from orchestrator.comparison import curves
from orchestrator.config.loader import ResolvedExperiment


@dataclass
class ParityResult:
    experiment: str
    backends: list[str]
    rtol: float
    table: pd.DataFrame  # variant, epoch, one train/loss column per backend, rel. differences
    agreement: pd.DataFrame  # per variant and backend (curves.agreement)
    parent_run_id: str
    versions: dict[str, dict[str, str]]

    @property
    def agree(self) -> bool:
        return bool(self.agreement["max_difference"].le(self.rtol).all()) \
            and not self.agreement.empty


def load(file: str, overrides: list[str], *, epochs: int | None, dtype: str,
         batch_size: int | None, backends: list[str] | None
         ) -> tuple[list[ResolvedExperiment], list[str]]:
    """The file's variants as parity trains them; the overrides applied, for the record."""
    from orchestrator.config.loader import load as load_files
    from orchestrator.plugins import manager as plugin_manager

    extra = [f"train.dtype={dtype}", "train.early_stopping=null", "cv=null", "tune=null"]
    if epochs is not None:
        extra.append(f"train.epochs={epochs}")
    if batch_size is not None:
        extra.append(f"train.batch_size={batch_size}")
    if backends:
        extra.append(f"backends=[{', '.join(backends)}]")
    experiments = load_files([file], [*overrides, *extra])
    tasks = plugin_manager.tasks()
    dropout = sorted({f"model.{name}=0.0" for e in experiments
                      for name in tasks.get(e.task).ModelOptions.model_fields
                      if "dropout" in name and getattr(e.model, name, 0)})
    if dropout:
        extra += dropout
        experiments = load_files([file], [*overrides, *extra])
    return experiments, extra


def train_backend(experiments: list[ResolvedExperiment], backend_name: str, uri: str,
                  parent_run_id: str) -> dict[str, object]:
    """Train every variant on one backend (meant to run in a process of its own); returns the
    run id per variant and the framework versions."""
    from orchestrator.contract.backend import Resources
    from orchestrator.orchestration.plan import PlannedRun
    from orchestrator.orchestration.trainer import train_and_evaluate
    from orchestrator.plugins import manager as plugin_manager
    from orchestrator.tracking.runs import RunLogger, flatten
    from orchestrator.tracking.store import experiment_id

    backend = plugin_manager.backends().load(backend_name, Resources.from_environment())
    run_ids = {}
    for exp in experiments:
        seed = exp.seeds[0]
        task = plugin_manager.tasks().get(exp.task)()
        backend.seed(seed)
        prepared = task.prepare(exp.data, seed=seed, folds=None)
        run = PlannedRun(exp, backend_name, seed)
        tags = {"orchestrator.kind": "parity-run", "orchestrator.backend": backend_name,
                "orchestrator.variant": exp.variant or "-", "orchestrator.seed": seed,
                "orchestrator.task": exp.task, "orchestrator.config_digest": exp.digest}
        with RunLogger(uri, experiment_id(exp.name, uri), run_name=f"parity-{run.run_name}",
                       tags=tags, parent_run_id=parent_run_id) as logger:
            logger.log_params({**flatten(exp.config), "seed": seed, "backend": backend_name})
            train_and_evaluate(run, task, backend, prepared, prepared.splits[0], logger, False,
                               log_model_uri=None)
        run_ids[exp.variant or "-"] = logger.run_id
    return {"runs": run_ids, "versions": backend.framework_versions()}


def run(experiments: list[ResolvedExperiment], overrides: list[str], uri: str, rtol: float
        ) -> ParityResult:
    """Train on every backend of the (resolved) experiments and compare, logged in MLflow."""
    from mlflow.tracking import MlflowClient

    from orchestrator.orchestration.isolation import run_isolated
    from orchestrator.tracking.runs import RunLogger
    from orchestrator.tracking.store import experiment_id

    first = experiments[0]
    backends = list(first.backends)
    client = MlflowClient(uri)
    tags = {"orchestrator.kind": "parity", "orchestrator.file": first.file,
            "orchestrator.rtol": rtol, "orchestrator.backends": ",".join(backends),
            "orchestrator.parity_overrides": " ".join(overrides)}
    with RunLogger(uri, experiment_id(first.name, uri), run_name="parity", tags=tags) as parent:
        units, versions = [], {}
        for backend in backends:
            done = run_isolated(train_backend, experiments, backend, uri, parent.run_id)
            versions[backend] = done["versions"]
            units += [{"experiment": first.name, "variant": variant, "unit": "seed",
                       "backend": backend, "run_id": run_id}
                      for variant, run_id in done["runs"].items()]
        frame = pd.DataFrame(units)
        histories = pd.DataFrame(
            [(r, "train/loss", m.step, m.value) for r in frame["run_id"]
             for m in client.get_metric_history(r, "train/loss")],
            columns=["run_id", "key", "step", "value"])
        epochs = curves.per_epoch(frame, histories, first.name, backends)
        result = ParityResult(first.name, backends, rtol, per_epoch_table(epochs, backends),
                              curves.agreement(epochs, rtol), parent.run_id, versions)
        parent.log_table(result.table, "tables/parity.csv")
        parent.log_table(result.agreement, "tables/agreement.csv")
        parent.set_tags({"orchestrator.parity": "agree" if result.agree else "disagree",
                         "mlflow.note.content": markdown(result)[:8000]})
    return result


def per_epoch_table(epochs: pd.DataFrame, backends: list[str]) -> pd.DataFrame:
    """Variant x epoch rows: each backend's train/loss and each other backend's relative
    difference to the first."""
    if epochs.empty:
        return pd.DataFrame(columns=["variant", "epoch", *backends])
    base = epochs.drop_duplicates(["variant", "epoch"]).set_index(["variant", "epoch"])
    table = pd.DataFrame({backends[0]: base["reference_value"]})
    for backend in backends[1:]:
        mine = epochs[epochs["backend"] == backend].set_index(["variant", "epoch"])
        table[backend] = mine["value"]
        table[f"{backend} rel. diff"] = mine["relative_difference"]
    return table.reset_index()


def markdown(result: ParityResult) -> str:
    columns = list(result.table.columns)
    lines = [f"parity of {result.experiment} on {', '.join(result.backends)}: "
             f"{'agree' if result.agree else 'DISAGREE'} within rtol {result.rtol:g}", "",
             "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for _, row in result.table.iterrows():
        lines.append("| " + " | ".join(cell(c, row[c]) for c in columns) + " |")
    return "\n".join(lines)


def cell(column: str, value: object) -> str:
    if column in ("variant", "epoch"):
        return str(value)
    if pd.isna(value):
        return "-"
    return f"{value:.2e}" if column.endswith("rel. diff") else f"{value:.10f}"
