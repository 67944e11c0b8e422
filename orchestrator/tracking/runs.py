"""One MLflow run: params, tags, batched per-epoch metrics, artifacts, model, truthful status.

``RunLogger`` wraps ``MlflowClient`` with an explicit run id (no global active run), so nested
runs (cross-validation folds, tuning trials) and status handling stay under our control:
FINISHED on success, FAILED with the error on an exception, KILLED on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import io
import json
import math
import os
import time
import traceback
import warnings
from collections.abc import Mapping
from typing import Any

from orchestrator.tracking.interrupts import ShieldedClient
from orchestrator.tracking.recovery import HEARTBEAT_TAG, identity_tags

MAX_PARAMS_PER_BATCH = 100
MAX_METRICS_PER_BATCH = 1000
PARAM_VALUE_LIMIT = 6000
NO_VALUE_TAG = "orchestrator.no_value"


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"train": {"epochs": 3}}`` -> ``{"train.epochs": "3"}`` (lists as JSON)."""
    flat: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            text = value if isinstance(value, str) else json.dumps(value, default=str)
            flat[name] = text[:PARAM_VALUE_LIMIT]
    return flat


class RunLogger:
    """Logging for one run. Use as a context manager to get a truthful final status."""

    def __init__(self, uri: str, experiment_id: str, *, run_name: str,
                 tags: Mapping[str, str], parent_run_id: str | None = None,
                 run_id: str | None = None) -> None:
        from mlflow.tracking import MlflowClient

        from orchestrator.tracking.store_checks import bounded_waits

        bounded_waits()  # this process's SQLite writes wait for other processes' locks
        self.client = ShieldedClient(MlflowClient(uri))  # a stop waits for the write in flight
        self.uri = uri
        all_tags = {**identity_tags(), **{k: str(v) for k, v in tags.items()}}
        if parent_run_id:
            all_tags["mlflow.parentRunId"] = parent_run_id
        if run_id is None:
            run = self.client.create_run(experiment_id, run_name=run_name, tags=all_tags)
            self.run_id = run.info.run_id
        else:  # re-attach (resume)
            self.run_id = run_id
            self.client.update_run(run_id, status="RUNNING")
            self.set_tags(all_tags)
        self.status = "RUNNING"

    # --- context: the final status tells the truth --------------------------------------

    def __enter__(self) -> RunLogger:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            self.end("FINISHED")
        elif issubclass(exc_type, KeyboardInterrupt):  # Ctrl-C, and SIGTERM via the runner
            self.fail(exc, status="KILLED")
        else:
            self.fail(exc)
        return False

    def fail(self, exc: BaseException, status: str = "FAILED") -> None:
        if self.status != "RUNNING":
            return
        from orchestrator.redaction import redact_text

        message = redact_text(f"{type(exc).__name__}: {exc}".strip())
        try:
            self.client.set_tag(self.run_id, "orchestrator.error", message[:5000])
            if status == "FAILED":
                text = redact_text("".join(traceback.format_exception(type(exc), exc,
                                                                      exc.__traceback__)))
                self.client.log_text(self.run_id, text, "error.txt")
        finally:
            self.end(status)

    def end(self, status: str) -> None:
        if self.status == "RUNNING":
            self.client.set_terminated(self.run_id, status)
            self.status = status

    # --- logging ----------------------------------------------------------------------------

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        from mlflow.entities import RunTag

        from orchestrator.redaction import redact_text

        self.client.log_batch(self.run_id, tags=[RunTag(k, redact_text(str(v)))
                                                 for k, v in tags.items()])

    def log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        from orchestrator.redaction import redact_text

        items = [Param(k, redact_text(str(v), known=False)) for k, v in params.items()]
        for start in range(0, len(items), MAX_PARAMS_PER_BATCH):
            self.client.log_batch(self.run_id, params=items[start:start + MAX_PARAMS_PER_BATCH])

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None,
                    heartbeat: bool = True, missing: Mapping[str, str] | None = None) -> None:
        """All of one step's metrics in one call (and the heartbeat tag with them). A value
        that is not a finite number is not logged: the tag ``orchestrator.no_value.<key>``
        says why (``missing[key]`` if given), so charts never show NaN."""
        from mlflow.entities import Metric, RunTag

        now = int(time.time() * 1000)
        reasons = dict(missing or {})
        items = []
        for key, value in metrics.items():
            if math.isfinite(float(value)):
                items.append(Metric(key, float(value), now, step or 0))
            else:
                reasons.setdefault(key, f"no finite value ({float(value)})")
        tags = [RunTag(HEARTBEAT_TAG, str(int(time.time())))] if heartbeat else []
        tags += [RunTag(f"{NO_VALUE_TAG}.{key}", why[:5000]) for key, why in reasons.items()]
        for start in range(0, max(len(items), 1), MAX_METRICS_PER_BATCH):
            self.client.log_batch(self.run_id, metrics=items[start:start + MAX_METRICS_PER_BATCH],
                                  tags=tags if start == 0 else [])

    def log_figure(self, figure: Any, path: str) -> None:
        import matplotlib.pyplot as plt

        self.client.log_figure(self.run_id, figure, path)
        plt.close(figure)

    def log_text(self, text: str, path: str) -> None:
        self.client.log_text(self.run_id, text, path)

    def log_dict(self, data: Mapping[str, Any], path: str) -> None:
        self.client.log_dict(self.run_id, _redacted(dict(data)), path)

    def log_table(self, frame: Any, path: str) -> None:
        buffer = io.StringIO()
        frame.to_csv(buffer, index=False)
        self.client.log_text(self.run_id, buffer.getvalue(), path)

    def log_arrays(self, path: str, **arrays: Any) -> None:
        """NumPy arrays as one ``.npz`` artifact at ``path`` (read back with ``np.load``)."""
        import posixpath
        import tempfile

        import numpy as np

        folder, name = posixpath.split(path)
        with tempfile.TemporaryDirectory() as tmp:
            local = os.path.join(tmp, name)
            with open(local, "wb") as handle:
                np.savez_compressed(handle, **arrays)
            self.client.log_artifact(self.run_id, local, folder or None)

    def log_input(self, frame: Any, *, name: str, source: str, digest: str,
                  context: str = "training") -> None:
        """Record the data set (name, source, digest, schema) with ``mlflow.log_input``."""
        from mlflow.entities import DatasetInput, InputTag

        self.client.log_inputs(self.run_id, [DatasetInput(
            _dataset_entity(frame, name, source, digest),
            tags=[InputTag("mlflow.data.context", context)])])


_DATASETS: dict[tuple[str, str, str], Any] = {}


def _dataset_entity(frame: Any, name: str, source: str, digest: str) -> Any:
    """The MLflow entity of a data set (its schema and profile take about 0.5 s to compute),
    made once per process for each digest: a warm worker logs the same data run after run."""
    key = (name, source, digest)
    if key not in _DATASETS:
        import mlflow
        from mlflow.data.sources import LocalArtifactDatasetSource

        with warnings.catch_warnings():  # schema hints about integer columns
            warnings.simplefilter("ignore", UserWarning)
            dataset = mlflow.data.from_pandas(frame, source=LocalArtifactDatasetSource(source),
                                              name=name, digest=digest)
        _DATASETS.clear()  # one data set at a time is what a worker reuses
        _DATASETS[key] = dataset._to_mlflow_entity()
    return _DATASETS[key]


def _redacted(value: Any) -> Any:
    """Every string in a config without the secrets of the URLs it holds (``tune.storage``)."""
    from orchestrator.redaction import redact_text

    if isinstance(value, str):
        return redact_text(value, known=False)
    if isinstance(value, Mapping):
        return {k: _redacted(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redacted(v) for v in value]
    return value
