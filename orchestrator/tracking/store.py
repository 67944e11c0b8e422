"""Where runs are tracked: the embedded SQLite store under ``mlruns/``, or ``MLFLOW_TRACKING_URI``.

MLflow 3.13+ refuses a bare ``./mlruns`` file store, so the embedded default is an SQLite database
``mlruns/mlflow.db`` with artifacts in ``mlruns/artifacts``: no server, nothing to start.
``MLFLOW_TRACKING_URI`` (an ``http://`` tracking server, PostgreSQL, another SQLite file)
overrides it; ``ORCHESTRATOR_MLRUNS`` moves the embedded root.

The store is created once, in the parent process, before any worker starts: several processes
creating a fresh SQLite store at once race on its migrations.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

MLRUNS_ENV = "ORCHESTRATOR_MLRUNS"
# What the MLflow UI reads as an experiment's description, and its kind. MLflow 3.17/3.18's own
# UI takes the kind from its GenAI / machine-learning switch (the ``workflowType`` URL parameter,
# else the browser's last choice, GenAI by default) and ignores the tag; ``runs_url`` opens the
# training runs directly. The tag still says what these experiments are.
DESCRIPTION_TAG = "mlflow.note.content"
KIND_TAG = "mlflow.experimentKind"
TRAINING_KIND = "custom_model_development"


@contextlib.contextmanager
def mlflow_settings(**settings: str) -> Iterator[None]:
    """MLflow settings read from the environment (``MLFLOW_HTTP_REQUEST_TIMEOUT="10"``) set for
    the block only; what was there before (or nothing) is put back."""
    saved = {key: os.environ.get(key) for key in settings}
    os.environ.update(settings)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def mlruns_root() -> Path:
    return Path(os.environ.get(MLRUNS_ENV, "mlruns")).resolve()


def tracking_uri() -> str:
    """The tracking URI every process of this invocation uses."""
    explicit = os.environ.get("MLFLOW_TRACKING_URI")
    if explicit:
        return with_driver(explicit)
    return f"sqlite:///{mlruns_root() / 'mlflow.db'}"


def with_driver(url: str) -> str:
    """A database URL with a driver that is installed: ``postgresql://`` means psycopg (3) to
    SQLAlchemy 2.1, psycopg2 to older ones; name psycopg2 where only it is installed (the
    ``postgres`` extra and the dev extra install psycopg2-binary)."""
    import importlib.util

    if url.startswith("postgresql://") and importlib.util.find_spec("psycopg") is None \
            and importlib.util.find_spec("psycopg2") is not None:
        return "postgresql+psycopg2://" + url.removeprefix("postgresql://")
    return url


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
    import logging

    from orchestrator.tracking.store_checks import bounded_waits, check_store, store_lock

    uri = uri or tracking_uri()
    # "Creating initial MLflow tables...", and database errors logged with their traceback
    # before they are raised (the command reports them in one line)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
    bounded_waits()
    check_store(uri)  # one line for a store that cannot be used, before anything is written
    # two invocations on a fresh SQLite store: one migrates, the other waits (a server or a
    # database URL gets no lock, and no mlruns/ folder is made for it)
    with store_lock(Path(uri.removeprefix("sqlite:///").split("?")[0]).parent
                    if uri.startswith("sqlite:///") else None):
        if is_embedded(uri):
            (mlruns_root() / "artifacts").mkdir(parents=True, exist_ok=True)
        from mlflow.tracking import MlflowClient

        MlflowClient(uri).search_experiments(max_results=1)  # creates, migrates the database
    return uri


def experiment_id(name: str, uri: str) -> str:
    """The id of MLflow experiment ``name``, created on first use."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from orchestrator.tracking.interrupts import ShieldedClient
    from orchestrator.tracking.store_checks import bounded_waits

    bounded_waits()
    client = ShieldedClient(MlflowClient(uri))
    found = client.get_experiment_by_name(name)
    if found is not None:
        if found.lifecycle_stage == "deleted":
            client.restore_experiment(found.experiment_id)
        return found.experiment_id
    try:
        return client.create_experiment(name, artifact_location=artifact_location(uri),
                                        tags={KIND_TAG: TRAINING_KIND})
    except MlflowException:  # created meanwhile by another process
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def describe_experiment(uri: str, experiment_id: str, description: str) -> None:
    """Make the experiment file's ``description`` the experiment's description in the UI (and
    mark it as a training experiment); nothing is written when both are already there."""
    from mlflow.tracking import MlflowClient

    from orchestrator.tracking.interrupts import ShieldedClient

    client = ShieldedClient(MlflowClient(uri))
    tags = client.get_experiment(experiment_id).tags
    wanted = {KIND_TAG: TRAINING_KIND}
    if description.strip():
        wanted[DESCRIPTION_TAG] = description.strip()
    for key, value in wanted.items():
        if tags.get(key) != value:
            client.set_experiment_tag(experiment_id, key, value)


def runs_url(base: str, experiment_id: str) -> str:
    """The UI address of an experiment's training runs (not its GenAI overview)."""
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"
