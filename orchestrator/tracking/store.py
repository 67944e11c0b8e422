"""Where runs are tracked: the embedded SQLite store under ``mlruns/``, or ``MLFLOW_TRACKING_URI``.

MLflow 3.13+ refuses a bare ``./mlruns`` file store, so the embedded default is an SQLite database
``mlruns/mlflow.db`` with artifacts in ``mlruns/artifacts``: no server, nothing to start.
``MLFLOW_TRACKING_URI`` (an ``http://`` tracking server, PostgreSQL, another SQLite file)
overrides it; ``ORCHESTRATOR_MLRUNS`` moves the embedded root.

The store is created once, in the parent process, before any worker starts: several processes
creating a fresh SQLite store at once race on its migrations.
"""

from __future__ import annotations

import os
from pathlib import Path

MLRUNS_ENV = "ORCHESTRATOR_MLRUNS"


def mlruns_root() -> Path:
    return Path(os.environ.get(MLRUNS_ENV, "mlruns")).resolve()


def tracking_uri() -> str:
    """The tracking URI every process of this invocation uses."""
    explicit = os.environ.get("MLFLOW_TRACKING_URI")
    if explicit:
        return explicit
    return f"sqlite:///{mlruns_root() / 'mlflow.db'}"


def is_embedded(uri: str) -> bool:
    return uri == f"sqlite:///{mlruns_root() / 'mlflow.db'}"


def artifact_location(uri: str) -> str | None:
    """Artifact root for new experiments: ``mlruns/artifacts`` for the embedded store, the
    server's default otherwise."""
    if is_embedded(uri):
        return (mlruns_root() / "artifacts").as_uri()
    return None


def ensure_store(uri: str | None = None) -> str:
    """Create the embedded store (and run its migrations) if needed; return the URI."""
    uri = uri or tracking_uri()
    if is_embedded(uri):
        (mlruns_root() / "artifacts").mkdir(parents=True, exist_ok=True)
    from mlflow.tracking import MlflowClient

    MlflowClient(uri).search_experiments(max_results=1)  # creates and migrates the database
    return uri


def experiment_id(name: str, uri: str) -> str:
    """The id of MLflow experiment ``name``, created on first use."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from orchestrator.tracking.interrupts import ShieldedClient

    client = ShieldedClient(MlflowClient(uri))
    found = client.get_experiment_by_name(name)
    if found is not None:
        if found.lifecycle_stage == "deleted":
            client.restore_experiment(found.experiment_id)
        return found.experiment_id
    try:
        return client.create_experiment(name, artifact_location=artifact_location(uri))
    except MlflowException:  # created meanwhile by another process
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id
