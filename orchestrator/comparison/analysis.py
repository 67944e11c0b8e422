"""One comparison per experiment, computed from the runs read back: metric statistics and
paired differences, curve agreement, speed and memory, tuning studies, and notes on anything
missing or unreliable (seeds on one backend only, runs that shared the cores).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from orchestrator.comparison import curves, speed, statistics, studies
from orchestrator.comparison.readback import ExperimentInfo, Selection


@dataclass
class ExperimentComparison:
    info: ExperimentInfo
    summaries: pd.DataFrame  # variant, metric, backend, n, mean, std, low, high
    differences: pd.DataFrame  # variant, metric, reference, backend, n, mean, ..., test, p
    epochs: pd.DataFrame  # per-epoch train/loss relative differences, unit by unit
    agreement: pd.DataFrame  # per variant and backend: first-epoch, max, first over rtol
    speed: pd.DataFrame  # per variant and backend
    units: pd.DataFrame  # per unit: speed, memory, overlaps
    studies: pd.DataFrame
    compared_ids: list[str]
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.info.name


@dataclass
class Comparison:
    selection: Selection
    rtol: float
    experiments: list[ExperimentComparison]


def compare(selection: Selection, rtol: float = curves.DEFAULT_RTOL) -> Comparison:
    per_unit = speed.per_unit(selection.units, selection.histories, selection.store) \
        if not selection.units.empty else pd.DataFrame(
            columns=["experiment", "variant", "backend", "unit", "run_id", "alone"])
    compared = selection.compared_ids
    out = []
    for name, info in selection.experiments.items():
        summaries, differences = statistics.metric_tables(
            selection.units, name, info.variants, info.backends, info.main_metric) \
            if not selection.units.empty else (pd.DataFrame(), pd.DataFrame())
        epochs = curves.per_epoch(selection.units, selection.histories, name, info.backends)
        mine = per_unit[per_unit["experiment"] == name]
        notes = [n for n in selection.notes if n.startswith(f"{name}:")]
        notes += statistics.unmatched_notes(differences)
        shared = int((~mine["alone"]).sum()) if not mine.empty else 0
        if shared:
            notes.append(f"{name}: {shared} of {len(mine)} run(s) shared the cores with other "
                         "runs (their timings include the neighbours'); speed ratios use the "
                         "runs that ran alone only")
        out.append(ExperimentComparison(
            info, summaries, differences, epochs, curves.agreement(epochs, rtol),
            speed.speed_table(per_unit, name, info.backends) if not mine.empty
            else pd.DataFrame(), mine,
            studies.study_table(selection.studies, selection.trials, name),
            compared.get(name, []), notes))
    return Comparison(selection, rtol, out)
