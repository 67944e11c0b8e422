"""Log a trained model with its framework's MLflow flavour, so ``mlflow.<flavour>.load_model``
gives it back.

The flavour is a backend attribute (``Backend.mlflow_flavor``); backends themselves never import
MLflow. Pip requirements are given explicitly: MLflow's inference of them imports the model in a
subprocess and costs many seconds per run.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import numpy as np

from orchestrator.contract.backend import Backend, BackendModel
from orchestrator.tracking.interrupts import shielded


def log_model(uri: str, run_id: str, backend: Backend, model: BackendModel,
              example: np.ndarray) -> str | None:
    """Log ``model`` under the run's ``model`` artifact path and finish the run (MLflow's model
    logging needs the run active, and leaving the active-run context ends it as FINISHED: call
    this last). Returns the flavour used, or None when the backend has none."""
    import importlib
    import warnings

    import mlflow

    flavor = getattr(backend, "mlflow_flavor", None)
    if flavor is None:
        return None
    mlflow.set_tracking_uri(uri)
    flavor_module: Any = importlib.import_module(f"mlflow.{flavor}")
    requirements = [f"{name}=={version}" for name, version in
                    backend.framework_versions().items()]
    predictions = model.predict(example)
    with warnings.catch_warnings():  # hints about integer columns; our inputs are exact
        warnings.simplefilter("ignore", UserWarning)
        signature = mlflow.models.infer_signature(example, predictions)
    with shielded():  # a stop waits until the model is in the store
        _log_example(uri, run_id, example, predictions)
        with mlflow.start_run(run_id=run_id), warnings.catch_warnings(), \
                _quiet(f"mlflow.{flavor}"):
            warnings.simplefilter("ignore", UserWarning)
            flavor_module.log_model(model.native, name="model", signature=signature,
                                    pip_requirements=requirements,
                                    **_FLAVOR_OPTIONS.get(flavor, {}))
    return flavor


@contextlib.contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    """Only errors from ``logger_name`` (MLflow's pytorch flavour warns on every pickled model,
    which is our deliberate choice: see _FLAVOR_OPTIONS)."""
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _log_example(uri: str, run_id: str, example: np.ndarray, predictions: np.ndarray) -> None:
    """Inputs and the model's outputs before logging, so that a reload can be checked."""
    import tempfile
    from pathlib import Path

    from mlflow.tracking import MlflowClient

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / EXAMPLE_FILE
        np.savez(path, x=example, y=predictions)
        MlflowClient(uri).log_artifact(run_id, str(path))


EXAMPLE_FILE = "model_example.npz"

# PyTorch: a pickled module (MLflow 3's default "pt2" export traces the graph and needs an
# example for every call pattern; pickling loads back wherever this package is installed).
_FLAVOR_OPTIONS: dict[str, dict[str, Any]] = {"pytorch": {"serialization_format": "pickle"}}
