"""The ``comparison`` run: one experiment's comparison report logged as a run of that experiment,
next to the runs it compares, so it opens in the MLflow UI beside them.

The run is tagged ``orchestrator.kind=comparison`` and ``orchestrator.compared_runs`` (the
compared run ids, comma-separated; long lists continue in ``orchestrator.compared_runs.2``...);
its description (``mlflow.note.content``) is the main table in markdown. It logs no metrics:
summary numbers as metrics would add a chart per number at the top of the experiment's chart
view. Its artifacts: ``report.html`` (self-contained), ``plots/*.png``, ``tables/*.csv`` and
``tables/comparison.json``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from orchestrator.comparison import tables
from orchestrator.comparison.analysis import Comparison
from orchestrator.comparison.report import Section, write_folder

COMPARED_TAG = "orchestrator.compared_runs"
TAG_CHUNK = 4000  # characters per tag value (MLflow allows 8000)


def compared_tags(run_ids: list[str]) -> dict[str, str]:
    chunks, current = [], ""
    for run_id in run_ids:
        if current and len(current) + len(run_id) + 1 > TAG_CHUNK:
            chunks.append(current)
            current = ""
        current = f"{current},{run_id}" if current else run_id
    chunks.append(current)
    return {COMPARED_TAG if i == 0 else f"{COMPARED_TAG}.{i + 1}": chunk
            for i, chunk in enumerate(chunks)}


def log_comparison(section: Section, comparison: Comparison, uri: str,
                   extra_tags: dict[str, str] | None = None) -> str:
    """Log ``section`` as a new ``comparison`` run (with ``extra_tags``); returns its id."""
    from orchestrator.tracking.runs import RunLogger
    from orchestrator.tracking.store import describe_experiment

    exp = section.comparison
    note = "\n".join(tables.to_markdown(t) for t in section.tables[:1])
    if exp.notes:
        note += "\n" + "\n".join(f"- {n}" for n in exp.notes)
    tags = {"orchestrator.kind": "comparison", "orchestrator.rtol": comparison.rtol,
            "orchestrator.backends": ",".join(exp.info.backends),
            "mlflow.note.content": note[:8000], **compared_tags(exp.compared_ids),
            **(extra_tags or {})}
    describe_experiment(uri, exp.info.experiment_id, exp.info.description)
    with RunLogger(uri, exp.info.experiment_id, run_name="comparison", tags=tags) as logger:
        with tempfile.TemporaryDirectory() as folder:
            write_folder(section, comparison, Path(folder))
            logger.client.log_artifacts(logger.run_id, folder)
    return logger.run_id
